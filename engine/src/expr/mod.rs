//! Expressions in specs (`expr`, `condition`, `key`): CEL, compiled once.
//!
//! An expression is compiled when the spec is checked, never per record.
//! The shapes most pipelines use (a field path such as `this.word`, a
//! literal, or a map or list built from those, like
//! `{"word": this, "count": 1}`) are evaluated natively, without converting
//! the record into CEL values (`cel_value`); anything else runs in the
//! `cel` interpreter. What compiling checks beyond CEL's parser is
//! `check`'s.

mod cel_value;
mod check;
mod library;

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use cel::common::ast::{EntryExpr, Expr as Ast, LiteralValue};
use cel::IdedExpr;

use crate::value::{intern, Name, Value};
use cel_value::{from_cel, to_cel};
use check::{
    bad_pattern, collect_calls, free_variables, function_name, is_declared, line_column,
    syntax_message,
};

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
    /// JSON has no NaN or infinity, so no record holds one: the output
    /// would lose it and state could not store it.
    #[error("the expression returned {0}, which a record cannot hold (floats must be finite)")]
    NotFinite(f64),
}

/// The longest expression accepted, in bytes. The `cel` parser recurses
/// once per level of nesting, and a chain of a thousand or more operators
/// (`1 + 1 + ...`, `this.a.a...`) can overflow a 2 MiB thread stack inside
/// it (in a debug build), which aborts the process. The limit keeps the
/// nesting below that; real expressions are far shorter.
pub const MAX_EXPRESSION_LEN: usize = 2048;

