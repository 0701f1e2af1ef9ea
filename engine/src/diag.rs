//! Diagnostics about a spec: what is wrong, where, and how to fix it.
//!
//! Every layer that reads a spec (the loader, the planner, the expression
//! compiler) reports problems as [`Diagnostic`]s against a [`SourceFile`]
//! instead of failing on the first one, so `dataflow check` can show them
//! all at once. They render like a compiler's (codespan-reporting) or as JSON
//! for editors and CI.

use std::io::Write;
use std::ops::Range;

use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor};
use serde::Serialize;

/// A spec file as read from disk, kept whole so diagnostics can quote it.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: String,
}

impl SourceFile {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One problem found in a spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// A stable identifier of the kind of problem (`unknown-input`), for
    /// tools and tests; the message may be reworded, the code may not.
    pub code: &'static str,
    pub message: String,
    /// The bytes of the spec the problem is about, if it is about a place.
    pub span: Option<Range<usize>>,
    /// A short text shown under the span.
    pub label: String,
    /// Hints shown after the source excerpt ("did you mean ...").
    pub help: Vec<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: None,
            label: String::new(),
            help: Vec::new(),
        }
    }

    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, message)
        }
    }

    pub fn at(mut self, span: Option<Range<usize>>, label: impl Into<String>) -> Self {
        self.span = span;
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help.push(help.into());
        self
    }

    /// Adds "did you mean `x`?" when one of `candidates` is close to `given`.
    pub fn suggest<'a>(self, given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Self {
        match did_you_mean(given, candidates) {
            Some(best) => self.help(format!("did you mean `{best}`?")),
            None => self,
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The candidate closest to `given`, if it is close enough to be a typo.
///
/// Case is ignored (`Sum` is `sum`). A candidate is close when it sounds
/// alike (Jaro-Winkler above 0.8), or when a few edits make it, a
/// swapped pair of letters counting as one: Jaro-Winkler alone misses
/// short swaps such as `dri` for `dir`.
pub fn did_you_mean<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let given = given.to_lowercase();
    candidates
        .into_iter()
        .filter_map(|c| {
            let lower = c.to_lowercase();
            let edits = strsim::osa_distance(&given, &lower);
            let similar = strsim::jaro_winkler(&given, &lower);
            let close = similar > 0.8 || edits <= (lower.chars().count() / 4).max(1);
            (close && edits < lower.chars().count()).then_some((edits, -similar, c))
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
        .map(|(_, _, c)| c)
}

/// A diagnostic in the JSON form of `--format json`.
#[derive(Debug, Serialize)]
pub struct JsonDiagnostic<'a> {
    pub file: &'a str,
    pub severity: Severity,
    pub code: &'a str,
    pub message: &'a str,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub end_line: Option<usize>,
    pub end_column: Option<usize>,
    pub label: &'a str,
    pub help: &'a [String],
}

impl Diagnostic {
    pub fn to_json<'a>(&'a self, file: &'a SourceFile) -> JsonDiagnostic<'a> {
        let start = self.span.as_ref().map(|s| file.line_col(s.start));
        let end = self.span.as_ref().map(|s| file.line_col(s.end));
        JsonDiagnostic {
            file: &file.name,
            severity: self.severity,
            code: self.code,
            message: &self.message,
            line: start.map(|p| p.0),
            column: start.map(|p| p.1),
            end_line: end.map(|p| p.0),
            end_column: end.map(|p| p.1),
            label: &self.label,
            help: &self.help,
        }
    }

    /// The form shown on a terminal: the snippet of the line at fault,
    /// unless that line is too long to show (a flow list of a hundred
    /// thousand inputs is one line), where its place is told instead.
    fn to_terminal(&self, file: &SourceFile) -> cs::Diagnostic<()> {
        let long_line = self.span.as_ref().is_some_and(|span| {
            let at = span.start.min(file.text.len());
            let start = file.text[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = file.text[at..]
                .find('\n')
                .map_or(file.text.len(), |i| at + i);
            end - start > MAX_LINE
        });
        if !long_line {
            return self.to_codespan();
        }
        let span = self.span.as_ref().map_or(0, |s| s.start);
        let (line, column) = file.line_col(span);
        let place = Diagnostic {
            span: None,
            help: std::iter::once(format!(
                "at {}:{line}:{column}: {} (the line is too long to show)",
                file.name, self.label
            ))
            .chain(self.help.iter().cloned())
            .collect(),
            ..self.clone()
        };
        // Notes read `help: …`; the place is not one.
        let mut d = place.to_codespan();
        if let Some(first) = d.notes.first_mut() {
            *first = first.trim_start_matches("help: ").to_owned();
        }
        d
    }

    fn to_codespan(&self) -> cs::Diagnostic<()> {
        let severity = match self.severity {
            Severity::Error => cs::Severity::Error,
            Severity::Warning => cs::Severity::Warning,
        };
        let mut d = cs::Diagnostic::new(severity)
            .with_code(self.code)
            .with_message(&self.message);
        if let Some(span) = &self.span {
            d = d.with_labels(vec![
                cs::Label::primary((), span.clone()).with_message(&self.label)
            ]);
        }
        d.with_notes(self.help.iter().map(|h| format!("help: {h}")).collect())
    }
}

/// Writes diagnostics to stderr the way a compiler does, in colour when
/// stderr is a terminal and `NO_COLOR` does not say otherwise.
pub fn emit(file: &SourceFile, diagnostics: &[Diagnostic]) {
    let files = SimpleFile::new(file.name.as_str(), file.text.as_str());
    let choice = if crate::console::colour(&std::io::stderr()) {
        termcolor::ColorChoice::Always
    } else {
        termcolor::ColorChoice::Never
    };
    let mut stderr = termcolor::BufferedStandardStream::stderr(choice);
    let config = term::Config::default();
    // A failed write to stderr leaves nowhere to report it.
    for d in shown(diagnostics) {
        let _ = term::emit_to_write_style(&mut stderr, &config, &files, &d.to_terminal(file));
    }
    if diagnostics.len() > MAX_SHOWN {
        let _ = writeln!(
            stderr,
            "{}: {} more not shown (`dataflow check --format json` lists them all)\n",
            file.name,
            diagnostics.len() - MAX_SHOWN
        );
    }
    let _ = stderr.flush();
}

/// Writes diagnostics as log events (`run --log-format json`): each with
/// its code, file, line and column as fields.
pub fn log(file: &SourceFile, diagnostics: &[Diagnostic]) {
    for d in shown(diagnostics) {
        let (line, column) = d.span.as_ref().map_or((0, 0), |s| file.line_col(s.start));
        let help = d.help.join("; ");
        if d.is_error() {
            tracing::error!(code = d.code, file = %file.name, line, column, help, "{}", d.message);
        } else {
            tracing::warn!(code = d.code, file = %file.name, line, column, help, "{}", d.message);
        }
    }
}

/// The most diagnostics shown for one file on a terminal: past them, more
/// only bury the first.
const MAX_SHOWN: usize = 50;

/// The longest line shown in a snippet, in bytes. Each diagnostic prints
/// its line whole: fifty of a 300 KB line took seconds to print.
const MAX_LINE: usize = 1_000;

/// What [`emit`] shows: all of them, or, when there are too many, the
/// errors first (in order), then warnings.
fn shown(diagnostics: &[Diagnostic]) -> Vec<&Diagnostic> {
    if diagnostics.len() <= MAX_SHOWN {
        return diagnostics.iter().collect();
    }
    let numbered = diagnostics.iter().enumerate();
    let errors = numbered.clone().filter(|(_, d)| d.is_error());
    let others = numbered.filter(|(_, d)| !d.is_error());
    let mut kept: Vec<(usize, &Diagnostic)> = errors.chain(others).take(MAX_SHOWN).collect();
    // Back in the order they were found.
    kept.sort_by_key(|(i, _)| *i);
    kept.into_iter().map(|(_, d)| d).collect()
}

/// Renders diagnostics as plain text (no colour), as [`emit`] would.
pub fn render(file: &SourceFile, diagnostics: &[Diagnostic]) -> String {
    let files = SimpleFile::new(file.name.as_str(), file.text.as_str());
    let config = term::Config::default();
    diagnostics
        .iter()
        .filter_map(|d| term::emit_into_string(&config, &files, &d.to_terminal(file)).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line too long to show is not printed for each diagnostic on it
    /// (a 300 KB flow list, fifty times, took seconds); its place is told.
    #[test]
    fn a_line_too_long_to_show_is_told_by_its_place() {
        let file = SourceFile {
            name: "spec.yaml".into(),
            text: format!("name: x\ninputs: [{}]\n", vec!["s"; 1_000].join(", ")),
        };
        let at = file.text.rfind('s').unwrap();
        let d = Diagnostic::error("duplicate-input", "listed twice")
            .at(Some(at..at + 1), "listed already");
        let shown = render(&file, std::slice::from_ref(&d));
        assert!(
            shown.contains("at spec.yaml:2:3007: listed already"),
            "{shown}"
        );
        assert!(shown.len() < 400, "{shown}");
        let short = Diagnostic::error("x", "y").at(Some(0..4), "here");
        assert!(render(&file, &[short]).contains("1 │ name: x"));
    }

    #[test]
    fn too_many_diagnostics_show_every_error_first() {
        let mut all: Vec<Diagnostic> = (0..60)
            .map(|i| Diagnostic::warning("w", format!("w{i}")))
            .collect();
        all.push(Diagnostic::error("e", "the error"));
        let kept = shown(&all);
        assert_eq!(kept.len(), MAX_SHOWN);
        assert_eq!(kept.last().unwrap().message, "the error");
        assert_eq!(kept[0].message, "w0");
    }

    #[test]
    fn line_and_column_count_characters() {
        let f = SourceFile {
            name: "x".into(),
            text: "ab\nçd: e\n".into(),
        };
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f.line_col("ab\nçd: ".len()), (2, 5));
    }

    #[test]
    fn suggests_only_close_names() {
        assert_eq!(
            did_you_mean("adress", ["address", "reconnect"]),
            Some("address")
        );
        assert_eq!(did_you_mean("zzz", ["address", "reconnect"]), None);
        assert_eq!(did_you_mean("dri", ["backend", "dir"]), Some("dir"));
        assert_eq!(did_you_mean("Sum", ["min", "sum", "max"]), Some("sum"));
        assert_eq!(did_you_mean("a", ["b", "c"]), None);
    }
}
