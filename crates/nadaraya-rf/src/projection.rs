//! Seeded random projections `ω_1 … ω_m ∈ ℝ^d`: iid Gaussian or block-orthogonal.

use nalgebra::DMatrix;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rand_distr::{ChiSquared, Distribution, StandardNormal};

use crate::Error;
use crate::error::{len2, try_filled};

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
    /// Exactly orthogonal rows, Haar distributed, then rescaled by [`RowNorm`].
    ///
    /// - `m ≥ d`: blocks of `d` rows, each the `Q` of the QR decomposition of a `d×d` standard
    ///   normal matrix (signs fixed by `diag(R) > 0`, so `Q` is Haar distributed); the last block
    ///   keeps its first `m mod d` rows.
    /// - `m < d`: the `m` rows of the QR decomposition of the transpose of an `m×d` standard
    ///   normal matrix (again `diag(R) > 0`): the first `m` rows of a Haar-distributed orthogonal
    ///   matrix, drawn in `O(m·d)` memory, never a `d×d` matrix.
    Orthogonal(RowNorm),
}

/// `m` random rows of dimension `d`, drawn from `(seed, draw)`.
///
/// The generator is ChaCha20 ([`rand_chacha`]) seeded with `seed`, on stream `draw`; normals come
/// from [`rand_distr::StandardNormal`] and chi norms from [`rand_distr::ChiSquared`], in `f64`;
/// the QR decomposition is [`nalgebra`]'s Householder QR in `f64` (`m ≥ d`) or modified
/// Gram–Schmidt with one reorthogonalisation in `f64` (`m < d`). Rows are rounded to `f32` once.
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
    /// # Memory
    /// The rows are `4·m·d` bytes, kept. Drawing them needs, for the time of the call:
    /// - [`Sampling::Iid`]: nothing more;
    /// - [`Sampling::Orthogonal`] with `m < d`: `8·m·d` bytes (the `m` Gaussian rows in `f64`);
    /// - [`Sampling::Orthogonal`] with `m ≥ d`: `16·d² + 8·d` bytes (a `d×d` Gaussian block and
    ///   its `Q` in `f64`, and the Householder coefficients), at most `4·m·d` bytes more than the
    ///   rows.
    ///
    /// Every buffer whose size `m` or `d` sets is allocated fallibly: a request too large for
    /// memory is an error, never an abort.
    ///
    /// # Errors
    /// - [`Error::ZeroDimension`] if `d == 0`;
    /// - [`Error::ZeroFeatures`] if `m == 0`;
    /// - [`Error::TooManyFeatures`] if `m·d` (or `d²` for the orthogonal blocks) overflows
    ///   `usize`, or the rows or the scratch above cannot be allocated.
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
        let mut p = Self {
            d,
            m,
            sampling,
            seed,
            draw,
            rows: try_filled(len2(m, d)?, 0.0)?,
        };
        p.fill()?;
        Ok(p)
    }

    /// Replaces the rows by the next draw of the same seed (`draw + 1`).
    ///
    /// Needs the scratch memory of the orthogonal draw again (see [`new`](Self::new)).
    ///
    /// # Errors
    /// [`Error::TooManyFeatures`] if that scratch cannot be allocated; the projection (rows and
    /// draw number) is then unchanged.
    pub fn redraw(&mut self) -> Result<(), Error> {
        self.draw = self.draw.wrapping_add(1);
        let r = self.fill();
        if r.is_err() {
            self.draw = self.draw.wrapping_sub(1);
        }
        r
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

    /// Draws the rows of the current `(seed, draw)` into `self.rows`.
    ///
    /// Every scratch buffer is allocated before the first row is written, so on error the rows
    /// are unchanged.
    fn fill(&mut self) -> Result<(), Error> {
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
            Sampling::Orthogonal(norm) if m < d => {
                orthogonal_rows(&mut self.rows, d, m, norm, &mut rng)?;
            }
            Sampling::Orthogonal(norm) => {
                orthogonal_blocks(&mut self.rows, d, m, norm, &mut rng)?;
            }
        }
        Ok(())
    }
}

