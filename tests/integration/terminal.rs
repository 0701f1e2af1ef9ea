//! The command on a real terminal: a pseudo-terminal of a given width,
//! its output read back through a terminal emulator (vt100) to see what a
//! person would see on the screen.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcsetwinsize, Winsize};

use crate::harness::{bin, root};

/// What a command wrote to its terminal, and how it ended.
struct OnTerminal {
    /// Every byte, escape sequences included.
    raw: Vec<u8>,
    status: std::process::ExitStatus,
}

impl OnTerminal {
    /// The screen's rows after everything was written, trailing blanks
    /// trimmed. The emulated screen is tall enough that nothing scrolls
    /// off: the rows are the whole session.
    fn screen(&self, columns: u16) -> Vec<String> {
        let mut parser = vt100::Parser::new(4000, columns, 0);
        parser.process(&self.raw);
        let rows: Vec<String> = parser
            .screen()
            .rows(0, columns)
            .map(|r| r.trim_end().to_owned())
            .collect();
        let used = rows
            .iter()
            .rposition(|r| !r.is_empty())
            .map_or(0, |i| i + 1);
        rows[..used].to_vec()
    }
}

/// Runs `dataflow args` with stdin, stdout and stderr on a new
/// pseudo-terminal `columns` wide, as in a terminal window.
fn on_terminal(args: &[&str], columns: u16, env: &[(&str, &str)]) -> OnTerminal {
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
    grantpt(&master).unwrap();
    unlockpt(&master).unwrap();
    let name = ptsname(&master, Vec::new()).unwrap();
    let terminal = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().unwrap())
        .unwrap();
    tcsetwinsize(
        &terminal,
        Winsize {
            ws_row: 40,
            ws_col: columns,
            ws_xpixel: 0,
            ws_ypixel: 0,
        },
    )
    .unwrap();
    let fd = |f: &std::fs::File| Stdio::from(OwnedFd::from(f.try_clone().unwrap()));
    let mut command = Command::new(bin());
    command
        .args(args)
        .current_dir(root())
        .env_remove("NO_COLOR")
        .stdin(fd(&terminal))
        .stdout(fd(&terminal))
        .stderr(fd(&terminal));
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("the dataflow binary runs");
    // The command holds copies of the terminal's file too.
    drop(command);
    drop(terminal);
    // Reading ends with an error (EIO) once the child and every copy of
    // the terminal's file are gone.
    let mut master = std::fs::File::from(master);
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = master.read(&mut buf) {
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let status = child.wait().unwrap();
    OnTerminal { raw, status }
}

/// A job that, for about two seconds, prints records to the terminal and
/// logs a completed checkpoint every 100 ms while its status line shows;
/// its node names are long, so that the status line is wider than 80
/// columns unless it is cut to fit.
fn busy_job(dir: &std::path::Path) -> String {
    let spec = dir.join("busy.yaml");
    std::fs::write(
        &spec,
        format!(
            r#"name: busy
sources:
  numbers_from_a_generator_with_a_long_name: {{type: generate, count: 40, rate: 20}}
transforms:
  keyed_running_totals_under_a_long_name:
    type: sum
    inputs: [numbers_from_a_generator_with_a_long_name]
    key: 'this.seq % 3'
    field: value
sinks:
  printed_to_the_terminal_with_a_long_name:
    type: print
    inputs: [keyed_running_totals_under_a_long_name]
checkpoint:
  interval: 100ms
  store: "file://{}"
"#,
            dir.join("checkpoints").display()
        ),
    )
    .unwrap();
    spec.display().to_string()
}

/// A row the status line left on the screen: it starts with a spinner
/// frame and the elapsed time.
fn is_status_row(row: &str) -> bool {
    row.contains("no checkpoint yet")
        || row.contains(" ago")
        || row.contains("numbers_from_a_generator_with_a_long_name 0")
}

#[test]
fn the_status_line_fits_80_columns_and_never_eats_or_leaves_other_output() {
    let dir = tempfile::tempdir().unwrap();
    let spec = busy_job(dir.path());
    let run = on_terminal(&["run", &spec], 80, &[]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.raw)
    );
    let screen = run.screen(80);
    let shown = screen.join("\n");
    // Every record, whole, once.
    let records: Vec<&String> = screen.iter().filter(|r| r.starts_with('{')).collect();
    assert_eq!(records.len(), 40, "{shown}");
    for r in &records {
        serde_json::from_str::<serde_json::Value>(r)
            .unwrap_or_else(|e| panic!("a record was cut or overwritten: {r}: {e}\n{shown}"));
    }
    // Every completed checkpoint's log line, whole, once.
    let completions: Vec<&String> = screen
        .iter()
        .filter(|r| r.contains("INFO") && r.contains("checkpoint") && r.contains(" complete in "))
        .collect();
    assert!(completions.len() >= 5, "{shown}");
    let mut ids: Vec<&str> = completions
        .iter()
        .map(|r| {
            r.split("checkpoint ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
        })
        .collect();
    let logged = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), logged, "a log line shows twice:\n{shown}");
    // No status line left behind, and the status line never wrapped (a
    // wrapped line leaves its first row behind when it is redrawn).
    assert!(
        !screen.iter().any(|r| is_status_row(r)),
        "a status line was left on the screen:\n{shown}"
    );
    // The summary comes last (wrapped, as any long line is).
    let summary = screen
        .iter()
        .position(|r| r.starts_with("busy finished in"))
        .unwrap_or_else(|| panic!("no summary:\n{shown}"));
    assert!(
        screen[summary..]
            .iter()
            .all(|r| !r.starts_with('{') && !r.contains("INFO")),
        "{shown}"
    );
    // The status line did show (the test would prove nothing otherwise),
    // and each of its frames fit in 80 columns.
    let frames = status_frames(&run.raw);
    assert!(frames.len() >= 3, "{frames:?}");
    for frame in &frames {
        assert!(
            frame.chars().count() <= 80,
            "a status line wider than the terminal: {frame}"
        );
    }
}

