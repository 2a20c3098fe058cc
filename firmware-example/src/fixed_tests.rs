//! On-target tests of the Q15 path (`nadaraya::fixed`): golden cases from the host's `f64`
//! reference (build.rs), within the documented three Q15 steps, and its error answers. Included
//! by `target-tests` with `#[path]`; each test is a `(name, fn)` of [`TESTS`].

use nadaraya::fixed::{self, Q15Kernel};
use nadaraya::{Dim, Error, Gaussian, SoftmaxDot};

/// A Q15 attention case: one query, `expected` from the `f64` reference of the dequantised
/// inputs.
pub struct FixedCase {
    pub name: &'static str,
    pub gaussian: bool,
    pub param: f32,
    pub q: &'static [i16],
    pub keys: &'static [i16],
    pub values: &'static [i16],
    pub expected: &'static [f32],
}

include!(concat!(env!("OUT_DIR"), "/golden_fixed.rs"));

/// The documented bound of `fixed::attention`: three Q15 steps.
const TOL: f32 = 3.0 / 32768.0;

fn case(c: &FixedCase) -> Result<(), ()> {
    let k = if c.gaussian {
        Gaussian::new(c.param).and_then(|g| Q15Kernel::gaussian(&g))
    } else {
        SoftmaxDot::new(c.param).and_then(|s| Q15Kernel::softmax_dot(&s))
    }
    .map_err(|e| defmt::error!("{}: kernel: {}", c.name, e))?;
    let mut out = [0i16; 4];
    let out = out.get_mut(..c.expected.len()).ok_or(())?;
    fixed::attention(&k, c.q, c.keys, c.values, out)
        .map_err(|e| defmt::error!("{}: {}", c.name, e))?;
    for (i, (o, w)) in out.iter().zip(c.expected).enumerate() {
        let got = f32::from(*o) / 32768.0;
        if (got - w).abs() > TOL {
            defmt::error!(
                "{}[{}]: got {=f32}, expected {=f32} (tol {=f32})",
                c.name,
                i,
                got,
                w,
                TOL
            );
            return Err(());
        }
    }
    Ok(())
}

fn same(what: &str, got: Result<(), Error>, want: Error) -> Result<(), ()> {
    if got == Err(want) {
        Ok(())
    } else {
        defmt::error!("{}: got {}, expected {}", what, got, want);
        Err(())
    }
}

fn errors() -> Result<(), ()> {
    let k = Gaussian::new(0.5)
        .and_then(|g| Q15Kernel::gaussian(&g))
        .map_err(|_| ())?;
    let mut out = [0i16; 2];
    let shape = |what, expected, found| Error::Shape {
        what,
        expected,
        found,
    };
    same(
        "zero width",
        fixed::attention(&k, &[], &[1, 2], &[1, 2], &mut out),
        Error::ZeroDimension,
    )?;
    same(
        "keys not in rows",
        fixed::attention(&k, &[1, 2], &[1, 2, 3], &[1, 2], &mut out),
        shape(Dim::Flat, 2, 3),
    )?;
    same(
        "value rows",
        fixed::attention(&k, &[1, 2], &[1, 2, 3, 4], &[1, 2], &mut out),
        shape(Dim::ValueRows, 2, 1),
    )?;
    same(
        "no keys",
        fixed::attention(&k, &[1, 2], &[], &[], &mut out),
        Error::Empty,
    )?;
    same(
        "bandwidth below the Q15 range",
        Gaussian::new(1e-3).and_then(|g| Q15Kernel::gaussian(&g).map(|_| ())),
        Error::InvalidBandwidth,
    )?;
    same(
        "temperature above the Q15 range",
        SoftmaxDot::new(1e6).and_then(|s| Q15Kernel::softmax_dot(&s).map(|_| ())),
        Error::InvalidTemperature,
    )
}

/// The tests, in order: one per golden case, then the error answers.
pub fn run(mut each: impl FnMut(&str, &dyn Fn() -> Result<(), ()>)) {
    for c in FIXED {
        each(c.name, &|| case(c));
    }
    each("errors", &errors);
}
