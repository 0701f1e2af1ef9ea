//! What a node type's checks are handed: its name and place in the spec,
//! and the planner's ways to report a mistake and compile an expression.

use std::ops::Range;

use super::Compiler;
use crate::diag::Diagnostic;
use crate::expr::{Expr, Var};
use crate::spec::Spec;

/// One node being planned (see [`crate::nodes`]).
pub struct NodeCx<'c, 'a> {
    compiler: &'c mut Compiler<'a>,
    section: &'static str,
    name: &'c str,
    /// The node's own `parallelism`, if it has one, and the one in force.
    own_parallelism: Option<u32>,
    parallelism: u32,
}

impl<'c, 'a> NodeCx<'c, 'a> {
    pub(super) fn new(
        compiler: &'c mut Compiler<'a>,
        section: &'static str,
        name: &'c str,
        own_parallelism: Option<u32>,
        parallelism: u32,
    ) -> Self {
        NodeCx {
            compiler,
            section,
            name,
            own_parallelism,
            parallelism,
        }
    }

    /// The node's name.
    pub fn name(&self) -> &'c str {
        self.name
    }

    /// The whole spec, for a node whose defaults depend on the others.
    pub fn spec(&self) -> &'a Spec {
        &self.compiler.loaded.spec
    }

    /// Where the value of the node's setting `field` is written.
    pub fn span(&self, field: &str) -> Option<Range<usize>> {
        self.compiler.span(&[self.section, self.name, field])
    }

    /// Where the value at `path` inside the node's setting is written
    /// (`["aggregates", "errors"]`).
    pub fn span_in(&self, path: &[&str]) -> Option<Range<usize>> {
        let mut at = vec![self.section, self.name];
        at.extend_from_slice(path);
        self.compiler.span(&at)
    }

    /// Compiles a field or expression (as a `key` is) written at `path`
    /// inside the node's settings; `what` names it in a message.
    pub fn key_at(&mut self, path: &[&str], what: &str, source: &str) -> Option<Expr> {
        let mut at = vec![self.section, self.name];
        at.extend_from_slice(path);
        self.compiler
            .report_expr(&at, what, source, Expr::compile_key(source))
    }

    /// Where the key of the node's setting `field` is written, or the
    /// node's name with `None`.
    pub fn key_span(&self, field: Option<&str>) -> Option<Range<usize>> {
        match field {
            Some(field) => self.compiler.key_span(&[self.section, self.name, field]),
            None => self.compiler.key_span(&[self.section, self.name]),
        }
    }

    pub fn error(&mut self, d: Diagnostic) {
        self.compiler.error(d);
    }

    /// A setting that must be between 1 and `max`.
    pub fn in_range(&mut self, field: &str, value: u64, max: u64) {
        if value != 0 && value <= max {
            return;
        }
        let (name, noun) = (self.name, self.noun());
        let message = if max == u64::MAX {
            format!("`{field}` of {noun} `{name}` must be at least 1")
        } else {
            format!("`{field}` of {noun} `{name}` must be between 1 and {max}, not {value}")
        };
        let d = Diagnostic::error("invalid-value", message).at(self.span(field), "out of range");
        self.error(d);
    }

    /// For a source that only one instance can read (`what` it reads).
    pub fn single_instance(&mut self, what: &str) {
        let (name, parallelism) = (self.name, self.parallelism);
        if parallelism <= 1 {
            return;
        }
        let at = match self.own_parallelism {
            Some(_) => self.span("parallelism"),
            None => self.key_span(None),
        };
        let d = Diagnostic::error(
            "single-instance-source",
            format!("source `{name}` reads from {what}, which only one instance can do, but its parallelism is {parallelism}"),
        )
        .at(at, "must be 1")
        .help(format!("set `parallelism: 1` on `{name}`; the nodes after it can still run in parallel"));
        self.error(d);
    }

    /// Compiles the key written `source` (the node's `key`).
    pub fn key(&mut self, source: &str) -> Option<Expr> {
        self.compiler.key(self.name, source)
    }

    /// Compiles the expression `source` of the node's setting `field`,
    /// over `vars`.
    pub fn expr(&mut self, field: &str, source: &str, vars: &[Var]) -> Option<Expr> {
        self.compiler.expr(self.name, field, source, vars)
    }

    fn noun(&self) -> &'static str {
        match self.section {
            "sources" => "source",
            "transforms" => "transform",
            _ => "sink",
        }
    }
}
