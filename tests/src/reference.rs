//! Plain `f64` Nadaraya–Watson smoothing.

/// Which kernel: scores in `f64`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RefKernel {
    /// `-|q - x|² / (2h²)`.
    Gaussian {
        /// Bandwidth.
        h: f64,
    },
    /// `q·x / τ`.
    SoftmaxDot {
        /// Temperature.
        tau: f64,
    },
}

impl RefKernel {
    /// The score of one row.
    #[must_use]
    pub fn score(&self, q: &[f64], x: &[f64]) -> f64 {
        match *self {
            Self::Gaussian { h } => {
                let d2: f64 = q.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum();
                -d2 / (2.0 * h * h)
            }
            Self::SoftmaxDot { tau } => q.iter().zip(x).map(|(a, b)| a * b).sum::<f64>() / tau,
        }
    }
}

/// Widens a slice of `f32` to `f64`.
#[must_use]
pub fn widen(xs: &[f32]) -> Vec<f64> {
    xs.iter().map(|&v| f64::from(v)).collect()
}

/// The scores of one query against `keys` (`N×d` row-major).
#[must_use]
pub fn scores(kernel: RefKernel, q: &[f64], keys: &[f64]) -> Vec<f64> {
    keys.chunks_exact(q.len())
        .map(|k| kernel.score(q, k))
        .collect()
}

/// Softmax of `s`, subtracting the maximum first.
#[must_use]
pub fn softmax(s: &[f64]) -> Vec<f64> {
    let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
    let total: f64 = e.iter().sum();
    e.iter().map(|v| v / total).collect()
}

/// The normalised weights of one query against `keys`.
#[must_use]
pub fn weights(kernel: RefKernel, q: &[f64], keys: &[f64]) -> Vec<f64> {
    softmax(&scores(kernel, q, keys))
}

/// `Σ α_i v_i` for one query: `values` is `N×dv` row-major.
#[must_use]
pub fn smooth(kernel: RefKernel, q: &[f64], keys: &[f64], values: &[f64], dv: usize) -> Vec<f64> {
    let w = weights(kernel, q, keys);
    let mut out = vec![0.0; dv];
    for (a, v) in w.iter().zip(values.chunks_exact(dv)) {
        for (o, y) in out.iter_mut().zip(v) {
            *o += a * y;
        }
    }
    out
}

/// Attention of every query row (`M×d`) against `keys`/`values`; `causal` lets row `t` see
/// keys `0..=t` only.
#[must_use]
pub fn attention(
    kernel: RefKernel,
    q: &[f64],
    keys: &[f64],
    values: &[f64],
    d: usize,
    dv: usize,
    causal: bool,
) -> Vec<f64> {
    per_query(q, d, keys.len() / d, causal, |qr, n| {
        smooth(kernel, qr, &keys[..n * d], &values[..n * dv], dv)
    })
}

/// `row(q_t, n_t)` for every query row `q_t` (`d` wide) of `q`, concatenated, where `n_t` is the
/// number of keys row `t` sees: all `n_keys`, or the first `t + 1` if `causal`. The loop over
/// queries of every reference here and in [`rf`](crate::rf).
#[must_use]
pub fn per_query(
    q: &[f64],
    d: usize,
    n_keys: usize,
    causal: bool,
    mut row: impl FnMut(&[f64], usize) -> Vec<f64>,
) -> Vec<f64> {
    let mut out = Vec::with_capacity(q.len());
    for (t, qr) in q.chunks_exact(d).enumerate() {
        out.extend(row(qr, if causal { t + 1 } else { n_keys }));
    }
    out
}

