//! The node types: one module each, holding the node's settings as the
//! spec reads them, its checks, what the planner needs to know of it, and
//! how it builds its runtime operator. Adding a type is its module and one
//! line in the registry below; docs/contributing.md walks through it.

use std::fmt::Debug;
use std::path::Path;

use crate::expr::Expr;
use crate::operators::keyed::Fold;
use crate::operators::{OpError, Operator, Sink, SinkError, Source};
use crate::plan::NodeCx;
use crate::runtime::cancel::Cancel;

/// Declares a section's registry: each line a node type's module (its
/// file in the section's folder), the type's struct in it and the `type`
/// users write. From it come the enum the spec reads (a node's `type`
/// picks the variant), the list of type names that messages, the schema
/// and the docs use, and the dispatch to each type's checks.
macro_rules! registry {
    ($(#[$meta:meta])* $kind:ident: $node:ident { $($module:ident::$ty:ident = $name:literal,)* }) => {
        $(pub mod $module;)*

        #[derive(Clone, Debug, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[schemars(tag = "type")]
        $(#[$meta])*
        pub enum $kind {
            $(#[serde(rename = $name)] $ty($module::$ty),)*
        }

        impl $kind {
            /// Every `type` of the section, in the registry's order.
            pub const TYPES: &'static [&'static str] = &[$($name),*];

            /// The node type's own checks and planning.
            pub fn node(&self) -> &dyn $node {
                match self {
                    $($kind::$ty(node) => node,)*
                }
            }

            /// The `type` as written.
            pub fn type_name(&self) -> &'static str {
                match self {
                    $($kind::$ty(_) => $name,)*
                }
            }
        }
    };
}

pub mod sinks;
pub mod sources;
pub mod transforms;

pub use sinks::SinkKind;
pub use sources::SourceKind;
pub use transforms::TransformKind;

/// A source type as the planner sees it.
pub trait SourceType: Debug {
    /// Checks the settings serde cannot (reporting through `cx`), and
    /// gives the planned source. A source with errors is planned all the
    /// same, so that the nodes reading it are checked too; the spec has
    /// errors, so the plan never runs.
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Box<dyn PlannedSource>;
}

/// A transform type as the planner sees it.
pub trait TransformType: Debug {
    /// Checks and compiles the settings; `None` when an expression does
    /// not compile (reported through `cx`), which leaves the node out of
    /// the graph.
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Option<Box<dyn PlannedTransform>>;
}

/// A sink type as the planner sees it.
pub trait SinkType: Debug {
    /// As [`SourceType::plan`].
    fn plan(&self, cx: &mut NodeCx<'_, '_>) -> Box<dyn PlannedSink>;
}

/// Which instance of how many is being built.
#[derive(Clone, Copy, Debug)]
pub struct Instance {
    pub index: u32,
    pub parallelism: u32,
}

/// Why a source's positions cannot be restored at another parallelism.
#[derive(Debug, thiserror::Error)]
#[error("a {node_type} source taken at parallelism {from} cannot be restored at {to}")]
pub struct RescaleRefused {
    pub node_type: &'static str,
    pub from: u32,
    pub to: u32,
}

/// A source, checked, as the plan holds it.
pub trait PlannedSource: Debug + Send + Sync {
    /// Whether a restore can read its records again from the position a
    /// checkpoint recorded: what exactly-once needs of a source.
    fn replayable(&self) -> bool;
    /// Why a checkpoint taken at `from` instances cannot be restored at
    /// `to`, if it cannot.
    fn rescale(&self, from: u32, to: u32) -> Result<(), RescaleRefused> {
        let _ = (from, to);
        Ok(())
    }
    /// Secret values among its settings (a password), masked wherever
    /// the spec is shown.
    fn secrets(&self) -> Vec<&str> {
        Vec::new()
    }
    fn build(&self, at: Instance, cancel: &Cancel) -> Result<Box<dyn Source>, OpError>;
}

/// A transform, its expressions compiled, as the plan holds it.
pub trait PlannedTransform: Debug + Send + Sync {
    /// The key that partitions the node's input, for keyed nodes.
    fn key(&self) -> Option<&Expr> {
        None
    }
    /// The key of the records from its input number `input`, where the
    /// inputs are keyed each by its own (a join's sides); else `key`.
    fn input_key(&self, input: usize) -> Option<&Expr> {
        let _ = input;
        None
    }
    /// The expression of a projection, which a keyed node's shuffle may
    /// move in front of ([`crate::plan`]'s pushdown).
    fn projection(&self) -> Option<&Expr> {
        None
    }
    /// What the node keeps in keyed state, for nodes that keep some: the
    /// aggregate's name and the key as written.
    fn state(&self) -> Option<(&'static str, &str)> {
        None
    }
    /// Whether the node sends its late records on, for another node to
    /// read as `<name>.late`.
    fn late_output(&self) -> bool {
        false
    }
    /// Whether the node goes by event time, so its input must carry it.
    fn event_time(&self) -> bool {
        false
    }
    fn build(&self) -> Step;
}

/// What a transform instance runs.
pub enum Step {
    /// An operator without state.
    Stateless(Box<dyn Operator>),
    /// A fold per key, over the keyed state the runtime gives it, with the
    /// time to live of a key's state in milliseconds (`ttl`), if any.
    Keyed(Fold, Option<i64>),
    /// Windows per key, over the keyed state the runtime gives it.
    Window(crate::operators::window::WindowSpec),
    /// An interval join of two inputs, over the keyed state the runtime gives it.
    Join(crate::operators::join::JoinSpec),
}

/// What a sink promises after failures and restores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Records are dropped; there is nothing to promise.
    Discards,
    /// Records since the last checkpoint may be written again.
    AtLeastOnce,
    /// Output is committed with checkpoints: exactly-once when the sources
    /// are replayable and barriers aligned.
    TwoPhaseCommit,
}

/// A sink, checked, as the plan holds it.
pub trait PlannedSink: Debug + Send + Sync {
    fn delivery(&self) -> Delivery;
    /// The field latency is measured from, if the sink measures it.
    fn latency_field(&self) -> Option<&str>;
    /// The folder whose output is committed with checkpoints, for a sink
    /// that commits: a restore settles it to the checkpoint restored.
    fn committed_folder(&self) -> Option<&Path> {
        None
    }
    /// Secret values among its settings, as [`PlannedSource::secrets`].
    fn secrets(&self) -> Vec<&str> {
        Vec::new()
    }
    /// `transactional`: whether output waits for checkpoints to commit.
    fn build(&self, at: Instance, transactional: bool) -> Result<Box<dyn Sink>, OpError>;
    /// Before a job with checkpoints starts: settles what earlier runs
    /// left of the sink's output for the restore point, as
    /// [`Self::committed_folder`] is for a folder. Says what it did, if
    /// anything.
    fn recover(&self, _at: &SinkRestore<'_>) -> Result<Option<String>, SinkError> {
        Ok(None)
    }
}

/// What a sink's [`PlannedSink::recover`] is told of the start.
pub struct SinkRestore<'a> {
    pub node: &'a str,
    pub parallelism: u32,
    /// The checkpoint restored; none for a fresh start.
    pub from: Option<&'a crate::checkpoint::metadata::Metadata>,
}
