//! Integration tests: they drive the real `dataflow` binary, as a user would.
//! One test binary (with a module per area) keeps link times down.

mod check;
mod checkpoints;
mod harness;
mod run;
mod s3;
mod specs;
mod incremental;
