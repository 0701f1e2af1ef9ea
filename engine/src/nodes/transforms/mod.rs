//! Transform types: what happens to records on the way.

pub mod aggregate;
pub mod count;
pub mod filter;
pub mod flat_map;
pub mod key_by;
pub mod map;
pub mod reduce;
