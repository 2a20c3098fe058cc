//! The seed on a Cortex-M4F: attention is Nadaraya–Watson kernel smoothing.
//!
//! 1. A 1-D data set; Gaussian vs softmax-dot weights `α_i` and the prediction `ŷ(x_q)` for each
//!    of the seed's "What to Try" cases, with a text bar chart of the weights.
//! 2. A streaming sensor smoother: a sliding-window `Smoother` fed from a noisy signal.
//! 3. A small multi-head attention layer over a short sequence.
//!
//! Exits QEMU with 0 on success, 1 on any error.

#![no_std]
#![no_main]

#[path = "../common.rs"]
mod common;
// The workspace's one generator of reproducible inputs (`nadaraya-tests` is std, so its file).
#[path = "../../../tests/src/rng.rs"]
#[allow(dead_code)] // each binary uses part of it
mod rng;

use core::fmt::Write as _;

use heapless::String;
use nadaraya::{
    Error, Gaussian, Kernel, Mask, MhaScratch, MhaWeights, MultiHeadAttention, Smoother,
    SoftmaxDot, fit::Search,
};

type Line = String<160>;

/// Prints one formatted line (floats formatted on the target with `core::fmt`).
macro_rules! say {
    ($($t:tt)*) => {{
        let mut l = Line::new();
        let _ = write!(l, $($t)*);
        defmt::println!("{=str}", l.as_str());
    }};
}

const BAR: &str = "##############################";

fn bar(alpha: f32) -> &'static str {
    let n = libm::roundf(alpha * BAR.len() as f32) as usize;
    &BAR[..n.min(BAR.len())]
}

/// The demo's 1-D data set: eight samples of a bump, `y = 1 + x·exp(-x²/2)`.
const XS: [f32; 8] = [-2.0, -1.4, -0.8, -0.3, 0.2, 0.7, 1.3, 1.9];
/// Clustered locations for the third case: five samples crowd around 1.
const CLUSTERED: [f32; 8] = [-2.0, -0.5, 0.8, 0.9, 1.0, 1.1, 1.2, 1.9];

fn response(x: f32) -> f32 {
    1.0 + x * libm::expf(-0.5 * x * x)
}

/// Weights and prediction of one kernel at `xq` over locations `xs`.
fn smooth<K: Kernel>(k: K, xs: &[f32; 8], xq: f32) -> Result<([f32; 8], f32), Error> {
    let mut s: Smoother<K, 8, 1, 1> = Smoother::new(k);
    for &x in xs {
        s.push([x], [response(x)]).map_err(|r| r.error)?;
    }
    let mut w = [0.0f32; 8];
    s.weights(&[xq], &mut w)?;
    Ok((w, s.predict(&[xq])?[0]))
}

/// Side-by-side weights of a Gaussian and a softmax-dot kernel at `xq`.
fn compare(title: &str, g: Gaussian, s: SoftmaxDot, xs: &[f32; 8], xq: f32) -> Result<(), Error> {
    let (wg, yg) = smooth(g, xs, xq)?;
    let (ws, ys) = smooth(s, xs, xq)?;
    say!("");
    say!("-- {title}");
    say!(
        "   x_q = {xq:+.2}   Gaussian h = {:.2}   softmax-dot tau = {:.2}",
        g.bandwidth(),
        s.temperature()
    );
    say!("     x_i    y_i | a_i Gaussian                         | a_i softmax-dot");
    for i in 0..8 {
        say!(
            "   {:+.2} {:6.3} | {:5.3} {:<30} | {:5.3} {}",
            xs[i],
            response(xs[i]),
            wg[i],
            bar(wg[i]),
            ws[i],
            bar(ws[i])
        );
    }
    say!(
        "   y_hat(x_q): Gaussian {yg:.4}, softmax-dot {ys:.4}   (true y({xq:+.2}) = {:.4})",
        response(xq)
    );
    Ok(())
}

fn seed_cases() -> Result<(), Error> {
    say!("== 1. Attention as kernel smoothing: a 1-D data set, y = 1 + x exp(-x^2/2)");
    let g1 = Gaussian::new(1.0)?;
    let s1 = SoftmaxDot::new(1.0)?;
    compare("baseline: h = 1, tau = 1", g1, s1, &XS, 0.5)?;

    say!("");
    say!("== What to try: small h (0.2) as x_q moves: the Gaussian weights become very local");
    let g = Gaussian::new(0.2)?;
    for xq in [-1.4, -0.5, 0.7] {
        compare("small h", g, s1, &XS, xq)?;
    }

    say!("");
    say!("== What to try: small tau (0.2): softmax-dot becomes peaky, it attends to few keys");
    compare("small tau", g1, SoftmaxDot::new(0.2)?, &XS, 0.5)?;

    say!("");
    say!("== What to try: clustered x_i: the cluster near 1 shares the weight among its points");
    compare("clustered locations", g1, s1, &CLUSTERED, 0.5)?;
    compare(
        "clustered locations, small h",
        Gaussian::new(0.2)?,
        s1,
        &CLUSTERED,
        1.0,
    )?;

    say!("");
    say!(
        "== What to try: softmax-dot prefers keys with the sign of x_q; the Gaussian prefers near ones"
    );
    for xq in [1.0f32, -1.0] {
        compare("sign preference", g1, s1, &XS, xq)?;
        let (wg, _) = smooth(g1, &XS, xq)?;
        let (ws, _) = smooth(s1, &XS, xq)?;
        let same = |w: &[f32; 8]| -> f32 {
            w.iter()
                .zip(&XS)
                .filter(|(_, x)| **x * xq > 0.0)
                .map(|(a, _)| a)
                .sum()
        };
        say!(
            "   weight on keys with the sign of x_q: Gaussian {:.3}, softmax-dot {:.3}",
            same(&wg),
            same(&ws)
        );
    }
    Ok(())
}

