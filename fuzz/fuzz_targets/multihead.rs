//! `nadaraya::MultiHeadAttention::new` and `forward` with any weights (±3e38 included), tokens
//! and lengths, causal or not, against an `f64` reference that carries the rounding error of
//! every projection through the kernel to the output projection.
//!
//! Invariants: `new` rejects exactly the non-finite weights; `forward`'s documented errors in
//! their order (`Empty`, `CapacityExceeded`, `OutputTooSmall`, `NonFinite` for a token) and
//! nothing written on any error; `Ok` means every output finite and within the bound of the `f64`
//! reference; a projection of the input may fail (`NonFinite`, or `Overflow`) only where its sum
//! may overflow `f32` on the way; `ScoreOverflow` only where a score may overflow (and always where
//! it must); `Overflow` only where a head's exact weighted average or the exact output
//! `Σ_h o_h W_O^h` reaches `f32::MAX` (heads whose contributions are `6e38` and `-6e38` sum to a
//! representable result and must give it); without the causal mask, reversed tokens give the
//! reversed outputs with the same verdict.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nadaraya::{
    Error, Gaussian, Kernel, Mask, MhaScratch, MhaWeights, MultiHeadAttention, SoftmaxDot,
};
use nadaraya_fuzz::{
    AnyKernel, EPS, F, Flags, Inexact, KernelSpec, NEAR_MAX, Param, RefKernel, TINY, build_kernel,
    ref_row_approx,
};

#[derive(Debug, Arbitrary)]
struct Input {
    shape: u8,
    gauss: bool,
    params: [Param; 3],
    causal: bool,
    /// Tokens (may exceed the capacity `L`).
    n: u8,
    /// `out.len() - n`, in `-2..=2`.
    out_skew: i8,
    /// The first weights (`W_Q`, `W_K`, `W_V`, `W_O` in order) as given; the rest generated.
    weights: Vec<F>,
    wseed: u32,
    wscale: F,
    /// The first token coordinates as given; the rest generated.
    tokens: Vec<F>,
    tseed: u32,
    tscale: F,
    toffset: F,
}

fuzz_target!(|input: Input| {
    match input.shape % 3 {
        0 => run::<2, 2, 1, 8>(&input),
        1 => run::<3, 2, 2, 9>(&input),
        // Heads of eight (lanes along the row), past the 64-key tile.
        _ => run::<8, 1, 8, 70>(&input),
    }
});

type Proj<const R: usize, const C: usize, const H: usize> = [[[f32; C]; R]; H];

fn run<const DM: usize, const H: usize, const DH: usize, const L: usize>(input: &Input) {
    let per = DM * DH;
    let w = nadaraya_fuzz::fill(
        &input.weights,
        4 * H * per,
        input.wseed,
        input.wscale.0,
        0.0,
    );
    let take = |i: usize| -> Proj<DM, DH, H> {
        core::array::from_fn(|h| {
            core::array::from_fn(|r| core::array::from_fn(|c| w[(i * H + h) * per + r * DH + c]))
        })
    };
    let (w_q, w_k, w_v) = (take(0), take(1), take(2));
    let w_o: Proj<DH, DM, H> = core::array::from_fn(|h| {
        core::array::from_fn(|r| core::array::from_fn(|c| w[(3 * H + h) * per + r * DM + c]))
    });
    let mut specs = [KernelSpec::Gaussian(Param(1.0)); H];
    for (s, p) in specs.iter_mut().zip(input.params.iter().cycle()) {
        *s = if input.gauss {
            KernelSpec::Gaussian(*p)
        } else {
            KernelSpec::SoftmaxDot(*p)
        };
    }
    let kernels: Vec<AnyKernel> = specs.iter().filter_map(|s| build_kernel(*s)).collect();
    if kernels.len() < H {
        return;
    }
    let refs: [RefKernel; H] = core::array::from_fn(|h| kernels[h].reference());
    let finite = w.iter().all(|v| v.is_finite());
    let layer = Layer {
        w_q,
        w_k,
        w_v,
        w_o,
        refs,
    };
    if input.gauss {
        let ks: [Gaussian; H] = core::array::from_fn(|h| match kernels[h] {
            AnyKernel::Gaussian(g) => g,
            AnyKernel::SoftmaxDot(_) => unreachable!(),
        });
        let w = Box::new(MhaWeights { w_q, w_k, w_v, w_o });
        let m = MultiHeadAttention::new(ks, &w);
        drive::<_, DM, H, DH, L>(m, finite, &layer, input);
    } else {
        let ks: [SoftmaxDot; H] = core::array::from_fn(|h| match kernels[h] {
            AnyKernel::SoftmaxDot(s) => s,
            AnyKernel::Gaussian(_) => unreachable!(),
        });
        let w = Box::new(MhaWeights { w_q, w_k, w_v, w_o });
        let m = MultiHeadAttention::new(ks, &w);
        drive::<_, DM, H, DH, L>(m, finite, &layer, input);
    }
}

