//! Shared pieces of the nadaraya benchmarks: deterministic inputs, the hand-written loop users
//! would compare us with, the single-thread guard for candle, and the cost model that turns a
//! benchmark into a roofline bound.
//!
//! The benchmarks themselves live in `benches/benches/` (`random_features.rs` compares exact
//! attention with `nadaraya-rf`); the machine's limits are measured by
//! `cargo run --release -p nadaraya-benches --bin roofline`, and `BENCHMARKS.md` is written by
//! `cargo run --release -p nadaraya-benches --bin report`. `benches/run.sh` runs all of it.

pub mod core_flat;

use std::process::Command;

/// Environment variable that candle (and rayon) read for their thread count.
pub const THREADS_VAR: &str = "RAYON_NUM_THREADS";

/// Makes the current benchmark process single-threaded for candle.
///
/// candle's CPU matmul asks `candle_core::utils::get_num_threads()`, which reads
/// `RAYON_NUM_THREADS` (else the number of CPUs), and its softmax runs on rayon's global pool,
/// sized by the same variable. Setting a variable inside a running process is `unsafe` (and
/// this workspace forbids `unsafe`), so when the variable is not `1` this re-runs the current
/// executable with the same arguments and `RAYON_NUM_THREADS=1`, then exits with its status.
/// The nadaraya code under test is single-threaded anyway.
///
/// # Panics
/// If the benchmark executable cannot be re-run (its path is unknown or spawning fails): a
/// benchmark harness has no caller to hand an error to, and timing candle on every core would
/// silently break the one-thread comparison.
pub fn ensure_single_thread() {
    if std::env::var(THREADS_VAR).as_deref() == Ok("1") {
        return;
    }
    let exe = std::env::current_exe().expect("path of the benchmark executable");
    let status = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(THREADS_VAR, "1")
        .status()
        .expect("re-running the benchmark with RAYON_NUM_THREADS=1");
    std::process::exit(status.code().unwrap_or(1));
}

/// Environment variable naming the [`nadaraya::dispatch::Level`] to run at (`baseline`, `avx2`,
/// `avx512`); unset, the kernels run at the widest level the CPU has.
pub const LEVEL_VAR: &str = "NADARAYA_LEVEL";

/// Forces the level named by [`LEVEL_VAR`], if set, and returns the level in effect (printed to
/// stderr, so that every benchmark log says which kernels it timed).
///
/// # Panics
/// If the variable names no level, or a level this CPU lacks: a benchmark of the wrong level
/// would be reported as the requested one.
pub fn force_level_from_env() -> nadaraya::dispatch::Level {
    use nadaraya::dispatch::{self, Level};
    if let Ok(name) = std::env::var(LEVEL_VAR) {
        let want = Level::from_name(&name).unwrap_or_else(|| {
            panic!("{LEVEL_VAR}={name} names no level (baseline, avx2, avx512)")
        });
        assert_eq!(dispatch::force(want), want, "this CPU lacks {want}");
    }
    let l = dispatch::active();
    eprintln!(
        "nadaraya dispatch level: {l} (detected {})",
        dispatch::detected()
    );
    l
}

/// The workspace's one generator of reproducible inputs (xorshift64, from `nadaraya-tests`):
/// every run and every implementation sees the same values in `[-1, 1)`.
pub use nadaraya_tests::Rng;

/// The Gaussian bandwidth used for dimension `d`: `h = √d / 2`, so that squared distances of
/// uniform `[-1, 1)` points (mean `2d/3`) give scores of order 1 and the weights are neither
/// uniform nor a single spike.
#[must_use]
pub fn bandwidth_for(d: usize) -> f32 {
    (d as f32).sqrt() * 0.5
}

/// Gaussian Nadaraya–Watson smoothing of one query the way a user writes it by hand: scores into
/// a `Vec`, their maximum, then `f32::exp`, the sum and the weighted values in a second pass.
///
/// `keys` is `N×d`, `values` `N×dv`, row-major; `out.len() == dv`.
pub fn naive_gaussian(h: f32, q: &[f32], keys: &[f32], values: &[f32], dv: usize, out: &mut [f32]) {
    let d = q.len();
    let scores: Vec<f32> = keys
        .chunks_exact(d)
        .map(|k| {
            let dist2: f32 = q.iter().zip(k).map(|(a, b)| (a - b) * (a - b)).sum();
            -dist2 / (2.0 * h * h)
        })
        .collect();
    softmax_weighted_sum(&scores, values, dv, out);
}

