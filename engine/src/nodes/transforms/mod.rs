//! Transform types: what happens to records on the way.

mod aggregate;
mod ttl;

use schemars::JsonSchema;
use serde::Deserialize;

use super::TransformType;

registry! {
    /// Transforms: what happens to records on the way.
    #[schemars(transform = crate::spec::schema::add_step_common)]
    TransformKind: TransformType {
        map::Map = "map",
        filter::Filter = "filter",
        flat_map::FlatMap = "flat_map",
        key_by::KeyBy = "key_by",
        sum::Sum = "sum",
        min::Min = "min",
        max::Max = "max",
        count::Count = "count",
        reduce::Reduce = "reduce",
        window::Window = "window",
        join::Join = "join",
    }
}
