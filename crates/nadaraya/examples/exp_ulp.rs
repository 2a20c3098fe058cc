//! Measures the exponential behind every weight over every `f32` in `[ln(f32::MIN_POSITIVE), 0]`
//! against `f64::exp`, in units in the last place of the correctly rounded result: both the
//! SIMD lanes (`math::exp_neg_in_place`) and their scalar twin (`math::exp_neg`), beside
//! `libm::expf` for scale.
//!
//! `cargo run --release -p nadaraya --example exp_ulp` (about a minute on one core).

fn ulp_error(got: f32, want: f64) -> f64 {
    let w = want as f32;
    if !w.is_normal() {
        return 0.0;
    }
    let ulp = f64::from(f32::from_bits(w.to_bits() + 1) - w);
    (f64::from(got) - want).abs() / ulp
}

fn main() {
    let lo = (-87.336_55f32).to_bits();
    let (mut lanes_worst, mut scalar_worst, mut libm_worst) =
        ((0.0f64, 0.0f32), (0.0f64, 0.0f32), (0.0f64, 0.0f32));
    let mut count = 0u64;
    let mut buf = vec![0.0f32; 1 << 16];
    let mut bits = 0x8000_0000u32;
    while bits <= lo {
        let n = buf.len().min((lo - bits + 1) as usize);
        for (i, x) in buf[..n].iter_mut().enumerate() {
            *x = f32::from_bits(bits + i as u32);
        }
        let mut got = buf[..n].to_vec();
        nadaraya::math::exp_neg_in_place(&mut got);
        for (x, g) in buf[..n].iter().zip(&got) {
            let want = f64::from(*x).exp();
            let e = ulp_error(*g, want);
            if e > lanes_worst.0 {
                lanes_worst = (e, *x);
            }
            let e = ulp_error(nadaraya::math::exp_neg(*x), want);
            if e > scalar_worst.0 {
                scalar_worst = (e, *x);
            }
            let e = ulp_error(libm::expf(*x), want);
            if e > libm_worst.0 {
                libm_worst = (e, *x);
            }
        }
        count += n as u64;
        bits += n as u32;
    }
    println!("inputs: {count} (every f32 in [-87.33655, -0])");
    println!(
        "SIMD lanes  : max {:.3} ulp at x = {:e}",
        lanes_worst.0, lanes_worst.1
    );
    println!(
        "scalar twin : max {:.3} ulp at x = {:e}",
        scalar_worst.0, scalar_worst.1
    );
    println!(
        "libm::expf  : max {:.3} ulp at x = {:e}",
        libm_worst.0, libm_worst.1
    );
}
