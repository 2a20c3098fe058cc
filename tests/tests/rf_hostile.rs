//! Hostile inputs (issue 11, classes 2, 5 and 7): every path gives the same verdict, no argument
//! can panic or abort, and a failed batch leaves the same output on both paths.

mod common;
mod rf_reference;
use rf_reference as reference;

use common::{normal, row_mut, view, view_mut};
use nadaraya_rf::{CausalState, Error, FavorPlus, Mask, Projection, RowNorm, Sampling, Variant};
use reference::widen;

/// Every query-side entry point on one query `q` against small keys: `attention`,
/// `causal_attention` (the query is the last of two rows), `CausalState::query`,
/// `CausalState::step` and `weights`.
fn verdicts(f: &FavorPlus, q: &[f32]) -> [Result<(), Error>; 5] {
    let d = f.dim();
    let keys: Vec<f32> = (0..2 * d).map(|i| 0.1 * (i as f32 - 1.0)).collect();
    let values = [1.0, -2.0];
    let mut out = [0.0; 2];
    let a = f.attention(
        view(q, d),
        view(&keys, d),
        view(&values, 1),
        Mask::None,
        view_mut(&mut out[..1], 1),
    );
    let mut q2 = keys[..d].to_vec();
    q2.extend_from_slice(q);
    let c = f.attention(
        view(&q2, d),
        view(&keys, d),
        view(&values, 1),
        Mask::Causal,
        view_mut(&mut out, 1),
    );
    let mut s = CausalState::new(f, 1).unwrap();
    s.absorb(&keys[..d], &values[..1]).unwrap();
    let sq = s.query(q, &mut out[..1]);
    let st = s.step(q, &keys[d..], &values[1..], &mut out[..1]);
    let w = f.weights(view(q, q.len()), view(&keys, q.len()), row_mut(&mut out));
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
            // `step` finds the query's own overflow before absorbing the key.
            let mut s = CausalState::new(&f, 1).unwrap();
            s.absorb(&[0.1, 0.2], &[1.0]).unwrap();
            let mut y = [0.0];
            assert_eq!(
                s.step(&q, &[0.3, 0.1], &[2.0], &mut y),
                Err(Error::ScoreOverflow)
            );
            assert_eq!(s.len(), 1);
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
        let es = FavorPlus::attention_heads_serial(
            &heads,
            view(&q, d),
            view(&k, d),
            view(&v, dv),
            mask,
            view_mut(&mut serial[..h * l * dv], dv),
        );
        let ep = FavorPlus::attention_heads(
            &heads,
            view(&q, d),
            view(&k, d),
            view(&v, dv),
            mask,
            view_mut(&mut par[..h * l * dv], dv),
        );
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
                Mask::None => f.attention(
                    view(qs, d),
                    view(ks, d),
                    view(vs, dv),
                    Mask::None,
                    view_mut(&mut one, dv),
                ),
                Mask::Causal => f.attention(
                    view(qs, d),
                    view(ks, d),
                    view(vs, dv),
                    Mask::Causal,
                    view_mut(&mut one, dv),
                ),
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

/// The orthogonal draw for `m ≥ d` as it was written before the `m < d` path existed (nalgebra's
/// `from_fn`, `qr`, `q` and `r`), to show that path's stream is bit-identical.
fn old_orthogonal_blocks(d: usize, m: usize, chi_norms: bool, seed: u64, draw: u64) -> Vec<f32> {
    use nalgebra::DMatrix;
    use rand::SeedableRng;
    use rand_distr::{ChiSquared, Distribution, StandardNormal};
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    rng.set_stream(draw);
    let mut rows = vec![0.0f32; m * d];
    let chi = ChiSquared::new(d as f64).unwrap();
    for block in rows.chunks_mut(d * d) {
        let g = DMatrix::<f64>::from_fn(d, d, |_, _| StandardNormal.sample(&mut rng));
        let qr = g.qr();
        let (q, r) = (qr.q(), qr.r());
        for (i, row) in block.chunks_exact_mut(d).enumerate() {
            let scale = if chi_norms {
                chi.sample(&mut rng).sqrt()
            } else {
                (d as f64).sqrt()
            };
            let sign = if r[(i, i)] < 0.0 { -1.0 } else { 1.0 };
            for (j, w) in row.iter_mut().enumerate() {
                *w = (sign * scale * q[(j, i)]) as f32;
            }
        }
    }
    rows
}

#[test]
fn the_orthogonal_draw_for_m_at_least_d_is_unchanged() {
    for (d, m) in [(1, 1), (1, 5), (4, 4), (4, 6), (6, 15), (8, 64), (16, 37)] {
        for (norm, chi) in [(RowNorm::Chi, true), (RowNorm::SqrtD, false)] {
            for draw in [0, 3] {
                let p = Projection::with_draw(d, m, Sampling::Orthogonal(norm), 42, draw).unwrap();
                let old = old_orthogonal_blocks(d, m, chi, 42, draw);
                assert_eq!(
                    p.rows().iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    old.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                    "d {d}, m {m}, {norm:?}, draw {draw}"
                );
            }
        }
    }
}

/// Class 5: requests whose sizes fit `usize` but not memory are `TooManyFeatures`, never a
/// "capacity overflow" panic or an allocation abort.
#[test]
fn requests_too_large_for_memory_are_errors() {
    let orth = Sampling::Orthogonal(RowNorm::Chi);
    // m·d = 2^58 floats (2^60 bytes): fits usize and isize, not memory.
    assert_eq!(
        Projection::new(1 << 30, 1 << 28, Sampling::Iid, 0),
        Err(Error::TooManyFeatures)
    );
    // m·d = 2^62 floats: the byte count overflows.
    assert_eq!(
        Projection::new(1 << 31, 1 << 31, Sampling::Iid, 0),
        Err(Error::TooManyFeatures)
    );
    // Orthogonal, m < d: 2^40 floats of rows.
    assert_eq!(
        Projection::new(1 << 40, 1, orth, 0),
        Err(Error::TooManyFeatures)
    );
    // Orthogonal, m ≥ d: d² overflows usize.
    assert_eq!(
        Projection::new(1 << 33, 1 << 33, orth, 0),
        Err(Error::TooManyFeatures)
    );
    // A causal state of r·dv = 2^62 floats (the byte count overflows) and 2^56 floats.
    let f = FavorPlus::for_dim(2, 4, 0).unwrap();
    assert_eq!(
        CausalState::new(&f, 1 << 60).err(),
        Some(Error::TooManyFeatures)
    );
    assert_eq!(
        CausalState::new(&f, 1 << 54).err(),
        Some(Error::TooManyFeatures)
    );
    assert_eq!(
        CausalState::new(&f, usize::MAX).err(),
        Some(Error::TooManyFeatures)
    );
}

/// Class 5: `Orthogonal` with `m ≪ d` costs `O(m·d)`: `d = 100000, m = 4` is quick and small (it
/// built a `d×d` matrix, 80 GB, and aborted). The rows are orthogonal with the stated norms.
#[test]
fn orthogonal_rows_for_m_much_smaller_than_d_are_cheap_and_orthogonal() {
    let (d, m) = (100_000, 4);
    for norm in [RowNorm::SqrtD, RowNorm::Chi] {
        let p = Projection::new(d, m, Sampling::Orthogonal(norm), 5).unwrap();
        let r = p.rows();
        let dot = |a: usize, b: usize| -> f64 {
            (0..d)
                .map(|j| f64::from(r[a * d + j]) * f64::from(r[b * d + j]))
                .sum()
        };
        let norms: Vec<f64> = (0..m).map(|i| dot(i, i).sqrt()).collect();
        for i in 0..m {
            if norm == RowNorm::SqrtD {
                assert!(
                    (norms[i] / (d as f64).sqrt() - 1.0).abs() < 1e-6,
                    "{norms:?}"
                );
            } else {
                // chi(d) has mean ≈ √d and sd ≈ 1/√2.
                assert!((norms[i] - (d as f64).sqrt()).abs() < 5.0, "{norms:?}");
            }
            for j in 0..i {
                // f32 rounding of the entries leaves ~1e-7 relative.
                assert!(
                    dot(i, j).abs() / (norms[i] * norms[j]) < 1e-6,
                    "rows {i}, {j}"
                );
            }
        }
        let f = FavorPlus::new(p, 300.0, Variant::Positive).unwrap();
        let x = normal(2 * d, 0.0, 1.0, 9);
        let mut out = [0.0; 2];
        f.attention(
            view(&x, d),
            view(&x, d),
            view(&[1.0, 3.0], 1),
            Mask::None,
            view_mut(&mut out, 1),
        )
        .unwrap();
        assert!(out.iter().all(|v| (1.0..=3.0).contains(v)), "{out:?}");
    }
}

/// The `m < d` orthogonal rows keep the distribution: with chi norms every row is marginally an
/// iid Gaussian row, so the FAVOR+ kernel estimate is unbiased for `exp(q·k/τ)`; and the rows are
/// exactly orthogonal, so the estimate's spread is below that of iid rows. Checked against the
/// plain `f64` estimator of `nadaraya_tests::rf` over many seeds.
#[test]
fn orthogonal_rows_for_m_below_d_are_unbiased() {
    let (d, m, tau) = (6, 3, 1.0);
    let q = [0.3f32, -0.2, 0.5, 0.1, 0.0, -0.4];
    let k = [0.2f32, 0.4, 0.3, -0.3, 0.1, 0.2];
    let exact = q
        .iter()
        .zip(&k)
        .map(|(a, b)| f64::from(*a) * f64::from(*b))
        .sum::<f64>()
        .exp();
    let (qw, kw) = (widen(&q), widen(&k));
    let stats = |sampling: Sampling| {
        let n = 6000u64;
        let est: Vec<f64> = (0..n)
            .map(|s| {
                let p = Projection::new(d, m, sampling, s).unwrap();
                nadaraya_tests::rf::favor_kernel(&widen(p.rows()), tau, false, &qw, &kw)
            })
            .collect();
        let mean = est.iter().sum::<f64>() / n as f64;
        let var = est.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mean, var, (var / n as f64).sqrt())
    };
    let (mean, var, se) = stats(Sampling::Orthogonal(RowNorm::Chi));
    assert!(
        (mean - exact).abs() < 4.0 * se,
        "mean {mean}, exact {exact}, se {se}"
    );
    let (imean, ivar, ise) = stats(Sampling::Iid);
    assert!((imean - exact).abs() < 4.0 * ise);
    assert!(var < ivar, "orthogonal variance {var} ≥ iid {ivar}");
    // The row directions are uniform: E[u_j²] = 1/d for every coordinate of the first row.
    let n = 4000u64;
    let mut second = vec![0.0f64; d];
    for s in 0..n {
        let p = Projection::new(d, m, Sampling::Orthogonal(RowNorm::SqrtD), s).unwrap();
        for (a, &w) in second.iter_mut().zip(&p.rows()[d..2 * d]) {
            *a += f64::from(w).powi(2) / d as f64;
        }
    }
    for a in &second {
        // Var(u_j²) = 2(d−1)/(d²(d+2)) ≈ 0.029 for d = 6: se ≈ 0.0027.
        assert!((a / n as f64 - 1.0 / d as f64).abs() < 0.012, "{second:?}");
    }
}

