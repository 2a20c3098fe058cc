//! Multi-head self-attention against a plain f64 implementation written from the definition.

mod core_flat;
use nadaraya::{Error, Gaussian, SoftmaxDot};
use nadaraya_tests::reference::{self, RefKernel};

const DM: usize = 6;
const H: usize = 3;
const DH: usize = 4;

type W = [[[f32; DH]; DM]; H];
type WO = [[[f32; DM]; DH]; H];

fn weights(seed: u64) -> (W, W, W, WO) {
    let mut r = nadaraya_tests::uniform(seed);
    let mut w =
        || core::array::from_fn(|_| core::array::from_fn(|_| core::array::from_fn(|_| r())));
    let (q, k, v) = (w(), w(), w());
    let mut r = nadaraya_tests::uniform(seed + 1);
    let o = core::array::from_fn(|_| core::array::from_fn(|_| core::array::from_fn(|_| r())));
    (q, k, v, o)
}

/// `Σ_h attention_h(x W_Q, x W_K, x W_V) W_O^h` in f64, one token at a time.
fn reference_mha(
    kernels: [RefKernel; H],
    w: &(W, W, W, WO),
    x: &[[f32; DM]],
    causal: bool,
) -> Vec<[f64; DM]> {
    let project = |m: &[[f32; DH]; DM], t: &[f32; DM]| -> Vec<f64> {
        (0..DH)
            .map(|j| (0..DM).map(|i| f64::from(t[i]) * f64::from(m[i][j])).sum())
            .collect()
    };
    let mut out = vec![[0.0f64; DM]; x.len()];
    for h in 0..H {
        let q: Vec<f64> = x.iter().flat_map(|t| project(&w.0[h], t)).collect();
        let k: Vec<f64> = x.iter().flat_map(|t| project(&w.1[h], t)).collect();
        let v: Vec<f64> = x.iter().flat_map(|t| project(&w.2[h], t)).collect();
        let o = reference::attention(kernels[h], &q, &k, &v, DH, DH, causal);
        for (t, ot) in o.chunks_exact(DH).enumerate() {
            for i in 0..DM {
                out[t][i] += (0..DH)
                    .map(|j| ot[j] * f64::from(w.3[h][j][i]))
                    .sum::<f64>();
            }
        }
    }
    out
}

#[test]
fn heads_match_the_f64_definition() {
    let w = weights(42);
    let taus = [0.5f32, 2.0, 4.0];
    let mha = core_flat::mha::<_, DM, H, DH>(
        taus.map(|t| SoftmaxDot::new(t).unwrap()),
        w.0,
        w.1,
        w.2,
        w.3,
    )
    .unwrap();
    let refk = taus.map(|t| RefKernel::SoftmaxDot { tau: f64::from(t) });
    let mut r = nadaraya_tests::uniform(7);
    for len in [1usize, 2, 7, 16] {
        let x: Vec<[f32; DM]> = (0..len).map(|_| core::array::from_fn(|_| r())).collect();
        for causal in [false, true] {
            let mut out = vec![[0.0f32; DM]; len];
            core_flat::forward::<16, _, _, _, _>(&mha, &x, causal, &mut out).unwrap();
            let want = reference_mha(refk, &w, &x, causal);
            for (g, w) in out.iter().zip(&want) {
                for (a, b) in g.iter().zip(w) {
                    assert!(
                        (f64::from(*a) - b).abs() < 2e-5,
                        "len {len} causal {causal}: {a} vs {b}"
                    );
                }
            }
        }
    }
    // A Gaussian head is just another learned kernel.
    let hk = [0.7f32, 1.0, 3.0];
    let g =
        core_flat::mha::<_, DM, H, DH>(hk.map(|h| Gaussian::new(h).unwrap()), w.0, w.1, w.2, w.3)
            .unwrap();
    let x: Vec<[f32; DM]> = (0..5).map(|_| core::array::from_fn(|_| r())).collect();
    let mut out = vec![[0.0f32; DM]; 5];
    core_flat::forward::<8, _, _, _, _>(&g, &x, false, &mut out).unwrap();
    let want = reference_mha(
        hk.map(|h| RefKernel::Gaussian { h: f64::from(h) }),
        &w,
        &x,
        false,
    );
    for (g, w) in out.iter().zip(&want) {
        for (a, b) in g.iter().zip(w) {
            assert!((f64::from(*a) - b).abs() < 2e-5);
        }
    }
}

#[test]
fn bad_input_is_reported() {
    let w = weights(1);
    let k = [SoftmaxDot::for_dim(DH).unwrap(); H];
    let mut bad = w.0;
    bad[1][2][3] = f32::NAN;
    assert_eq!(
        core_flat::mha::<_, DM, H, DH>(k, bad, w.1, w.2, w.3),
        Err(Error::NonFinite)
    );
    let mha = core_flat::mha::<_, DM, H, DH>(k, w.0, w.1, w.2, w.3).unwrap();
    let x = vec![[0.5f32; DM]; 5];
    let mut out = vec![[9.0f32; DM]; 5];
    assert_eq!(
        core_flat::forward::<4, _, _, _, _>(&mha, &x, false, &mut out),
        Err(Error::CapacityExceeded)
    );
    assert_eq!(
        core_flat::forward::<8, _, _, _, _>(&mha, &[], false, &mut out),
        Err(Error::Empty)
    );
    assert_eq!(
        core_flat::forward::<8, _, _, _, _>(&mha, &x, false, &mut out[..4]),
        Err(Error::OutputTooSmall)
    );
    let mut xn = x.clone();
    xn[3][0] = f32::INFINITY;
    assert_eq!(
        core_flat::forward::<8, _, _, _, _>(&mha, &xn, true, &mut out),
        Err(Error::NonFinite)
    );
    assert_eq!(out, vec![[9.0f32; DM]; 5], "nothing written on error");
    // Tokens so large that a projection overflows are reported, not averaged.
    let huge = vec![[3e37f32; DM]; 2];
    assert!(core_flat::forward::<8, _, _, _, _>(&mha, &huge, false, &mut out).is_err());
}