/// The error bound a correct `f32` implementation must meet for one query, per output
/// coordinate: `2e-6` of the values' scale (largest `|v|`), plus what rounding the scores to
/// `f32` must cost. A score `s_i` carries an absolute rounding error of about
/// `c·ε·(|s_i| + Σ|terms|)`, and a weight inherits that as a relative error, so the output can
/// move by up to `scale · ε · 8 · max_i |Σ|terms_i||` (with headroom for the subtraction of the
/// maximum).
#[must_use]
pub fn tolerance(kernel: RefKernel, q: &[f64], keys: &[f64], values: &[f64]) -> f64 {
    let scale = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let d = q.len();
    let worst_terms = keys
        .chunks_exact(d)
        .map(|k| match kernel {
            RefKernel::Gaussian { h } => {
                q.iter().zip(k).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / (2.0 * h * h)
            }
            RefKernel::SoftmaxDot { tau } => {
                q.iter().zip(k).map(|(a, b)| (a * b).abs()).sum::<f64>() / tau
            }
        })
        .fold(0.0f64, f64::max);
    let eps = f64::from(f32::EPSILON);
    scale * (2e-6 + 8.0 * eps * worst_terms * (d as f64).sqrt().max(1.0))
}

/// `Σ softmax(s)_i v_i` from given scores (`values` is `N×dv` row-major): what an online softmax
/// over `(s_i, v_i)` must return, whatever the order, chunking or merge tree.
#[must_use]
pub fn softmax_average(s: &[f64], values: &[f64], dv: usize) -> Vec<f64> {
    let w = softmax(s);
    let mut out = vec![0.0; dv];
    for (a, v) in w.iter().zip(values.chunks_exact(dv)) {
        for (o, y) in out.iter_mut().zip(v) {
            *o += a * y;
        }
    }
    out
}

/// `Σ_h attention_h(x W_Q^h, x W_K^h, x W_V^h) W_O^h` in `f64`: `x` is `L×dm`, `w_q[h]`, `w_k[h]`,
/// `w_v[h]` are `dm×dh` and `w_o[h]` is `dh×dm`, all row-major (row-vector convention `q = x W`).
#[must_use]
#[allow(clippy::too_many_arguments)]
pub fn multihead(
    kernels: &[RefKernel],
    w_q: &[Vec<f64>],
    w_k: &[Vec<f64>],
    w_v: &[Vec<f64>],
    w_o: &[Vec<f64>],
    x: &[f64],
    dm: usize,
    dh: usize,
    causal: bool,
) -> Vec<f64> {
    let project = |w: &[f64], cols: usize| -> Vec<f64> {
        x.chunks_exact(dm)
            .flat_map(|t| {
                (0..cols).map(move |j| (0..t.len()).map(|i| t[i] * w[i * cols + j]).sum::<f64>())
            })
            .collect()
    };
    let mut out = vec![0.0; x.len()];
    for h in 0..kernels.len() {
        let (q, k, v) = (
            project(&w_q[h], dh),
            project(&w_k[h], dh),
            project(&w_v[h], dh),
        );
        let o = attention(kernels[h], &q, &k, &v, dh, dh, causal);
        for (ot, yt) in o.chunks_exact(dh).zip(out.chunks_exact_mut(dm)) {
            for (i, y) in yt.iter_mut().enumerate() {
                *y += (0..dh).map(|j| ot[j] * w_o[h][j * dm + i]).sum::<f64>();
            }
        }
    }
    out
}

/// Whether an exact result fits `f32`, as the overflow rule of issue 11 decides it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fits {
    /// Every component's magnitude is below `f32::MAX·(1 − 1e-5)`: the answer must be `Ok`.
    Yes,
    /// Some component's magnitude exceeds `f32::MAX·(1 + 1e-5)`: the answer must be an overflow
    /// error.
    No,
    /// Within the relative band of `1e-5` around `f32::MAX`: either answer is correct.
    Undecided,
}

/// The relative band around `f32::MAX` where [`fits_f32`] leaves the verdict open.
pub const OVERFLOW_BAND: f64 = 1e-5;

/// Decides whether the exact result `out` (in `f64`) is representable in `f32`: see [`Fits`].
#[must_use]
pub fn fits_f32(out: &[f64]) -> Fits {
    let max = f64::from(f32::MAX);
    // Not `f64::max`: it would skip a NaN.
    let worst = out.iter().fold(0.0f64, |m, v| {
        if v.abs() > m || v.is_nan() {
            v.abs()
        } else {
            m
        }
    });
    if worst.is_nan() || worst > max * (1.0 + OVERFLOW_BAND) {
        Fits::No
    } else if worst >= max * (1.0 - OVERFLOW_BAND) {
        Fits::Undecided
    } else {
        Fits::Yes
    }
}