/// The norm of a row: a chi(`d`) draw, or `√d`.
fn row_scale(norm: RowNorm, chi: Option<&ChiSquared<f64>>, d: usize, rng: &mut ChaCha20Rng) -> f64 {
    match (norm, chi) {
        (RowNorm::Chi, Some(c)) => c.sample(rng).sqrt(),
        _ => (d as f64).sqrt(),
    }
}

/// `m ≥ d`: blocks of `d` rows, each the `Q` of nalgebra's Householder QR of a `d×d` standard
/// normal matrix (drawn column by column), then the row norms; the last block keeps its first
/// `m mod d` rows. Scratch: `8·d²` bytes for the Gaussian block (factorised in place) and `8·d²`
/// for `Q`, at most `4·m·d` bytes more than the rows themselves.
fn orthogonal_blocks(
    rows: &mut [f32],
    d: usize,
    m: usize,
    norm: RowNorm,
    rng: &mut ChaCha20Rng,
) -> Result<(), Error> {
    let dd = len2(d, d)?;
    let mut g = try_filled(dd, 0.0f64)?;
    // nalgebra allocates `Q` itself, infallibly: check first that `d²` more floats can be had
    // (the block freed just before is what the allocator hands back for `Q`).
    drop(try_filled(dd, 0.0f64)?);
    // d ≥ 1, so the chi-squared parameter is valid.
    let chi = ChiSquared::new(d as f64).ok();
    for (b, block) in rows.chunks_mut(dd).enumerate() {
        debug_assert!(b * d < m);
        // Column-major fill, the order of `DMatrix::from_fn`: the same stream as ever.
        for x in &mut g {
            *x = StandardNormal.sample(rng);
        }
        let qr = DMatrix::from_vec(d, d, core::mem::take(&mut g)).qr();
        let q = qr.q();
        drop(qr);
        // nalgebra's `R` has a non-negative diagonal (`r()` returns its modulus, `q()` carries
        // the signs), so `Q` is unique and Haar distributed as it is.
        for (i, row) in block.chunks_exact_mut(d).enumerate() {
            let scale = row_scale(norm, chi.as_ref(), d, rng);
            // Row i of Qᵀ is column i of Q.
            for (w, &x) in row.iter_mut().zip(q.column(i).iter()) {
                *w = (scale * x) as f32;
            }
        }
        // `Q`'s storage holds the next block: two `d×d` buffers live at any time.
        g = q.data.into();
    }
    Ok(())
}

/// `m < d`: the `m` orthonormal rows of the QR decomposition `Gᵀ = QR` (positive diagonal of `R`)
/// of an `m×d` standard normal matrix `G` (drawn row by row), in `f64`: each row of `G` loses its
/// components along the rows before it by modified Gram–Schmidt, twice ("twice is enough":
/// orthogonal to rounding), and is normalised. With `R`'s diagonal positive the factorisation is
/// unique, so the rows are the first `m` rows of a Haar-distributed orthogonal matrix; then the
/// row norms. `O(m²·d)` time, scratch `8·m·d` bytes (twice the rows), never a `d×d` matrix.
fn orthogonal_rows(
    rows: &mut [f32],
    d: usize,
    m: usize,
    norm: RowNorm,
    rng: &mut ChaCha20Rng,
) -> Result<(), Error> {
    let mut g = try_filled(len2(m, d)?, 0.0f64)?;
    for x in &mut g {
        *x = StandardNormal.sample(rng);
    }
    for i in 0..m {
        let (done, rest) = g.split_at_mut(i * d);
        let v = &mut rest[..d];
        for _ in 0..2 {
            for u in done.chunks_exact(d) {
                let c: f64 = u.iter().zip(v.iter()).map(|(a, b)| a * b).sum();
                for (x, &a) in v.iter_mut().zip(u) {
                    *x -= c * a;
                }
            }
        }
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        for x in v.iter_mut() {
            *x /= n;
        }
    }
    let chi = ChiSquared::new(d as f64).ok();
    for (row, u) in rows.chunks_exact_mut(d).zip(g.chunks_exact(d)) {
        let scale = row_scale(norm, chi.as_ref(), d, rng);
        for (w, &x) in row.iter_mut().zip(u) {
            *w = (scale * x) as f32;
        }
    }
    Ok(())
}
