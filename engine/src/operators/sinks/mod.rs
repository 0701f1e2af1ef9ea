//! Sinks: print, file, blackhole and Kafka, and [`latency::Timed`], which measures
//! the latency of records reaching any of them.

pub mod blackhole;
pub mod file;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod latency;
pub mod print;
