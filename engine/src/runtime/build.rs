//! Turns a plan node into the runnable operator of one of its instances.
//!
//! Nothing here can fail on what `check` validates; what can fail is the
//! outside world: a missing input file, an unwritable folder, the state
//! backend's disk.

use std::path::Path;

use super::instance::Role;
use crate::operators::keyed::{Fold, Keyed};
use crate::operators::sinks::{blackhole::BlackholeSink, file::FileSink, print::PrintSink};
use crate::operators::sources::{
    file::FileSource, generate::GenerateSource, socket::SocketSource, stdin::StdinSource, Cancel,
};
use crate::operators::stateless::{Explode, Filter, Map, PassThrough, Split};
use crate::operators::OpError;
use crate::plan::{FlatMap, Operator, Plan, PlanNode};
use crate::spec::{SinkKind, SourceKind};
use crate::state::memory::MemoryState;
use crate::state::sled::SledStore;
use crate::state::KeyedState;

/// Where keyed operators get their state.
pub enum StateFactory {
    Memory,
    Sled(SledStore),
}

impl StateFactory {
    fn state(&self, namespace: &str) -> Result<Box<dyn KeyedState>, OpError> {
        Ok(match self {
            StateFactory::Memory => Box::<MemoryState>::default(),
            StateFactory::Sled(store) => Box::new(store.state(namespace)?),
        })
    }
}

pub fn role(
    plan: &Plan,
    node: &PlanNode,
    index: u32,
    state: &StateFactory,
    cancel: &Cancel,
) -> Result<Role, OpError> {
    let p = node.parallelism;
    let max_parallelism = plan.job.max_parallelism;
    let keyed = |fold| -> Result<Role, OpError> {
        let key = node
            .op
            .key()
            .cloned()
            .ok_or_else(|| OpError::Fatal("a keyed operator without a key".into()))?;
        Ok(Role::Transform(Box::new(Keyed::new(
            key,
            fold,
            state.state(&node.name)?,
            max_parallelism,
        ))))
    };
    Ok(match &node.op {
        Operator::Source(kind) => Role::Source(match kind {
            SourceKind::File {
                path,
                format,
                follow,
            } => Box::new(FileSource::open(
                path,
                *format,
                *follow,
                index,
                p,
                cancel.clone(),
            )?),
            SourceKind::Generate {
                seed,
                count,
                rate,
                mode,
                words_per_line,
                vocabulary,
            } => Box::new(GenerateSource::new(
                *seed,
                *count,
                *rate,
                *mode,
                *words_per_line,
                *vocabulary,
                index,
                p,
                cancel.clone(),
            )),
            SourceKind::Socket { address, reconnect } => Box::new(SocketSource::new(
                address.clone(),
                *reconnect,
                cancel.clone(),
            )),
            SourceKind::Stdin { format } => Box::new(StdinSource::new(*format)),
        }),
        Operator::Map(e) => Role::Transform(Box::new(Map(e.clone()))),
        Operator::Filter(e) => Role::Transform(Box::new(Filter(e.clone()))),
        Operator::FlatMap(FlatMap::Split(sep)) => Role::Transform(Box::new(Split(sep.clone()))),
        Operator::FlatMap(FlatMap::Expr(e)) => Role::Transform(Box::new(Explode(e.clone()))),
        Operator::KeyBy(_) => Role::Transform(Box::new(PassThrough)),
        Operator::Aggregate { kind, field, .. } => keyed(Fold::Aggregate {
            kind: *kind,
            field: field.clone(),
        })?,
        Operator::Count(_) => keyed(Fold::Count)?,
        Operator::Reduce { expr, .. } => keyed(Fold::Reduce(expr.clone()))?,
        Operator::Sink(kind) => Role::Sink(match kind {
            SinkKind::Print {} => Box::new(PrintSink::new(index, p)),
            SinkKind::File { path, format } => Box::new(
                FileSink::open(Path::new(path), *format, index)
                    .map_err(|e| OpError::Fatal(e.to_string()))?,
            ),
            SinkKind::Blackhole {} => Box::new(BlackholeSink),
        }),
    })
}