struct Layer<const DM: usize, const H: usize, const DH: usize> {
    w_q: Proj<DM, DH, H>,
    w_k: Proj<DM, DH, H>,
    w_v: Proj<DM, DH, H>,
    w_o: Proj<DH, DM, H>,
    refs: [RefKernel; H],
}

const SENTINEL: f32 = 777.25;

fn drive<K: Kernel, const DM: usize, const H: usize, const DH: usize, const L: usize>(
    m: Result<MultiHeadAttention<'_, K, DM, H, DH>, Error>,
    finite: bool,
    layer: &Layer<DM, H, DH>,
    input: &Input,
) {
    let m = match m {
        Ok(m) => {
            assert!(finite, "new accepted a non-finite weight");
            m
        }
        Err(e) => {
            assert!(!finite, "new rejected finite weights: {e:?}");
            assert_eq!(e, Error::NonFinite);
            return;
        }
    };
    let n = usize::from(input.n) % (L + 3);
    let flat = nadaraya_fuzz::fill(
        &input.tokens,
        n * DM,
        input.tseed,
        input.tscale.0,
        input.toffset.0,
    );
    let x: Vec<[f32; DM]> = flat
        .chunks_exact(DM)
        .map(|c| c.try_into().unwrap())
        .collect();
    let o_len = n.saturating_add_signed(isize::from(input.out_skew % 3));
    let mut out = vec![[SENTINEL; DM]; o_len];
    let mask = if input.causal {
        Mask::Causal
    } else {
        Mask::None
    };
    let mut scratch = Box::new(MhaScratch::<L, DM, DH>::new());
    let got = m.forward(&x, mask, &mut scratch, &mut out);
    let untouched = |o: &[[f32; DM]]| o.iter().flatten().all(|v| *v == SENTINEL);
    let want = if n == 0 {
        Some(Error::Empty)
    } else if n > L {
        Some(Error::CapacityExceeded)
    } else if o_len < n {
        Some(Error::OutputTooSmall)
    } else if !flat.iter().all(|v| v.is_finite()) {
        Some(Error::NonFinite)
    } else {
        None
    };
    if let Some(e) = want {
        assert_eq!(got, Err(e), "forward");
        assert!(untouched(&out), "rejected forward wrote");
        return;
    }
    let r = reference(layer, &x, input.causal);
    if r.check(&got, "forward") {
        check_rows(&r, &out, "forward");
        assert!(untouched(&out[n..]), "forward wrote past x.len()");
    } else {
        assert!(untouched(&out), "failed forward wrote");
    }
    if !input.causal && n > 1 {
        // Self-attention without a mask is equivariant: reversed tokens, reversed outputs.
        let xr: Vec<[f32; DM]> = x.iter().rev().copied().collect();
        let mut o2 = vec![[SENTINEL; DM]; n];
        let again = m.forward(&xr, Mask::None, &mut scratch, &mut o2);
        r.same(&got, &again);
        if r.check(&again, "forward, tokens reversed") {
            o2.reverse();
            check_rows(&r, &o2, "forward, tokens reversed");
        }
    }
}

/// The reference verdicts and outputs of one forward pass.
struct RefForward {
    /// A projection of the input may overflow `f32` on the way: it may fail.
    proj_risky: bool,
    /// A projection is beyond `f32` range whatever the rounding: the call must fail.
    proj_certain: bool,
    /// The heads' kernel verdicts.
    flags: Flags,
    /// `Σ_h o_h W_O^h` per token and coordinate, with its error bound.
    y: Vec<Vec<(f64, f64)>>,
}

impl RefForward {
    /// The output reaches `f32::MAX` within its bound: `Overflow` is legitimate.
    fn y_near_max(&self) -> bool {
        self.y
            .iter()
            .flatten()
            .any(|(v, e)| v.abs() + e >= NEAR_MAX)
    }

    /// Checks a verdict; returns whether it is `Ok`.
    fn check(&self, got: &Result<(), Error>, what: &str) -> bool {
        let overflow_ok = self.flags.near_max || self.y_near_max();
        match got {
            Ok(()) => {
                assert!(
                    !self.proj_certain,
                    "{what}: Ok although a projection is beyond f32 range"
                );
                assert!(
                    !self.flags.certain || overflow_ok,
                    "{what}: Ok although a score is beyond f32 range"
                );
                assert!(
                    !self.flags.no_support_certain || self.proj_risky,
                    "{what}: Ok although every score of a query is -inf in f32"
                );
                true
            }
            Err(Error::NoSupport) => {
                // Every score of a query may be -inf (weight 0, issue 12).
                assert!(
                    self.flags.no_support || self.proj_risky,
                    "{what}: NoSupport although a score has weight ({:?})",
                    self.flags
                );
                false
            }
            Err(Error::NonFinite) => {
                assert!(self.proj_risky, "{what}: NonFinite for modest projections");
                false
            }
            Err(Error::ScoreOverflow) => {
                assert!(
                    self.flags.risky || self.proj_risky,
                    "{what}: ScoreOverflow for modest scores"
                );
                false
            }
            Err(Error::Overflow) => {
                assert!(
                    overflow_ok || self.proj_risky,
                    "{what}: Overflow although every head's average and the output are \
                     representable in f32 ({:?})",
                    self.flags
                );
                false
            }
            Err(e) => panic!("{what}: unexpected {e:?}"),
        }
    }

