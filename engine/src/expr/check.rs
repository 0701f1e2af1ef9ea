//! The checks [`Expr::compile`](super::Expr::compile) makes beyond the
//! `cel` parser's: variables no spec provides, functions CEL lacks, and
//! parser messages said in a spec author's words, each at its line and
//! column in the expression.
//!
//! Apart from the evaluation in `mod.rs` because all of it runs once, when
//! a spec is checked, and walks the parsed program rather than a record.

use std::sync::Arc;

use cel::common::ast::{CallExpr, EntryExpr, Expr as Ast, LiteralValue, MapExpr, StructExpr};
use cel::IdedExpr;

use super::{Var, ENV};

/// Collects the calls in `ast` to named functions (not operators, which
/// CEL also writes as calls), with their ids. Calls on a name that is not
/// `this` or `acc` (a macro's variable, or a namespace) are left out: the
/// probe in [`is_declared`] could not stand in for their target.
pub(super) fn collect_calls<'a>(ast: &'a IdedExpr, out: &mut Vec<(&'a CallExpr, u64)>) {
    let parts: Vec<&'a IdedExpr> = match &ast.expr {
        Ast::Call(call) => {
            let named = call
                .func_name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
                && call
                    .func_name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            let on_value = match call.target.as_deref().map(root_name) {
                Some(Some(root)) => {
                    root == Var::This.name() || root == Var::Acc.name() || namespace(call).is_some()
                }
                _ => true,
            };
            if named && on_value {
                out.push((call, ast.id));
            }
            call.target.iter().map(|t| &**t).chain(&call.args).collect()
        }
        Ast::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
        Ast::List(list) => list.elements.iter().collect(),
        Ast::Map(MapExpr { entries }) | Ast::Struct(StructExpr { entries, .. }) => entries
            .iter()
            .flat_map(|entry| match &entry.expr {
                EntryExpr::MapEntry(e) => vec![&e.key, &e.value],
                EntryExpr::StructField(f) => vec![&f.value],
            })
            .collect(),
        Ast::Select(select) => vec![&*select.operand],
        Ast::Ident(_) | Ast::Literal(_) | Ast::Unspecified => Vec::new(),
    };
    for part in parts {
        collect_calls(part, out);
    }
}

/// The identifier a chain of field selections starts from (`this` in
/// `this.a.b`), if the expression is one.
fn root_name(ast: &IdedExpr) -> Option<&str> {
    match &ast.expr {
        Ast::Ident(name) => Some(name),
        Ast::Select(select) => root_name(&select.operand),
        _ => None,
    }
}

/// Whether CEL has the function `call` calls. The `cel` crate finds out
/// only when a call runs, so the call is tried once, on null arguments: a
/// function that exists refuses them (or returns), one that does not is an
/// undeclared reference. What cannot be tried counts as declared, and the
/// record decides.
pub(super) fn is_declared(call: &CallExpr) -> bool {
    let args = vec!["null"; call.args.len()].join(", ");
    let name = &call.func_name;
    let probe = match (namespace(call), &call.target) {
        (Some(ns), _) => format!("{ns}.{name}({args})"),
        (None, Some(_)) => format!("null.{name}({args})"),
        (None, None) => format!("{name}({args})"),
    };
    let Ok(program) = ENV.compile(&probe) else {
        return true;
    };
    let ctx = cel::Context::with_env(Arc::clone(&ENV));
    // An unknown function in a namespace is reported as the namespace.
    !matches!(
        program.execute(&ctx),
        Err(cel::ExecutionError::UndeclaredReference(n)) if *n == *name || Some(n.as_str()) == namespace(call)
    )
}

/// A call's function as written: `abs`, or `math.abs` in its namespace.
pub(super) fn function_name(call: &CallExpr) -> String {
    match namespace(call) {
        Some(ns) => format!("{ns}.{}", call.func_name),
        None => call.func_name.clone(),
    }
}

/// The library namespace a call is in (`math` in `math.abs(x)`), which
/// the parser leaves as a call on a variable of that name.
pub(super) fn namespace(call: &CallExpr) -> Option<&'static str> {
    match call.target.as_deref().map(|t| &t.expr) {
        Some(Ast::Ident(name)) => super::library::NAMESPACES
            .iter()
            .copied()
            .find(|ns| ns == name),
        _ => None,
    }
}

