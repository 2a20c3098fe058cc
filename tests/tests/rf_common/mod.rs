//! What the adversarial suites of `nadaraya-rf` share: the features as the crate uses them, the
//! per-exponent classification of what `f32` can hold, and the reference verdict of one output
//! row against a log-domain `f64` estimator on the same features.

#![allow(dead_code)] // Each suite uses its own part.

use nadaraya_rf::{Error, FavorPlus, Projection, Sampling, Variant};
use nadaraya_tests::reference::{Fits, fits_f32, widen};
use nadaraya_tests::verdict::{RowWant, subnormal_slack};
use nadaraya_tests::{rf, uniform};

/// Features and their rows exactly as the crate uses them (`f32`, scaled by `1/√τ`, negated for
/// the hyperbolic half), widened.
pub struct Feat {
    pub f: FavorPlus,
    pub w: Vec<f64>,
    pub inv_tau: f64,
    /// The coefficient of `|k|²` in a key's exponent: `1/(2τ)` for FAVOR+, `1/τ` for the
    /// Gaussian features (`φ_G = exp(−|x'|²/2)·φ`).
    pub key_sq: f64,
}

pub fn feat(d: usize, m: usize, sampling: Sampling, variant: Variant, tau: f32, seed: u64) -> Feat {
    let p = Projection::new(d, m, sampling, seed).unwrap();
    let f = FavorPlus::new(p, tau, variant).unwrap();
    Feat::of(f)
}

impl Feat {
    pub fn of(f: FavorPlus) -> Self {
        let tau = f64::from(f.temperature());
        let s = f64::from((1.0 / tau.sqrt()) as f32);
        let rows = f.projection().rows();
        let mut w: Vec<f64> = rows
            .iter()
            .map(|&x| f64::from((f64::from(x) * s) as f32))
            .collect();
        if f.variant() == Variant::Hyperbolic {
            let neg: Vec<f64> = w.iter().map(|x| -x).collect();
            w.extend(neg);
        }
        let inv_tau = f64::from((1.0 / tau) as f32);
        Self {
            f,
            w,
            inv_tau,
            key_sq: inv_tau / 2.0,
        }
    }

    pub fn d(&self) -> usize {
        self.f.dim()
    }
}

/// Whether an exponent is finite in `f32` in any summation order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Class {
    Finite,
    Overflow,
    Unsure,
}

impl Class {
    pub fn of(total: f64, abs_total: f64) -> Self {
        let max = f64::from(f32::MAX);
        if total.abs() > max * (1.0 + 1e-3) {
            Self::Overflow
        } else if abs_total <= max * (1.0 - 1e-3) {
            Self::Finite
        } else {
            Self::Unsure
        }
    }

    pub fn worst(self, other: Self) -> Self {
        match (self, other) {
            (Self::Overflow, _) | (_, Self::Overflow) => Self::Overflow,
            (Self::Unsure, _) | (_, Self::Unsure) => Self::Unsure,
            _ => Self::Finite,
        }
    }
}

/// The class, value and magnitude sum of each of a query's exponents `b_i = w_i·q`.
pub fn query_exponents(ft: &Feat, q: &[f32]) -> Vec<(Class, f64, f64)> {
    let q = widen(q);
    ft.w.chunks_exact(q.len())
        .map(|wi| {
            let t: f64 = wi.iter().zip(&q).map(|(w, x)| w * x).sum();
            let a: f64 = wi.iter().zip(&q).map(|(w, x)| (w * x).abs()).sum();
            (Class::of(t, a), t, a)
        })
        .collect()
}

/// The same for a key's exponents `a_i = w_i·k − |k|²/(2τ)`.
pub fn key_exponents(ft: &Feat, k: &[f32]) -> Vec<(Class, f64, f64)> {
    let k = widen(k);
    let sq: f64 = k.iter().map(|x| x * x).sum();
    let half = sq * ft.key_sq;
    let sq_class = Class::of(sq, sq).worst(Class::of(half, half));
    ft.w.chunks_exact(k.len())
        .map(|wi| {
            let t: f64 = wi.iter().zip(&k).map(|(w, x)| w * x).sum::<f64>() - half;
            let a: f64 = wi.iter().zip(&k).map(|(w, x)| (w * x).abs()).sum::<f64>() + half;
            (Class::of(t, a).worst(sq_class), t, a)
        })
        .collect()
}

