//! The adversarial suite of the core (issue 11): hostile inputs against the plain `f64`
//! reference, with one rule asserted everywhere.
//!
//! - `Ok` means every output is finite, inside the range of the values averaged, and within the
//!   documented bound of the `f64` reference ([`reference::tolerance`]: `2e-6` of the values'
//!   scale plus what rounding the scores to `f32` costs; weights `≥ 0` summing to `1 ± 1e-6`).
//! - `Err` only for invalid input (`NonFinite`), for a score not finite in `f32`
//!   (`ScoreOverflow`, decided per score), or when the exact result, computed in `f64` from the
//!   same `f32` scores, is not representable in `f32` (`Overflow`; [`reference::fits_f32`] leaves
//!   a relative band of `1e-5` around `f32::MAX` undecided). A convex combination of finite `f32`
//!   values always fits, so outside that band the core has no `Overflow` to give except in
//!   `MultiHeadAttention`'s output projection.
//! - Every order of the same samples (permutations, ring positions, chunkings, merge trees) gets
//!   the same verdict.
//! - Output rows past the used length are the caller's: NaN there is ignored and left untouched.
//!
//! Deterministic: every input comes from [`nadaraya_tests::uniform`] with a fixed seed.

mod core_flat;
use core_flat::{attention, causal_attention, scalar, weights};
use nadaraya::{
    Error, Gaussian, Kernel, MultiHeadAttention, OnlineSoftmax, Smoother, SoftmaxDot, math,
};
use nadaraya_tests::reference::{self, Fits, RefKernel, fits_f32, widen};
use nadaraya_tests::uniform;
use nadaraya_tests::verdict::{self, judge, subnormal_slack};

// ---------------------------------------------------------------------------------------------
// Kernels, hostile values, permutations
// ---------------------------------------------------------------------------------------------

/// A core kernel and its `f64` twin.
#[derive(Clone, Copy, Debug)]
enum Kern {
    G(Gaussian),
    S(SoftmaxDot),
}

impl Kern {
    fn gauss(h: f32) -> Self {
        Self::G(Gaussian::new(h).unwrap())
    }

    fn dot(tau: f32) -> Self {
        Self::S(SoftmaxDot::new(tau).unwrap())
    }

    fn reference(&self) -> RefKernel {
        match self {
            Self::G(g) => RefKernel::Gaussian {
                h: f64::from(g.bandwidth()),
            },
            Self::S(s) => RefKernel::SoftmaxDot {
                tau: f64::from(s.temperature()),
            },
        }
    }
}

impl Kernel for Kern {
    fn score(&self, q: &[f32], x: &[f32]) -> f32 {
        match self {
            Self::G(g) => g.score(q, x),
            Self::S(s) => s.score(q, x),
        }
    }

    fn scores(&self, q: &[f32], keys: &[f32], out: &mut [f32]) {
        match self {
            Self::G(g) => g.scores(q, keys, out),
            Self::S(s) => s.scores(q, keys, out),
        }
    }
}

/// Values a hostile user passes: zeros, subnormals, the smallest normal, `±3e38`, `±f32::MAX`.
const HOSTILE: [f32; 14] = [
    0.0,
    -0.0,
    1e-45,
    -1e-45,
    1e-40,
    -3e-39,
    f32::MIN_POSITIVE,
    1.0,
    -0.5,
    3e38,
    -3e38,
    f32::MAX,
    -f32::MAX,
    2.5e38,
];

/// The three non-finite values.
const NON_FINITE: [f32; 3] = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY];

/// A uniform index in `0..n`.
fn index(u: &mut impl FnMut() -> f32, n: usize) -> usize {
    ((((u() + 1.0) * 0.5) * n as f32) as usize).min(n - 1)
}

/// Every permutation of `0..n` (Heap's algorithm).
fn permutations(n: usize) -> Vec<Vec<usize>> {
    fn heap(k: usize, a: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if k <= 1 {
            out.push(a.clone());
            return;
        }
        for i in 0..k {
            heap(k - 1, a, out);
            let j = if k.is_multiple_of(2) { i } else { 0 };
            a.swap(j, k - 1);
        }
    }
    let mut out = Vec::new();
    heap(n, &mut (0..n).collect(), &mut out);
    out
}

/// A random permutation of `0..n` (Fisher–Yates).
fn shuffled(u: &mut impl FnMut() -> f32, n: usize) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        p.swap(i, index(u, i + 1));
    }
    p
}

