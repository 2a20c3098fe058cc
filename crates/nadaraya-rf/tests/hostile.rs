//! Hostile inputs (issue 11, classes 2, 5 and 7): every path gives the same verdict, no argument
//! can panic or abort, and a failed batch leaves the same output on both paths.

mod common;

use common::normal;
use nadaraya_rf::{
    CausalState, Error, FavorPlus, Mask, Projection, Sampling, Variant, attention, batch_attention,
    batch_attention_serial, causal_attention, weights,
};

/// Every query-side entry point on one query `q` against small keys: `attention`,
/// `causal_attention` (the query is the last of two rows), `CausalState::query`,
/// `CausalState::step` and `weights`.
fn verdicts(f: &FavorPlus, q: &[f32]) -> [Result<(), Error>; 5] {
    let d = f.dim();
    let keys: Vec<f32> = (0..2 * d).map(|i| 0.1 * (i as f32 - 1.0)).collect();
    let values = [1.0, -2.0];
    let mut out = [0.0; 2];
    let a = attention(f, q, &keys, &values, d, 1, &mut out);
    let mut q2 = keys[..d].to_vec();
    q2.extend_from_slice(q);
    let c = causal_attention(f, &q2, &keys, &values, d, 1, &mut out);
    let mut s = CausalState::new(f, 1).unwrap();
    s.absorb(&keys[..d], &values[..1]).unwrap();
    let sq = s.query(q, &mut out[..1]);
    let st = s.step(q, &keys[d..], &values[1..], &mut out[..1]);
    let w = weights(f, q, &keys, &mut out);
    [a, c, sq, st, w]
}

/// Class 2: a finite but huge query whose exponent `ω_i·q'` is `inf − inf = NaN` for some feature
/// while the others are finite. `f32::max` skipped the NaN, so four paths returned `Ok` with a
/// wrong value while `CausalState::step` said `ScoreOverflow`. Every path must reject it.
#[test]
fn a_nan_feature_exponent_is_a_score_overflow_on_every_path() {
    let d = 2;
    let mut found = 0;
    for seed in 0..400u64 {
        let p = Projection::new(d, 4, Sampling::Iid, seed).unwrap();
        // τ = 1: the scaled rows are the rows themselves.
        let f = FavorPlus::new(p, 1.0, Variant::Positive).unwrap();
        let w = f.projection().rows().to_vec();
        for q in [[3e38f32, 3e38], [3e38, -3e38], [-2e38, 3e38]] {
            // The exponents as the crate forms them (f32 products, summed in order).
            let b: Vec<f32> = w
                .chunks_exact(d)
                .map(|wi| wi.iter().zip(&q).fold(0.0f32, |s, (w, x)| s + x * w))
                .collect();
            if !(b.iter().any(|x| x.is_nan()) && b.iter().any(|x| x.is_finite())) {
                continue;
            }
            found += 1;
            for (i, v) in verdicts(&f, &q).into_iter().enumerate() {
                assert_eq!(
                    v,
                    Err(Error::ScoreOverflow),
                    "seed {seed}, q {q:?}, path {i}"
                );
            }
        }
    }
    assert!(found >= 10, "only {found} cases");
}

/// Every path agrees on every query, whatever its verdict: huge queries of mixed signs, and
/// ordinary ones (which are `Ok` on every path).
#[test]
fn every_query_path_gives_the_same_verdict() {
    let d = 3;
    for seed in 0..50u64 {
        let f = FavorPlus::for_dim(d, 8, seed).unwrap();
        let base = normal(d, 0.0, 1.0, seed);
        for scale in [1.0f32, 1e10, 1e30, 1e37, 1e38, 3e38] {
            let q: Vec<f32> = base
                .iter()
                .map(|x| (x * scale).clamp(-f32::MAX, f32::MAX))
                .collect();
            let v = verdicts(&f, &q);
            assert!(
                v.iter().all(|x| *x == v[0]),
                "seed {seed}, scale {scale}: {v:?}"
            );
            if scale == 1.0 {
                assert_eq!(v[0], Ok(()));
            }
        }
    }
}

/// Class 7: when problems fail, the serial and the parallel path leave the same output, bit for
/// bit: failed problems' blocks are zeros, the others hold their own results (each checked
/// against a single call), and the error is that of the first failing problem. Run with and
/// without `--features rayon`.
#[test]
fn a_failed_batch_leaves_the_same_output_on_both_paths() {
    let (h, l, d, dv) = (6, 70, 3, 2);
    let heads: Vec<FavorPlus> = (0..h as u64)
        .map(|s| FavorPlus::for_dim(d, 16, s).unwrap())
        .collect();
    let q = normal(h * l * d, 0.0, 0.7, 11);
    let mut k = normal(h * l * d, 0.0, 0.7, 12);
    let mut v = normal(h * l * dv, 0.0, 1.0, 13);
    // Head 1: a key whose exponent overflows in its second tile (found after a partial result);
    // head 4: a NaN value (rejected before anything is written).
    k[(l + 66) * d] = 1e30;
    v[4 * l * dv + 9] = f32::NAN;
    for mask in [Mask::None, Mask::Causal] {
        let mut serial = vec![7.0; h * l * dv + 3];
        let mut par = serial.clone();
        let es = batch_attention_serial(&heads, &q, &k, &v, d, dv, mask, &mut serial);
        let ep = batch_attention(&heads, &q, &k, &v, d, dv, mask, &mut par);
        assert_eq!(es, Err(Error::ScoreOverflow), "{mask:?}");
        assert_eq!(ep, es, "{mask:?}");
        assert_eq!(
            serial.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            par.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            "{mask:?}"
        );
        for (i, f) in heads.iter().enumerate() {
            let block = &serial[i * l * dv..(i + 1) * l * dv];
            let mut one = vec![0.0; l * dv];
            let (qs, ks, vs) = (
                &q[i * l * d..(i + 1) * l * d],
                &k[i * l * d..(i + 1) * l * d],
                &v[i * l * dv..(i + 1) * l * dv],
            );
            let r = match mask {
                Mask::None => attention(f, qs, ks, vs, d, dv, &mut one),
                Mask::Causal => causal_attention(f, qs, ks, vs, d, dv, &mut one),
            };
            if r.is_err() {
                assert!(i == 1 || i == 4, "{mask:?} head {i}: {r:?}");
                assert!(block.iter().all(|&x| x == 0.0), "{mask:?} head {i}");
            } else {
                assert_eq!(block, &one[..], "{mask:?} head {i}");
            }
        }
        // Past the blocks: untouched.
        assert_eq!(serial[h * l * dv..], [7.0; 3]);
    }
}
