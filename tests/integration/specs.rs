//! Every example under `specs/` is valid.

use crate::harness::{dataflow, root, text};

/// The example specs, sorted.
pub fn example_specs() -> Vec<String> {
    let mut specs: Vec<String> = std::fs::read_dir(root().join("specs"))
        .expect("specs/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| format!("specs/{}", p.file_name().unwrap().to_string_lossy()))
        .collect();
    specs.sort();
    specs
}

#[test]
fn check_accepts_every_example_spec() {
    let specs = example_specs();
    assert!(
        specs.len() >= 2,
        "expected the bundled examples, found {specs:?}"
    );
    for spec in specs {
        let out = dataflow(&["check", &spec]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{spec}:\n{stdout}\n{stderr}");
        assert!(stdout.starts_with(&format!("{spec}: valid")), "{stdout}");
        assert!(stderr.is_empty(), "{spec} has warnings:\n{stderr}");
    }
}