/// Scaled dot-product attention of one query (`τ = √d`) the way a user writes it by hand; see
/// [`naive_gaussian`].
pub fn naive_dot(q: &[f32], keys: &[f32], values: &[f32], dv: usize, out: &mut [f32]) {
    let d = q.len();
    let tau = (d as f32).sqrt();
    let scores: Vec<f32> = keys
        .chunks_exact(d)
        .map(|k| q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() / tau)
        .collect();
    softmax_weighted_sum(&scores, values, dv, out);
}

fn softmax_weighted_sum(scores: &[f32], values: &[f32], dv: usize, out: &mut [f32]) {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    out.fill(0.0);
    let mut sum = 0.0;
    for (s, v) in scores.iter().zip(values.chunks_exact(dv)) {
        let w = (s - max).exp();
        sum += w;
        for (o, x) in out.iter_mut().zip(v) {
            *o += w * x;
        }
    }
    for o in out.iter_mut() {
        *o /= sum;
    }
}

/// The work of one benchmark, the numerator of each roofline term.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Work {
    /// Floating-point operations (a fused multiply-add counts as 2).
    pub flops: f64,
    /// Bytes that must come from memory at least once (the working set for one call).
    pub bytes: f64,
    /// Exponentials.
    pub exps: f64,
}

impl Work {
    /// One query against `n` keys of dimension `d` with `dv`-dimensional values.
    ///
    /// Scores cost `3d` flops per key for the Gaussian (subtract, multiply-add) and `2d` for the
    /// dot product; the weighted sum `2dv`; plus one exponential per key. Keys and values are
    /// read once: `4n(d + dv)` bytes.
    #[must_use]
    pub fn single_query(gaussian: bool, n: usize, d: usize, dv: usize) -> Self {
        let n = n as f64;
        let per_key = if gaussian { 3 * d } else { 2 * d } + 2 * dv;
        Self {
            flops: n * per_key as f64,
            bytes: 4.0 * n * (d + dv) as f64,
            exps: n,
        }
    }

    /// `l` queries against `l` keys (full, non-causal attention), dimension `d`, values `dv`:
    /// `l²(2d + 2dv)` flops, `l²` exponentials, and the compulsory traffic of `Q`, `K`, `V` and
    /// the output, `4l(2d + 2dv)` bytes.
    #[must_use]
    pub fn batched(l: usize, d: usize, dv: usize) -> Self {
        let l = l as f64;
        Self {
            flops: l * l * (2 * d + 2 * dv) as f64,
            bytes: 4.0 * l * (2 * d + 2 * dv) as f64,
            exps: l * l,
        }
    }
}

/// This machine's measured limits on one core (written by the `roofline` binary).
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Peak `f32` rate in flop/s (fused multiply-add = 2 flops).
    pub flops_per_s: f64,
    /// Vectorised `exp` rate in results/s.
    pub exps_per_s: f64,
    /// Streaming read bandwidth in bytes/s for buffers of the given size in bytes, ascending.
    pub bandwidth: Vec<(f64, f64)>,
}

impl Limits {
    /// Read bandwidth for a working set of `bytes`: the figure measured at the smallest buffer
    /// at least that large (the cache level it fits in), or the largest buffer's.
    #[must_use]
    pub fn bandwidth_for(&self, bytes: f64) -> f64 {
        self.bandwidth
            .iter()
            .find(|(size, _)| *size >= bytes)
            .or(self.bandwidth.last())
            .map_or(f64::NAN, |(_, bw)| *bw)
    }

    /// The roofline bound in seconds: `max(flops / peak, bytes / bandwidth, exps / exp rate)`.
    #[must_use]
    pub fn bound(&self, w: Work) -> f64 {
        let compute = w.flops / self.flops_per_s;
        let memory = w.bytes / self.bandwidth_for(w.bytes);
        let exp = w.exps / self.exps_per_s;
        compute.max(memory).max(exp)
    }

