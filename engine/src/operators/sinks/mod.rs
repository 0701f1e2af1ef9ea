//! Sinks: print, file and blackhole.

pub mod blackhole;
pub mod file;
pub mod print;
