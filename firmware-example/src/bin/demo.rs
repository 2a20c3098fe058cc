#![no_std]
#![no_main]

#[path = "../common.rs"]
mod common;

#[cortex_m_rt::entry]
fn main() -> ! {
    defmt::info!("hello {}", nadaraya::math::exp_neg(-1.0));
    common::exit(true)
}
