//! The README's commands are the ones CI runs: every command in a `sh`
//! block of README.md appears, as written, in `.ci/run`, which runs them
//! on a fresh clone and checks what they print.

use crate::harness::root;

/// The commands of the `sh` blocks of a Markdown text, without comments.
fn sh_commands(markdown: &str) -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_sh = false;
    for line in markdown.lines() {
        let fence = line.trim_start();
        if fence.starts_with("```") {
            in_sh = !in_sh && fence.trim_start_matches('`').trim() == "sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let command = match line.find(" #") {
            Some(at) => &line[..at],
            None => line,
        };
        let command = command.trim();
        if !command.is_empty() && !command.starts_with('#') {
            commands.push(command.to_owned());
        }
    }
    commands
}

#[test]
fn every_command_the_readme_gives_is_run_by_ci() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    let commands = sh_commands(&readme);
    assert!(
        commands.len() >= 6,
        "expected the quick start, check, socket and restore commands, found {commands:?}"
    );
    let missing: Vec<&String> = commands
        .iter()
        .filter(|c| !ci.contains(c.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md tells users to type commands .ci/run does not run: {missing:?}"
    );
}

#[test]
fn commands_are_read_from_sh_blocks_only_without_comments() {
    let text =
        "x\n```sh\n# a comment\ncargo run   # runs it\n\nnc -lk 8888\n```\n```yaml\nname: x\n```\n";
    assert_eq!(sh_commands(text), ["cargo run", "nc -lk 8888"]);
}
