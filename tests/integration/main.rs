//! Integration tests: they drive the real `dataflow` binary, as a user would.
//! One test binary (with a module per area) keeps link times down.

mod aggregates;
mod check;
mod checkpoints;
mod cli;
mod compat;
mod damage;
mod disk_full;
mod docs;
mod event_time;
mod fuzz;
mod harness;
mod incremental;
mod joins;
mod kafka;
mod kafka_broker;
mod lifecycle;
mod lifecycle_random;
mod measure;
mod observe;
mod readme;
mod recovery;
mod restart;
mod run;
mod s3;
mod savepoints;
mod schema;
mod secrets;
mod shared;
mod specs;
mod stored;
mod terminal;
mod window_model;
mod windows;
