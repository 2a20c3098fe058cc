//! The adversarial suite of `nadaraya-rf` (issue 11): hostile inputs against a plain `f64`
//! estimator on the same features ([`rf::favor_attention_log`], in the log domain), with the rule
//! of [`nadaraya_tests::verdict`]:
//!
//! - `Ok` means every output is finite, inside the range of the values (FAVOR+ weights are
//!   positive, so the estimate is a convex combination), and within
//!   `scale·(1e-5 + 64ε·E)` of the `f64` estimator on the same `f32` features, `E` the largest sum
//!   of the magnitudes of the terms of a query's and a key's exponent (what rounding the
//!   exponents to `f32` may cost; the crate documents no bound of its own, see the report);
//! - `Err(ScoreOverflow)` exactly when a feature exponent is not finite in `f32`, decided per
//!   exponent (undecided only near `f32::MAX` or with cancelling huge terms);
//!   `Err(OutputOverflow)` only when the exact estimate does not fit `f32`; `Err(NonFinite)`
//!   exactly for NaN or infinite inputs;
//! - every order of the keys, and every path (`attention`, `causal_attention`, `CausalState`,
//!   `weights`, `batch_attention`, `batch_attention_serial`), gets the same verdict;
//! - no argument panics or aborts (huge allocation requests: `adversarial_alloc.rs`, its own
//!   binary, so that an abort there hides no result here).
//!
//! Deterministic: every input comes from [`nadaraya_tests::uniform`] with a fixed seed.

mod rf_common;

use nadaraya_rf::{
    CausalState, Error, Mask, RowNorm, Sampling, Variant, attention, batch_attention,
    batch_attention_serial, causal_attention, weights,
};
use nadaraya_tests::reference::widen;
use nadaraya_tests::verdict::{RowWant, judge};
use nadaraya_tests::{rf, uniform};
use rf_common::{Feat, Problem, SPARE, feat, index, problem, spare_untouched, want_row};