/// Rows of `xs` (each `w` wide) in the order `perm`.
fn permute_rows(xs: &[f32], w: usize, perm: &[usize]) -> Vec<f32> {
    perm.iter()
        .flat_map(|&i| xs[i * w..(i + 1) * w].iter().copied())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// What the reference says a call must return
// ---------------------------------------------------------------------------------------------

/// Whether a score is finite in `f32`, in any summation order (with or without FMA).
#[derive(Clone, Copy, Debug, PartialEq)]
enum ScoreClass {
    Finite,
    /// `+inf` or NaN in `f32`: `ScoreOverflow`.
    Overflow,
    /// Certainly `-inf` in `f32` (a Gaussian `|q - x|²` beyond `f32`, or a dot product below
    /// `-f32::MAX` whose every term is `≤ 0`): weight 0, not an error (issue 12).
    Vanish,
    /// Near `f32::MAX` or with cancelling huge terms: the order of the sum decides.
    Unsure,
}

fn score_class(rk: RefKernel, q: &[f32], x: &[f32]) -> ScoreClass {
    let max = f64::from(f32::MAX);
    let (q, x) = (widen(q), widen(x));
    let (total, abs_total, s, gauss) = match rk {
        RefKernel::Gaussian { h } => {
            let t: f64 = q.iter().zip(&x).map(|(a, b)| (a - b) * (a - b)).sum();
            (t, t, t / (2.0 * h * h), true)
        }
        RefKernel::SoftmaxDot { tau } => {
            let t: f64 = q.iter().zip(&x).map(|(a, b)| a * b).sum();
            let a: f64 = q.iter().zip(&x).map(|(a, b)| (a * b).abs()).sum();
            (t, a, t / tau, false)
        }
    };
    let over = total.abs() > max * (1.0 + 1e-3) || s.abs() > max * (1.0 + 1e-3);
    if over && (gauss || (total < 0.0 && abs_total == -total)) {
        ScoreClass::Vanish
    } else if over && (total > 0.0 || abs_total == total) {
        ScoreClass::Overflow
    } else if abs_total <= max * (1.0 - 1e-3) && s.abs() <= max * (1.0 - 1e-3) {
        ScoreClass::Finite
    } else {
        ScoreClass::Unsure
    }
}

/// What one output row must be, with the core's error type.
type RowWant = verdict::RowWant<Error>;

fn want_row(k: Kern, q: &[f32], keys: &[f32], values: &[f32], dv: usize) -> RowWant {
    let rk = k.reference();
    let d = q.len();
    let mut w = RowWant::convex(values, dv);
    let classes: Vec<ScoreClass> = keys
        .chunks_exact(d)
        .map(|x| score_class(rk, q, x))
        .collect();
    if classes.contains(&ScoreClass::Overflow) {
        w.must_fail = Some(Error::ScoreOverflow);
        return w;
    }
    if classes.contains(&ScoreClass::Unsure) {
        w.may_fail = Some(Error::ScoreOverflow);
        return w;
    }
    if classes.iter().all(|c| *c == ScoreClass::Vanish) {
        w.must_fail = Some(Error::NoSupport);
        return w;
    }
    // The verdict: the exact average of the same f32 scores.
    let s32: Vec<f64> = keys
        .chunks_exact(d)
        .map(|x| f64::from(k.score(q, x)))
        .collect();
    match fits_f32(&reference::softmax_average(&s32, &widen(values), dv)) {
        Fits::Yes => {}
        Fits::No => {
            w.must_fail = Some(Error::Overflow);
            return w;
        }
        Fits::Undecided => w.may_fail = Some(Error::Overflow),
    }
    let (qw, kw, vw) = (widen(q), widen(keys), widen(values));
    w.exact = reference::smooth(rk, &qw, &kw, &vw, dv);
    w.tol = reference::tolerance(rk, &qw, &kw, &vw) + subnormal_slack(values.len() / dv);
    w
}

/// One attention problem: `m` queries, `n` keys.
#[derive(Clone, Debug)]
struct Problem {
    d: usize,
    dv: usize,
    q: Vec<f32>,
    keys: Vec<f32>,
    values: Vec<f32>,
}

impl Problem {
    fn n(&self) -> usize {
        self.keys.len() / self.d
    }

    fn all_finite(&self) -> bool {
        self.q
            .iter()
            .chain(&self.keys)
            .chain(&self.values)
            .all(|v| v.is_finite())
    }

    fn permuted(&self, perm: &[usize]) -> Self {
        Self {
            q: self.q.clone(),
            keys: permute_rows(&self.keys, self.d, perm),
            values: permute_rows(&self.values, self.dv, perm),
            ..*self
        }
    }

    fn rows(&self, k: Kern, causal: bool) -> Vec<RowWant> {
        let (d, dv) = (self.d, self.dv);
        self.q
            .chunks_exact(d)
            .enumerate()
            .map(|(t, q)| {
                let n = if causal { t + 1 } else { self.n() };
                want_row(k, q, &self.keys[..n * d], &self.values[..n * dv], dv)
            })
            .collect()
    }
}

/// Extra output rows past the used length, filled with NaN: they must be left untouched.
const SPARE_ROWS: usize = 2;

/// Runs `f` on an output buffer of `rows` rows plus [`SPARE_ROWS`] rows of NaN, asserts the
/// spare rows untouched, and returns the result with the used rows.
fn with_out(
    what: &str,
    rows: usize,
    dv: usize,
    f: impl FnOnce(&mut [f32]) -> Result<(), Error>,
) -> (Result<(), Error>, Vec<f32>) {
    let mut out = vec![f32::NAN; (rows + SPARE_ROWS) * dv];
    let got = f(&mut out);
    assert!(
        out[rows * dv..].iter().all(|v| v.is_nan()),
        "{what}: wrote past the used rows"
    );
    out.truncate(rows * dv);
    (got, out)
}

/// Runs `attention`, `scalar::attention` and `causal_attention` on `p`, judges each, and returns
/// the non-causal verdict, or `None` if a row's average lies in the band around `f32::MAX`
/// (where the order of the samples may decide).
fn check_attention(tag: &str, k: Kern, p: &Problem) -> Option<Result<(), Error>> {
    let (d, dv, m) = (p.d, p.dv, p.q.len() / p.d);
    let finite = p.all_finite();
    let rows = p.rows(k, false);
    let judge_or_nonfinite = |what: &str, got, out: &[f32], rows: &[RowWant]| {
        if finite {
            judge(what, got, out, rows, dv);
        } else {
            assert_eq!(got, Err(Error::NonFinite), "{what}: non-finite input");
        }
    };
    let what = format!("{tag}: attention d={d} dv={dv} m={m} n={}", p.n());
    let (got, out) = with_out(&what, m, dv, |o| {
        attention(&k, &p.q, &p.keys, &p.values, d, dv, o)
    });
    judge_or_nonfinite(&what, got, &out, &rows);
    let what_s = format!("{tag}: scalar::attention d={d} dv={dv} m={m} n={}", p.n());
    let (got_s, out_s) = with_out(&what_s, m, dv, |o| {
        scalar::attention(&k, &p.q, &p.keys, &p.values, d, dv, o)
    });
    judge_or_nonfinite(&what_s, got_s, &out_s, &rows);
    assert_eq!(got, got_s, "{what}: SIMD and scalar verdicts differ");
    if m <= p.n() {
        let crow = p.rows(k, true);
        let what_c = format!("{tag}: causal_attention d={d} dv={dv} m={m} n={}", p.n());
        let (got_c, out_c) = with_out(&what_c, m, dv, |o| {
            causal_attention(&k, &p.q, &p.keys, &p.values, d, dv, o)
        });
        judge_or_nonfinite(&what_c, got_c, &out_c, &crow);
    }
    let undecided = rows.iter().any(|r| r.may_fail == Some(Error::Overflow));
    (!undecided || !finite).then_some(got)
}

// ---------------------------------------------------------------------------------------------
// Data generators
// ---------------------------------------------------------------------------------------------

/// Data regimes: the scale of keys and of values.
#[derive(Clone, Copy, Debug)]
enum Regime {
    /// Keys and values uniform in `[-1, 1]`.
    Plain,
    /// Values drawn from [`HOSTILE`] (subnormals, `±3e38`, `±f32::MAX`), keys uniform.
    HostileValues,
    /// Subnormal keys and queries, values uniform.
    SubnormalKeys,
    /// Keys scaled by `1e15` (dot scores `1e30` apart), values `±3e38`.
    FarScores,
}

fn problem(seed: u64, regime: Regime, d: usize, dv: usize, m: usize, n: usize) -> Problem {
    let mut u = uniform(seed);
    let key_scale = match regime {
        Regime::Plain | Regime::HostileValues => 1.0,
        Regime::SubnormalKeys => 1e-40,
        Regime::FarScores => 1e15,
    };
    let q: Vec<f32> = (0..m * d).map(|_| u() * key_scale).collect();
    let keys: Vec<f32> = (0..n * d).map(|_| u() * key_scale).collect();
    let values: Vec<f32> = (0..n * dv)
        .map(|_| match regime {
            Regime::Plain | Regime::SubnormalKeys => u(),
            Regime::HostileValues => HOSTILE[index(&mut u, HOSTILE.len())],
            Regime::FarScores => 3e38 * u().signum(),
        })
        .collect();
    Problem {
        d,
        dv,
        q,
        keys,
        values,
    }
}

fn kernels(d: usize) -> [Kern; 4] {
    [
        Kern::gauss(0.4 * (d as f32).sqrt()),
        Kern::gauss(1e-3),
        Kern::S(SoftmaxDot::for_dim(d).unwrap()),
        Kern::dot(1.0),
    ]
}

const LANE_DIMS: [usize; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17];
const TILE_ROWS: [usize; 6] = [1, 2, 63, 64, 65, 129];

// ---------------------------------------------------------------------------------------------
// Tests: the slice API
// ---------------------------------------------------------------------------------------------

/// Every lane width `d, dv ∈ 1..=9, 15..=17` against tile boundaries `N ∈ {1, 2, 63, 64, 65,
/// 129}`, in four data regimes and four kernels: every result obeys the rule.
#[test]
fn lane_and_tile_boundaries_obey_the_rule() {
    let regimes = [
        Regime::Plain,
        Regime::HostileValues,
        Regime::SubnormalKeys,
        Regime::FarScores,
    ];
    let mut seed = 1;
    for (i, &d) in LANE_DIMS.iter().enumerate() {
        for (j, &n) in TILE_ROWS.iter().enumerate() {
            let dv = LANE_DIMS[(i + 3 * j) % LANE_DIMS.len()];
            let regime = regimes[(i + j) % regimes.len()];
            seed += 1;
            let p = problem(seed, regime, d, dv, 5, n);
            for k in kernels(d) {
                let _ = check_attention(&format!("{regime:?}"), k, &p);
            }
        }
    }
}

/// Very large dimensions and sequences: `d = 4099` (a lane tail of 3), `dv = 4097`, and
/// `N = 5000` keys (79 tiles) with hostile values.
#[test]
fn very_large_dimensions_obey_the_rule() {
    for (d, dv, n, regime) in [
        (4099, 1, 3, Regime::Plain),
        (1, 4097, 3, Regime::HostileValues),
        (2, 1, 5000, Regime::HostileValues),
        (33, 3, 300, Regime::FarScores),
    ] {
        let p = problem(d as u64, regime, d, dv, 2, n);
        for k in kernels(d) {
            let _ = check_attention(&format!("large {regime:?}"), k, &p);
        }
    }
}

/// NaN, `+inf` and `-inf` at every position of the queries, keys and values: `Err(NonFinite)`
/// from every entry point, never `Ok` and never another error; output rows past the used length
/// (NaN) are ignored and untouched.
#[test]
fn non_finite_inputs_in_every_position_are_rejected() {
    for (d, dv, m, n) in [(3, 2, 2, 5), (9, 1, 2, 65), (1, 9, 4, 8)] {
        let base = problem(7, Regime::Plain, d, dv, m, n);
        let k = Kern::gauss(0.7);
        for bad in NON_FINITE {
            for which in 0..3 {
                let len = [base.q.len(), base.keys.len(), base.values.len()][which];
                for pos in 0..len {
                    let mut p = base.clone();
                    [&mut p.q, &mut p.keys, &mut p.values][which][pos] = bad;
                    let _ = check_attention("non-finite", k, &p);
                    let mut w = vec![f32::NAN; n + 2];
                    for qr in p.q.chunks_exact(d) {
                        let got = weights(&k, qr, &p.keys, &mut w);
                        let got_s = scalar::weights(&k, qr, &p.keys, &mut w);
                        let poisoned = !qr.iter().chain(&p.keys).all(|v| v.is_finite());
                        if poisoned {
                            assert_eq!(got, Err(Error::NonFinite), "weights {bad} at {pos}");
                            assert_eq!(got_s, Err(Error::NonFinite), "scalar weights");
                        } else {
                            assert!(got.is_ok() && got_s.is_ok(), "weights ignore values");
                        }
                        assert!(w[n..].iter().all(|v| v.is_nan()), "weights past N written");
                    }
                }
            }
        }
    }
}

/// Checks `weights` and `scalar::weights` of one query against the reference: `Ok` means finite,
/// `≥ 0`, summing to `1 ± 1e-6`, each within the bound of the `f64` weights. Returns the verdict.
fn check_weights(what: &str, k: Kern, q: &[f32], keys: &[f32]) -> Result<Vec<f32>, Error> {
    let n = keys.len() / q.len();
    let row = want_row(k, q, keys, &vec![1.0; n], 1);
    let want = reference::weights(k.reference(), &widen(q), &widen(keys));
    let tol = reference::tolerance(k.reference(), &widen(q), &widen(keys), &[1.0]);
    let mut result: Option<Result<Vec<f32>, Error>> = None;
    for (name, f) in [
        (
            "weights",
            weights::<Kern> as fn(&Kern, &[f32], &[f32], &mut [f32]) -> _,
        ),
        ("scalar::weights", scalar::weights::<Kern>),
    ] {
        let mut w = vec![f32::NAN; n + SPARE_ROWS];
        let got = f(&k, q, keys, &mut w);
        assert!(w[n..].iter().all(|v| v.is_nan()), "{what}: {name} past N");
        let got = got.map(|()| w[..n].to_vec());
        match &got {
            Ok(w) => {
                assert_eq!(row.must_fail, None, "{what}: {name} Ok, reference fails");
                let sum: f64 = w.iter().map(|&x| f64::from(x)).sum();
                assert!((sum - 1.0).abs() <= 1e-6, "{what}: {name} sums to {sum}");
                for (i, (&a, b)) in w.iter().zip(&want).enumerate() {
                    assert!(a.is_finite() && a >= 0.0, "{what}: {name}[{i}] = {a}");
                    if row.may_fail.is_none() {
                        assert!(
                            (f64::from(a) - b).abs() <= tol,
                            "{what}: {name}[{i}] = {a:e}, reference {b:e}, bound {tol:e}"
                        );
                    }
                }
            }
            Err(e) => assert!(
                row.must_fail == Some(*e) || row.may_fail == Some(*e),
                "{what}: {name} Err({e:?}), reference {:?}/{:?}",
                row.must_fail,
                row.may_fail
            ),
        }
        // A score at the edge of overflow (`may_fail`) may round to `-inf` (weight 0) in one
        // twin's summation order and overflow to `+inf` or NaN in the other's.
        if let (Some(r), None) = (&result, row.may_fail) {
            assert_eq!(
                r.as_ref().map(|_| ()),
                got.as_ref().map(|_| ()),
                "{what}: SIMD and scalar weights verdicts differ"
            );
        }
        result = Some(got);
    }
    result.unwrap()
}

/// Scores far apart (`1e30`), subnormal keys, score overflow (`±3e38` keys): weights obey the
/// rule at every tile boundary.
#[test]
fn weights_obey_the_rule() {
    let mut u = uniform(11);
    for &n in &TILE_ROWS {
        for &d in &[1usize, 8, 9, 17] {
            for scale in [1.0f32, 1e-40, 1e15, 1e19, 3e38] {
                let q: Vec<f32> = (0..d).map(|_| u() * scale).collect();
                let keys: Vec<f32> = (0..n * d).map(|_| u() * scale).collect();
                for k in kernels(d) {
                    let _ = check_weights(&format!("weights n={n} d={d} x{scale:e}"), k, &q, &keys);
                }
            }
        }
    }
}

/// Scores `1e30` apart give one-hot weights and exactly the dominant value, huge or not.
#[test]
fn scores_1e30_apart_are_one_hot() {
    let k = Kern::dot(1.0);
    let q = [1e15f32];
    let keys = [0.0f32, -1e15, 1e15, 5e14];
    let values = [-3e38f32, 1.0, 3e38, f32::MIN_POSITIVE];
    let mut out = [0.0f32];
    attention(&k, &q, &keys, &values, 1, 1, &mut out).unwrap();
    assert_eq!(out[0], 3e38);
    let w = check_weights("one-hot", k, &q, &keys).unwrap();
    assert_eq!(w, [0.0, 0.0, 1.0, 0.0]);
}

/// The order-dependent `Overflow` of issue 11 class 4, on the slice API: huge values in the first
/// tile, the dominant key in a later one. The exact result is `≈ 1` (representable), so every
/// order must be `Ok` and the same; on a2f252f the tile order `[huge…, dominant]` returned
/// `Err(Overflow)` while the reverse and `scalar::attention` returned `Ok`.
#[test]
fn huge_values_before_the_dominant_key_are_not_an_overflow() {
    let n = 130;
    let mut keys = vec![0.0f32; n];
    let mut values = vec![3e38f32; n];
    keys[n - 1] = 100.0;
    values[n - 1] = 1.0;
    let base = Problem {
        d: 1,
        dv: 1,
        q: vec![1.0, 0.99],
        keys,
        values,
    };
    let k = Kern::dot(1.0);
    let mut u = uniform(5);
    let want = check_attention("dominant last", k, &base);
    assert_eq!(want, Some(Ok(())));
    let reversed: Vec<usize> = (0..n).rev().collect();
    assert_eq!(
        check_attention("reversed", k, &base.permuted(&reversed)),
        want
    );
    for _ in 0..10 {
        let p = base.permuted(&shuffled(&mut u, n));
        assert_eq!(check_attention("shuffled", k, &p), want);
    }
}

/// Every permutation of small sample sets (exhaustive for `N ≤ 5`) and random permutations of
/// larger ones (`N` across the tile boundaries) get the same verdict from `attention`,
/// `scalar::attention` and `weights`, and each verdict obeys the rule.
#[test]
fn every_permutation_gets_the_same_verdict() {
    let mut u = uniform(21);
    for n in 1..=5usize {
        let perms = permutations(n);
        for case in 0..6u64 {
            let d = [1usize, 3, 9][case as usize % 3];
            let regime = [Regime::HostileValues, Regime::FarScores][case as usize % 2];
            let p = problem(100 + case * 10 + n as u64, regime, d, 2, 2, n);
            for k in kernels(d) {
                let want = check_attention("perm", k, &p);
                let want_w = check_weights("perm", k, &p.q[..d], &p.keys).map(|_| ());
                for perm in &perms {
                    let pp = p.permuted(perm);
                    assert_eq!(check_attention("perm", k, &pp), want, "{perm:?} {k:?}");
                    let got_w = check_weights("perm", k, &pp.q[..d], &pp.keys).map(|_| ());
                    assert_eq!(got_w, want_w, "weights {perm:?}");
                }
            }
        }
    }
    for &n in &[63usize, 64, 65, 129, 200] {
        for regime in [Regime::HostileValues, Regime::FarScores] {
            let p = problem(n as u64, regime, 2, 3, 3, n);
            for k in kernels(2) {
                let want = check_attention("perm", k, &p);
                for _ in 0..4 {
                    let pp = p.permuted(&shuffled(&mut u, n));
                    assert_eq!(check_attention("perm", k, &pp), want, "n={n} {k:?}");
                }
            }
        }
    }
}

/// Scores that are `+inf` in `f32` (keys near `3e38` under the dot product) are `ScoreOverflow`,
/// decided per score: the same in every order and every entry point. A Gaussian `|q - x|²`
/// that overflows is a score of `-inf`, weight 0 (issue 12): `Ok`, the average of the rest, in
/// every order; and `NoSupport` when every score is `-inf`.
#[test]
fn score_overflow_is_decided_per_score() {
    let p = Problem {
        d: 2,
        dv: 1,
        q: vec![1.0, 1.0],
        keys: vec![0.0, 0.0, 3e38, 3e38, 1.0, 1.0, -1.0, 0.5],
        values: vec![1.0, 2.0, 3.0, 4.0],
    };
    let far = Problem {
        d: 1,
        dv: 1,
        q: vec![-3e38],
        keys: vec![3e38, 2e38, 1e38],
        values: vec![1.0, 2.0, 3.0],
    };
    let want = check_attention("no support", Kern::gauss(1.0), &far);
    assert_eq!(want, Some(Err(Error::NoSupport)));
    for (k, verdict) in [
        (Kern::dot(1.0), Err(Error::ScoreOverflow)),
        (Kern::gauss(1.0), Ok(())),
    ] {
        let want = check_attention("score overflow", k, &p);
        assert_eq!(want, Some(verdict));
        for perm in permutations(4) {
            assert_eq!(
                check_attention("score overflow", k, &p.permuted(&perm)),
                want
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tests: Smoother
// ---------------------------------------------------------------------------------------------

/// The results of `predict` and `weights`, and whether the verdict is decided (outside the band
/// around `f32::MAX`).
type SmootherVerdict = (Result<Vec<f32>, Error>, Result<Vec<f32>, Error>, bool);

/// `predict` and `weights` of a smoother against the reference, as one row.
fn check_smoother<const N: usize, const D: usize, const DV: usize>(
    what: &str,
    s: &Smoother<Kern, N, D, DV>,
    xq: &[f32; D],
) -> SmootherVerdict {
    let keys: Vec<f32> = s.iter().flat_map(|x| x.x).collect();
    let values: Vec<f32> = s.iter().flat_map(|x| x.y).collect();
    let k = *s.kernel();
    let row = want_row(k, xq, &keys, &values, DV);
    let got = s.predict(xq);
    let out = got.map(|y| y.to_vec()).unwrap_or_else(|_| vec![0.0; DV]);
    judge(
        &format!("{what}: predict"),
        got.map(|_| ()),
        &out,
        std::slice::from_ref(&row),
        DV,
    );
    let mut w = vec![f32::NAN; N + SPARE_ROWS];
    let gw = s.weights(xq, &mut w);
    assert!(
        w[s.len()..].iter().all(|v| v.is_nan()),
        "{what}: weights past len"
    );
    if let Ok(()) = gw {
        let want = check_weights(what, k, xq, &keys).expect("slice weights fail, store's not");
        for (a, b) in w.iter().zip(&want) {
            assert!(
                (a - b).abs() <= 1e-6,
                "{what}: store weights {a} vs slice {b}"
            );
        }
    }
    let decided = row.may_fail != Some(Error::Overflow);
    (
        got.map(|y| y.to_vec()),
        gw.map(|()| w[..s.len()].to_vec()),
        decided,
    )
}

/// The same live window after every number of evictions (every ring position): the same verdict
/// and, within rounding, the same value as a fresh store, and the rule. On a2f252f the window
/// `[huge responses…, dominant sample]` failed with `Overflow` only at some ring positions.
#[test]
fn ring_position_does_not_change_the_verdict() {
    fn windows<const N: usize, const D: usize>(
        k: Kern,
        window: &[([f32; D], [f32; 1])],
        xq: [f32; D],
    ) {
        assert_eq!(window.len(), N);
        let mut fresh: Smoother<Kern, N, D, 1> = Smoother::new(k);
        for &(x, y) in window {
            fresh.push(x, y).unwrap();
        }
        let want = check_smoother("fresh", &fresh, &xq);
        for shift in 1..=N + 1 {
            let mut s: Smoother<Kern, N, D, 1> = Smoother::new(k);
            for i in 0..shift {
                s.push_evicting([i as f32; D], [0.0]).unwrap();
            }
            for &(x, y) in window {
                s.push_evicting(x, y).unwrap();
            }
            let got = check_smoother(&format!("shift {shift}"), &s, &xq);
            if !want.2 {
                continue;
            }
            assert_eq!(
                got.0.as_ref().map(|_| ()),
                want.0.as_ref().map(|_| ()),
                "predict shift {shift}"
            );
            assert_eq!(
                got.1.as_ref().map(|_| ()),
                want.1.as_ref().map(|_| ()),
                "weights shift {shift}"
            );
            if let (Ok(a), Ok(b)) = (&got.0, &want.0) {
                let tol = 1e-6 * a[0].abs().max(b[0].abs()).max(f32::MIN_POSITIVE);
                assert!((a[0] - b[0]).abs() <= tol, "shift {shift}: {a:?} vs {b:?}");
            }
        }
    }
    // 8 samples: seven huge responses, then the dominant sample (score 100 above the rest).
    let mut w8: Vec<([f32; 1], [f32; 1])> = (0..7).map(|_| ([0.0], [3e38])).collect();
    w8.push(([100.0], [1.0]));
    windows::<8, 1>(Kern::dot(1.0), &w8, [1.0]);
    let mut w8m = w8.clone();
    w8m.iter_mut().for_each(|s| s.1[0] = -s.1[0]);
    windows::<8, 1>(Kern::dot(1.0), &w8m, [1.0]);
    // 70 samples (past one tile): 69 huge responses, the dominant one last.
    let mut w70: Vec<([f32; 2], [f32; 1])> =
        (0..69).map(|i| ([0.0, i as f32 * 1e-3], [-3e38])).collect();
    w70.push(([50.0, 50.0], [2.0]));
    windows::<70, 2>(Kern::dot(1.0), &w70, [1.0, 1.0]);
    windows::<70, 2>(Kern::gauss(1.0), &w70, [49.0, 49.0]);
    // Hostile responses at every ring position.
    let mut u = uniform(3);
    let w8h: Vec<([f32; 1], [f32; 1])> = (0..8)
        .map(|_| ([u() * 4.0], [HOSTILE[index(&mut u, HOSTILE.len())]]))
        .collect();
    windows::<8, 1>(Kern::gauss(0.5), &w8h, [0.3]);
    windows::<8, 1>(Kern::gauss(1e-3), &w8h, [0.3]);
}

/// A rejected sample (NaN or `±inf` in any coordinate) is handed back bit for bit and the store
/// is unchanged, by `push` and `push_evicting`; a non-finite query is `NonFinite`.
#[test]
fn smoother_hands_back_non_finite_samples() {
    let mut s: Smoother<Kern, 4, 2, 2> = Smoother::new(Kern::gauss(1.0));
    s.push([0.0, 1.0], [3e38, -3e38]).unwrap();
    s.push([1.0, 1.0], [1e-45, 1.0]).unwrap();
    let before: Vec<_> = s.iter().collect();
    for bad in NON_FINITE {
        for pos in 0..4 {
            let mut xy = [0.5f32; 4];
            xy[pos] = bad;
            let (x, y) = ([xy[0], xy[1]], [xy[2], xy[3]]);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            for evicting in [false, true] {
                let r = if evicting {
                    s.push_evicting(x, y).map(|_| ())
                } else {
                    s.push(x, y)
                };
                let r = r.expect_err("a non-finite sample was taken");
                assert_eq!(r.error, Error::NonFinite);
                assert_eq!(bits(&r.sample.x), bits(&x));
                assert_eq!(bits(&r.sample.y), bits(&y));
                assert_eq!(s.iter().collect::<Vec<_>>(), before);
            }
            let mut xq = [0.5f32; 2];
            xq[pos % 2] = bad;
            assert_eq!(s.predict(&xq), Err(Error::NonFinite));
            assert_eq!(s.weights(&xq, &mut [0.0; 4]), Err(Error::NonFinite));
        }
    }
    let _ = check_smoother("after rejections", &s, &[0.0, 0.0]);
}

// ---------------------------------------------------------------------------------------------
// Tests: OnlineSoftmax
// ---------------------------------------------------------------------------------------------

/// The reference verdict and value of an online softmax over `(score, value)` samples given
/// directly. Returns `(must_fail, may_fail, exact, tol)`.
fn want_scores(samples: &[(f32, [f32; 2])]) -> (Option<Error>, Option<Error>, Vec<f64>, f64) {
    let s: Vec<f64> = samples.iter().map(|p| f64::from(p.0)).collect();
    let v: Vec<f64> = samples.iter().flat_map(|p| widen(&p.1)).collect();
    let exact = reference::softmax_average(&s, &v, 2);
    let scale = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let worst = s.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let tol =
        scale * (2e-6 + 8.0 * f64::from(f32::EPSILON) * worst) + subnormal_slack(samples.len());
    match fits_f32(&exact) {
        Fits::Yes => (None, None, exact, tol),
        Fits::No => (Some(Error::Overflow), None, exact, tol),
        Fits::Undecided => (None, Some(Error::Overflow), exact, tol),
    }
}

fn judge_finish(what: &str, got: Result<[f32; 2], Error>, samples: &[(f32, [f32; 2])]) {
    let (must, may, exact, tol) = want_scores(samples);
    match got {
        Ok(y) => {
            assert_eq!(must, None, "{what}: Ok({y:?}), reference fails");
            for j in 0..2 {
                let (lo, hi) = samples.iter().fold((f32::MAX, -f32::MAX), |(a, b), p| {
                    (a.min(p.1[j]), b.max(p.1[j]))
                });
                assert!(y[j].is_finite(), "{what}: Ok({y:?})");
                let slack = 2e-6 * lo.abs().max(hi.abs()) + subnormal_slack(samples.len()) as f32;
                assert!(
                    y[j] >= lo - slack && y[j] <= hi + slack,
                    "{what}: {y:?} outside [{lo:e}, {hi:e}]"
                );
                if may.is_none() {
                    assert!(
                        (f64::from(y[j]) - exact[j]).abs() <= tol,
                        "{what}: {y:?} vs reference {exact:?} (bound {tol:e})"
                    );
                }
            }
        }
        Err(e) => assert!(
            must == Some(e) || may == Some(e),
            "{what}: Err({e:?}), reference {must:?}/{may:?} ({exact:?})"
        ),
    }
}

/// All binary merge trees over `states[lo..hi]`, as the finished verdicts.
fn merge_trees(states: &[OnlineSoftmax<2>]) -> Vec<OnlineSoftmax<2>> {
    if states.len() == 1 {
        return vec![states[0]];
    }
    let mut out = Vec::new();
    for split in 1..states.len() {
        for a in merge_trees(&states[..split]) {
            for b in merge_trees(&states[split..]) {
                out.push(a.merge(&b));
                out.push(b.merge(&a));
            }
        }
    }
    out
}

/// Hostile `(score, value)` sample sets: huge values with low scores before a dominant score,
/// scores `1e30` apart, subnormal values, values summing past `f32::MAX`.
fn score_sets() -> Vec<Vec<(f32, [f32; 2])>> {
    let mut sets = vec![
        vec![
            (0.0, [3e38, -3e38]),
            (0.0, [3e38, -3e38]),
            (100.0, [1.0, 2.0]),
        ],
        vec![
            (0.0, [3e38, 1.0]),
            (0.0, [3e38, 1.0]),
            (0.0, [3e38, 1.0]),
            (200.0, [-1.0, 1.0]),
        ],
        vec![
            (-1e30, [3e38, 3e38]),
            (1e30, [1e-45, -1e-45]),
            (0.0, [-3e38, 1.0]),
        ],
        vec![
            (0.0, [f32::MAX, -f32::MAX]),
            (0.0, [f32::MAX, -f32::MAX]),
            (1.0, [f32::MAX, 0.0]),
        ],
        vec![
            (5.0, [2.5e38, 3e38]),
            (5.0, [3e38, 2.5e38]),
            (-90.0, [1.0, 1.0]),
            (5.0, [3e38, 3e38]),
        ],
    ];
    let mut u = uniform(77);
    for n in [2usize, 5] {
        sets.push(
            (0..n)
                .map(|_| {
                    (
                        u() * 200.0,
                        [
                            HOSTILE[index(&mut u, HOSTILE.len())],
                            HOSTILE[index(&mut u, HOSTILE.len())],
                        ],
                    )
                })
                .collect(),
        );
    }
    sets
}

/// `push_score` in every order, every merge tree of singleton states over every order, and
/// `update` in every chunking: the same verdict, and the rule. On a2f252f the order of
/// `push_score` calls and the merge tree decided whether `finish` returned `Overflow`.
#[test]
fn online_softmax_order_chunking_and_merge_tree_do_not_change_the_verdict() {
    for (c, set) in score_sets().iter().enumerate() {
        let n = set.len();
        // Within the band around f32::MAX the order may decide; elsewhere it must not.
        let decided = want_scores(set).1.is_none();
        let mut verdict = None;
        let mut record = |what: &str, got: Option<Result<[f32; 2], Error>>| {
            let Some(got) = got else {
                assert!(
                    !decided,
                    "set {c}: {what} refused a sample outside the band"
                );
                return;
            };
            judge_finish(what, got, set);
            let v = got.map(|_| ());
            if decided {
                assert_eq!(
                    *verdict.get_or_insert(v),
                    v,
                    "set {c}: {what} changed the verdict"
                );
            }
        };
        for perm in permutations(n) {
            let chunks: Vec<Vec<usize>> = perm.iter().map(|&i| vec![i]).collect();
            let what = format!("set {c}: push_score order {perm:?}");
            record(&what, absorb_chunks(&what, set, &chunks, false));
            let singles: Vec<OnlineSoftmax<2>> = perm
                .iter()
                .map(|&i| {
                    let mut s = OnlineSoftmax::new();
                    s.push_score(set[i].0, &set[i].1).unwrap();
                    s
                })
                .collect();
            for (t, m) in merge_trees(&singles).iter().enumerate() {
                record(
                    &format!("set {c}: merge tree {t} of {perm:?}"),
                    Some(m.finish()),
                );
            }
        }
        for mask in 0..(1u32 << (n - 1)) {
            let mut chunks = vec![Vec::new()];
            for i in 0..n {
                chunks.last_mut().unwrap().push(i);
                if i + 1 < n && mask & (1 << i) != 0 {
                    chunks.push(Vec::new());
                }
            }
            let what = format!("set {c}: update chunks {chunks:?}");
            record(&what, absorb_chunks(&what, set, &chunks, true));
        }
    }
}

/// Absorbs `set` chunk by chunk (`update` with a dot kernel of `τ = 1`, 1-D keys equal to the
/// scores and query 1, or `push_score` one sample at a time) and finishes. A chunk refused with
/// `Overflow` must be one whose prefix average lies in the band around `f32::MAX` (checked);
/// then `None`.
fn absorb_chunks(
    what: &str,
    set: &[(f32, [f32; 2])],
    chunks: &[Vec<usize>],
    update: bool,
) -> Option<Result<[f32; 2], Error>> {
    let k = Kern::dot(1.0);
    let mut s = OnlineSoftmax::<2>::new();
    let mut seen = Vec::new();
    for chunk in chunks {
        seen.extend(chunk.iter().map(|&i| set[i]));
        let before = s;
        let got = if update {
            let keys: Vec<f32> = chunk.iter().map(|&i| set[i].0).collect();
            let values: Vec<f32> = chunk.iter().flat_map(|&i| set[i].1).collect();
            core_flat::update(&mut s, &k, &[1.0], &keys, &values)
        } else {
            s.push_score(set[chunk[0]].0, &set[chunk[0]].1)
        };
        if let Err(e) = got {
            let (must, may, exact, _) = want_scores(&seen);
            assert!(
                must == Some(e) || may == Some(e),
                "{what}: refused {chunk:?} with {e:?}; prefix average {exact:?}"
            );
            assert_eq!(s, before, "{what}: a refused chunk changed the state");
            return None;
        }
    }
    Some(s.finish())
}

/// Merging many states over huge values in random trees: the verdict of one pass.
#[test]
fn online_softmax_random_merge_trees_of_64_states() {
    let mut u = uniform(99);
    let set: Vec<(f32, [f32; 2])> = (0..64)
        .map(|i| {
            let s = if i == 40 { 50.0 } else { u() };
            (s, [3e38 * u().signum(), -3e38])
        })
        .collect();
    let mut one = OnlineSoftmax::<2>::new();
    for p in &set {
        one.push_score(p.0, &p.1).unwrap();
    }
    judge_finish("one pass", one.finish(), &set);
    for _ in 0..20 {
        let mut states: Vec<OnlineSoftmax<2>> = shuffled(&mut u, 64)
            .iter()
            .map(|&i| {
                let mut s = OnlineSoftmax::new();
                s.push_score(set[i].0, &set[i].1).unwrap();
                s
            })
            .collect();
        while states.len() > 1 {
            let i = index(&mut u, states.len() - 1);
            let b = states.remove(i + 1);
            states[i] = states[i].merge(&b);
        }
        let got = states[0].finish();
        judge_finish("random tree", got, &set);
        assert_eq!(
            got.map(|_| ()),
            one.finish().map(|_| ()),
            "tree vs one pass"
        );
    }
}

/// Bad samples to an `OnlineSoftmax`: a non-finite value is `NonFinite`, a NaN or `+inf` score
/// `ScoreOverflow` (`-inf` is weight 0), a NaN in `update` `NonFinite`; the state is unchanged
/// each time.
#[test]
fn online_softmax_rejects_non_finite_and_keeps_its_state() {
    let mut s = OnlineSoftmax::<2>::new();
    s.push_score(0.5, &[3e38, 1.0]).unwrap();
    let before = s;
    let k = Kern::gauss(1.0);
    for bad in NON_FINITE {
        assert_eq!(s.push_score(0.0, &[bad, 1.0]), Err(Error::NonFinite));
        assert_eq!(s.push_score(0.0, &[1.0, bad]), Err(Error::NonFinite));
        if bad == f32::NEG_INFINITY {
            let mut t = s;
            t.push_score(bad, &[1.0, 1.0]).unwrap();
            assert_eq!(t.finish(), s.finish(), "a score of -inf has weight 0");
        } else {
            assert_eq!(s.push_score(bad, &[1.0, 1.0]), Err(Error::ScoreOverflow));
        }
        for pos in 0..3 {
            let mut qkv = [0.1f32, 0.2, 0.3, 0.4];
            qkv[pos] = bad;
            let r = core_flat::update(&mut s, &k, &qkv[..1], &qkv[1..2], &qkv[2..]);
            assert_eq!(r, Err(Error::NonFinite), "update {bad} at {pos}");
        }
        assert_eq!(
            core_flat::update(&mut s, &k, &[bad], &[], &[]),
            Err(Error::NonFinite)
        );
        assert_eq!(s, before);
    }
}

// ---------------------------------------------------------------------------------------------
// Tests: MultiHeadAttention
// ---------------------------------------------------------------------------------------------

/// The output projection of [`two_heads`].
type WO2 = [[[f32; 2]; 1]; 2];

/// Two heads of width 1 over 2-D tokens: head `h` reads coordinate `h` (`W_Q = W_K = 0`, so all
/// scores are 0), its value is `x_h`, and `w_o[h]` writes it back with the given weights.
fn two_heads(w_o: WO2) -> MultiHeadAttention<'static, Kern, 2, 2, 1> {
    let pick = |c: usize| core::array::from_fn(|i| [if i == c { 1.0 } else { 0.0 }]);
    let zero = [[[0.0]; 2]; 2];
    core_flat::mha([Kern::dot(1.0); 2], zero, zero, [pick(0), pick(1)], w_o).unwrap()
}

/// Checks `forward` against the `f64` reference with the rule; the bound is `1e-5` of
/// `Σ_h Σ_j max|v^h_j|·|w_o^h_{j,i}|` (the MHA docs state none; see the report).
fn check_mha(
    what: &str,
    mha: &MultiHeadAttention<'static, Kern, 2, 2, 1>,
    w_o: WO2,
    x: &[[f32; 2]],
    causal: bool,
) -> Result<(), Error> {
    let wq: Vec<Vec<f64>> = vec![vec![0.0; 2]; 2];
    let wv: Vec<Vec<f64>> = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
    let wo: Vec<Vec<f64>> = w_o.iter().map(|h| widen(h.as_flattened())).collect();
    let xs: Vec<f64> = widen(x.as_flattened());
    let rk = Kern::dot(1.0).reference();
    let want = reference::multihead(&[rk, rk], &wq, &wq, &wv, &wo, &xs, 2, 1, causal);
    let mut out = vec![[f32::NAN; 2]; x.len() + SPARE_ROWS];
    let got = core_flat::forward::<8, _, _, _, _>(mha, x, causal, &mut out);
    assert!(
        out[x.len()..].iter().flatten().all(|v| v.is_nan()),
        "{what}: past len"
    );
    match (got, fits_f32(&want)) {
        (Ok(()), Fits::No) => panic!("{what}: Ok({out:?}), exact {want:?} does not fit f32"),
        (Ok(()), _) => {
            for (t, o) in out[..x.len()].iter().enumerate() {
                for i in 0..2 {
                    let scale: f64 = (0..2)
                        .map(|h| {
                            let vmax = x.iter().fold(0.0f64, |m, r| m.max(f64::from(r[h].abs())));
                            vmax * f64::from(w_o[h][0][i].abs())
                        })
                        .sum();
                    let e = want[t * 2 + i];
                    assert!(o[i].is_finite(), "{what}: Ok with {:?} (exact {e:e})", o);
                    assert!(
                        (f64::from(o[i]) - e).abs() <= 1e-5 * scale,
                        "{what}: [{t}][{i}] = {:e}, exact {e:e}",
                        o[i]
                    );
                }
            }
            assert!(out[..x.len()].iter().flatten().all(|v| v.is_finite()));
        }
        (Err(Error::Overflow), Fits::No | Fits::Undecided) => {}
        (Err(e), f) => panic!("{what}: Err({e:?}), exact {want:?} ({f:?})"),
    }
    got
}

/// Issue 11 class 1: output projections whose per-head contributions are `±6e38`. The exact
/// sum `0` fits (must be `Ok(0)`), `1.2e39` does not (must be `Err(Overflow)`); on a2f252f both
/// returned `Ok` holding `inf` or `NaN`. Every order of the tokens gets the same verdict.
#[test]
fn multihead_projection_overflow_obeys_the_rule() {
    let cases: [(WO2, [[f32; 2]; 2]); 5] = [
        ([[[3e38, 0.0]], [[-3e38, 0.0]]], [[2.0, 2.0], [2.0, 2.0]]),
        ([[[3e38, 0.0]], [[3e38, 0.0]]], [[2.0, 2.0], [2.0, 2.0]]),
        ([[[3e38, 3e38]], [[-3e38, 3e38]]], [[1.0, 1.0], [1.0, -1.0]]),
        (
            [[[f32::MAX, 1.0]], [[1.0, f32::MAX]]],
            [[1.0, 0.0], [0.0, 1.0]],
        ),
        ([[[3e38, -3e38]], [[3e38, 3e38]]], [[0.6, 0.5], [0.5, 0.6]]),
    ];
    for (c, (w_o, x)) in cases.iter().enumerate() {
        let mha = two_heads(*w_o);
        for causal in [false, true] {
            let a = check_mha(&format!("case {c} causal {causal}"), &mha, *w_o, x, causal);
            if !causal {
                let rev = [x[1], x[0]];
                let b = check_mha(&format!("case {c} reversed"), &mha, *w_o, &rev, false);
                assert_eq!(a, b, "case {c}: token order changed the verdict");
            }
        }
    }
}

/// Non-finite tokens in every position, and tokens whose projection overflows: `NonFinite`,
/// `out` untouched (including the rows past the sequence).
#[test]
fn multihead_rejects_non_finite_tokens() {
    let w_o = [[[1.0, 0.0]], [[0.0, 1.0]]];
    let mha = two_heads(w_o);
    for bad in NON_FINITE {
        for pos in 0..6 {
            let mut x = [[0.5f32; 2]; 3];
            x[pos / 2][pos % 2] = bad;
            let mut out = [[7.0f32; 2]; 5];
            assert_eq!(
                core_flat::forward::<8, _, _, _, _>(&mha, &x, false, &mut out),
                Err(Error::NonFinite)
            );
            assert_eq!(out, [[7.0; 2]; 5]);
        }
    }
    let _ = check_mha(
        "plain",
        &mha,
        w_o,
        &[[0.5, -3e38], [1e-45, 3e38], [f32::MAX, 0.0]],
        false,
    );
}

// ---------------------------------------------------------------------------------------------
// Tests: math
// ---------------------------------------------------------------------------------------------

/// `exp_neg_in_place` equals `exp_neg` element by element (NaN for NaN, issue 11 class 3) at
/// every length across the lane boundaries, with every edge value at every position; both are
/// within the README's measured 1.01 ulp of `f64::exp` on `[-87.33, 0]`, 0 below, 1 above.
#[test]
fn exp_neg_and_exp_neg_in_place_agree_everywhere() {
    let edges = [
        f32::NAN,
        f32::NEG_INFINITY,
        f32::INFINITY,
        0.0,
        -0.0,
        1e-45,
        -1e-45,
        -1e-40,
        1.0,
        3e38,
        -3e38,
        f32::MIN,
        -87.33,
        -87.336_55,
        -87.34,
        -88.0,
        -103.9,
        -1e-7,
        -0.5,
        -20.0,
    ];
    let check = |x: f32, y: f32, what: &str| {
        let e = math::exp_neg(x);
        if x.is_nan() {
            assert!(e.is_nan() && y.is_nan(), "{what}: exp({x}) = {e} / {y}");
            return;
        }
        assert_eq!(
            e.to_bits(),
            y.to_bits(),
            "{what}: exp_neg({x}) = {e}, in place {y}"
        );
        if x >= 0.0 {
            assert_eq!(e, 1.0, "{what}: x = {x}");
        } else if x < -87.34 {
            assert_eq!(e, 0.0, "{what}: x = {x}");
        } else if x >= -87.33 {
            let want = f64::from(x).exp();
            let ulp = f64::from(f32::EPSILON) * want.abs().max(f64::from(f32::MIN_POSITIVE));
            assert!(
                (f64::from(e) - want).abs() <= 1.01 * ulp,
                "{what}: exp({x}) = {e}, want {want}"
            );
        } else {
            assert!(
                (0.0..=f32::MIN_POSITIVE * 1.1).contains(&e),
                "{what}: x = {x}"
            );
        }
    };
    let mut u = uniform(5);
    for len in (1..=17).chain([31, 32, 33, 1000]) {
        let base: Vec<f32> = (0..len).map(|_| (u() - 1.0) * 45.0).collect();
        for pos in 0..len {
            for &v in &edges {
                let mut xs = base.clone();
                xs[pos] = v;
                let mut ys = xs.clone();
                math::exp_neg_in_place(&mut ys);
                for (&x, &y) in xs.iter().zip(&ys) {
                    check(x, y, &format!("len {len} pos {pos}"));
                }
            }
            if len > 40 && pos > 20 {
                break;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Random sweeps
// ---------------------------------------------------------------------------------------------

/// 400 seeded random problems: shapes `d, dv ∈ 1..=20`, `N ∈ 1..=150`, `M ∈ 1..=6`, a random
/// data regime and kernel, and in one problem of four a NaN or infinity at a random position:
/// every entry point obeys the rule, and a random permutation of the keys keeps the verdict.
#[test]
fn random_hostile_problems_obey_the_rule() {
    let mut u = uniform(2024);
    let regimes = [
        Regime::Plain,
        Regime::HostileValues,
        Regime::SubnormalKeys,
        Regime::FarScores,
    ];
    for case in 0..400u64 {
        let d = 1 + index(&mut u, 20);
        let dv = 1 + index(&mut u, 20);
        let n = 1 + index(&mut u, 150);
        let m = 1 + index(&mut u, 6);
        let regime = regimes[index(&mut u, regimes.len())];
        let mut p = problem(10_000 + case, regime, d, dv, m, n);
        if case % 4 == 3 {
            let bad = NON_FINITE[index(&mut u, 3)];
            let which = index(&mut u, 3);
            let slot = match which {
                0 => &mut p.q,
                1 => &mut p.keys,
                _ => &mut p.values,
            };
            let i = index(&mut u, slot.len());
            slot[i] = bad;
        }
        let k = kernels(d)[index(&mut u, 4)];
        let tag = format!("case {case} {regime:?}");
        let want = check_attention(&tag, k, &p);
        let pp = p.permuted(&shuffled(&mut u, n));
        assert_eq!(check_attention(&tag, k, &pp), want, "{tag}: permuted keys");
        if p.all_finite() {
            let _ = check_weights(&tag, k, &p.q[..d], &p.keys);
        }
    }
}

/// Model width, heads and head width of the random multi-head sweep.
const MDM: usize = 3;
const MH: usize = 2;
const MDH: usize = 2;

/// Random multi-head layers with moderate `W_Q`, `W_K` (scores of order 1) and huge `W_V`,
/// `W_O` (up to `1e19` and `3e38`, so that a head's projected output or the sum over heads can
/// exceed `f32::MAX` while the exact sum may or may not fit): `Ok` means finite, inside the
/// heads' convex hulls (`Σ_h [min_t, max_t] (v^h_t W_O^h)_i`) and within `1e-5` of
/// `Σ_h Σ_j max_t |v^h_tj|·|w_o^h_ji|` of the `f64` reference (the docs state no bound); `Err(Overflow)` only
/// when the exact output does not fit `f32`; the token order (non-causal) keeps the verdict.
#[test]
fn random_multihead_layers_obey_the_rule() {
    let mut u = uniform(4242);
    // [Err, Ok] × [Yes, No, Undecided]: every kind of verdict must be exercised.
    let mut tally = [[0usize; 3]; 2];
    for case in 0..150 {
        let big = [1.0f32, 1e19, 3e38][case % 3];
        let mut mat = |scale: f32| -> Vec<f32> { (0..MDM * MDH).map(|_| u() * scale).collect() };
        let (wq, wk) = (
            (0..MH).map(|_| mat(1.0)).collect::<Vec<_>>(),
            (0..MH).map(|_| mat(1.0)).collect::<Vec<_>>(),
        );
        // Value scales that put the projected outputs around f32::MAX.
        let vscale = [1.0f32, 1e18, 0.3][case % 3];
        let wv: Vec<Vec<f32>> = (0..MH).map(|_| mat(vscale)).collect();
        let wo: Vec<Vec<f32>> = (0..MH).map(|_| mat(big)).collect();
        let arr3 = |w: &[Vec<f32>]| -> [[[f32; MDH]; MDM]; MH] {
            core::array::from_fn(|h| {
                core::array::from_fn(|i| core::array::from_fn(|j| w[h][i * MDH + j]))
            })
        };
        let arr_o = |w: &[Vec<f32>]| -> [[[f32; MDM]; MDH]; MH] {
            core::array::from_fn(|h| {
                core::array::from_fn(|j| core::array::from_fn(|i| w[h][j * MDM + i]))
            })
        };
        let kern = [Kern::dot(1.0), Kern::gauss(1.5)][case % 2];
        let mha = core_flat::mha::<Kern, MDM, MH, MDH>(
            [kern; MH],
            arr3(&wq),
            arr3(&wk),
            arr3(&wv),
            arr_o(&wo),
        )
        .unwrap();
        let len = 1 + index(&mut u, 7);
        let x: Vec<[f32; MDM]> = (0..len)
            .map(|_| core::array::from_fn(|_| u() * 3.0))
            .collect();
        let widen_all = |w: &[Vec<f32>]| -> Vec<Vec<f64>> { w.iter().map(|m| widen(m)).collect() };
        let wo64 = widen_all(&wo);
        for causal in [false, true] {
            let xs = widen(x.as_flattened());
            let want = reference::multihead(
                &[kern.reference(); MH],
                &widen_all(&wq),
                &widen_all(&wk),
                &widen_all(&wv),
                &wo64,
                &xs,
                MDM,
                MDH,
                causal,
            );
            // Per-token hull and scale from the heads' projected values v^h_t W_O^h.
            let vproj: Vec<Vec<[f64; MDM]>> = (0..MH)
                .map(|h| {
                    x.iter()
                        .map(|t| {
                            let v: Vec<f64> = (0..MDH)
                                .map(|j| {
                                    (0..MDM)
                                        .map(|i| f64::from(t[i]) * f64::from(wv[h][i * MDH + j]))
                                        .sum()
                                })
                                .collect();
                            core::array::from_fn(|i| {
                                (0..MDH).map(|j| v[j] * wo64[h][j * MDM + i]).sum()
                            })
                        })
                        .collect()
                })
                .collect();
            let mut out = vec![[f32::NAN; MDM]; len + SPARE_ROWS];
            let got = core_flat::forward::<8, _, _, _, _>(&mha, &x, causal, &mut out);
            tally[usize::from(got.is_ok())][fits_f32(&want) as usize] += 1;
            let what = format!("mha case {case} causal {causal} len {len} big {big:e}");
            assert!(
                out[len..].iter().flatten().all(|v| v.is_nan()),
                "{what}: past len"
            );
            match (got, fits_f32(&want)) {
                (Ok(()), Fits::No) => {
                    panic!("{what}: Ok({out:?}), exact {want:?} does not fit f32")
                }
                (Ok(()), _) => {
                    for t in 0..len {
                        let seen = if causal { t + 1 } else { len };
                        for i in 0..MDM {
                            let (mut lo, mut hi, mut scale) = (0.0f64, 0.0f64, 0.0f64);
                            for vh in &vproj {
                                let col = vh[..seen].iter().map(|r| r[i]);
                                lo += col.clone().fold(f64::INFINITY, f64::min);
                                hi += col.fold(f64::NEG_INFINITY, f64::max);
                            }
                            for h in 0..MH {
                                for j in 0..MDH {
                                    let vmax = x[..seen].iter().fold(0.0f64, |m, r| {
                                        m.max(
                                            (0..MDM)
                                                .map(|c| {
                                                    f64::from(r[c]) * f64::from(wv[h][c * MDH + j])
                                                })
                                                .sum::<f64>()
                                                .abs(),
                                        )
                                    });
                                    scale += vmax * f64::from(wo[h][j * MDM + i].abs());
                                }
                            }
                            let y = f64::from(out[t][i]);
                            let slack = 1e-5 * scale;
                            assert!(out[t][i].is_finite(), "{what}: Ok with {:?}", out[t]);
                            assert!(
                                lo - slack <= y && y <= hi + slack,
                                "{what}: [{t}][{i}] = {y:e} outside [{lo:e}, {hi:e}]"
                            );
                            assert!(
                                (y - want[t * MDM + i]).abs() <= slack,
                                "{what}: [{t}][{i}] = {y:e}, exact {:e}",
                                want[t * MDM + i]
                            );
                        }
                    }
                }
                (Err(Error::Overflow), Fits::No | Fits::Undecided) => {}
                (Err(e), f) => panic!("{what}: Err({e:?}), exact {want:?} ({f:?})"),
            }
            if !causal && fits_f32(&want) != Fits::Undecided {
                let rev: Vec<[f32; MDM]> = x.iter().rev().copied().collect();
                let mut out2 = vec![[0.0f32; MDM]; len];
                assert_eq!(
                    core_flat::forward::<8, _, _, _, _>(&mha, &rev, false, &mut out2),
                    got,
                    "{what}: reversed tokens"
                );
            }
        }
    }
    eprintln!("multihead verdicts [Err, Ok] x [fits, does not fit, band]: {tally:?}");
    assert!(
        tally[1][0] > 0 && tally[0][1] > 0,
        "the sweep must see both Ok and Overflow"
    );
}
