//! Empty: this package holds only tests and benchmarks (see its Cargo.toml).