    /// Which term of [`bound`](Self::bound) is largest: `"flops"`, `"bytes"` or `"exp"`.
    #[must_use]
    pub fn limiter(&self, w: Work) -> &'static str {
        let compute = w.flops / self.flops_per_s;
        let memory = w.bytes / self.bandwidth_for(w.bytes);
        let exp = w.exps / self.exps_per_s;
        if memory >= compute && memory >= exp {
            "bytes"
        } else if compute >= exp {
            "flops"
        } else {
            "exp"
        }
    }

    /// The element-wise best of two measurements (for example the default and the native build).
    #[must_use]
    pub fn best(&self, other: &Self) -> Self {
        let bandwidth = self
            .bandwidth
            .iter()
            .map(|&(size, bw)| {
                let o = other.bandwidth_for(size);
                (size, if o.is_nan() { bw } else { bw.max(o) })
            })
            .collect();
        Self {
            flops_per_s: self.flops_per_s.max(other.flops_per_s),
            exps_per_s: self.exps_per_s.max(other.exps_per_s),
            bandwidth,
        }
    }

    /// As JSON: `{"flops_per_s":…, "exps_per_s":…, "bandwidth":[[bytes, bytes_per_s], …]}`.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "flops_per_s": self.flops_per_s,
            "exps_per_s": self.exps_per_s,
            "bandwidth": self.bandwidth.iter().map(|(s, b)| [*s, *b]).collect::<Vec<_>>(),
        })
    }

    /// Parses what [`to_json`](Self::to_json) wrote; `None` if a field is missing or malformed.
    #[must_use]
    pub fn from_json(v: &serde_json::Value) -> Option<Self> {
        let bandwidth = v
            .get("bandwidth")?
            .as_array()?
            .iter()
            .map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?)))
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            flops_per_s: v.get("flops_per_s")?.as_f64()?,
            exps_per_s: v.get("exps_per_s")?.as_f64()?,
            bandwidth,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain f64 Nadaraya–Watson, written independently of the code under test.
    fn reference(gaussian: bool, q: &[f32], keys: &[f32], values: &[f32], dv: usize) -> Vec<f64> {
        let d = q.len();
        let scores: Vec<f64> = keys
            .chunks(d)
            .map(|k| {
                if gaussian {
                    let h = f64::from(bandwidth_for(d));
                    let s: f64 = q
                        .iter()
                        .zip(k)
                        .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                        .sum();
                    -s / (2.0 * h * h)
                } else {
                    let s: f64 = q
                        .iter()
                        .zip(k)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum();
                    s / (d as f64).sqrt()
                }
            })
            .collect();
        let m = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
        let total: f64 = w.iter().sum();
        (0..dv)
            .map(|j| {
                w.iter()
                    .zip(values.chunks(dv))
                    .map(|(wi, v)| wi * f64::from(v[j]))
                    .sum::<f64>()
                    / total
            })
            .collect()
    }

    #[test]
    fn inputs_are_in_range_and_deterministic() {
        let a = Rng::new(7).vec(1000);
        assert_eq!(a, Rng::new(7).vec(1000));
        assert!(a.iter().all(|x| (-1.0..1.0).contains(x)));
        let mean: f32 = a.iter().sum::<f32>() / 1000.0;
        assert!(mean.abs() < 0.1, "mean {mean}");
    }

    #[test]
    fn naive_loops_match_the_f64_reference() {
        for (n, d, dv) in [(1, 1, 1), (37, 1, 1), (300, 16, 16), (129, 64, 64)] {
            let mut g = Rng::new(n as u64);
            let (q, keys, values) = (g.vec(d), g.vec(n * d), g.vec(n * dv));
            let mut out = vec![0.0; dv];
            naive_gaussian(bandwidth_for(d), &q, &keys, &values, dv, &mut out);
            for (o, r) in out.iter().zip(reference(true, &q, &keys, &values, dv)) {
                assert!((f64::from(*o) - r).abs() < 1e-5, "gaussian {o} vs {r}");
            }
            naive_dot(&q, &keys, &values, dv, &mut out);
            for (o, r) in out.iter().zip(reference(false, &q, &keys, &values, dv)) {
                assert!((f64::from(*o) - r).abs() < 1e-5, "dot {o} vs {r}");
            }
        }
    }

    #[test]
    fn roofline_picks_the_largest_term_and_the_fitting_cache_level() {
        let lim = Limits {
            flops_per_s: 1e11,
            exps_per_s: 1e9,
            bandwidth: vec![(32e3, 2e11), (2e6, 1e11), (1e9, 1e10)],
        };
        assert_eq!(lim.bandwidth_for(1e3), 2e11);
        assert_eq!(lim.bandwidth_for(1.5e6), 1e11);
        assert_eq!(lim.bandwidth_for(5e9), 1e10);
        // 4096 keys, d = dv = 64: 2 MiB read at 1e10 B/s (past the 2e6 level) dominates.
        let w = Work::single_query(false, 4096, 64, 64);
        assert_eq!(w.flops, 4096.0 * 256.0);
        assert_eq!(w.bytes, 4.0 * 4096.0 * 128.0);
        assert_eq!(lim.limiter(w), "bytes");
        assert!((lim.bound(w) - w.bytes / 1e10).abs() < 1e-15);
        // d = 1: one exponential per 4 flops and 8 bytes: the exponential dominates.
        let w = Work::single_query(true, 4096, 1, 1);
        assert_eq!(lim.limiter(w), "exp");
        let back = Limits::from_json(&lim.to_json()).expect("round trip");
        assert_eq!(back, lim);
        let better = Limits {
            flops_per_s: 2e11,
            ..lim.clone()
        };
        assert_eq!(lim.best(&better).flops_per_s, 2e11);
    }
}
