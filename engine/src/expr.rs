//! Expressions in specs (`expr`, `condition`, `key`): CEL, compiled once.
//!
//! An expression is compiled when the spec is checked, never per record.
//! The shapes most pipelines use (a field path such as `this.word`, a
//! literal, or a map or list built from those, like
//! `{"word": this, "count": 1}`) are evaluated natively, without converting
//! the record into CEL values; anything else runs in the `cel` interpreter.

use std::sync::{Arc, LazyLock};

use cel::common::ast::{EntryExpr, Expr as Ast, LiteralValue, MapExpr, StructExpr};
use cel::IdedExpr;

use crate::value::{Str, Value};

/// Why an expression does not compile, with its position inside the
/// expression text (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CompileError {
    pub message: String,
    pub line: usize,
    pub column: usize,
    pub help: Option<String>,
}

/// Why an expression failed on one record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("the record has no field `{field}`")]
    MissingField { field: String },
    #[error("{0}")]
    Cel(String),
    #[error("the expression returned {0}, which a record cannot hold")]
    Unrepresentable(&'static str),
}

/// The longest expression accepted, in bytes. The `cel` parser recurses
/// once per level of nesting, and a chain of a thousand or more operators
/// (`1 + 1 + ...`, `this.a.a...`) can overflow a 2 MiB thread stack inside
/// it (in a debug build), which aborts the process. The limit keeps the
/// nesting below that; real expressions are far shorter.
pub const MAX_EXPRESSION_LEN: usize = 2048;

static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(cel::Env::stdlib()));

/// A compiled expression.
#[derive(Clone, Debug)]
pub struct Expr {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// A field path from a variable: `this`, `this.a.b`, `acc.total`.
    Path {
        var: Var,
        fields: Vec<Arc<str>>,
    },
    Literal(Value),
    Map(Vec<(Arc<str>, Expr)>),
    List(Vec<Expr>),
    Cel(Arc<cel::Program>),
}

/// The variables an expression can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Var {
    This,
    Acc,
}

impl Var {
    fn name(self) -> &'static str {
        match self {
            Var::This => "this",
            Var::Acc => "acc",
        }
    }
}

impl Expr {
    /// Compiles `source`, which may read only the variables in `vars`.
    pub fn compile(source: &str, vars: &[Var]) -> Result<Expr, CompileError> {
        if source.len() > MAX_EXPRESSION_LEN {
            return Err(CompileError {
                message: format!(
                    "the expression is {} bytes long, more than the {MAX_EXPRESSION_LEN} allowed",
                    source.len()
                ),
                line: 1,
                column: 1,
                help: Some("split the computation over several transforms".to_owned()),
            });
        }
        let program = ENV.compile(source).map_err(|errors| {
            let first = errors.errors.first();
            // The cel parser reports 1-based lines and columns.
            let (line, column) = first.map_or((1, 1), |e| {
                (e.pos.0.max(1) as usize, e.pos.1.max(1) as usize)
            });
            CompileError {
                message: first.map_or_else(|| errors.to_string(), |e| e.msg.clone()),
                line,
                column,
                help: None,
            }
        })?;
        let mut free = Vec::new();
        free_variables(program.expression(), &mut Vec::new(), &mut free);
        for (var, id) in free {
            if !vars.iter().any(|v| v.name() == var) {
                let names: Vec<&str> = vars.iter().map(|v| v.name()).collect();
                // The parser records where each node starts, in bytes.
                let (line, column) = program
                    .source_info()
                    .offset_for(id)
                    .and_then(|(start, _)| source.get(..start as usize))
                    .map_or((1, 1), |before| {
                        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
                        (
                            before.matches('\n').count() + 1,
                            before[line_start..].chars().count() + 1,
                        )
                    });
                return Err(CompileError {
                    message: format!("unknown variable `{var}`"),
                    line,
                    column,
                    help: Some(format!(
                        "the record is `this`, so a field is `this.{var}`; variables here: {}",
                        names.join(", ")
                    )),
                });
            }
        }
        Ok(Expr::native(program.expression()).unwrap_or(Expr {
            kind: Kind::Cel(Arc::new(program)),
        }))
    }

    /// A field path (`word`, `user.id`) read from `this` without CEL.
    pub fn field_path(path: &str) -> Option<Expr> {
        is_field_path(path).then(|| Expr {
            kind: Kind::Path {
                var: Var::This,
                fields: path.split('.').map(Arc::from).collect(),
            },
        })
    }

