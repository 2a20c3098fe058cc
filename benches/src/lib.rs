//! Criterion benchmarks of `nadaraya`; the benches live in `benches/`.
