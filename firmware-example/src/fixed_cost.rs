//! The Q15 rows of the cost table (`nadaraya::fixed`), beside the `f32` `Smoother::predict` on
//! the same samples (soft float on the Cortex-M0). Included by `cost` with `#[path]`; uses its
//! calibration, counters and inputs.

use core::fmt::Write as _;
use core::hint::black_box;

use heapless::String;

use nadaraya::fixed::{self, Q15Kernel};
use nadaraya::{Error, Gaussian, Smoother, SoftmaxDot};

use super::{Cal, PAINT_BYTES, insns, machine, predict, rng};

#[inline(never)]
fn q15_attention(k: &Q15Kernel, q: &[i16], keys: &[i16], values: &[i16]) -> Result<i16, Error> {
    let mut out = [0i16];
    fixed::attention(k, q, keys, values, &mut out)?;
    Ok(out[0])
}

#[inline(never)]
fn exp2_loop(es: &mut [u32; 256]) {
    for e in es.iter_mut() {
        *e = fixed::exp2_neg(*e);
    }
}

// Out of line: inlined into `rows`, every row's arrays would share one stack frame.
#[inline(never)]
fn row<const N: usize, const D: usize>(cal: Cal, gaussian: bool) -> Result<(), Error> {
    let mut rng = rng::Rng::new((N * 37 + D) as u64);
    let xs: [[f32; D]; N] = core::array::from_fn(|_| core::array::from_fn(|_| rng.next_f32()));
    let ys: [f32; N] = core::array::from_fn(|_| rng.next_f32());
    let q: [f32; D] = core::array::from_fn(|_| rng.next_f32());
    let keys: [[i16; D]; N] = core::array::from_fn(|i| xs[i].map(fixed::q15));
    let values: [i16; N] = ys.map(fixed::q15);
    let q15q = q.map(fixed::q15);
    let (name, k) = if gaussian {
        (
            "Gaussian",
            Q15Kernel::gaussian(&Gaussian::new(0.5 * libm::sqrtf(D as f32))?)?,
        )
    } else {
        (
            "softmax-dot",
            Q15Kernel::softmax_dot(&SoftmaxDot::for_dim(D)?)?,
        )
    };
    let ours = insns(cal, || {
        q15_attention(
            black_box(&k),
            black_box(&q15q),
            black_box(keys.as_flattened()),
            black_box(&values),
        )
    });
    // The f32 smoother beside it where it fits (4 words per input number: `cost::row`'s 3 and
    // this row's Q15 copies).
    let f32_fits = 4 * N * (D + 1) * 4 + 2 * N * (D + 1) + PAINT_BYTES as usize + 4096
        <= machine::RAM_BYTES as usize;
    if f32_fits {
        let float = if gaussian {
            let mut s: Smoother<Gaussian, N, D, 1> =
                Smoother::new(Gaussian::new(0.5 * libm::sqrtf(D as f32))?);
            for (x, y) in xs.iter().zip(&ys) {
                s.push(*x, [*y]).map_err(|r| r.error)?;
            }
            insns(cal, || predict(black_box(&s), black_box(&q)))
        } else {
            let mut s: Smoother<SoftmaxDot, N, D, 1> = Smoother::new(SoftmaxDot::for_dim(D)?);
            for (x, y) in xs.iter().zip(&ys) {
                s.push(*x, [*y]).map_err(|r| r.error)?;
            }
            insns(cal, || predict(black_box(&s), black_box(&q)))
        };
        say!(
            "| {name} | {D} | {N} | {ours} | {:.1} | {:.1} | {:.1}x |",
            ours as f32 / N as f32,
            float as f32 / N as f32,
            float as f32 / ours as f32
        );
    } else {
        say!(
            "| {name} | {D} | {N} | {ours} | {:.1} | does not fit | |",
            ours as f32 / N as f32
        );
    }
    Ok(())
}

/// The Q15 table: `fixed::attention` per call and per sample against `Smoother::predict`.
pub fn rows(cal: Cal) -> Result<(), Error> {
    say!("");
    say!(
        "| Q15 `fixed::attention` | D | N | Q15: instr/call | Q15: instr/sample | f32 `Smoother::predict`: instr/sample | f32 / Q15 |"
    );
    say!("|---|---:|---:|---:|---:|---:|---:|");
    row::<16, 1>(cal, true)?;
    row::<64, 1>(cal, true)?;
    row::<256, 1>(cal, true)?;
    row::<16, 8>(cal, true)?;
    row::<64, 8>(cal, true)?;
    row::<256, 1>(cal, false)?;
    row::<16, 8>(cal, false)?;
    row::<64, 8>(cal, false)?;
    let mut es: [u32; 256] = core::array::from_fn(|i| (i as u32) * 1999);
    let exp = insns(cal, || exp2_loop(black_box(&mut es)));
    say!("");
    say!("| operation | instr/call |");
    say!("|---|---:|");
    say!(
        "| `fixed::exp2_neg` loop, 256 values, per value | {:.1} |",
        exp as f32 / 256.0
    );
    Ok(())
}