    /// Compiles a `key`: a plain field path, or else an expression over `this`.
    pub fn compile_key(source: &str) -> Result<Expr, CompileError> {
        match Expr::field_path(source) {
            Some(e) if !matches!(source.split('.').next(), Some("this")) => Ok(e),
            _ => Expr::compile(source, &[Var::This]),
        }
    }

    /// Whether the expression runs in the CEL interpreter (for reports).
    pub fn is_interpreted(&self) -> bool {
        match &self.kind {
            Kind::Cel(_) => true,
            Kind::Path { .. } | Kind::Literal(_) => false,
            Kind::Map(entries) => entries.iter().any(|(_, e)| e.is_interpreted()),
            Kind::List(items) => items.iter().any(Expr::is_interpreted),
        }
    }

    /// The expression as a native tree, when it has no operator or call.
    fn native(ast: &IdedExpr) -> Option<Expr> {
        let kind = match &ast.expr {
            Ast::Ident(name) => Kind::Path {
                var: var_named(name)?,
                fields: Vec::new(),
            },
            Ast::Select(select) if !select.test => match Expr::native(&select.operand)?.kind {
                Kind::Path { var, mut fields } => {
                    fields.push(Arc::from(select.field.as_str()));
                    Kind::Path { var, fields }
                }
                _ => return None,
            },
            Ast::Literal(lit) => Kind::Literal(match lit {
                LiteralValue::Boolean(b) => Value::Bool(*b.inner()),
                LiteralValue::Int(n) => Value::Int(*n.inner()),
                LiteralValue::UInt(n) => Value::Int(i64::try_from(*n.inner()).ok()?),
                LiteralValue::Double(x) => Value::Float(*x.inner()),
                LiteralValue::String(s) => Value::from(s.inner()),
                LiteralValue::Null => Value::Null,
                LiteralValue::Bytes(_) => return None,
            }),
            Ast::List(list) if list.optional_indices.is_empty() => Kind::List(
                list.elements
                    .iter()
                    .map(Expr::native)
                    .collect::<Option<_>>()?,
            ),
            Ast::Map(map) => {
                let mut entries = Vec::with_capacity(map.entries.len());
                for entry in &map.entries {
                    let EntryExpr::MapEntry(e) = &entry.expr else {
                        return None;
                    };
                    let Ast::Literal(LiteralValue::String(key)) = &e.key.expr else {
                        return None;
                    };
                    if e.optional
                        || entries
                            .iter()
                            .any(|(k, _): &(Arc<str>, Expr)| **k == *key.inner())
                    {
                        return None;
                    }
                    entries.push((Arc::from(key.inner()), Expr::native(&e.value)?));
                }
                Kind::Map(entries)
            }
            _ => return None,
        };
        Some(Expr { kind })
    }

    /// Evaluates the expression on a record; `acc` is the accumulator of a `reduce`.
    pub fn eval(&self, this: &Value, acc: Option<&Value>) -> Result<Value, EvalError> {
        match &self.kind {
            Kind::Path { var, fields } => {
                let root = match var {
                    Var::This => this,
                    Var::Acc => acc.unwrap_or(&Value::Null),
                };
                let mut v = root;
                for f in fields {
                    v = v.get(f).ok_or_else(|| EvalError::MissingField {
                        field: f.to_string(),
                    })?;
                }
                Ok(v.clone())
            }
            Kind::Literal(v) => Ok(v.clone()),
            Kind::Map(entries) => entries
                .iter()
                .map(|(k, e)| Ok((Arc::clone(k), e.eval(this, acc)?)))
                .collect::<Result<_, _>>()
                .map(Value::Map),
            Kind::List(items) => items
                .iter()
                .map(|e| e.eval(this, acc))
                .collect::<Result<_, _>>()
                .map(Value::List),
            Kind::Cel(program) => {
                let mut ctx = cel::Context::with_env(Arc::clone(&ENV));
                ctx.add_variable_from_value("this", to_cel(this));
                if let Some(acc) = acc {
                    ctx.add_variable_from_value("acc", to_cel(acc));
                }
                let out = program
                    .execute(&ctx)
                    .map_err(|e| EvalError::Cel(e.to_string()))?;
                from_cel(&out)
            }
        }
    }

