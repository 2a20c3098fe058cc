//! Single-query smoothing: one query against `N` keys of dimension `d` (values of dimension `d`,
//! or 1 when `d = 1`), Gaussian and softmax-dot kernels.
//!
//! Implementations: `ours_simd` (`nadaraya::attention` with one query row), `ours_scalar`
//! (`nadaraya::scalar::attention`), `naive` (a two-pass loop with `f32::exp`, as a user writes
//! it) and `candle` (candle-core CPU matmul + `candle_nn::ops::softmax_last_dim` + matmul, on one
//! thread). Criterion ids: `single_<kernel>_d<d>/<implementation>/<N>`. With f16 storage
//! (softmax-dot, d = 64, issue 14): `ours_f16` (keys and values as `half::f16`, the query and
//! the arithmetic in `f32`) and `candle_f16` (every tensor `DType::F16`).
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use candle_core::{DType, Device, Tensor};
use criterion::{BenchmarkId, Criterion};
use nadaraya::half::f16;
use nadaraya::{Gaussian, SoftmaxDot};
use nadaraya::{Mask, Rows, RowsMut};
use nadaraya_benches::{Rng, bandwidth_for, ensure_single_thread, naive_dot, naive_gaussian};

const NS: [usize; 5] = [64, 256, 1024, 4096, 16384];
const DS: [usize; 3] = [1, 16, 64];

/// Gaussian scores the way a candle user writes them with matmuls:
/// `-(|q|² - 2 q·k + |k|²) / 2h²`, dropping `|q|²` (a constant shift that softmax removes);
/// `|k|²` is computed inside the timed call, as ours computes everything per call.
fn candle_gaussian(
    h: f32,
    q: &Tensor,
    keys: &Tensor,
    values: &Tensor,
) -> candle_core::Result<Tensor> {
    let scale = f64::from(1.0 / (2.0 * h * h));
    let qk = q.matmul(&keys.t()?)?; // 1×N
    let k2 = keys.sqr()?.sum_keepdim(1)?.t()?; // 1×N
    let scores = ((qk * 2.0)? - k2)?.affine(scale, 0.0)?;
    candle_nn::ops::softmax_last_dim(&scores)?.matmul(values)
}

fn candle_dot(d: usize, q: &Tensor, keys: &Tensor, values: &Tensor) -> candle_core::Result<Tensor> {
    let scores = q.matmul(&keys.t()?)?.affine(1.0 / (d as f64).sqrt(), 0.0)?;
    candle_nn::ops::softmax_last_dim(&scores)?.matmul(values)
}