/// `Σ_i κ_i |v_i| / Σ_i κ_i` per output (the scale the rounding of a weighted sum is relative to),
/// from the same `f64` estimator.
fn abs_scale(f: &FavorPlus, q: &[f32], k: &[f32], v: &[f32], dv: usize, causal: bool) -> Vec<f64> {
    let va: Vec<f32> = v.iter().map(|x| x.abs()).collect();
    reference::reference_rf(f, q, k, &va, dv, causal)
}

/// Asserts `out` is finite and within `1e-4·Σκ|v|/Σκ` of the `f64` estimator on the same
/// features.
fn assert_close(
    out: &[f32],
    f: &FavorPlus,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    dv: usize,
    causal: bool,
) {
    let want = reference::reference_rf(f, q, k, v, dv, causal);
    let scale = abs_scale(f, q, k, v, dv, causal);
    for (i, ((o, w), s)) in out.iter().zip(&want).zip(&scale).enumerate() {
        assert!(o.is_finite(), "out[{i}] = {o}");
        assert!(
            (f64::from(*o) - w).abs() <= 1e-4 * s,
            "out[{i}] = {o}, f64 {w}, scale {s}"
        );
    }
}

/// The rule on output overflow: `Overflow` only when the exact weighted average is not
/// finite in `f32`. A convex combination of values within `f32::MAX` never is, so values near
/// `±f32::MAX` (whose sums overflow f32) are `Ok` on every path, in every key order, and agree with
/// the `f64` estimator. (Before, the unscaled sums overflowed: `Overflow`, or an order-
/// dependent verdict.)
#[test]
fn values_near_f32_max_average_without_overflow_in_every_order() {
    let (d, dv, n) = (2, 2, 70);
    let f = FavorPlus::for_dim(d, 16, 3).unwrap();
    let q = normal(5 * d, 0.0, 0.5, 1);
    let k = normal(n * d, 0.0, 0.5, 2);
    let mut v = normal(n * dv, 0.0, 1.0, 3);
    for (i, x) in v.iter_mut().enumerate() {
        *x = match i % 5 {
            0 => 3.4e38,
            1 => -3.4e38,
            2 => f32::MAX,
            3 => 1e-40,
            _ => *x,
        };
    }
    let all_max = vec![f32::MAX; n * dv];
    for values in [&v, &all_max] {
        // Key orders: as given, reversed, rotated, and two seeded shuffles.
        let mut orders: Vec<Vec<usize>> = vec![(0..n).collect(), (0..n).rev().collect()];
        orders.push((0..n).map(|i| (i + 33) % n).collect());
        for s in 0..2u64 {
            let r = normal(n, 0.0, 1.0, 50 + s);
            let mut o: Vec<usize> = (0..n).collect();
            o.sort_by(|&a, &b| r[a].total_cmp(&r[b]));
            orders.push(o);
        }
        for order in &orders {
            let kp: Vec<f32> = order
                .iter()
                .flat_map(|&i| k[i * d..][..d].to_vec())
                .collect();
            let vp: Vec<f32> = order
                .iter()
                .flat_map(|&i| values[i * dv..][..dv].to_vec())
                .collect();
            let mut out = vec![0.0; 5 * dv];
            f.attention(
                view(&q, d),
                view(&kp, d),
                view(&vp, dv),
                Mask::None,
                view_mut(&mut out, dv),
            )
            .unwrap();
            assert_close(&out, &f, &q, &kp, &vp, dv, false);
            // Causal: the whole sequence as queries, and the step API token by token.
            let mut co = vec![0.0; n * dv];
            f.attention(
                view(&kp, d),
                view(&kp, d),
                view(&vp, dv),
                Mask::Causal,
                view_mut(&mut co, dv),
            )
            .unwrap();
            assert_close(&co, &f, &kp, &kp, &vp, dv, true);
            let mut s = CausalState::new(&f, dv).unwrap();
            let mut y = [0.0; 2];
            for t in 0..n {
                let (kt, vt) = (&kp[t * d..][..d], &vp[t * dv..][..dv]);
                s.step(kt, kt, vt, &mut y).unwrap();
                assert_eq!(y, co[t * dv..][..dv], "token {t}");
            }
        }
    }
}
