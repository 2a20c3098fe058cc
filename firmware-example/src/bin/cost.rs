//! The deterministic cost table: instructions per call and per sample of `Smoother::predict`,
//! `OnlineSoftmax::merge` and `math::exp_neg`, beside a hand-written loop with `libm::expf` and
//! a naive two-pass softmax, plus the stack high-water mark of each `predict`.
//!
//! Run under QEMU with `-icount shift=7` (`scripts/firmware-cost`): every instruction advances
//! the virtual clock by 128 ns and SysTick, clocked from the core clock (25 MHz on mps2-an386:
//! 3.2 ticks; `machine::SYSTICK_HZ` per machine), by 128 ns × that clock, so `round(ticks / that)`
//! is the exact instruction count. DWT CYCCNT reads 0 under QEMU.
//! A calibration row (1000 `nop`s) checks the conversion on every run.

#![no_std]
#![no_main]

#[path = "../common.rs"]
mod common;
// The workspace's one generator of reproducible inputs (`nadaraya-tests` is std, so its file).
#[path = "../../../tests/src/rng.rs"]
#[allow(dead_code)] // each binary uses part of it
mod rng;

use core::fmt::Write as _;
use core::hint::black_box;
use core::sync::atomic::{Ordering, compiler_fence};

use cortex_m::peripheral::{SYST, syst::SystClkSource};
use heapless::String;
#[path = "../core_flat.rs"]
mod core_flat;
use nadaraya::{Error, Gaussian, Kernel, OnlineSoftmax, Smoother, SoftmaxDot};

/// The QEMU machine (build.rs): its name, SysTick clock and RAM size.
mod machine {
    include!(concat!(env!("OUT_DIR"), "/machine.rs"));
}

/// Bytes painted below the stack pointer for the high-water mark (2 KiB on the microbit's 16).
const PAINT_BYTES: u32 = if machine::RAM_BYTES < 64 * 1024 {
    2 * 1024
} else {
    16 * 1024
};
const PAINT: u32 = 0xDEAD_BEEF;

macro_rules! say {
    ($($t:tt)*) => {{
        let mut l = String::<200>::new();
        let _ = write!(l, $($t)*);
        defmt::println!("{=str}", l.as_str());
    }};
}

// After `say!`, which it uses.
#[path = "../fixed_cost.rs"]
mod fixed_cost;

/// SysTick ticks elapsed while `f` runs.
#[inline(always)]
fn ticks<R>(f: impl FnOnce() -> R) -> u32 {
    compiler_fence(Ordering::SeqCst);
    let a = SYST::get_current();
    compiler_fence(Ordering::SeqCst);
    black_box(f());
    compiler_fence(Ordering::SeqCst);
    let b = SYST::get_current();
    compiler_fence(Ordering::SeqCst);
    // SysTick counts down; 24-bit wrap-around.
    a.wrapping_sub(b) & 0x00FF_FFFF
}

/// The measurement's calibration: its own overhead in ticks and the ticks per instruction.
#[derive(Clone, Copy)]
struct Cal {
    base: u32,
    per_insn: f32,
}

/// Instructions executed by `f`: ticks less the overhead, divided by the ticks per
/// instruction and rounded (exact while the rounding error of a tick stays below half an
/// instruction, that is while `per_insn > 2`).
#[inline(always)]
fn insns<R>(cal: Cal, f: impl FnOnce() -> R) -> u32 {
    let t = ticks(f).saturating_sub(cal.base);
    libm::roundf(t as f32 / cal.per_insn) as u32
}

/// Fills the words from `top - PAINT_BYTES` up to this function's frame with `PAINT`.
#[inline(never)]
fn paint_stack(top: u32) {
    let sp = cortex_m::register::msp::read();
    let mut a = top - PAINT_BYTES;
    while a < sp - 16 {
        // SAFETY: the words below the stack pointer are unused (no interrupt is enabled) and lie
        // inside the RAM of the machine (memory/MACHINE.x, `row` checks the room); the stack
        // sits at its top.
        unsafe { (a as *mut u32).write_volatile(PAINT) };
        a += 4;
    }
}