    /// Evaluates a condition: true keeps the record.
    pub fn test(&self, this: &Value) -> Result<bool, EvalError> {
        match self.eval(this, None)? {
            Value::Bool(b) => Ok(b),
            other => Err(EvalError::Cel(format!(
                "the condition returned {} `{other}`, not a bool",
                other.type_name()
            ))),
        }
    }
}

/// Appends to `out`, in the order they are written and once each, the
/// variables `ast` reads that are not in `bound`, with the id of the node
/// where each is first read. A macro such as `exists(i, i > 3)` binds its
/// iteration variable for its body, so `i` there is not a variable the
/// expression needs from outside.
fn free_variables<'a>(ast: &'a IdedExpr, bound: &mut Vec<&'a str>, out: &mut Vec<(&'a str, u64)>) {
    match &ast.expr {
        // `@`-names are the accumulators macros introduce.
        Ast::Ident(name) => {
            let name = name.as_str();
            if !name.starts_with('@')
                && !bound.contains(&name)
                && !out.iter().any(|(n, _)| *n == name)
            {
                out.push((name, ast.id));
            }
        }
        Ast::Call(call) => {
            if let Some(target) = &call.target {
                free_variables(target, bound, out);
            }
            for arg in &call.args {
                free_variables(arg, bound, out);
            }
        }
        Ast::Comprehension(c) => {
            free_variables(&c.iter_range, bound, out);
            free_variables(&c.accu_init, bound, out);
            let outer = bound.len();
            bound.push(&c.iter_var);
            bound.extend(c.iter_var2.as_deref());
            bound.push(&c.accu_var);
            for part in [&c.loop_cond, &c.loop_step, &c.result] {
                free_variables(part, bound, out);
            }
            bound.truncate(outer);
        }
        Ast::List(list) => {
            for item in &list.elements {
                free_variables(item, bound, out);
            }
        }
        Ast::Map(MapExpr { entries }) | Ast::Struct(StructExpr { entries, .. }) => {
            for entry in entries {
                match &entry.expr {
                    EntryExpr::MapEntry(e) => {
                        free_variables(&e.key, bound, out);
                        free_variables(&e.value, bound, out);
                    }
                    EntryExpr::StructField(f) => free_variables(&f.value, bound, out),
                }
            }
        }
        Ast::Select(select) => free_variables(&select.operand, bound, out),
        Ast::Literal(_) | Ast::Unspecified => {}
    }
}

fn var_named(name: &str) -> Option<Var> {
    match name {
        "this" => Some(Var::This),
        "acc" => Some(Var::Acc),
        _ => None,
    }
}