/// Every path on problem `p`: `attention` and `batch_attention{,_serial}` (non-causal),
/// `causal_attention`, and the recurrent `CausalState::step` (causal, row by row) and
/// `CausalState::query`, each judged; returns the non-causal verdict (`None` if undecided).
fn check_all(tag: &str, ft: &Feat, p: &Problem) -> Option<Result<(), Error>> {
    let (d, dv) = (ft.d(), p.dv);
    let (m, n) = (p.q.len() / d, p.keys.len() / d);
    let f = &ft.f;
    let finite = p.finite();
    let rows: Vec<RowWant<Error>> =
        p.q.chunks_exact(d)
            .map(|q| want_row(ft, q, &p.keys, &p.values, dv))
            .collect();
    let causal_rows: Vec<RowWant<Error>> =
        p.q.chunks_exact(d)
            .enumerate()
            .take(n)
            .map(|(t, q)| want_row(ft, q, &p.keys[..(t + 1) * d], &p.values[..(t + 1) * dv], dv))
            .collect();
    let judged = |what: &str, got: Result<(), Error>, out: &[f32], rows: &[RowWant<Error>]| {
        if finite {
            judge(what, got, out, rows, dv);
        } else {
            assert_eq!(got, Err(Error::NonFinite), "{what}: non-finite input");
        }
    };
    let what = format!("{tag}: attention d={d} dv={dv} m={m} n={n}");
    let mut out = vec![f32::NAN; (m + SPARE) * dv];
    let got = attention(f, &p.q, &p.keys, &p.values, d, dv, &mut out);
    spare_untouched(&what, &out, m * dv);
    judged(&what, got, &out[..m * dv], &rows);
    // A batch of three problems, the hostile one in the middle: both paths leave the same bits.
    let benign = Problem {
        dv,
        q: vec![0.1; m * d],
        keys: vec![0.2; n * d],
        values: vec![1.0; n * dv],
    };
    let cat = |f: fn(&Problem) -> &Vec<f32>| -> Vec<f32> {
        [f(&benign).as_slice(), f(p), f(&benign)].concat()
    };
    let (bq, bk, bv) = (cat(|x| &x.q), cat(|x| &x.keys), cat(|x| &x.values));
    let heads = [f.clone(), f.clone(), f.clone()];
    for mask in [Mask::None, Mask::Causal] {
        if mask == Mask::Causal && m > n {
            continue;
        }
        let mut a = vec![f32::NAN; (3 * m + SPARE) * dv];
        let mut b = a.clone();
        let ra = batch_attention(&heads, &bq, &bk, &bv, d, dv, mask, &mut a);
        let rb = batch_attention_serial(&heads, &bq, &bk, &bv, d, dv, mask, &mut b);
        assert_eq!(ra, rb, "{what}: batch verdicts differ ({mask:?})");
        let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&a),
            bits(&b),
            "{what}: batch outputs differ ({mask:?})"
        );
        spare_untouched(&what, &a, 3 * m * dv);
        if mask == Mask::None {
            assert_eq!(ra, got, "{what}: batch vs attention");
            if ra.is_ok() {
                assert_eq!(
                    bits(&a[m * dv..2 * m * dv]),
                    bits(&out[..m * dv]),
                    "{what}: batch block"
                );
            }
        }
    }
    if m <= n {
        let what_c = format!("{tag}: causal_attention d={d} dv={dv} m={m} n={n}");
        let mut out_c = vec![f32::NAN; (m + SPARE) * dv];
        let got_c = causal_attention(f, &p.q, &p.keys, &p.values, d, dv, &mut out_c);
        spare_untouched(&what_c, &out_c, m * dv);
        judged(&what_c, got_c, &out_c[..m * dv], &causal_rows);
        // The recurrent form, row by row, must agree with causal_attention row by row.
        let mut s = CausalState::new(f, dv).unwrap();
        let mut first_err = None;
        for t in 0..m {
            let mut o = vec![f32::NAN; dv + SPARE];
            let r = s.step(
                &p.q[t * d..(t + 1) * d],
                &p.keys[t * d..(t + 1) * d],
                &p.values[t * dv..(t + 1) * dv],
                &mut o,
            );
            spare_untouched(&what_c, &o, dv);
            if let Ok(()) = r {
                judge(
                    &format!("{what_c}: step {t}"),
                    r,
                    &o[..dv],
                    std::slice::from_ref(&causal_rows[t]),
                    dv,
                );
                if got_c.is_ok() {
                    for (x, y) in o[..dv].iter().zip(&out_c[t * dv..(t + 1) * dv]) {
                        let tol = 1e-5 * x.abs().max(y.abs()) + 1e-30;
                        assert!((x - y).abs() <= tol, "{what_c}: step {t} {x} vs {y}");
                    }
                }
            } else {
                first_err = Some(r);
                break;
            }
        }
        // Near f32::MAX an exponent's summation order (gemm or loop) may decide: compare the
        // paths only where every row is decided.
        if finite && causal_rows.iter().all(|r| r.may_fail.is_none()) {
            assert_eq!(
                first_err.unwrap_or(Ok(())),
                got_c,
                "{what_c}: CausalState::step and causal_attention disagree"
            );
        }
    }
    // CausalState::query over every key equals attention's verdict.
    let mut s = CausalState::new(f, dv).unwrap();
    let mut absorbed = Ok(());
    for (k, v) in p.keys.chunks_exact(d).zip(p.values.chunks_exact(dv)) {
        if let Err(e) = s.absorb(k, v) {
            absorbed = Err(e);
            break;
        }
    }
    if absorbed.is_ok() {
        for (t, q) in p.q.chunks_exact(d).enumerate() {
            let mut o = vec![f32::NAN; dv + SPARE];
            let r = s.query(q, &mut o);
            spare_untouched(&what, &o, dv);
            let whatq = format!("{what}: CausalState::query {t}");
            if q.iter().all(|v| v.is_finite()) {
                judge(&whatq, r, &o[..dv], std::slice::from_ref(&rows[t]), dv);
            } else {
                assert_eq!(r, Err(Error::NonFinite), "{whatq}");
            }
        }
    } else if rows.iter().all(|r| r.may_fail.is_none()) {
        assert!(
            got.is_err(),
            "{what}: absorb refused a key ({absorbed:?}), attention Ok"
        );
    }
    // weights: positive, summing to 1, matching the f64 implied weights.
    for (t, q) in p.q.chunks_exact(d).enumerate() {
        let mut w = vec![f32::NAN; n + SPARE];
        let r = weights(f, q, &p.keys, &mut w);
        spare_untouched(&what, &w, n);
        let ones = vec![1.0f32; n];
        let row = want_row(ft, q, &p.keys, &ones, 1);
        let whatw = format!("{what}: weights {t}");
        // Weights read the query and the keys, not the values.
        let finite = q.iter().chain(&p.keys).all(|v| v.is_finite());
        match r {
            Ok(()) => {
                assert!(finite, "{whatw}: Ok on non-finite input");
                assert_eq!(row.must_fail, None, "{whatw}: Ok, reference fails");
                let sum: f64 = w[..n].iter().map(|&x| f64::from(x)).sum();
                assert!((sum - 1.0).abs() < 1e-5, "{whatw}: sum {sum}");
                let want = rf::favor_weights_log(&ft.w, ft.key_sq, &widen(q), &widen(&p.keys));
                for (i, (&a, b)) in w.iter().zip(&want).enumerate() {
                    assert!(a.is_finite() && a >= 0.0, "{whatw}[{i}] = {a}");
                    if row.may_fail.is_none() {
                        assert!(
                            (f64::from(a) - b).abs() <= row.tol,
                            "{whatw}[{i}] = {a} vs {b}"
                        );
                    }
                }
            }
            Err(e) if !finite => assert_eq!(e, Error::NonFinite, "{whatw}"),
            Err(e) => assert!(
                row.must_fail == Some(e) || row.may_fail == Some(e),
                "{whatw}: Err({e:?}), reference {:?}/{:?}",
                row.must_fail,
                row.may_fail
            ),
        }
    }
    let undecided = rows.iter().any(|r| r.may_fail.is_some());
    (!undecided || !finite).then_some(got)
}

