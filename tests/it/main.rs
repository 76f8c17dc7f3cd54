//! The integration tests, one binary (one link): each module a part of the product over real
//! HTTP, sharing the harness in `common`. Two binaries stand apart because each owns something
//! the process has only one of: `tests/metrics.rs` the global metrics recorder, `tests/soak.rs`
//! the logger and the panic hook (it counts every panic and error line of the process).

mod common;

mod browser;
mod browsers;
mod emulator;
mod hardening;
mod pages;
mod redis;
mod sign_in;
mod tokens;
mod wiring;