fn sensor() -> Result<(), Error> {
    say!("");
    say!(
        "== 2. Streaming sensor smoother: Smoother<Gaussian, 16, 1, 1>, a sliding window over time"
    );
    say!(
        "   signal sin(t) + uniform noise of width 0.6, one sample every 0.1 s, h = 0.25 s at first;"
    );
    say!("   every 16 samples the window re-selects h on the device by cv_ls (leave-one-out CV)");
    let mut s: Smoother<Gaussian, 16, 1, 1> = Smoother::new(Gaussian::new(0.25)?);
    // Deterministic noise for the synthetic sensor, uniform in [-0.5, 0.5).
    let mut noise = rng::Rng::new(7);
    let (mut err_raw, mut err_smooth, mut count) = (0.0f32, 0.0f32, 0u32);
    say!("      t    true     raw  smoothed");
    for i in 0..80 {
        let t = i as f32 * 0.1;
        let truth = libm::sinf(t);
        let raw = truth + 0.6 * noise.range(-0.5, 0.5);
        s.push_evicting([t], [raw]).map_err(|r| r.error)?;
        // The estimate at the newest time stamp uses the window's past samples only.
        let y = s.predict(&[t])?[0];
        if s.is_full() {
            err_raw += (raw - truth) * (raw - truth);
            err_smooth += (y - truth) * (y - truth);
            count += 1;
        }
        if i % 8 == 7 {
            say!("   {t:4.1} {truth:+.3}  {raw:+.3}  {y:+.3}");
        }
        if s.is_full() && i % 16 == 15 {
            let sel = s.select_bandwidth(&Search::default())?;
            say!(
                "   t = {t:4.1}: cv_ls over the window re-selected h = {:.4} s (cv {:.5}, {} evaluations)",
                sel.bandwidth,
                sel.cv,
                sel.evaluations
            );
        }
    }
    let (rr, rs) = (
        libm::sqrtf(err_raw / count as f32),
        libm::sqrtf(err_smooth / count as f32),
    );
    say!("   RMS error over {count} full windows: raw {rr:.3}, smoothed {rs:.3}");
    Ok(())
}

fn multi_head() -> Result<(), Error> {
    say!("");
    say!("== 3. Multi-head attention: 2 heads, model width 4, head width 2, 6 tokens, causal");
    say!("   head 0 compares token content (coords 0,1), head 1 compares positions (coords 2,3)");
    // Tokens: content (x0, x1) and a position code (cos, sin of the index).
    let x: [[f32; 4]; 6] = core::array::from_fn(|t| {
        let p = t as f32 * 0.6;
        let c = if t % 2 == 0 { 1.0 } else { -1.0 };
        [c, 0.5 * t as f32 - 1.0, libm::cosf(p), libm::sinf(p)]
    });
    // Head h reads and writes back coordinates 2h, 2h + 1: q = k = v = those coordinates.
    let pick = |h: usize| -> [[f32; 2]; 4] {
        core::array::from_fn(|i| core::array::from_fn(|j| if i == 2 * h + j { 2.0 } else { 0.0 }))
    };
    let back = |h: usize| -> [[f32; 4]; 2] {
        core::array::from_fn(|j| core::array::from_fn(|i| if i == 2 * h + j { 0.5 } else { 0.0 }))
    };
    let k = SoftmaxDot::for_dim(2)?;
    let w = MhaWeights::<4, 2, 2> {
        w_q: [pick(0), pick(1)],
        w_k: [pick(0), pick(1)],
        w_v: [pick(0), pick(1)],
        w_o: [back(0), back(1)],
    };
    let mha = MultiHeadAttention::new([k; 2], &w)?;
    let mut out = [[0.0f32; 4]; 6];
    mha.forward(
        &x,
        Mask::Causal,
        &mut MhaScratch::<8, 4, 2>::new(),
        &mut out,
    )?;
    say!("   t | input                          | output");
    for (t, (xi, o)) in x.iter().zip(&out).enumerate() {
        say!(
            "   {t} | {:+.2} {:+.2} {:+.2} {:+.2}    | {:+.2} {:+.2} {:+.2} {:+.2}",
            xi[0],
            xi[1],
            xi[2],
            xi[3],
            o[0],
            o[1],
            o[2],
            o[3]
        );
    }
    say!("   token 0 sees only itself, so its output equals its input");
    Ok(())
}

#[cortex_m_rt::entry]
fn main() -> ! {
    say!(
        "nadaraya on a Cortex-M4F (QEMU mps2-an386): attention is Nadaraya-Watson kernel smoothing"
    );
    let result = seed_cases()
        .and_then(|()| sensor())
        .and_then(|()| multi_head());
    match result {
        Ok(()) => {
            say!("");
            say!("demo finished: ok");
            common::exit(true)
        }
        Err(e) => {
            defmt::error!("demo failed: {}", e);
            common::exit(false)
        }
    }
}