/// Bytes of stack used below `top` since [`paint_stack`]: the lowest overwritten word.
#[inline(never)]
fn stack_used(top: u32) -> u32 {
    let sp = cortex_m::register::msp::read();
    let mut a = top - PAINT_BYTES;
    // SAFETY: as in `paint_stack`: unused RAM below the stack pointer, read only.
    while a < sp && unsafe { (a as *const u32).read_volatile() } == PAINT {
        a += 4;
    }
    top - a
}

#[inline(never)]
fn predict<K: Kernel, const N: usize, const D: usize>(
    s: &Smoother<K, N, D, 1>,
    q: &[f32; D],
) -> Result<[f32; 1], Error> {
    s.predict(q)
}

/// What a user would write by hand for the Gaussian: one loop, `libm::expf` of each score.
#[inline(never)]
fn hand_gaussian<const N: usize, const D: usize>(
    xs: &[[f32; D]; N],
    ys: &[f32; N],
    q: &[f32; D],
    inv_2h2: f32,
) -> f32 {
    let (mut num, mut den) = (0.0f32, 0.0f32);
    for (x, y) in xs.iter().zip(ys) {
        let mut d2 = 0.0f32;
        for (a, b) in q.iter().zip(x) {
            d2 += (a - b) * (a - b);
        }
        let w = libm::expf(-d2 * inv_2h2);
        num += w * y;
        den += w;
    }
    num / den
}

/// A naive two-pass softmax for softmax-dot: scores and their maximum, then `libm::expf`.
#[inline(never)]
fn hand_softmax<const N: usize, const D: usize>(
    xs: &[[f32; D]; N],
    ys: &[f32; N],
    q: &[f32; D],
    inv_tau: f32,
) -> f32 {
    let mut s = [0.0f32; N];
    let mut m = f32::NEG_INFINITY;
    for (si, x) in s.iter_mut().zip(xs) {
        let mut dot = 0.0f32;
        for (a, b) in q.iter().zip(x) {
            dot += a * b;
        }
        *si = dot * inv_tau;
        m = m.max(*si);
    }
    let (mut num, mut den) = (0.0f32, 0.0f32);
    for (si, y) in s.iter().zip(ys) {
        let w = libm::expf(si - m);
        num += w * y;
        den += w;
    }
    num / den
}