    /// Two orders of the same tokens: the same verdict outside the undecided band.
    fn same(&self, a: &Result<(), Error>, b: &Result<(), Error>) {
        let undecided = self.flags.near_max || self.y_near_max();
        assert!(
            a == b || undecided,
            "forward: the verdict depends on the token order: {a:?} vs {b:?}"
        );
    }
}

fn check_rows<const DM: usize>(r: &RefForward, out: &[[f32; DM]], what: &str) {
    for (t, (row, want)) in out.iter().zip(&r.y).enumerate() {
        for (i, (&g, &(v, e))) in row.iter().zip(want).enumerate() {
            assert!(
                g.is_finite(),
                "{what}: non-finite output {g} at token {t}, coordinate {i}"
            );
            assert!(
                (f64::from(g) - v).abs() <= e,
                "{what}: output {g:e} at token {t}, coordinate {i} vs f64 reference {v:e} \
                 (tolerance {e:e})"
            );
        }
    }
}

/// `x W` in `f64` with the bound on any `f32` evaluation of it (any order, fused or not), and
/// whether that evaluation may overflow on the way (`Σ|x_i W_ij|` reaches `f32::MAX`).
fn project<const R: usize, const C: usize>(
    x: &[f64],
    dx: &[f64],
    w: &[[f32; C]; R],
) -> (Vec<f64>, Vec<f64>, bool, bool) {
    let (mut v, mut e) = (vec![0.0; C], vec![0.0; C]);
    let (mut risky, mut certain) = (false, false);
    let g = (R as f64 + 2.0) * EPS;
    for j in 0..C {
        let (mut s, mut abs, mut pert) = (0.0f64, 0.0f64, 0.0f64);
        for i in 0..R {
            let wij = f64::from(w[i][j]);
            if wij == 0.0 {
                // Exactly zero whatever the error of x_i (which may be unbounded).
                continue;
            }
            s += x[i] * wij;
            abs += (x[i].abs() + dx[i]) * wij.abs();
            pert += dx[i] * wij.abs();
        }
        v[j] = s;
        e[j] = pert + g * abs + (R as f64 + 2.0) * TINY;
        risky |= abs * (1.0 + g) >= NEAR_MAX;
        certain |= s.abs() - e[j] > f64::from(f32::MAX);
    }
    (v, e, risky, certain)
}

fn reference<const DM: usize, const H: usize, const DH: usize>(
    layer: &Layer<DM, H, DH>,
    x: &[[f32; DM]],
    causal: bool,
) -> RefForward {
    let n = x.len();
    let mut proj_risky = false;
    let mut proj_certain = false;
    let mut flags = Flags::default();
    let mut y = vec![vec![(0.0f64, 0.0f64); DM]; n];
    let mut y_abs = vec![vec![0.0f64; DM]; n];
    let zero = [0.0f64; DM];
    for h in 0..H {
        let (mut q, mut dq, mut k, mut dk, mut v, mut dv) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for xt in x {
            let xt: Vec<f64> = xt.iter().map(|&a| f64::from(a)).collect();
            for (w, a, da) in [
                (&layer.w_q[h], &mut q, &mut dq),
                (&layer.w_k[h], &mut k, &mut dk),
                (&layer.w_v[h], &mut v, &mut dv),
            ] {
                let (p, e, risky, certain) = project(&xt, &zero, w);
                proj_risky |= risky;
                proj_certain |= certain;
                a.extend(p);
                da.extend(e);
            }
        }
        for t in 0..n {
            let m = if causal { t + 1 } else { n };
            let row = ref_row_approx(
                layer.refs[h],
                Inexact::new(&q[t * DH..(t + 1) * DH], &dq[t * DH..(t + 1) * DH]),
                Inexact::new(&k[..m * DH], &dk[..m * DH]),
                Inexact::new(&v[..m * DH], &dv[..m * DH]),
                DH,
            );
            flags |= row.flags;
            let (p, e, _, _) = project(&row.out, &row.tol, &layer.w_o[h]);
            for i in 0..DM {
                y[t][i].0 += p[i];
                y[t][i].1 += e[i];
                let abs: f64 = (0..DH)
                    .map(|j| match f64::from(layer.w_o[h][j][i]).abs() {
                        0.0 => 0.0,
                        w => (row.out[j].abs() + row.tol[j]) * w,
                    })
                    .sum();
                y_abs[t][i] += abs;
            }
        }
    }
    // Adding the heads' contributions rounds once more per head.
    for (yt, at) in y.iter_mut().zip(&y_abs) {
        for (yi, a) in yt.iter_mut().zip(at) {
            yi.1 += (H as f64 + 2.0) * EPS * a;
        }
    }
    RefForward {
        proj_risky,
        proj_certain,
        flags,
        y,
    }
}
