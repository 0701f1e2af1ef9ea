//! `dataflow test`: runs the tests beside a spec (see [`crate::pipeline_test`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::check::planned;
use super::EXIT_USAGE;
use crate::diag::{self, SourceFile};
use crate::{pipeline_test, plan};

pub fn run(spec: &Path, tests: Option<PathBuf>) -> ExitCode {
    let (loaded, plan) = match planned(spec, "tested", false) {
        Ok(planned) => planned,
        Err(code) => return code,
    };
    let path = tests.unwrap_or_else(|| pipeline_test::beside(spec));
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            report!(
                "error: cannot read the tests of {} at `{}`: {e} (write them there, or name the file with --tests)",
                loaded.file.name,
                path.display()
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let file = SourceFile {
        name: path.display().to_string(),
        text,
    };
    let tests = match pipeline_test::load(file.clone()) {
        Ok(tests) => tests,
        Err(d) => {
            diag::emit(&file, &[d]);
            return ExitCode::from(1);
        }
    };
    let problems = tests.check(&plan);
    if !problems.is_empty() {
        diag::emit(&tests.file, &problems);
        return ExitCode::from(1);
    }
    report!(
        "running {} test{} of {} ({})",
        tests.tests.len(),
        if tests.tests.len() == 1 { "" } else { "s" },
        loaded.file.name,
        tests.file.name
    );
    let mut failed = 0;
    for t in 0..tests.tests.len() {
        let outcome = tests.run(t, || {
            plan::compile(&loaded)
                .0
                .expect("the spec compiled a moment ago")
        });
        if outcome.problems.is_empty() {
            report!("test {} ... passed", outcome.name);
        } else {
            failed += 1;
            report!("test {} ... failed", outcome.name);
            diag::emit(&tests.file, &outcome.problems);
        }
    }
    let passed = tests.tests.len() - failed;
    if failed == 0 {
        report!("{passed} passed");
        ExitCode::SUCCESS
    } else {
        report!("{failed} failed, {passed} passed");
        ExitCode::from(1)
    }
}
