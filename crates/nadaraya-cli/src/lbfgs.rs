//! L-BFGS: the limited-memory quasi-Newton method (Nocedal & Wright, *Numerical Optimization*,
//! 2nd ed., Algorithm 7.4 for the two-loop recursion, 7.5 for the method), with a weak-Wolfe
//! bisection line search, for `nadaraya learn`.

/// The options of [`minimize`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    /// How many correction pairs `(s, y)` are kept.
    pub memory: usize,
    /// The most iterations (accepted steps).
    pub max_iterations: usize,
    /// Stop when an iteration lowers `f` by at most this, relative to `max(|f|, 1)`:
    /// `(f_k − f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) ≤ tolerance`, scipy's `ftol` test (its
    /// default `2.2e-9`, which metric-learn's MLKR keeps).
    pub tolerance: f64,
    /// Stop when the largest gradient entry is at most this (scipy's `gtol`, default `1e-5`).
    pub gradient_tolerance: f64,
    /// The most evaluations one line search makes.
    pub max_line_evaluations: usize,
}

impl Default for Options {
    /// Memory 10, 1000 iterations, `tolerance 2.2e-9`, `gradient_tolerance 1e-5`, 30
    /// evaluations a line search (scipy's L-BFGS-B defaults where it has them).
    fn default() -> Self {
        Self {
            memory: 10,
            max_iterations: 1000,
            tolerance: 2.2e-9,
            gradient_tolerance: 1e-5,
            max_line_evaluations: 30,
        }
    }
}

/// What [`minimize`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Minimum {
    /// The point with the lowest value seen at an accepted step.
    pub x: Vec<f64>,
    /// Its value.
    pub f: f64,
    /// The accepted steps.
    pub iterations: usize,
    /// The evaluations of the objective (value and gradient).
    pub evaluations: usize,
    /// The value at the start, then after each accepted step.
    pub trace: Vec<f64>,
}