/// What the output row of query `q` over `keys`/`values` must be.
pub fn want_row(ft: &Feat, q: &[f32], keys: &[f32], values: &[f32], dv: usize) -> RowWant<Error> {
    let d = ft.d();
    let mut w = RowWant::convex(values, dv);
    let b = query_exponents(ft, q);
    let a: Vec<Vec<(Class, f64, f64)>> =
        keys.chunks_exact(d).map(|k| key_exponents(ft, k)).collect();
    let mut class = b.iter().fold(Class::Finite, |c, x| c.worst(x.0));
    for row in &a {
        class = row.iter().fold(class, |c, x| c.worst(x.0));
    }
    // b_i + c_i with c_i = max_j a_ji, as the stabilised query weights form it.
    let (mut worst_b, mut worst_a) = (0.0f64, 0.0f64);
    if class == Class::Finite {
        for (i, bi) in b.iter().enumerate() {
            let (ci, ca) =
                a.iter()
                    .map(|r| (r[i].1, r[i].2))
                    .fold(
                        (f64::NEG_INFINITY, 0.0),
                        |m, x| if x.0 > m.0 { x } else { m },
                    );
            class = class.worst(Class::of(bi.1 + ci, bi.2 + ca));
            worst_b = worst_b.max(bi.2);
            worst_a = worst_a.max(a.iter().fold(0.0f64, |m, r| m.max(r[i].2)));
        }
    }
    match class {
        Class::Overflow => {
            w.must_fail = Some(Error::ScoreOverflow);
            return w;
        }
        Class::Unsure => {
            w.may_fail = Some(Error::ScoreOverflow);
            return w;
        }
        Class::Finite => {}
    }
    let exact = rf::favor_attention_log(
        &ft.w,
        ft.key_sq,
        &widen(q),
        &widen(keys),
        &widen(values),
        d,
        dv,
        false,
    );
    match fits_f32(&exact) {
        Fits::Yes => {}
        Fits::No => {
            w.must_fail = Some(Error::OutputOverflow);
            return w;
        }
        Fits::Undecided => w.may_fail = Some(Error::OutputOverflow),
    }
    let scale = values.iter().fold(0.0f64, |m, v| m.max(f64::from(v.abs())));
    let e = worst_b + worst_a;
    w.tol =
        scale * (1e-5 + 64.0 * f64::from(f32::EPSILON) * e) + subnormal_slack(values.len() / dv);
    w.exact = exact;
    w
}

#[derive(Clone, Debug)]
pub struct Problem {
    pub dv: usize,
    pub q: Vec<f32>,
    pub keys: Vec<f32>,
    pub values: Vec<f32>,
}

impl Problem {
    pub fn finite(&self) -> bool {
        self.q
            .iter()
            .chain(&self.keys)
            .chain(&self.values)
            .all(|v| v.is_finite())
    }

    pub fn permuted(&self, d: usize, perm: &[usize]) -> Self {
        let rows = |xs: &[f32], w: usize| -> Vec<f32> {
            perm.iter()
                .flat_map(|&i| xs[i * w..(i + 1) * w].iter().copied())
                .collect()
        };
        Self {
            dv: self.dv,
            q: self.q.clone(),
            keys: rows(&self.keys, d),
            values: rows(&self.values, self.dv),
        }
    }
}

/// Extra output rows past the used length, filled with NaN: they must be left untouched.
pub const SPARE: usize = 2;

pub fn spare_untouched(what: &str, out: &[f32], used: usize) {
    assert!(
        out[used..].iter().all(|v| v.is_nan()),
        "{what}: wrote past the used rows"
    );
}

/// Hostile values, keys, queries.
pub const HOSTILE: [f32; 12] = [
    0.0,
    -0.0,
    1e-45,
    -1e-40,
    f32::MIN_POSITIVE,
    1.0,
    -0.5,
    3e38,
    -3e38,
    f32::MAX,
    -f32::MAX,
    2.5e38,
];

pub fn index(u: &mut impl FnMut() -> f32, n: usize) -> usize {
    ((((u() + 1.0) * 0.5) * n as f32) as usize).min(n - 1)
}

pub fn problem(
    seed: u64,
    d: usize,
    dv: usize,
    m: usize,
    n: usize,
    key_scale: f32,
    hostile_values: bool,
) -> Problem {
    let mut u = uniform(seed);
    Problem {
        dv,
        q: (0..m * d).map(|_| u() * key_scale).collect(),
        keys: (0..n * d).map(|_| u() * key_scale).collect(),
        values: (0..n * dv)
            .map(|_| {
                if hostile_values {
                    HOSTILE[index(&mut u, HOSTILE.len())]
                } else {
                    u()
                }
            })
            .collect(),
    }
}