/// Whether `s` is a dotted path of identifiers (`word`, `user.id`).
pub fn is_field_path(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

fn to_cel(v: &Value) -> cel::Value {
    match v {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Int(n) => cel::Value::Int(*n),
        Value::Float(x) => cel::Value::Float(*x),
        Value::Str(s) => cel::Value::String(Arc::new(s.as_str().to_owned())),
        Value::List(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Map(fields) => cel::Value::Map(cel::objects::Map {
            map: Arc::new(
                fields
                    .iter()
                    .map(|(k, v)| {
                        (
                            cel::objects::Key::String(Arc::new(k.to_string())),
                            to_cel(v),
                        )
                    })
                    .collect(),
            ),
        }),
    }
}

fn from_cel(v: &cel::Value) -> Result<Value, EvalError> {
    Ok(match v {
        cel::Value::Null => Value::Null,
        cel::Value::Bool(b) => Value::Bool(*b),
        cel::Value::Int(n) => Value::Int(*n),
        cel::Value::UInt(n) => i64::try_from(*n).map_or(Value::Float(*n as f64), Value::Int),
        cel::Value::Float(x) => Value::Float(*x),
        cel::Value::String(s) => Value::Str(Str::from(s.as_str())),
        cel::Value::List(items) => {
            Value::List(items.iter().map(from_cel).collect::<Result<_, _>>()?)
        }
        cel::Value::Map(map) => {
            let mut fields: Vec<(Arc<str>, Value)> = map
                .map
                .iter()
                .map(|(k, v)| {
                    let key: Arc<str> = match k {
                        cel::objects::Key::String(s) => Arc::from(s.as_str()),
                        cel::objects::Key::Int(n) => Arc::from(n.to_string()),
                        cel::objects::Key::Uint(n) => Arc::from(n.to_string()),
                        cel::objects::Key::Bool(b) => Arc::from(b.to_string()),
                    };
                    Ok((key, from_cel(v)?))
                })
                .collect::<Result<_, EvalError>>()?;
            // CEL maps are unordered; sort so that output is deterministic.
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Map(fields)
        }
        cel::Value::Bytes(_) => return Err(EvalError::Unrepresentable("bytes")),
        cel::Value::Function(..) => return Err(EvalError::Unrepresentable("a function")),
        _ => return Err(EvalError::Unrepresentable("a value of an unsupported type")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_seed_expression_is_native() {
        let e = Expr::compile(r#"{"word": this, "count": 1}"#, &[Var::This]).unwrap();
        assert!(!e.is_interpreted());
        assert_eq!(
            e.eval(&Value::from("x"), None).unwrap().to_json(),
            r#"{"word":"x","count":1}"#
        );
    }

    #[test]
    fn field_paths_and_keys_are_native() {
        let key = Expr::compile_key("user.id").unwrap();
        assert!(!key.is_interpreted());
        assert_eq!(
            key.eval(&rec(r#"{"user":{"id":7}}"#), None),
            Ok(Value::Int(7))
        );
        assert_eq!(
            key.eval(&rec(r#"{"user":{}}"#), None),
            Err(EvalError::MissingField { field: "id".into() })
        );
    }

    #[test]
    fn other_expressions_run_in_cel() {
        let e = Expr::compile("this.count * 2 + 1", &[Var::This]).unwrap();
        assert!(e.is_interpreted());
        assert_eq!(e.eval(&rec(r#"{"count":5}"#), None), Ok(Value::Int(11)));
        let c = Expr::compile("this.count > 3", &[Var::This]).unwrap();
        assert_eq!(c.test(&rec(r#"{"count":5}"#)), Ok(true));
        let r = Expr::compile("acc + this", &[Var::Acc, Var::This]).unwrap();
        assert_eq!(
            r.eval(&Value::Int(2), Some(&Value::Int(3))),
            Ok(Value::Int(5))
        );
    }

    #[test]
    fn macros_may_bind_their_own_variables() {
        let e = Expr::compile("this.items.exists(i, i > 3)", &[Var::This]).unwrap();
        assert_eq!(
            e.eval(&rec(r#"{"items":[1,5]}"#), None),
            Ok(Value::Bool(true))
        );
        let e = Expr::compile("this.items.map(x, x * 2)", &[Var::This]).unwrap();
        assert_eq!(
            e.eval(&rec(r#"{"items":[1,5]}"#), None),
            Ok(Value::List(vec![Value::Int(2), Value::Int(10)]))
        );
        // Outside its macro, the bound name is unknown again.
        let err = Expr::compile("this.items.all(i, i > 0) && i > 0", &[Var::This]).unwrap_err();
        assert_eq!(err.message, "unknown variable `i`");
        assert_eq!((err.line, err.column), (1, 29), "{err:?}");
        let err = Expr::compile("\"é\" == this\n  && wrod", &[Var::This]).unwrap_err();
        assert_eq!((err.line, err.column), (2, 6), "{err:?}");
    }

    #[test]
    fn expressions_of_the_greatest_length_compile_without_overflowing_the_stack() {
        // The deepest shapes fit in the limit: one level of nesting per two bytes.
        let plus = format!("1{}", "+1".repeat((MAX_EXPRESSION_LEN - 1) / 2));
        let select = format!("this{}", ".a".repeat((MAX_EXPRESSION_LEN - 4) / 2));
        for source in [plus, select] {
            assert!(source.len() <= MAX_EXPRESSION_LEN);
            // Spec checks run on threads with the default 2 MiB stack.
            let compiled = std::thread::Builder::new()
                .stack_size(2 << 20)
                .spawn(move || Expr::compile(&source, &[Var::This]).is_ok())
                .unwrap()
                .join();
            assert_eq!(compiled.ok(), Some(true));
        }
        // Found by probing `dataflow check`: 50,000 terms overflowed the stack.
        let long = format!("1{}", " + 1".repeat(50_000));
        let err = Expr::compile(&long, &[Var::This]).unwrap_err();
        assert!(err.message.contains("bytes long"), "{err:?}");
    }

    #[test]
    fn compile_errors_have_a_position() {
        let err = Expr::compile("this.count >", &[Var::This]).unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.column > 1, "{err:?}");
        let err = Expr::compile("wrod == 'a'", &[Var::This]).unwrap_err();
        assert_eq!(err.message, "unknown variable `wrod`");
        assert_eq!(err.column, 1);
    }
}