fn feature_sets(d: usize) -> Vec<Feat> {
    vec![
        feat(
            d,
            16,
            Sampling::Iid,
            Variant::Positive,
            (d as f32).sqrt(),
            1,
        ),
        feat(
            d,
            9,
            Sampling::Orthogonal(RowNorm::Chi),
            Variant::Hyperbolic,
            1.0,
            2,
        ),
        feat(
            d,
            65,
            Sampling::Orthogonal(RowNorm::SqrtD),
            Variant::Positive,
            0.5,
            3,
        ),
    ]
}

/// Lane and tile boundaries (`d`, `dv` in 1..=9, 15..=17; `N` in 1, 2, 63, 64, 65, 129),
/// subnormal, unit and huge inputs (`1e19`, `3e38`: exponent overflow, the NaN exponent of class
/// 2), hostile values: every path obeys the rule and agrees with the others.
#[test]
fn every_path_obeys_the_rule_at_the_boundaries() {
    let dims = [1usize, 2, 3, 5, 8, 9, 15, 16, 17];
    let ns = [1usize, 2, 63, 64, 65, 129];
    let scales = [1.0f32, 1e-40, 0.3, 1e19, 3e38];
    let mut seed = 0;
    for (i, &d) in dims.iter().enumerate() {
        let fs = feature_sets(d);
        for (j, &n) in ns.iter().enumerate() {
            seed += 1;
            let dv = dims[(i + 2 * j) % dims.len()];
            let scale = scales[(i + j) % scales.len()];
            let p = problem(seed, d, dv, 3, n, scale, (i + j) % 2 == 0);
            for ft in &fs {
                let _ = check_all(&format!("x{scale:e}"), ft, &p);
            }
        }
    }
}

/// Issue 11 class 2: a finite but huge query, whose exponents are `inf − inf = NaN` for some
/// features, is `ScoreOverflow` on every path; on a2f252f `attention`, `causal_attention`,
/// `CausalState::query` and `weights` returned `Ok` with a wrong value.
#[test]
fn huge_queries_are_score_overflow_on_every_path() {
    for seed in 0..40u64 {
        let ft = feat(2, 4, Sampling::Iid, Variant::Positive, 1.0, seed);
        for q in [[3e38f32, -3e38], [3e38, 3e38], [-2e38, 3e38], [1e30, -1e30]] {
            let p = Problem {
                dv: 1,
                q: [[0.1, -0.1], q].concat(),
                keys: vec![0.1, 0.2, -0.3, 0.1],
                values: vec![1.0, -2.0],
            };
            let _ = check_all(&format!("seed {seed} q {q:?}"), &ft, &p);
        }
    }
}