fn row<const N: usize, const D: usize>(cal: Cal, gaussian: bool) -> Result<(), Error> {
    // The inputs, the smoother and the hand-written loop's scores, below the painted stack.
    // Measured on the microbit: 3 words per input number (copies on the way) plus 6 KiB is safe.
    if 3 * N * (D + 1) * 4 + PAINT_BYTES as usize + 4096 > machine::RAM_BYTES as usize {
        let name = if gaussian { "Gaussian" } else { "softmax-dot" };
        say!(
            "| {name} `Smoother::predict` | {D} | {N} | does not fit in the {} KiB of RAM of {} | | | | | | |",
            machine::RAM_BYTES / 1024,
            machine::MACHINE
        );
        return Ok(());
    }
    // Deterministic inputs, uniform in [-1, 1).
    let mut rng = rng::Rng::new((N * 31 + D) as u64);
    let xs: [[f32; D]; N] = core::array::from_fn(|_| core::array::from_fn(|_| rng.next_f32()));
    let ys: [f32; N] = core::array::from_fn(|_| rng.next_f32());
    let q: [f32; D] = core::array::from_fn(|_| rng.next_f32());
    let (ours, stack, hand, twin, name, hand_name) = if gaussian {
        let h = 0.5 * libm::sqrtf(D as f32);
        let mut s: Smoother<Gaussian, N, D, 1> = Smoother::new(Gaussian::new(h)?);
        for (x, y) in xs.iter().zip(&ys) {
            s.push(*x, [*y]).map_err(|r| r.error)?;
        }
        let ours = insns(cal, || predict(black_box(&s), black_box(&q)));
        let top = cortex_m::register::msp::read();
        paint_stack(top);
        black_box(predict(black_box(&s), black_box(&q))?);
        let stack = stack_used(top);
        let inv = 0.5 / (h * h);
        let hand = insns(cal, || {
            hand_gaussian(
                black_box(&xs),
                black_box(&ys),
                black_box(&q),
                black_box(inv),
            )
        });
        let twin = insns(cal, || scalar_twin(black_box(s.kernel()), &xs, &ys, &q));
        (
            ours,
            stack,
            hand,
            twin,
            "Gaussian",
            "plain loop, libm::expf",
        )
    } else {
        let k = SoftmaxDot::for_dim(D)?;
        let mut s: Smoother<SoftmaxDot, N, D, 1> = Smoother::new(k);
        for (x, y) in xs.iter().zip(&ys) {
            s.push(*x, [*y]).map_err(|r| r.error)?;
        }
        let ours = insns(cal, || predict(black_box(&s), black_box(&q)));
        let top = cortex_m::register::msp::read();
        paint_stack(top);
        black_box(predict(black_box(&s), black_box(&q))?);
        let stack = stack_used(top);
        let inv = 1.0 / k.temperature();
        let hand = insns(cal, || {
            hand_softmax(
                black_box(&xs),
                black_box(&ys),
                black_box(&q),
                black_box(inv),
            )
        });
        let twin = insns(cal, || scalar_twin(black_box(&k), &xs, &ys, &q));
        (
            ours,
            stack,
            hand,
            twin,
            "softmax-dot",
            "two-pass softmax, libm::expf",
        )
    };
    say!(
        "| {name} `Smoother::predict` vs {hand_name} | {D} | {N} | {ours} | {:.1} | {stack} | {hand} | {:.1} | {:.2}x | {:.1} |",
        ours as f32 / N as f32,
        hand as f32 / N as f32,
        hand as f32 / ours as f32,
        twin as f32 / N as f32
    );
    Ok(())
}

fn run() -> Result<(), Error> {
    // 128 ns per instruction (-icount shift=7) over the tick (40 ns at 25 MHz: 3.2 ticks).
    let cal = Cal {
        base: ticks(|| ()),
        per_insn: 128e-9 * machine::SYSTICK_HZ as f32,
    };
    let thousand = insns(cal, thousand_nops);
    let five_hundred = insns(cal, five_hundred_nops);
    say!(
        "calibration: 1000 instructions (bl, 998 x nop, bx lr) measured as {thousand}, 500 (bl, 498 x nop, bx lr) as {five_hundred}; \
         the compiler may schedule an instruction or two of the surrounding code into a measured span"
    );
    // The slope must be exact (the clock); the offset of a call is 1 on the M0, M4F and M33,
    // 3 to 4 on the M55.
    if (thousand - five_hundred).abs_diff(500) > 2 || thousand.abs_diff(1000) > 5 {
        defmt::error!("calibration off: is QEMU running with -icount shift=7?");
        return Err(Error::ScoreOverflow);
    }
    say!("");
    say!(
        "| operation | D | N | ours: instr/call | ours: instr/sample | ours: stack bytes | hand-written: instr/call | hand-written: instr/sample | hand / ours | core `scalar::attention`: instr/sample |"
    );
    say!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    row::<16, 1>(cal, true)?;
    row::<64, 1>(cal, true)?;
    row::<256, 1>(cal, true)?;
    row::<16, 8>(cal, true)?;
    row::<64, 8>(cal, true)?;
    row::<256, 8>(cal, true)?;
    row::<16, 8>(cal, false)?;
    row::<64, 8>(cal, false)?;
    row::<256, 8>(cal, false)?;
    row::<16, 16>(cal, false)?;
    row::<64, 16>(cal, false)?;
    row::<256, 16>(cal, false)?;

    let k = Gaussian::new(0.5)?;
    let mut a = OnlineSoftmax::<1>::new();
    let mut b = OnlineSoftmax::<1>::new();
    core_flat::update(&mut a, &k, &[0.1], &[0.0, 0.5, 1.0], &[1.0, 2.0, 3.0])?;
    core_flat::update(&mut b, &k, &[0.1], &[0.2, 0.7], &[4.0, 5.0])?;
    let mut buf: [f32; 256] = core::array::from_fn(|i| -(i as f32) * 0.3);
    let lanes = insns(cal, || exp_in_place(black_box(&mut buf)));
    let mut buf: [f32; 256] = core::array::from_fn(|i| -(i as f32) * 0.3);
    let libm_loop = insns(cal, || exp_libm_loop(black_box(&mut buf)));
    let merge = insns(cal, || merge_states(black_box(&a), black_box(&b)));
    let x = -1.2345f32;
    let ours_exp = insns(cal, || exp_ours(black_box(x)));
    let libm_exp = insns(cal, || exp_libm(black_box(x)));
    say!("");
    say!("| operation | instr/call |");
    say!("|---|---:|");
    say!("| `OnlineSoftmax::<1>::merge` of two states | {merge} |");
    say!("| `nadaraya::math::exp_neg` (x = {x}) | {ours_exp} |");
    say!("| `libm::expf` (x = {x}) | {libm_exp} |");
    say!(
        "| `nadaraya::math::exp_neg_in_place`, 256 values, per value | {:.1} |",
        lanes as f32 / 256.0
    );
    say!(
        "| `libm::expf` loop, 256 values, per value | {:.1} |",
        libm_loop as f32 / 256.0
    );
    let per_weight = weights_cost(cal)?;
    say!(
        "| Gaussian `Smoother::weights`, D = 1, N = 256, per weight (scores, maximum, exp, sum, normalisation) | {per_weight:.1} |"
    );
    selection(cal)?;
    fixed_cost::rows(cal)
}

