//! Integration tests: they drive the real `dataflow` binary, as a user would.
//! One test binary (with a module per area) keeps link times down.

mod docs;
mod fuzz;
mod harness;
mod schema;
mod specs;
