//! The workspace's one pseudo-random generator for test, benchmark and firmware inputs.
//!
//! xorshift64 (Marsaglia's 13/7/17 triple) from a SplitMix64-scrambled seed: a few lines of `core`-only code, the same sequence on
//! every machine and target. The tests use it through this crate; the benchmarks likewise; the
//! firmware's build script through this crate (its golden vectors); the firmware's own binaries,
//! which cannot link this `std` crate, compile this very file with `#[path]`.
//!
//! It is for reproducible inputs only: not for anything that must be unpredictable. The random
//! projections of `nadaraya-rf` come from that crate's own seeded ChaCha generator.

/// A xorshift64 generator; [`Rng::new`] maps every seed, 0 too, to a well-mixed valid state.
///
/// # Examples
/// ```
/// use nadaraya_tests::Rng;
/// let mut a = Rng::new(7);
/// let u = a.next_f32();
/// assert!((-1.0..1.0).contains(&u));
/// assert_eq!(Rng::new(7).next_f32(), u);
/// assert!((2.0..3.0).contains(&a.range(2.0, 3.0)));
/// ```
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// The generator for `seed`. The seed is scrambled by one SplitMix64 step first: xorshift
    /// from a small state (`7`) would start with a run of tiny outputs. The lowest bit is then
    /// set, so the state is never 0.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self((z ^ (z >> 31)) | 1)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// The next value uniform in `[0, 1)`: 24 random bits, exact in `f32`.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// The next value uniform in `[-1, 1)`.
    pub fn next_f32(&mut self) -> f32 {
        self.unit() * 2.0 - 1.0
    }

    /// The next value in `[lo, hi)` (`lo + (hi − lo)·u`, rounded in `f32`).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }
}