/// Minimises `f` from `x0` by L-BFGS: `f(x, g)` returns the value at `x` and writes the gradient
/// into `g`.
///
/// The direction comes from the two-loop recursion over the last [`Options::memory`] pairs,
/// scaled by `γ = sᵀy / yᵀy` of the newest (the first step by `1/|g|`); a pair enters only if
/// `sᵀy > 10⁻¹⁰ |s| |y|`, and a direction that does not descend resets the memory to the
/// gradient. The line search brackets a weak-Wolfe step (Armijo `c₁ = 10⁻⁴`, curvature
/// `c₂ = 0.9`) by doubling and bisection from the unit step; if none is found within
/// [`Options::max_line_evaluations`] the best Armijo point is taken, and if there is none the
/// search stops. A trial point where `f` fails or is not finite counts as too far.
///
/// # Errors
/// The error of `f` at `x0`.
pub fn minimize<E>(
    x0: &[f64],
    mut f: impl FnMut(&[f64], &mut [f64]) -> Result<f64, E>,
    options: &Options,
) -> Result<Minimum, E> {
    let n = x0.len();
    let mut x = x0.to_vec();
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g)?;
    let mut out = Minimum {
        x: x.clone(),
        f: fx,
        iterations: 0,
        evaluations: 1,
        trace: vec![fx],
    };
    let mut pairs: std::collections::VecDeque<(Vec<f64>, Vec<f64>, f64)> =
        std::collections::VecDeque::new();
    let (mut xt, mut gt) = (vec![0.0; n], vec![0.0; n]);
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>();
    while out.iterations < options.max_iterations {
        if g.iter().fold(0.0f64, |m, v| m.max(v.abs())) <= options.gradient_tolerance {
            break;
        }
        // The two-loop recursion: d = −H g.
        let mut q = g.clone();
        let mut alpha = vec![0.0; pairs.len()];
        for (a, (s, y, rho)) in alpha.iter_mut().zip(pairs.iter()).rev() {
            *a = rho * dot(s, &q);
            for (qv, yv) in q.iter_mut().zip(y) {
                *qv -= *a * yv;
            }
        }
        let gamma = match pairs.back() {
            Some((s, y, _)) => dot(s, y) / dot(y, y),
            None => 1.0 / dot(&g, &g).sqrt().max(f64::MIN_POSITIVE),
        };
        for v in &mut q {
            *v *= gamma;
        }
        for (a, (s, y, rho)) in alpha.iter().zip(pairs.iter()) {
            let b = rho * dot(y, &q);
            for (qv, sv) in q.iter_mut().zip(s) {
                *qv += (a - b) * sv;
            }
        }
        let mut d: Vec<f64> = q.iter().map(|v| -v).collect();
        let mut slope = dot(&g, &d);
        if slope.is_nan() || slope >= 0.0 {
            pairs.clear();
            d = g.iter().map(|v| -v / dot(&g, &g).sqrt()).collect();
            slope = dot(&g, &d);
        }
        // Weak-Wolfe bracketing.
        let (mut lo, mut hi, mut t) = (0.0f64, f64::INFINITY, 1.0f64);
        let mut best: Option<(f64, f64, Vec<f64>)> = None;
        let mut accepted = None;
        for _ in 0..options.max_line_evaluations {
            for ((a, b), c) in xt.iter_mut().zip(&x).zip(&d) {
                *a = b + t * c;
            }
            out.evaluations += 1;
            let ft = match f(&xt, &mut gt) {
                Ok(v) if v.is_finite() => v,
                _ => f64::INFINITY,
            };
            if ft > fx + 1e-4 * t * slope {
                hi = t;
            } else {
                if best.as_ref().is_none_or(|b| ft < b.0) {
                    best = Some((ft, t, gt.clone()));
                }
                if dot(&gt, &d) < 0.9 * slope {
                    lo = t;
                } else {
                    accepted = Some((ft, t, gt.clone()));
                    break;
                }
            }
            t = if hi.is_finite() {
                0.5 * (lo + hi)
            } else {
                2.0 * lo.max(t)
            };
        }
        let Some((ft, t, gn)) = accepted.or(best) else {
            break;
        };
        let s: Vec<f64> = d.iter().map(|v| t * v).collect();
        let y: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
        for (a, b) in x.iter_mut().zip(&s) {
            *a += b;
        }
        let sy = dot(&s, &y);
        if sy > 1e-10 * dot(&s, &s).sqrt() * dot(&y, &y).sqrt() {
            if pairs.len() == options.memory.max(1) {
                pairs.pop_front();
            }
            pairs.push_back((s, y, 1.0 / sy));
        }
        let drop = fx - ft;
        g = gn;
        fx = ft;
        out.iterations += 1;
        out.trace.push(fx);
        out.x.clone_from(&x);
        out.f = fx;
        if drop <= options.tolerance * fx.abs().max(out.trace[out.trace.len() - 2].abs()).max(1.0) {
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Rosenbrock function and its gradient, written out.
    fn rosenbrock(x: &[f64], g: &mut [f64]) -> Result<f64, ()> {
        let (a, b) = (x[0], x[1]);
        g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        g[1] = 200.0 * (b - a * a);
        Ok((1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2))
    }

    #[test]
    fn finds_the_rosenbrock_minimum() {
        let o = Options {
            tolerance: 0.0,
            gradient_tolerance: 1e-9,
            ..Options::default()
        };
        let m = minimize(&[-1.2, 1.0], rosenbrock, &o).unwrap();
        assert!(
            (m.x[0] - 1.0).abs() < 1e-6 && (m.x[1] - 1.0).abs() < 1e-6,
            "{m:?}"
        );
        assert!(m.iterations < 100, "{}", m.iterations);
        assert!(m.trace.windows(2).all(|p| p[1] <= p[0]));
    }

    #[test]
    fn a_quadratic_in_few_steps() {
        // f = Σ c_i x_i², c from 1 to 1000 (condition number 1000): gradient descent with exact
        // line searches would need thousands of steps; measured 25 here.
        let c = [1.0, 10.0, 100.0, 1000.0];
        let f = |x: &[f64], g: &mut [f64]| -> Result<f64, ()> {
            let mut s = 0.0;
            for i in 0..4 {
                g[i] = 2.0 * c[i] * x[i];
                s += c[i] * x[i] * x[i];
            }
            Ok(s)
        };
        let o = Options {
            tolerance: 0.0,
            gradient_tolerance: 1e-8,
            ..Options::default()
        };
        let m = minimize(&[1.0, 1.0, 1.0, 1.0], f, &o).unwrap();
        assert!(m.f < 1e-12, "{m:?}");
        assert!(m.iterations <= 40, "{}", m.iterations);
    }

    #[test]
    fn the_first_error_is_returned() {
        let r = minimize(
            &[0.0],
            |_: &[f64], _: &mut [f64]| Err::<f64, _>("no"),
            &Options::default(),
        );
        assert_eq!(r, Err("no"));
    }
}