/// Every permutation of small key sets, random permutations of larger ones: the same verdict,
/// and within the bound the same value.
#[test]
fn every_order_of_the_keys_gets_the_same_verdict() {
    fn perms(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut out = Vec::new();
        for p in perms(n - 1) {
            for i in 0..n {
                let mut q = p.clone();
                q.insert(i, n - 1);
                out.push(q);
            }
        }
        out
    }
    let mut u = uniform(8);
    for n in 1..=5usize {
        for (c, scale) in [1.0f32, 1e19, 3e38].into_iter().enumerate() {
            let ft = feat(3, 8, Sampling::Iid, Variant::Positive, 1.0, c as u64);
            let p = problem(50 + n as u64, 3, 2, 2, n, scale, true);
            let want = check_all("perm", &ft, &p);
            for perm in perms(n) {
                assert_eq!(
                    check_all("perm", &ft, &p.permuted(3, &perm)),
                    want,
                    "{perm:?}"
                );
            }
        }
    }
    for n in [64usize, 65, 200] {
        let ft = feat(
            4,
            16,
            Sampling::Orthogonal(RowNorm::Chi),
            Variant::Hyperbolic,
            2.0,
            9,
        );
        let p = problem(n as u64, 4, 3, 3, n, 1.0, true);
        let want = check_all("perm", &ft, &p);
        for _ in 0..4 {
            let mut perm: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                perm.swap(i, index(&mut u, i + 1));
            }
            assert_eq!(check_all("perm", &ft, &p.permuted(4, &perm)), want, "n={n}");
        }
    }
}

/// NaN, `+inf`, `-inf` in every position of the queries, keys and values: `NonFinite` on every
/// path, rows past the used length untouched; a `CausalState` that refuses a token is unchanged.
#[test]
fn non_finite_inputs_in_every_position_are_rejected() {
    let ft = feat(3, 8, Sampling::Iid, Variant::Positive, 1.0, 4);
    let base = problem(3, 3, 2, 2, 4, 1.0, false);
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for which in 0..3 {
            let len = [base.q.len(), base.keys.len(), base.values.len()][which];
            for pos in 0..len {
                let mut p = base.clone();
                [&mut p.q, &mut p.keys, &mut p.values][which][pos] = bad;
                let _ = check_all("non-finite", &ft, &p);
            }
        }
        let mut s = CausalState::new(&ft.f, 2).unwrap();
        s.absorb(&[0.1, 0.2, 0.3], &[1.0, 2.0]).unwrap();
        let mut before = [0.0f32; 2];
        s.clone().query(&[0.0; 3], &mut before).unwrap();
        for pos in 0..3 {
            let mut x = [0.1f32; 3];
            x[pos] = bad;
            assert_eq!(s.absorb(&x, &[1.0, 1.0]), Err(Error::NonFinite));
            assert_eq!(
                s.step(&x, &[0.0; 3], &[1.0, 1.0], &mut [0.0; 2]),
                Err(Error::NonFinite)
            );
            assert_eq!(
                s.step(&[0.0; 3], &x, &[1.0, 1.0], &mut [0.0; 2]),
                Err(Error::NonFinite)
            );
            assert_eq!(s.query(&x, &mut [0.0; 2]), Err(Error::NonFinite));
        }
        assert_eq!(s.absorb(&[0.0; 3], &[bad, 1.0]), Err(Error::NonFinite));
        assert_eq!(s.len(), 1);
        let mut after = [0.0f32; 2];
        s.query(&[0.0; 3], &mut after).unwrap();
        assert_eq!(before, after, "a refused token changed the state");
    }
}

/// The overflow rule of issue 11 on the rf crate: FAVOR+ weights are positive, so the estimate is a
/// convex combination and always fits `f32`; one key with value `±3e38` must give exactly that
/// value on every path. On a2f252f (and on hostile-rf at 1526439) `attention`, `causal_attention`
/// and `CausalState` returned `Err(OutputOverflow)`: the unnormalised `Σ_i w_i z_i v` over the
/// features overflows before the division.
#[test]
fn one_huge_value_is_not_an_output_overflow() {
    for (d, m) in [(1usize, 16usize), (3, 8), (4, 64)] {
        let ft = feat(d, m, Sampling::Iid, Variant::Positive, 1.0, 7);
        for v in [3e38f32, -3e38, f32::MAX * 0.99] {
            let p = Problem {
                dv: 1,
                q: vec![0.1; d],
                keys: vec![0.2; d],
                values: vec![v],
            };
            assert_eq!(
                check_all(&format!("d={d} m={m} v={v:e}"), &ft, &p),
                Some(Ok(()))
            );
        }
    }
}