/// The demo's sensor window: 16 samples of `sin(t)` plus uniform noise of width 0.6, one every
/// 0.1 s, in a `Smoother<Gaussian, 16, 1, 1>`; the cost of one cv_ls re-selection of `h` over it
/// (`Smoother::select_bandwidth` with `Search::default()`) and of one leave-one-out evaluation.
fn selection(cal: Cal) -> Result<(), Error> {
    let mut s: Smoother<Gaussian, 16, 1, 1> = Smoother::new(Gaussian::new(0.25)?);
    let mut noise = rng::Rng::new(7);
    for i in 0..16 {
        let t = i as f32 * 0.1;
        s.push([t], [libm::sinf(t) + 0.6 * noise.range(-0.5, 0.5)])
            .map_err(|r| r.error)?;
    }
    let mut sel = None;
    let mut w = s.clone();
    let select = insns(cal, || sel = Some(select_once(black_box(&mut w))));
    let sel = sel.ok_or(Error::Empty)??;
    let (xs, ys): ([[f32; 1]; 16], [[f32; 1]; 16]) = {
        let mut xs = [[0.0f32]; 16];
        let mut ys = [[0.0f32]; 16];
        for (i, p) in s.iter().enumerate() {
            xs[i] = p.x;
            ys[i] = p.y;
        }
        (xs, ys)
    };
    let k = Gaussian::new(sel.bandwidth)?;
    let mut cv = Ok(0.0);
    let one = insns(cal, || cv = loo_once(black_box(&k), &xs, &ys));
    let cv = cv?;
    say!("");
    say!(
        "| cv_ls over the demo's window (`Smoother<Gaussian, 16, 1, 1>`, 16 samples) | instr/call |"
    );
    say!("|---|---:|");
    say!(
        "| `Smoother::select_bandwidth(&Search::default())`: one re-selection, {} evaluations, h = {:.4} | {select} |",
        sel.evaluations,
        sel.bandwidth
    );
    say!(
        "| `fit::loo_cv` at that h, one evaluation (16 x 15 kernel evaluations, cv = {:.5}) | {one} |",
        cv
    );
    Ok(())
}

#[inline(never)]
fn select_once(s: &mut Smoother<Gaussian, 16, 1, 1>) -> Result<nadaraya::fit::Selection, Error> {
    s.select_bandwidth(&nadaraya::fit::Search::default())
}