/// The status line's frames, as written: the text between control
/// characters and escape sequences that shows the status line's markers.
fn status_frames(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let mut pieces = vec![String::new()];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters final-byte.
            if chars.peek() == Some(&'[') {
                chars.next();
                for p in chars.by_ref() {
                    if p.is_ascii_alphabetic() || p == '~' {
                        break;
                    }
                }
            }
            pieces.push(String::new());
        } else if c.is_control() {
            pieces.push(String::new());
        } else if let Some(last) = pieces.last_mut() {
            last.push(c);
        }
    }
    pieces.into_iter().filter(|p| is_status_row(p)).collect()
}

/// Select Graphic Rendition: the escape sequences that set colours.
fn has_colour(raw: &[u8]) -> bool {
    let text = String::from_utf8_lossy(raw);
    text.split("\x1b[").skip(1).any(|seq| {
        let params: String = seq
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ';')
            .collect();
        seq[params.len()..].starts_with('m') && !params.is_empty()
    })
}

#[test]
fn no_color_turns_colour_off_for_run_and_check_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let spec = busy_job(dir.path());
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "name: x\nsources: {}\nsinks: {}\n").unwrap();
    let broken = broken.display().to_string();
    // Coloured by default: the test can see colour when there is some.
    assert!(has_colour(&on_terminal(&["run", &spec], 100, &[]).raw));
    assert!(has_colour(&on_terminal(&["check", &broken], 100, &[]).raw));
    for value in ["1", "true", "0"] {
        let env = [("NO_COLOR", value)];
        let run = on_terminal(&["run", &spec], 100, &env);
        assert!(run.status.success());
        assert!(
            !has_colour(&run.raw),
            "NO_COLOR={value}: {}",
            String::from_utf8_lossy(&run.raw)
        );
        assert!(!has_colour(
            &on_terminal(&["check", &broken], 100, &env).raw
        ));
    }
    // An empty NO_COLOR does not count (no-color.org).
    assert!(has_colour(
        &on_terminal(&["run", &spec], 100, &[("NO_COLOR", "")]).raw
    ));
}

/// `dataflow top` redraws its screen in place on a terminal, within 80
/// columns, until the job ends.
#[test]
fn top_redraws_in_place_until_the_job_ends() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("short.yaml");
    std::fs::write(
        &spec,
        "name: short\nparallelism: 2\nsources:\n  lines: {type: generate, mode: lines, rate: 20000, count: 60000}\ntransforms:\n  words: {type: flat_map, inputs: [lines], split: \",\"}\n  counts: {type: count, inputs: [words], key: this}\nsinks:\n  out: {type: blackhole, inputs: [counts]}\n",
    )
    .unwrap();
    let job = crate::observe::Running::start(dir.path(), &spec, &[], &[]);
    let runs = job.runs.to_string_lossy().into_owned();
    let top = on_terminal(
        &["top", "short", "--refresh-interval", "200"],
        80,
        &[("DATAFLOW_RUN_DIR", &runs)],
    );
    assert!(
        top.status.success(),
        "{}",
        String::from_utf8_lossy(&top.raw)
    );
    let frames = top.raw.windows(3).filter(|w| w == b"\x1b[H").count();
    assert!(frames >= 3, "{frames} frames drawn");
    let screen = top.screen(80);
    assert!(screen.iter().any(|r| r.starts_with("NODE ")), "{screen:#?}");
    assert!(
        screen.iter().any(|r| r.starts_with("counts ")),
        "{screen:#?}"
    );
    assert!(
        screen
            .iter()
            .any(|r| r.contains("job `short`") && r.contains("ended")),
        "{screen:#?}"
    );
    // Drawn in place: the header is on the screen once, not once a frame.
    assert_eq!(
        screen.iter().filter(|r| r.starts_with("NODE ")).count(),
        1,
        "{screen:#?}"
    );
}
