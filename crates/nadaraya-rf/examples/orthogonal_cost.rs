//! The cost of an orthogonal draw with far fewer features than dimensions (`m ≪ d`): the time
//! and the peak resident memory of drawing `d = 100 000, m = 4` projections (both row norms) and
//! running one attention call on each, as the README's memory section quotes.
//!
//! `cargo run --release -p nadaraya-rf --example orthogonal_cost`
//!
//! The peak is the process's `VmHWM` from `/proc/self/status` (Linux), which includes the
//! inputs (`2·d` floats per call) and the binary itself.

use std::time::Instant;

use nadaraya_rf::{FavorPlus, Mask, Projection, RowNorm, Rows, RowsMut, Sampling, Variant};

/// The process's peak resident set in kB, if the OS tells.
fn peak_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<(), nadaraya_rf::Error> {
    let (d, m) = (100_000usize, 4usize);
    let before = peak_kb();
    let start = Instant::now();
    let x: Vec<f32> = (0..2 * d).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect();
    let mut out = [0.0f32; 2];
    for norm in [RowNorm::SqrtD, RowNorm::Chi] {
        let p = Projection::new(d, m, Sampling::Orthogonal(norm), 5)?;
        let f = FavorPlus::new(p, 300.0, Variant::Positive)?;
        f.attention(
            Rows::new(&x, d)?,
            Rows::new(&x, d)?,
            Rows::new(&[1.0, 3.0], 1)?,
            Mask::None,
            RowsMut::new(&mut out, 1)?,
        )?;
    }
    let secs = start.elapsed().as_secs_f64();
    println!("d = {d}, m = {m}: two orthogonal draws and two attention calls in {secs:.2} s");
    match (before, peak_kb()) {
        (Some(b), Some(a)) => println!(
            "peak resident set {:.1} MB (it was {:.1} MB at start); outputs {out:?}",
            a as f64 / 1000.0,
            b as f64 / 1000.0
        ),
        _ => println!("peak resident set: not reported by this OS; outputs {out:?}"),
    }
    Ok(())
}
