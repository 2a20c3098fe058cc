//! `nadaraya generate`: the benchmark data sets of `benches/statsmodels`, regenerated exactly
//! from a name and a seed (ChaCha8 streams, so every platform writes the same file).

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use crate::Error;

/// The data sets, as `nadaraya generate` names them, with what each is for.
pub const CASES: &[(&str, &str)] = &[
    (
        "smooth-200",
        "N=200, D=1: x uniform on [-3, 3), y = sin(x) + 0.3·noise",
    ),
    (
        "multimodal-1000",
        "N=1000, D=1: x in ten tight clusters (x = c + 0.05·noise, c = 0..9), \
         y = sin(x) + 0.1·sin(40x) + 0.3·noise; the CV curve has two minima (h ≈ 0.034 resolves \
         the fast wiggle inside each cluster and is the global one; h ≈ 0.34 smooths it away)",
    ),
    (
        "irrelevant-500",
        "N=500, D=3: x uniform on [-2, 2)³, y = sin(2·x_1) + 0.5·x_2² + 0.3·noise; x_3 is \
         irrelevant",
    ),
    (
        "oblique-400",
        "N=400, D=5: x standard normal in 5-D, y = sin(1.6·u·x) + 0.1·noise with the oblique unit \
         vector u = (1, 2, -1, 0.5, 1.5)/√8.5 (`OBLIQUE`): the metric-learning anchor of \
         benches/metric-learn",
    ),
];

/// The hidden direction of the `oblique-400` data set: `(1, 2, −1, 0.5, 1.5)/√8.5`.
pub const OBLIQUE: [f64; 5] = [
    0.342_997_170_285_018,
    0.685_994_340_570_036,
    -0.342_997_170_285_018,
    0.171_498_585_142_509,
    0.514_495_755_427_527,
];

/// The options of `nadaraya generate`.
#[derive(Clone, Debug, clap::Args)]
pub struct GenerateArgs {
    /// The data set (`--list` names them).
    #[arg(required_unless_present = "list")]
    pub name: Option<String>,
    /// The seed of the random streams.
    #[arg(long, default_value_t = 12)]
    pub seed: u64,
    /// The file to write (standard output if not given).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// List the data sets and exit.
    #[arg(long)]
    pub list: bool,
}

/// The samples of data set `name` from `seed`: `(x row-major, y, D)`.
///
/// # Errors
/// [`Error::Option`] for an unknown name.
pub fn samples(name: &str, seed: u64) -> Result<(Vec<f32>, Vec<f32>, usize), Error> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noise = |rng: &mut ChaCha8Rng| rng.sample::<f64, _>(StandardNormal);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let d = match name {
        "smooth-200" => {
            for _ in 0..200 {
                let xi = rng.random_range(-3.0..3.0f64) as f32;
                let yi = f64::from(xi).sin() + 0.3 * noise(&mut rng);
                x.push(xi);
                y.push(yi as f32);
            }
            1
        }
        "multimodal-1000" => {
            for _ in 0..1000 {
                let c = f64::from(rng.random_range(0..10u8));
                let xi = (c + 0.05 * noise(&mut rng)) as f32;
                let t = f64::from(xi);
                let yi = t.sin() + 0.1 * (40.0 * t).sin() + 0.3 * noise(&mut rng);
                x.push(xi);
                y.push(yi as f32);
            }
            1
        }
        "irrelevant-500" => {
            for _ in 0..500 {
                let r: [f32; 3] = core::array::from_fn(|_| rng.random_range(-2.0..2.0f64) as f32);
                let (a, b) = (f64::from(r[0]), f64::from(r[1]));
                let yi = (2.0 * a).sin() + 0.5 * b * b + 0.3 * noise(&mut rng);
                x.extend_from_slice(&r);
                y.push(yi as f32);
            }
            3
        }
        "oblique-400" => {
            for _ in 0..400 {
                let r: [f64; 5] = core::array::from_fn(|_| noise(&mut rng));
                let t: f64 = r.iter().zip(&OBLIQUE).map(|(a, b)| a * b).sum();
                let yi = (1.6 * t).sin() + 0.1 * noise(&mut rng);
                x.extend(r.iter().map(|&v| v as f32));
                y.push(yi as f32);
            }
            5
        }
        _ => {
            let names: Vec<&str> = CASES.iter().map(|c| c.0).collect();
            return Err(Error::Option(format!(
                "no data set `{name}` (there are {})",
                names.join(", ")
            )));
        }
    };
    Ok((x, y, d))
}

/// The CSV text of samples: a header `x1,…,xD,y`, then one sample a line, numbers in Rust's
/// shortest round-trip form (reading them back gives exactly these `f32`).
#[must_use]
pub fn to_csv(x: &[f32], y: &[f32], d: usize) -> String {
    let mut s: String = (1..=d).map(|j| format!("x{j},")).collect();
    s.push_str("y\n");
    for (row, yi) in x.chunks_exact(d.max(1)).zip(y) {
        for v in row {
            s.push_str(&format!("{v},"));
        }
        s.push_str(&format!("{yi}\n"));
    }
    s
}

/// Runs `nadaraya generate`.
///
/// # Errors
/// [`Error::Option`] for an unknown name; [`Error::Data`] if the file cannot be written.
pub fn run(args: &GenerateArgs) -> Result<(), Error> {
    if args.list {
        for (name, what) in CASES {
            println!("{name}\t{what}");
        }
        return Ok(());
    }
    let name = args.name.as_deref().unwrap_or_default();
    let (x, y, d) = samples(name, args.seed)?;
    let text = to_csv(&x, &y, d);
    crate::write_out(args.out.as_deref(), &text)
}
