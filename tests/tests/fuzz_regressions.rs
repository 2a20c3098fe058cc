//! Reproducers of bugs the fuzzers (`fuzz/`, `scripts/fuzz`) found in the core, minimised by
//! hand from the crashing inputs. Each test states the invariant it checks and failed on the
//! core it was found in.
//!
//! The first three (found before `Error::Overflow` existed): finite inputs give a finite result
//! inside the range of the values averaged (a convex combination). Since issue 11 they hold the
//! overflow rule too: `Err(Overflow)` only when the exact average does not fit `f32`, which
//! a convex combination of finite values never does, so these must be `Ok` (on a2f252f they were
//! `Err(Overflow)`).

mod core_flat;
use core_flat::{attention, causal_attention, scalar};
use nadaraya::{Error, Gaussian, OnlineSoftmax, Smoother, SoftmaxDot};

/// Results must be `Ok`, finite and inside `[lo, hi]`.
fn assert_convex(got: Result<&[f32], Error>, lo: f32, hi: f32, what: &str) {
    let ys = got.unwrap_or_else(|e| {
        panic!("{what}: Err({e:?}) from finite inputs whose average lies in [{lo:e}, {hi:e}]")
    });
    for y in ys {
        assert!(
            y.is_finite() && (lo..=hi).contains(y),
            "{what}: Ok({y}) from finite inputs whose values lie in [{lo:e}, {hi:e}]"
        );
    }
}

/// Found by the `smoother` target (a ramp of 8 samples whose second response is about `-3e38`,
/// predicted at a query where all weights are close to 1/8): the unnormalised accumulator
/// `Σ exp(s_i - m) y_i` overflows `f32` although every `y_i` and the average are finite, and
/// `predict` returns `Ok(-inf)`. Two equal samples are enough.
#[test]
fn smoother_predict_of_huge_responses_stays_finite() {
    let mut s: Smoother<Gaussian, 8, 1, 1> = Smoother::new(Gaussian::new(1.0).unwrap());
    s.push([0.0], [3e38]).unwrap();
    s.push([0.0], [3e38]).unwrap();
    let got = s.predict(&[0.0]);
    assert_convex(
        got.as_ref().map(|y| &y[..]).map_err(|e| *e),
        3e38,
        3e38,
        "predict",
    );
}

/// The same overflow on the slice API, SIMD and scalar, plain and causal.
#[test]
fn attention_of_huge_values_stays_finite() {
    let k = SoftmaxDot::new(1.0).unwrap();
    let (q, keys, values) = ([0.0f32], [0.0f32, 0.0], [-3e38f32, -3e38]);
    let mut out = [0.0];
    let r = attention(&k, &q, &keys, &values, 1, 1, &mut out);
    assert_convex(r.map(|()| &out[..]), -3e38, -3e38, "attention");
    let r = scalar::attention(&k, &q, &keys, &values, 1, 1, &mut out);
    assert_convex(r.map(|()| &out[..]), -3e38, -3e38, "scalar::attention");
    let mut out2 = [0.0; 2];
    let r = causal_attention(&k, &keys, &keys, &values, 1, 1, &mut out2);
    assert_convex(r.map(|()| &out2[..]), -3e38, -3e38, "causal_attention");
}

/// The same overflow in `OnlineSoftmax::merge`: `a·fa + b·fb` of two finite accumulators.
#[test]
fn merged_online_softmax_of_huge_values_stays_finite() {
    let mut a = OnlineSoftmax::<1>::new();
    let mut b = OnlineSoftmax::<1>::new();
    a.push_score(0.0, &[3e38]).unwrap();
    b.push_score(0.0, &[3e38]).unwrap();
    let merged = a.merge(&b).finish();
    assert_convex(
        merged.as_ref().map(|y| &y[..]).map_err(|e| *e),
        3e38,
        3e38,
        "merge",
    );
    // And within one update: two keys, one tile.
    let mut s = OnlineSoftmax::<1>::new();
    let g = Gaussian::new(1.0).unwrap();
    // The average 3e38 fits f32: `update` must accept it.
    core_flat::update(&mut s, &g, &[0.0], &[0.0, 0.0], &[3e38, 3e38]).unwrap();
    let got = s.finish();
    assert_convex(
        got.as_ref().map(|y| &y[..]).map_err(|e| *e),
        3e38,
        3e38,
        "update",
    );
}

/// Found by the `attention` target (d = 7, dv = 11, no query rows, an infinite first key): with
/// `M = 0` queries `attention` reads no key and returns `Ok(())` for non-finite keys or values,
/// while `scalar::attention` and `causal_attention` return `NonFinite` for the same call, and the
/// docs promise `NonFinite` for any NaN or infinite input. The SIMD path and its scalar twin must
/// agree on `Ok`/`Err`.
#[test]
fn attention_without_queries_rejects_non_finite_keys_like_its_twins() {
    let k = Gaussian::new(1.0).unwrap();
    let mut out = [0.0; 2];
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        for (keys, values) in [([bad, 0.0], [1.0, 2.0]), ([0.0, 0.0], [1.0, bad])] {
            let simd = attention(&k, &[], &keys, &values, 1, 1, &mut out);
            let twin = scalar::attention(&k, &[], &keys, &values, 1, 1, &mut out);
            let causal = causal_attention(&k, &[], &keys, &values, 1, 1, &mut out);
            assert_eq!(twin, Err(Error::NonFinite), "scalar::attention, {bad}");
            assert_eq!(causal, Err(Error::NonFinite), "causal_attention, {bad}");
            assert_eq!(simd, twin, "attention vs scalar::attention, {bad}");
        }
    }
}

/// Found by the `merge` target: `OnlineSoftmax::update` over zero samples returns `Ok(())` for a
/// NaN or infinite query, although its docs promise `NonFinite` if any input is NaN or infinite
/// (the state is unchanged either way; only the documented error is missing).
#[test]
fn online_softmax_update_over_no_samples_rejects_a_non_finite_query() {
    let k = SoftmaxDot::new(1.0).unwrap();
    for bad in [f32::NAN, f32::NEG_INFINITY] {
        let mut s = OnlineSoftmax::<1>::new();
        assert_eq!(
            core_flat::update(&mut s, &k, &[bad], &[], &[]),
            Err(Error::NonFinite),
            "{bad}"
        );
        assert!(s.is_empty());
    }
}

/// Found by the `random_features` target (FAVOR+ hyperbolic features, `τ = 0.0033`, a query
/// coordinate of `-2.9e38`): `nadaraya_rf::CausalState::step` absorbs the token's key and value
/// and only then computes the query; when the query fails (`ScoreOverflow` here) the call returns
/// `Err` but the token stays absorbed, although the docs say "a rejected token leaves the state
/// unchanged". Later steps then average over a token the caller was told was rejected.
#[test]
fn rejected_causal_step_leaves_the_state_unchanged() {
    use nadaraya_rf::{CausalState, FavorPlus};
    let f = FavorPlus::for_dim(1, 16, 1).unwrap();
    let mut s = CausalState::new(&f, 1).unwrap();
    let mut out = [0.0];
    // A finite query whose exponents ω_i·q overflow f32 for any |ω_i| > 1; the key is harmless.
    let r = s.step(&[f32::MAX], &[0.0], &[1.0], &mut out);
    assert!(r.is_err(), "the query's exponents overflow: {r:?}");
    assert_eq!(s.len(), 0, "step returned {r:?} but absorbed the token");
}
