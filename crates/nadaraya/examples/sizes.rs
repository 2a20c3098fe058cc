//! Prints `size_of` of the main types, for the memory table in the crate README.
//!
//! `cargo run -p nadaraya --example sizes --features half` (the firmware prints the same on the Cortex-M4F).

use core::mem::size_of;
use nadaraya::{
    Gaussian, MhaScratch, MhaWeights, MultiHeadAttention, OnlineSoftmax, Smoother, SoftmaxDot,
};

fn main() {
    println!("| type | bytes |");
    println!("| --- | ---: |");
    println!(
        "| `Gaussian`, `SoftmaxDot` | {}, {} |",
        size_of::<Gaussian>(),
        size_of::<SoftmaxDot>()
    );
    println!(
        "| `OnlineSoftmax<1>`, `OnlineSoftmax<8>` | {}, {} |",
        size_of::<OnlineSoftmax<1>>(),
        size_of::<OnlineSoftmax<8>>()
    );
    println!(
        "| `Smoother<Gaussian, 64, 1, 1>` (samples: 512) | {} |",
        size_of::<Smoother<Gaussian, 64, 1, 1>>()
    );
    println!(
        "| `Smoother<Gaussian, 256, 8, 1>` (samples: 9216) | {} |",
        size_of::<Smoother<Gaussian, 256, 8, 1>>()
    );
    #[cfg(feature = "half")]
    println!(
        "| `Smoother<Gaussian, 256, 8, 1, f16>` (samples: 4608; the `half` feature) | {} |",
        size_of::<Smoother<Gaussian, 256, 8, 1, nadaraya::half::f16>>()
    );
    println!(
        "| `Smoother<SoftmaxDot, 64, 16, 16>` (samples: 8192) | {} |",
        size_of::<Smoother<SoftmaxDot, 64, 16, 16>>()
    );
    println!(
        "| `MultiHeadAttention<SoftmaxDot, 16, 2, 8>` (borrows its weights) | {} |",
        size_of::<MultiHeadAttention<SoftmaxDot, 16, 2, 8>>()
    );
    println!(
        "| `MhaWeights<16, 2, 8>` | {} |",
        size_of::<MhaWeights<16, 2, 8>>()
    );
    println!(
        "| `MhaScratch<64, 16, 8>` (`4·L·DH + L·DM` floats) | {} |",
        size_of::<MhaScratch<64, 16, 8>>()
    );
}