/// A `matches` call whose pattern is a literal that does not compile: the
/// literal's id and why. A pattern built from the record is the record's
/// business, at run time.
pub(super) fn bad_pattern(call: &CallExpr) -> Option<(u64, String)> {
    if call.func_name != "matches" {
        return None;
    }
    let pattern = match call.target {
        Some(_) => call.args.first()?,
        None => call.args.get(1)?,
    };
    match &pattern.expr {
        Ast::Literal(LiteralValue::String(text)) => super::library::compile_pattern(text)
            .err()
            .map(|e| (pattern.id, e.to_string())),
        _ => None,
    }
}

/// Collects the identifiers `ast` reads that no comprehension around them
/// binds (`w` in `this.words.map(w, size(w))` is bound), with the id
/// of the expression that reads each.
pub(super) fn free_variables<'a>(
    ast: &'a IdedExpr,
    bound: &mut Vec<&'a str>,
    out: &mut Vec<(&'a str, u64)>,
) {
    match &ast.expr {
        Ast::Ident(name) => {
            // `@`-names are the accumulators macros introduce.
            if !name.starts_with('@') && !bound.contains(&name.as_str()) {
                out.push((name, ast.id));
            }
        }
        Ast::Call(call) => {
            let target = call.target.iter().filter(|_| namespace(call).is_none());
            for e in target.map(|t| &**t).chain(&call.args) {
                free_variables(e, bound, out);
            }
        }
        Ast::Comprehension(c) => {
            free_variables(&c.iter_range, bound, out);
            free_variables(&c.accu_init, bound, out);
            let depth = bound.len();
            bound.push(&c.iter_var);
            bound.extend(c.iter_var2.as_deref());
            bound.push(&c.accu_var);
            for e in [&c.loop_cond, &c.loop_step, &c.result] {
                free_variables(e, bound, out);
            }
            bound.truncate(depth);
        }
        Ast::List(list) => {
            for e in &list.elements {
                free_variables(e, bound, out);
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

/// The 1-based line and column (in characters) of the byte `offset` of `source`.
pub(super) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A CEL parser message, which names the grammar's tokens
/// (`mismatched input '}' expecting {'[', '{', ..., IDENTIFIER}`), said
/// in a spec author's words, with a hint when one fits.
pub(super) fn syntax_message(message: &str) -> (String, Option<String>) {
    let message = message.strip_prefix("Syntax error: ").unwrap_or(message);
    let quoted = |rest: &str| -> Option<String> {
        let rest = rest.strip_prefix('\'')?;
        Some(rest[..rest.rfind('\'')?].to_owned())
    };
    let unexpected = [
        "mismatched input ",
        "extraneous input ",
        "no viable alternative at input ",
    ]
    .iter()
    .find_map(|p| message.strip_prefix(p));
    if let Some(rest) = unexpected {
        let (token, expecting) = match rest.split_once(" expecting ") {
            Some((token, expecting)) => (token, Some(expecting)),
            None => (rest, None),
        };
        let token = quoted(token).unwrap_or_else(|| token.to_owned());
        let help = expecting.map(|e| {
            let set = e.strip_prefix('{').and_then(|e| e.strip_suffix('}'));
            let names: Vec<&str> = set
                .unwrap_or(e)
                .split(", ")
                .map(|t| t.trim_matches('\''))
                .collect();
            if names
                .iter()
                .any(|n| n.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            {
                "a value is expected here: a literal, `this`, a field, a call or a bracket"
                    .to_owned()
            } else {
                let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
                format!("expected {}", names.join(" or "))
            }
        });
        if token == "<EOF>" {
            return ("the expression ends too early".to_owned(), help);
        }
        return (format!("unexpected `{token}`"), help);
    }
    if let Some(text) = message
        .strip_prefix("token recognition error at: ")
        .and_then(quoted)
    {
        if text.starts_with(['"', '\'']) {
            return (
                format!("a string is not closed: {text}"),
                Some("end the string with the quote it starts with".to_owned()),
            );
        }
        let help = text
            .starts_with('=')
            .then(|| "compare with `==`".to_owned());
        return (format!("unexpected character `{}`", text.trim_end()), help);
    }
    (message.to_owned(), None)
}
