//! Integration tests: they drive the real `dataflow` binary, as a user would.
//! One test binary (with a module per area) keeps link times down.

mod check;
mod docs;
mod fuzz;
mod harness;
mod run;
mod schema;
mod specs;