fn bench(c: &mut Criterion) {
    for gaussian in [true, false] {
        for d in DS {
            let dv = if d == 1 { 1 } else { d };
            let kname = if gaussian { "gaussian" } else { "dot" };
            let mut group = c.benchmark_group(format!("single_{kname}_d{d}"));
            let h = bandwidth_for(d);
            let gk = Gaussian::new(h).expect("valid bandwidth");
            let dk = SoftmaxDot::for_dim(d).expect("d > 0");
            for n in NS {
                let mut g = Rng::new((n * 131 + d) as u64);
                let (q, keys, values) = (g.vec(d), g.vec(n * d), g.vec(n * dv));
                let mut out = vec![0.0f32; dv];
                group.bench_with_input(BenchmarkId::new("ours_simd", n), &n, |b, _| {
                    b.iter(|| {
                        if gaussian {
                            nadaraya_benches::core_flat::attention(
                                &gk,
                                black_box(&q),
                                &keys,
                                &values,
                                d,
                                dv,
                                &mut out,
                            )
                        } else {
                            nadaraya_benches::core_flat::attention(
                                &dk,
                                black_box(&q),
                                &keys,
                                &values,
                                d,
                                dv,
                                &mut out,
                            )
                        }
                        .expect("valid shapes");
                        black_box(&out);
                    });
                });
                group.bench_with_input(BenchmarkId::new("ours_scalar", n), &n, |b, _| {
                    b.iter(|| {
                        if gaussian {
                            nadaraya_benches::core_flat::scalar_attention(
                                &gk,
                                black_box(&q),
                                &keys,
                                &values,
                                d,
                                dv,
                                &mut out,
                            )
                        } else {
                            nadaraya_benches::core_flat::scalar_attention(
                                &dk,
                                black_box(&q),
                                &keys,
                                &values,
                                d,
                                dv,
                                &mut out,
                            )
                        }
                        .expect("valid shapes");
                        black_box(&out);
                    });
                });
                group.bench_with_input(BenchmarkId::new("naive", n), &n, |b, _| {
                    b.iter(|| {
                        if gaussian {
                            naive_gaussian(h, black_box(&q), &keys, &values, dv, &mut out);
                        } else {
                            naive_dot(black_box(&q), &keys, &values, dv, &mut out);
                        }
                        black_box(&out);
                    });
                });
                let dev = Device::Cpu;
                let qt = Tensor::from_slice(&q, (1, d), &dev).expect("tensor");
                let kt = Tensor::from_slice(&keys, (n, d), &dev).expect("tensor");
                let vt = Tensor::from_slice(&values, (n, dv), &dev).expect("tensor");
                group.bench_with_input(BenchmarkId::new("candle", n), &n, |b, _| {
                    b.iter(|| {
                        let r = if gaussian {
                            candle_gaussian(h, black_box(&qt), &kt, &vt)
                        } else {
                            candle_dot(d, black_box(&qt), &kt, &vt)
                        };
                        black_box(r.expect("candle"))
                    });
                });
                if d == 64 && !gaussian {
                    // f16 storage: half the bytes of keys and values.
                    let kh: Vec<f16> = keys.iter().map(|&x| f16::from_f32(x)).collect();
                    let vh: Vec<f16> = values.iter().map(|&x| f16::from_f32(x)).collect();
                    let (qr, khr, vhr) = (
                        Rows::new(&q, d).expect("rows"),
                        Rows::new(&kh, d).expect("rows"),
                        Rows::new(&vh, dv).expect("rows"),
                    );
                    group.bench_with_input(BenchmarkId::new("ours_f16", n), &n, |b, _| {
                        b.iter(|| {
                            let o = RowsMut::new(&mut out, dv).expect("rows");
                            nadaraya::attention(&dk, black_box(qr), khr, vhr, Mask::None, o)
                                .expect("valid shapes");
                            black_box(&out);
                        });
                    });
                    let half = |t: &Tensor| t.to_dtype(DType::F16).expect("f16 tensor");
                    let (qh, kth, vth) = (half(&qt), half(&kt), half(&vt));
                    group.bench_with_input(BenchmarkId::new("candle_f16", n), &n, |b, _| {
                        b.iter(|| {
                            black_box(candle_dot(d, black_box(&qh), &kth, &vth).expect("candle"))
                        });
                    });
                    let mut ours16 = vec![0.0f32; dv];
                    let o = RowsMut::new(&mut ours16, dv).expect("rows");
                    nadaraya::attention(&dk, qr, khr, vhr, Mask::None, o).expect("ours f16");
                    let c16: Vec<f32> = candle_dot(d, &qh, &kth, &vth)
                        .and_then(|t| t.to_dtype(DType::F32)?.flatten_all()?.to_vec1())
                        .expect("candle f16 result");
                    let mut ours32 = vec![0.0f32; dv];
                    nadaraya_benches::core_flat::attention(
                        &dk,
                        &q,
                        &keys,
                        &values,
                        d,
                        dv,
                        &mut ours32,
                    )
                    .expect("ours");
                    // candle's f16 path rounds its scores and sums to f16: 1.3e-2 off (of values
                    // in [-1, 1)) was seen at N = 64; ours accumulates in f32.
                    for ((a, b), c) in ours16.iter().zip(&ours32).zip(&c16) {
                        assert!((a - b).abs() < 2e-3 && (a - c).abs() < 5e-2, "{a} {b} {c}");
                    }
                }
                // Same answer from every implementation: a benchmark of wrong code is worthless.
                let mut ours = vec![0.0f32; dv];
                let mut naive = vec![0.0f32; dv];
                let cand = if gaussian {
                    nadaraya_benches::core_flat::attention(
                        &gk, &q, &keys, &values, d, dv, &mut ours,
                    )
                    .expect("ours");
                    naive_gaussian(h, &q, &keys, &values, dv, &mut naive);
                    candle_gaussian(h, &qt, &kt, &vt)
                } else {
                    nadaraya_benches::core_flat::attention(
                        &dk, &q, &keys, &values, d, dv, &mut ours,
                    )
                    .expect("ours");
                    naive_dot(&q, &keys, &values, dv, &mut naive);
                    candle_dot(d, &qt, &kt, &vt)
                };
                let cand: Vec<f32> = cand
                    .and_then(|t| t.flatten_all()?.to_vec1())
                    .expect("candle result");
                for ((a, b), c) in ours.iter().zip(&naive).zip(&cand) {
                    assert!((a - b).abs() < 1e-4 && (a - c).abs() < 1e-4, "{a} {b} {c}");
                }
            }
            group.finish();
        }
    }
}

fn main() {
    ensure_single_thread();
    nadaraya_benches::force_level_from_env();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(800))
        .sample_size(30)
        .configure_from_args();
    bench(&mut c);
    c.final_summary();
}