static ENV: LazyLock<Arc<cel::Env>> = LazyLock::new(|| Arc::new(library::env()));

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
        fields: Vec<Name>,
    },
    Literal(Value),
    Map(Vec<(Name, Expr)>),
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
            let (message, help) =
                first.map_or_else(|| (errors.to_string(), None), |e| syntax_message(&e.msg));
            CompileError {
                message,
                line,
                column,
                help,
            }
        })?;
        let mut unknown = Vec::new();
        free_variables(program.expression(), &mut Vec::new(), &mut unknown);
        unknown.retain(|(name, _)| !vars.iter().any(|v| v.name() == *name));
        let info = program.source_info();
        let first = unknown
            .into_iter()
            .map(|(name, id)| (info.offset_for(id).map_or(0, |(start, _)| start), name))
            .min();
        if let Some((offset, var)) = first {
            let (line, column) = line_column(source, offset as usize);
            let names: Vec<&str> = vars.iter().map(|v| v.name()).collect();
            let help = if let Some(near) = crate::diag::did_you_mean(var, names.iter().copied()) {
                format!("did you mean `{near}`?")
            } else if var == Var::Acc.name() {
                format!(
                    "`acc` is the accumulator of a `reduce` and exists only there; variables here: {}",
                    names.join(", ")
                )
            } else {
                format!(
                    "the record is `this`, so a field is `this.{var}`; variables here: {}",
                    names.join(", ")
                )
            };
            return Err(CompileError {
                message: format!("unknown variable `{var}`"),
                line,
                column,
                help: Some(help),
            });
        }
        let mut calls = Vec::new();
        collect_calls(program.expression(), &mut calls);
        let unknown = calls
            .iter()
            .filter(|(call, _)| !is_declared(call))
            .map(|(call, id)| (info.offset_for(*id).map_or(0, |(start, _)| start), call))
            .min_by_key(|(offset, _)| *offset);
        if let Some((offset, call)) = unknown {
            // CEL places a call at its `(`; point at the name before it.
            let offset = offset as usize;
            let name = function_name(call);
            let offset = source
                .get(..offset)
                .and_then(|before| before.strip_suffix(name.as_str()))
                .map_or(offset, str::len);
            let (line, column) = line_column(source, offset);
            return Err(CompileError {
                message: format!("unknown function `{name}`"),
                line,
                column,
                help: Some(
                    "the functions are CEL's standard ones (`size`, `contains`, `matches`, \
                     `timestamp`, `duration`, ...) and its strings, lists and math extensions \
                     (`split`, `lowerAscii`, `replace`, `math.greatest`, ...): see docs/spec.md"
                        .to_owned(),
                ),
            });
        }
        if let Some((offset, why)) = calls
            .iter()
            .filter_map(|(call, _)| bad_pattern(call))
            .map(|(id, why)| (info.offset_for(id).map_or(0, |(start, _)| start), why))
            .min_by_key(|(offset, _)| *offset)
        {
            let (line, column) = line_column(source, offset as usize);
            return Err(CompileError {
                message: format!("invalid pattern: {why}"),
                line,
                column,
                help: Some(
                    "`matches` takes a regular expression in the syntax of Rust's `regex` crate"
                        .to_owned(),
                ),
            });
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
                fields: path.split('.').map(intern).collect(),
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

    /// A key over this projection's output, read from its input instead:
    /// `word` over `{"word": this, "count": 1}` is `this`, and `user.id`
    /// over `{"user": this.u}` is `this.u.id`. `None` unless this is a map
    /// literal, `key` a field path of `this`, and its first field an entry
    /// that is itself a field path of `this`.
    pub fn key_through_projection(&self, key: &Expr) -> Option<Expr> {
        let (
            Kind::Map(entries),
            Kind::Path {
                var: Var::This,
                fields: key_fields,
            },
        ) = (&self.kind, &key.kind)
        else {
            return None;
        };
        let (first, rest) = key_fields.split_first()?;
        let (_, entry) = entries.iter().find(|(name, _)| name == first)?;
        let Kind::Path {
            var: Var::This,
            fields,
        } = &entry.kind
        else {
            return None;
        };
        Some(Expr {
            kind: Kind::Path {
                var: Var::This,
                fields: fields.iter().chain(rest).cloned().collect(),
            },
        })
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
                    fields.push(intern(&select.field));
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
                            .any(|(k, _): &(Name, Expr)| **k == *key.inner())
                    {
                        return None;
                    }
                    entries.push((intern(key.inner()), Expr::native(&e.value)?));
                }
                Kind::Map(entries)
            }
            _ => return None,
        };
        Some(Expr { kind })
    }

    /// Evaluates the expression on a record, borrowing from it where the
    /// result is a part of it: a key that is a field costs no clone.
    pub fn eval_ref<'a>(&self, this: &'a Value) -> Result<Cow<'a, Value>, EvalError> {
        match &self.kind {
            Kind::Path {
                var: Var::This,
                fields,
            } => resolve(this, fields).map(Cow::Borrowed),
            _ => self.eval(this, None).map(Cow::Owned),
        }
    }

    /// Evaluates the expression on a record; `acc` is the accumulator of a `reduce`.
    pub fn eval(&self, this: &Value, acc: Option<&Value>) -> Result<Value, EvalError> {
        match &self.kind {
            Kind::Map(entries) => {
                let mut fields: crate::value::Fields = Vec::with_capacity(entries.len());
                for (k, e) in entries {
                    // Written in place: a field or constant is copied
                    // straight into the record, not moved through a return.
                    fields.push((k.clone(), Value::Null));
                    if let Some((_, slot)) = fields.last_mut() {
                        match e.leaf(this, acc) {
                            Some(value) => slot.clone_from(value?),
                            None => *slot = e.eval_inner(this, acc)?,
                        }
                    }
                }
                Ok(Value::Map(fields))
            }
            Kind::List(items) => items
                .iter()
                .map(|e| e.eval_inner(this, acc))
                .collect::<Result<_, _>>()
                .map(Value::List),
            _ => self.eval_inner(this, acc),
        }
    }

    /// [`eval`](Expr::eval) of a part of a map or list: a field or a
    /// constant (the usual parts) is copied here, in the caller, rather
    /// than returned by value from a call, which costs a stalled load per
    /// part on the seed job's `{"word": this, "count": 1}`.
    #[inline(always)]
    fn eval_inner(&self, this: &Value, acc: Option<&Value>) -> Result<Value, EvalError> {
        if let Some(value) = self.leaf(this, acc) {
            return value.cloned();
        }
        match &self.kind {
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
            // A map or a list: fields and constants were taken above.
            _ => self.eval(this, acc),
        }
    }

    /// The value of a field path or a constant, borrowed; `None` for any
    /// other expression.
    #[inline(always)]
    fn leaf<'a>(
        &'a self,
        this: &'a Value,
        acc: Option<&'a Value>,
    ) -> Option<Result<&'a Value, EvalError>> {
        match &self.kind {
            Kind::Path { var, fields } => {
                let root = match var {
                    Var::This => this,
                    Var::Acc => acc.unwrap_or(&Value::Null),
                };
                Some(resolve(root, fields))
            }
            Kind::Literal(v) => Some(Ok(v)),
            _ => None,
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

/// Follows a field path from `root`.
#[inline]
fn resolve<'a>(root: &'a Value, fields: &[Name]) -> Result<&'a Value, EvalError> {
    let mut v = root;
    for f in fields {
        v = v.get(f).ok_or_else(|| EvalError::MissingField {
            field: f.to_string(),
        })?;
    }
    Ok(v)
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
    fn calls_to_functions_cel_lacks_are_refused_at_their_name() {
        let vars = [Var::This];
        for known in [
            "size(this) + size(string(this.n))",
            r#"this.s.startsWith("a") && this.s.contains("b") && this.s.endsWith("c")"#,
            "int(double(this.n)) + int(this.n)",
            "this.items.map(x, x.size())",
            "this.items.all(i, i.contains(this.s))",
        ] {
            assert!(Expr::compile(known, &vars).is_ok(), "{known}");
        }
        let err = Expr::compile("1 +\n  this.s.shout()", &vars).unwrap_err();
        assert_eq!(
            (err.message.as_str(), err.line, err.column),
            ("unknown function `shout`", 2, 10)
        );
        let err = Expr::compile("math.nope(1)", &vars).unwrap_err();
        assert_eq!(
            (err.message.as_str(), err.column),
            ("unknown function `math.nope`", 1)
        );
        let err = Expr::compile("[max(this.a, this.b)]", &vars).unwrap_err();
        assert_eq!(
            (err.message.as_str(), err.column),
            ("unknown function `max`", 2)
        );
    }

    /// Issue 16: `matches`, `split` and the rest were unknown functions.
    #[test]
    fn the_standard_library_and_its_extensions_run() {
        let r =
            rec(r#"{"msg":"ERROR disk full","csv":"a,b,c","ts":"2024-05-01T10:15:30Z","n":-3}"#);
        let eval = |source: &str| {
            Expr::compile(source, &[Var::This])
                .unwrap_or_else(|e| panic!("{source}: {e}"))
                .eval(&r, None)
                .unwrap_or_else(|e| panic!("{source}: {e}"))
                .to_json()
        };
        for (source, expected) in [
            (r#"this.msg.matches("^ERROR\\s")"#, "true"),
            (r#"matches(this.msg, "warn")"#, "false"),
            (r#"this.csv.split(",")"#, r#"["a","b","c"]"#),
            (r#"this.csv.split(",", 2)"#, r#"["a","b,c"]"#),
            ("this.msg.lowerAscii()", r#""error disk full""#),
            ("this.msg.upperAscii().trim()", r#""ERROR DISK FULL""#),
            (r#"this.msg.replace(" ", "_")"#, r#""ERROR_disk_full""#),
            (r#"this.msg.substring(6).indexOf("full")"#, "5"),
            (r#"["x", "y"].join("-")"#, r#""x-y""#),
            ("math.greatest(this.n, 2)", "2"),
            ("math.abs(this.n)", "3"),
            ("lists.range(3)", "[0,1,2]"),
            ("math.least(4, this.n, 2)", "-3"),
            ("[3, 1, 3].distinct().sort()", "[1,3]"),
            ("[[1], [2, 3]].flatten().slice(1, 3).reverse()", "[3,2]"),
            (r#""%s-%d".format(["a", 7])"#, r#""a-7""#),
            (r#"strings.quote(this.msg.charAt(0))"#, r#""\"E\"""#),
            (
                r#"timestamp(this.ts).getDayOfWeek("Pacific/Kiritimati")"#,
                "4",
            ),
            (
                r#"timestamp(this.ts) + duration("90m")"#,
                r#""2024-05-01T11:45:30Z""#,
            ),
            (r#"int(timestamp(this.ts))"#, "1714558530"),
            (r#"timestamp(this.ts).getHours()"#, "10"),
            (
                r#"timestamp("2024-05-01T10:20:00Z") - timestamp(this.ts)"#,
                r#""270s""#,
            ),
            (r#"duration("1.5s")"#, r#""1.5s""#),
            (
                r#"timestamp(this.ts) < timestamp("2025-01-01T00:00:00Z")"#,
                "true",
            ),
        ] {
            assert_eq!(eval(source), expected, "{source}");
        }
    }

    #[test]
    fn a_literal_pattern_that_does_not_compile_is_refused_at_its_place() {
        let err = Expr::compile(
            "this.a.matches(\"x\") ||\n this.msg.matches(\"(unclosed\")",
            &[Var::This],
        )
        .unwrap_err();
        assert!(
            err.message.starts_with("invalid pattern: "),
            "{}",
            err.message
        );
        assert_eq!((err.line, err.column), (2, 19));
        // A pattern from the record fails on the record, not at `check`.
        let e = Expr::compile("this.msg.matches(this.re)", &[Var::This]).unwrap();
        let got = e.eval(&rec(r#"{"msg":"a","re":"("}"#), None);
        assert!(
            matches!(&got, Err(EvalError::Cel(m)) if m.contains("not a valid pattern")),
            "{got:?}"
        );
        assert_eq!(
            e.eval(&rec(r#"{"msg":"ab","re":"b$"}"#), None),
            Ok(Value::Bool(true))
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

    /// Issue 14, item 11: NaN and infinities were printed as `null`, and
    /// a key or state holding one lost it. No record holds one now.
    #[test]
    fn results_that_are_not_finite_fail_on_the_record() {
        for source in [
            "0.0 / 0.0",
            "1.0 / 0.0",
            "-1.0 / this.zero",
            "[1.0, 2.0 / 0.0]",
            r#"{"a": double("NaN")}"#,
        ] {
            let e = Expr::compile(source, &[Var::This]).unwrap();
            let got = e.eval(&rec(r#"{"zero":0.0}"#), None);
            assert!(
                matches!(got, Err(EvalError::NotFinite(_))),
                "{source}: {got:?}"
            );
        }
        let key = Expr::compile_key("this.zero / 0.0").unwrap();
        assert!(key.eval(&rec(r#"{"zero":0.0}"#), None).is_err());
        // Inside an expression they may be used, as long as none comes out.
        let c = Expr::compile("1.0 / this.zero > 1.0", &[Var::This]).unwrap();
        assert_eq!(c.test(&rec(r#"{"zero":0.0}"#)), Ok(true));
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

    #[test]
    fn an_unknown_variable_is_found_where_it_is_read() {
        // Not inside the string literal that spells the same word first,
        // and counting characters, not bytes.
        let err = Expr::compile(r#"{"wörd": this, "word": word}"#, &[Var::This]).unwrap_err();
        assert_eq!((err.line, err.column), (1, 24), "{err:?}");
        let err = Expr::compile("this.a +\n  thsi.b", &[Var::This]).unwrap_err();
        assert_eq!((err.line, err.column), (2, 3), "{err:?}");
        assert_eq!(err.help.as_deref(), Some("did you mean `this`?"));
        let err = Expr::compile("\"é\" == this\n  && wrod", &[Var::This]).unwrap_err();
        assert_eq!((err.line, err.column), (2, 6), "{err:?}");
    }

    #[test]
    fn comprehension_variables_are_bound() {
        let e = Expr::compile(r#"this.words.map(w, w.size() + size(w))"#, &[Var::This]);
        assert!(e.is_ok(), "{e:?}");
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
        let e = Expr::compile("this.items.exists(x, x > 1) && x > 0", &[Var::This]);
        assert_eq!(e.unwrap_err().message, "unknown variable `x`");
        let err = Expr::compile("this.items.all(i, i > 0) && i > 0", &[Var::This]).unwrap_err();
        assert_eq!((err.line, err.column), (1, 29), "{err:?}");
    }

    #[test]
    fn syntax_errors_are_said_in_plain_words() {
        let err = Expr::compile("this.count >", &[Var::This]).unwrap_err();
        assert_eq!(err.message, "the expression ends too early");
        let err = Expr::compile("{'a': 1 'b': 2}", &[Var::This]).unwrap_err();
        assert_eq!(err.message, "unexpected `'b'`");
        assert_eq!(err.help.as_deref(), Some("expected `}` or `,`"));
        let err = Expr::compile("this.a = 1", &[Var::This]).unwrap_err();
        assert_eq!(err.message, "unexpected character `=`");
        assert_eq!(err.help.as_deref(), Some("compare with `==`"));
    }
}
