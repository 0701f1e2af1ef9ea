//! Sinks: print, file and blackhole, and [`latency::Timed`], which measures
//! the latency of records reaching any of them.

pub mod blackhole;
pub mod file;
pub mod latency;
pub mod print;
