//! TEMPORARY stand-ins, with the names and signatures of `/work/notes/fit-api.md`, for the core
//! selectors that the sibling branches fit-cv and fit-ll are writing; removed at their merge.
//! Plain f64 loops and a log grid: correct, slow.
#![allow(missing_docs, clippy::missing_errors_doc)]

use nadaraya::fit::Bandwidth;
use nadaraya::{Error, Gaussian, Kernel, Rows};

#[derive(Clone, Copy, Debug, Default)]
pub struct Search;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Selection {
    pub bandwidth: f32,
    pub cv: f64,
    pub evaluations: u32,
}

pub fn loo_cv<K: Kernel + ?Sized>(kernel: &K, x: Rows, y: Rows) -> Result<f64, Error> {
    let n = x.len();
    let mut sum = 0.0;
    for i in 0..n {
        let xi = x.row(i).ok_or(Error::Empty)?;
        let s: Vec<f64> = (0..n)
            .map(|j| f64::from(kernel.score(xi, x.row(j).unwrap_or(xi))))
            .collect();
        let m = (0..n)
            .filter(|&j| j != i)
            .map(|j| s[j])
            .fold(f64::NEG_INFINITY, f64::max);
        if m == f64::NEG_INFINITY {
            return Err(Error::Empty);
        }
        let (mut w, mut wy) = (0.0, 0.0);
        for j in (0..n).filter(|&j| j != i) {
            let e = (s[j] - m).exp();
            w += e;
            wy += e * f64::from(y.as_slice()[j]);
        }
        sum += (f64::from(y.as_slice()[i]) - wy / w).powi(2);
    }
    Ok(sum / n as f64)
}

pub fn minimize_log_bandwidth(
    mut objective: impl FnMut(f32) -> Result<f64, Error>,
    lo: f32,
    hi: f32,
    _search: &Search,
) -> Result<Selection, Error> {
    let (a, b) = (f64::from(lo).ln(), f64::from(hi).ln());
    let mut best = (f32::NAN, f64::INFINITY);
    let mut evaluations = 0;
    let steps = 80;
    for k in 0..=steps {
        let h = (a + (b - a) * f64::from(k) / f64::from(steps)).exp() as f32;
        evaluations += 1;
        if let Ok(v) = objective(h) {
            if v < best.1 {
                best = (h, v);
            }
        }
    }
    let mut step = (b - a) / f64::from(steps);
    for _ in 0..30 {
        step *= 0.5;
        for s in [-step, step] {
            let h = (f64::from(best.0).ln() + s).exp() as f32;
            evaluations += 1;
            if let Ok(v) = objective(h) {
                if v < best.1 {
                    best = (h, v);
                }
            }
        }
    }
    if !best.1.is_finite() {
        return Err(Error::InvalidBandwidth);
    }
    Ok(Selection {
        bandwidth: best.0,
        cv: best.1,
        evaluations,
    })
}

fn spread(x: Rows) -> f32 {
    let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
    for v in x.as_slice() {
        lo = lo.min(*v);
        hi = hi.max(*v);
    }
    (hi - lo).max(1e-6)
}

pub fn select_bandwidth<K: Bandwidth>(
    x: Rows,
    y: Rows,
    search: &Search,
) -> Result<(K, Selection), Error> {
    let s = spread(x);
    let sel = minimize_log_bandwidth(
        |h| loo_cv(&K::with_bandwidth(h)?, x, y),
        s * 1e-3,
        s * 10.0,
        search,
    )?;
    Ok((K::with_bandwidth(sel.bandwidth)?, sel))
}

pub fn select_bandwidths(x: Rows, y: Rows, h: &mut [f32], search: &Search) -> Result<f64, Error> {
    let d = x.width();
    let (sel, _) = (select_bandwidth::<Gaussian>(x, y, search)?.1, ());
    h.fill(sel.bandwidth);
    let mut best = sel.cv;
    for _ in 0..3 {
        for j in 0..d {
            let s = spread(x);
            let r = minimize_log_bandwidth(
                |hj| {
                    let mut hh = h.to_vec();
                    hh[j] = hj;
                    let xs = crate::fit::scaled(x.as_slice(), &hh);
                    loo_cv(&Gaussian::new(1.0)?, Rows::new(&xs, d)?, y)
                },
                s * 1e-3,
                s * 1e4,
                search,
            )?;
            if r.cv <= best {
                h[j] = r.bandwidth;
                best = r.cv;
            }
        }
    }
    Ok(best)
}
