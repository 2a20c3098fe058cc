//! Sets `cfg(nadaraya_helium)` when building for a Cortex-M55 (`-C target-cpu=cortex-m55`,
//! Helium/MVE): stable Rust exposes no Arm target features to `cfg`, and the fused passes of
//! the core pick their reduction order by it (`simd::FUSED_CHAINS`).
fn main() {
    println!("cargo::rustc-check-cfg=cfg(nadaraya_helium)");
    println!("cargo::rerun-if-changed=build.rs");
    let arm = std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|a| a == "arm");
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let mut cpu = None;
    let mut next_is_codegen = false;
    for f in flags.split('\u{1f}') {
        let opt = if next_is_codegen {
            Some(f)
        } else {
            f.strip_prefix("-C")
        };
        next_is_codegen = f == "-C" || f == "--codegen";
        if let Some(v) = opt.and_then(|o| o.strip_prefix("target-cpu=")) {
            cpu = Some(v.to_owned());
        }
    }
    if arm && cpu.as_deref() == Some("cortex-m55") {
        println!("cargo::rustc-cfg=nadaraya_helium");
    }
}
