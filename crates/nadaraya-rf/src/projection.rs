//! Seeded random projections `ω_1 … ω_m ∈ ℝ^d`: iid Gaussian or block-orthogonal.

use nalgebra::DMatrix;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rand_distr::{ChiSquared, Distribution, StandardNormal};

use crate::Error;

/// How the norms of orthogonal rows are set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowNorm {
    /// Each row is rescaled to a norm drawn from the chi distribution with `d` degrees of freedom,
    /// so every row has the marginal law of an iid Gaussian row (unbiased estimators).
    Chi,
    /// Every row has norm `√d` (the deterministic "regularised" choice of the Performer paper).
    SqrtD,
}

/// How the rows `ω_i` are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sampling {
    /// Independent standard normal entries.
    Iid,
    /// Blocks of `d` exactly orthogonal rows: the `Q` of the QR decomposition of a `d×d`
    /// standard normal matrix (signs fixed by `diag(R)` so `Q` is Haar distributed), rows then
    /// rescaled by [`RowNorm`]. The last block keeps its first `m mod d` rows.
    Orthogonal(RowNorm),
}

/// `m` random rows of dimension `d`, drawn from `(seed, draw)`.
///
/// The generator is ChaCha20 ([`rand_chacha`]) seeded with `seed`, on stream `draw`; normals come
/// from [`rand_distr::StandardNormal`] and chi norms from [`rand_distr::ChiSquared`], in `f64`;
/// the QR decomposition is [`nalgebra`]'s Householder QR in `f64`. Rows are rounded to `f32` once.
/// The same `(d, m, sampling, seed, draw)` gives bit-identical rows on every run (for the pinned
/// versions of those crates). [`redraw`](Self::redraw) moves to the next stream: fresh,
/// independent rows, themselves reproducible.
///
/// # Examples
/// ```
/// use nadaraya_rf::{Projection, RowNorm, Sampling};
/// let p = Projection::new(4, 6, Sampling::Orthogonal(RowNorm::SqrtD), 7)?;
/// let r = p.rows();
/// // The first four rows are one orthogonal block of norm √4 = 2.
/// let dot = |a: usize, b: usize| (0..4).map(|j| r[a * 4 + j] * r[b * 4 + j]).sum::<f32>();
/// assert!((dot(0, 0) - 4.0).abs() < 1e-5 && dot(0, 1).abs() < 1e-5);
/// assert_eq!(p.rows(), Projection::new(4, 6, Sampling::Orthogonal(RowNorm::SqrtD), 7)?.rows());
/// # Ok::<(), nadaraya_rf::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    d: usize,
    m: usize,
    sampling: Sampling,
    seed: u64,
    draw: u64,
    // Row-major m×d.
    rows: Vec<f32>,
}

impl Projection {
    /// Draws `m` rows of dimension `d` (draw number 0 of `seed`).
    ///
    /// # Errors
    /// - [`Error::ZeroDimension`] if `d == 0`;
    /// - [`Error::ZeroFeatures`] if `m == 0`;
    /// - [`Error::TooManyFeatures`] if `m·d` overflows `usize`.
    pub fn new(d: usize, m: usize, sampling: Sampling, seed: u64) -> Result<Self, Error> {
        Self::with_draw(d, m, sampling, seed, 0)
    }

    /// Draws the rows of draw number `draw` of `seed` directly (what `draw` calls of
    /// [`redraw`](Self::redraw) reach).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_draw(
        d: usize,
        m: usize,
        sampling: Sampling,
        seed: u64,
        draw: u64,
    ) -> Result<Self, Error> {
        if d == 0 {
            return Err(Error::ZeroDimension);
        }
        if m == 0 {
            return Err(Error::ZeroFeatures);
        }
        let len = m.checked_mul(d).ok_or(Error::TooManyFeatures)?;
        let mut p = Self {
            d,
            m,
            sampling,
            seed,
            draw,
            rows: vec![0.0; len],
        };
        p.fill();
        Ok(p)
    }

    /// Replaces the rows by the next draw of the same seed (`draw + 1`).
    pub fn redraw(&mut self) {
        self.draw = self.draw.wrapping_add(1);
        self.fill();
    }

    /// The input dimension `d`.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.d
    }

    /// The number of rows `m`.
    #[must_use]
    pub fn count(&self) -> usize {
        self.m
    }

    /// How the rows were drawn.
    #[must_use]
    pub fn sampling(&self) -> Sampling {
        self.sampling
    }

    /// The seed.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The draw number (0 after [`new`](Self::new), one more per [`redraw`](Self::redraw)).
    #[must_use]
    pub fn draw(&self) -> u64 {
        self.draw
    }

    /// The rows, row-major `m×d`.
    #[must_use]
    pub fn rows(&self) -> &[f32] {
        &self.rows
    }

    fn fill(&mut self) {
        let (d, m) = (self.d, self.m);
        let mut rng = ChaCha20Rng::seed_from_u64(self.seed);
        rng.set_stream(self.draw);
        match self.sampling {
            Sampling::Iid => {
                for w in &mut self.rows {
                    let x: f64 = StandardNormal.sample(&mut rng);
                    *w = x as f32;
                }
            }
            Sampling::Orthogonal(norm) => {
                // d ≥ 1, so the chi-squared parameter is valid.
                let chi = ChiSquared::new(d as f64).ok();
                for (b, block) in self.rows.chunks_mut(d * d).enumerate() {
                    debug_assert!(b * d < m);
                    let g = DMatrix::<f64>::from_fn(d, d, |_, _| StandardNormal.sample(&mut rng));
                    let qr = g.qr();
                    let (q, r) = (qr.q(), qr.r());
                    for (i, row) in block.chunks_exact_mut(d).enumerate() {
                        let scale = match (norm, &chi) {
                            (RowNorm::Chi, Some(c)) => c.sample(&mut rng).sqrt(),
                            _ => (d as f64).sqrt(),
                        };
                        // Row i of Qᵀ is column i of Q; multiplying it by sign(R_ii) makes the
                        // factorisation unique and the block Haar distributed.
                        let sign = if r[(i, i)] < 0.0 { -1.0 } else { 1.0 };
                        for (j, w) in row.iter_mut().enumerate() {
                            *w = (sign * scale * q[(j, i)]) as f32;
                        }
                    }
                }
            }
        }
    }
}