#[inline(never)]
fn loo_once(k: &Gaussian, xs: &[[f32; 1]; 16], ys: &[[f32; 1]; 16]) -> Result<f64, Error> {
    nadaraya::fit::loo_cv(
        k,
        nadaraya::Rows::from_arrays(xs),
        nadaraya::Rows::from_arrays(ys),
    )
}

/// Instructions per weight of `Smoother::<Gaussian, 256, 1, 1>::weights` (issue 15 compares
/// it with CMSIS-NN's `arm_softmax_f32`, 14.2 per element on the M55).
fn weights_cost(cal: Cal) -> Result<f32, Error> {
    let mut rng = rng::Rng::new(256 * 31 + 1);
    let mut s: Smoother<Gaussian, 256, 1, 1> = Smoother::new(Gaussian::new(0.5)?);
    for _ in 0..256 {
        let (x, y) = (rng.next_f32(), rng.next_f32());
        s.push([x], [y]).map_err(|r| r.error)?;
    }
    let q = [rng.next_f32()];
    let mut w = [0.0f32; 256];
    let n = insns(cal, || weights_once(black_box(&s), black_box(&q), &mut w));
    black_box(&w);
    Ok(n as f32 / 256.0)
}

#[inline(never)]
fn weights_once(
    s: &Smoother<Gaussian, 256, 1, 1>,
    q: &[f32; 1],
    w: &mut [f32; 256],
) -> Result<(), Error> {
    s.weights(q, w)
}

/// The core's plain scalar twin, `nadaraya::scalar::attention`, on the same samples.
#[inline(never)]
fn scalar_twin<K: Kernel, const N: usize, const D: usize>(
    k: &K,
    xs: &[[f32; D]; N],
    ys: &[f32; N],
    q: &[f32; D],
) -> Result<f32, Error> {
    let mut out = [0.0f32];
    core_flat::scalar::attention(k, q, xs.as_flattened(), ys, D, 1, &mut out)?;
    Ok(out[0])
}

#[inline(never)]
fn exp_in_place(xs: &mut [f32; 256]) {
    nadaraya::math::exp_neg_in_place(xs);
}

#[inline(never)]
fn exp_libm_loop(xs: &mut [f32; 256]) {
    for x in xs.iter_mut() {
        *x = libm::expf(*x);
    }
}

#[inline(never)]
fn merge_states(a: &OnlineSoftmax<1>, b: &OnlineSoftmax<1>) -> OnlineSoftmax<1> {
    a.merge(b)
}

#[inline(never)]
fn exp_ours(x: f32) -> f32 {
    nadaraya::math::exp_neg(x)
}

#[inline(never)]
fn exp_libm(x: f32) -> f32 {
    libm::expf(x)
}

/// A call (`bl`), 998 `nop`s and a return (`bx lr`): 1000 instructions.
#[inline(never)]
fn thousand_nops() {
    // SAFETY: `nop`s only; no register, memory or flag is touched.
    unsafe {
        core::arch::asm!(
            ".rept 998",
            "nop",
            ".endr",
            options(nomem, nostack, preserves_flags)
        )
    };
}

/// A call, 498 `nop`s and a return: 500 instructions, to check the calibration.
#[inline(never)]
fn five_hundred_nops() {
    // SAFETY: as in `thousand_nops`.
    unsafe {
        core::arch::asm!(
            ".rept 498",
            "nop",
            ".endr",
            options(nomem, nostack, preserves_flags)
        )
    };
}

#[cortex_m_rt::entry]
fn main() -> ! {
    let Some(mut p) = cortex_m::Peripherals::take() else {
        common::exit(false)
    };
    p.SYST.set_clock_source(SystClkSource::Core);
    p.SYST.set_reload(0x00FF_FFFF);
    p.SYST.clear_current();
    p.SYST.enable_counter();
    match run() {
        Ok(()) => common::exit(true),
        Err(e) => {
            defmt::error!("cost run failed: {}", e);
            common::exit(false)
        }
    }
}
