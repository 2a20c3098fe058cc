//! Run-time choice of the SIMD instructions on x86-64.
//!
//! `wide`, which the portable kernels are written in, picks its instructions when the crate is
//! compiled: SSE2 without FMA on a default x86-64 build. So on x86-64 the hot kernels (scores,
//! the exponential, the weighted sum of values, the fused leave-one-out sum) also exist compiled
//! for two wider levels, and the first call asks the CPU (CPUID, and XGETBV for the registers
//! the operating system saves) which it can run. The answer is cached; every later call costs
//! one relaxed atomic load. Nothing to configure: a default `cargo build` runs AVX2 + FMA or
//! AVX-512 kernels where the CPU has them.
//!
//! [`force`] overrides the choice (tests and benchmarks run every level on one machine with
//! it); it never selects a level the CPU lacks. On other targets (aarch64 with NEON, wasm,
//! Cortex-M) there is one level, [`Level::Baseline`], and these functions do nothing.
//!
//! Results are reproducible within a level: every promise of bit-identical results (a query
//! alone or in a batch, a ring buffer's two halves or one slice, any order of the same samples)
//! holds at each level, and the unit tests check it at each. Between levels the last bits may
//! differ (FMA rounds once where SSE2 rounds twice, sixteen lanes sum in another order than
//! eight), always within the accuracy each function documents.
//!
//! ```
//! use nadaraya::dispatch::{self, Level};
//! let best = dispatch::detected();
//! assert!(dispatch::active() <= best);
//! // Forcing the portable kernels always succeeds; asking for more than the CPU has gives the best it has.
//! assert_eq!(dispatch::force(Level::Baseline), Level::Baseline);
//! assert_eq!(dispatch::force(Level::Avx512), best);
//! ```

/// A set of instructions the kernels can be compiled for, from the narrowest.
///
/// Levels are ordered: a CPU that runs one runs every lower one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Level {
    /// The kernels as compiled for the build's target features (`wide`'s compile-time choice):
    /// SSE2 on a default x86-64 build, AVX2 + FMA or AVX-512 under `-C target-cpu`, NEON on
    /// aarch64, simd128 on wasm, scalar code on Cortex-M. The only level off x86-64.
    Baseline,
    /// x86-64-v3's vector instructions: AVX2, FMA and F16C, eight `f32` lanes in 16 registers.
    Avx2,
    /// AVX-512F (and everything of [`Level::Avx2`]): sixteen `f32` lanes in 32 registers.
    Avx512,
}

impl Level {
    /// Every level, narrowest first.
    pub const ALL: [Level; 3] = [Level::Baseline, Level::Avx2, Level::Avx512];

    /// The level's name: `"baseline"`, `"avx2"` or `"avx512"` (the values of the
    /// `NADARAYA_LEVEL` environment variable the test and benchmark harnesses read).
    ///
    /// ```
    /// use nadaraya::dispatch::Level;
    /// assert_eq!(Level::from_name(Level::Avx2.name()), Some(Level::Avx2));
    /// ```
    #[inline]
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Level::Baseline => "baseline",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// The level named `name` (see [`Level::name`]; ASCII case is ignored), or `None`.
    ///
    /// ```
    /// use nadaraya::dispatch::Level;
    /// assert_eq!(Level::from_name("AVX512"), Some(Level::Avx512));
    /// assert_eq!(Level::from_name("sse9"), None);
    /// ```
    #[inline]
    #[must_use]
    #[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(name))
    }
}

impl core::fmt::Display for Level {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// The widest level this CPU and operating system run (detected once, then cached).
///
/// ```
/// assert!(nadaraya::dispatch::detected() >= nadaraya::dispatch::Level::Baseline);
/// ```
#[inline]
#[must_use]
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn detected() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        crate::x86::detected()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Level::Baseline
    }
}

/// The level the kernels run at now: [`detected`], unless [`force`] chose another.
///
/// In the crate's own unit tests (a std build) the first call also reads the
/// `NADARAYA_LEVEL` environment variable, so that `NADARAYA_LEVEL=avx2 cargo test -p nadaraya`
/// runs every test at that level; a std program does the same by passing the variable's
/// value through [`Level::from_name`] to [`force`].
///
/// ```
/// assert!(nadaraya::dispatch::active() <= nadaraya::dispatch::detected());
/// ```
#[inline]
#[must_use]
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn active() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        crate::x86::active()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Level::Baseline
    }
}

/// Runs every later call at `level`, or at the widest detected level below it if the CPU lacks
/// `level`; returns the level now in effect. Global (one atomic store), so it is meant for
/// a program's start, tests and benchmarks: calls already running keep the level they began
/// with, each kernel call reads it once.
///
/// ```
/// use nadaraya::dispatch::{self, Level};
/// let was = dispatch::active();
/// assert_eq!(dispatch::force(Level::Baseline), Level::Baseline);
/// assert_eq!(dispatch::active(), Level::Baseline);
/// dispatch::force(was);
/// ```
#[inline]
#[cfg_attr(nadaraya_assert_no_panic, no_panic::no_panic)]
pub fn force(level: Level) -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        crate::x86::force(level)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = level;
        Level::Baseline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_levels_are_ordered() {
        for l in Level::ALL {
            assert_eq!(Level::from_name(l.name()), Some(l));
        }
        assert!(Level::Baseline < Level::Avx2 && Level::Avx2 < Level::Avx512);
        assert_eq!(Level::from_name(""), None);
    }

    /// `NADARAYA_LEVEL` is in effect for the whole test binary (scripts/test-all runs the unit
    /// tests once per level with it): a level the CPU has must be the active one, else the run
    /// would silently test another level.
    #[test]
    fn the_environment_level_is_in_effect() {
        let Ok(name) = std::env::var("NADARAYA_LEVEL") else {
            return;
        };
        let want = Level::from_name(&name).expect("NADARAYA_LEVEL names a level");
        assert!(want <= detected(), "this CPU lacks {want}");
        assert_eq!(active(), want);
    }

    /// The detection agrees with std's (which reads the same CPUID bits and XCR0).
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn detection_agrees_with_std() {
        let v3 = std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c");
        let want = if v3 && std::is_x86_feature_detected!("avx512f") {
            Level::Avx512
        } else if v3 {
            Level::Avx2
        } else {
            Level::Baseline
        };
        assert_eq!(detected(), want);
    }
}
