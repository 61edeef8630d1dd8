//! The fuzz harnesses of s390-gaccess (docs/robustness.md). Each harness is a plain
//! function over bytes so that the fuzz targets (`fuzz_targets/`) and the regression
//! tests of the main package (`tests/fuzz_regressions.rs`, which includes this file
//! with `#[path]`) run exactly the same code.
#![forbid(unsafe_code)]

pub mod guest;
pub mod input;
pub mod memop_raw;
pub mod scenario;
pub mod snapshot;
pub mod tlb;
