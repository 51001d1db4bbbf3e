//! `demo.tape`, replayed in tmux against `courier demo`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::tmux::{Tmux, courier_bin};
use crate::procs::wait_until;

/// One step of a VHS tape, as far as the replay needs it.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Type(String),
    /// A key and how many times (tmux key name).
    Key(&'static str, usize),
    Sleep(Duration),
    /// `Wait+Screen@T /text/`: the screen must come to show `text`.
    Wait(String, Duration),
}

fn duration(s: &str) -> Duration {
    let (n, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = n.parse().unwrap_or_else(|_| panic!("bad duration {s:?}"));
    match unit {
        "ms" => Duration::from_secs_f64(n / 1000.0),
        "s" => Duration::from_secs_f64(n),
        "m" => Duration::from_secs_f64(n * 60.0),
        _ => panic!("bad duration unit in {s:?}"),
    }
}

/// A `/…/` pattern of a Wait as plain text: the tape's patterns are
/// literal, with `\` escaping the one character after it, and hold no
/// slash (VHS would end the pattern there).
fn literal_pattern(p: &str, line: usize) -> String {
    let mut out = String::new();
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        match c {
            '/' => panic!("demo.tape:{line}: a Wait pattern cannot hold '/'"),
            '\\' => match chars.next() {
                Some('/') | None => panic!("demo.tape:{line}: bad escape in a Wait pattern"),
                Some(c) => out.push(c),
            },
            '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$' => {
                panic!(
                    "demo.tape:{line}: the replay takes Wait patterns literally; escape {c:?} as \\{c}"
                )
            }
            c => out.push(c),
        }
    }
    out
}

/// Parses the VHS commands demo.tape uses; anything else fails the test,
/// so the tape cannot grow a step the replay silently skips.
fn parse_tape(text: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        let (cmd, _speed) = cmd
            .split_once('@')
            .map_or((cmd, None), |(c, s)| (c, Some(s)));
        let count = || -> usize {
            if rest.is_empty() {
                1
            } else {
                rest.parse()
                    .unwrap_or_else(|_| panic!("demo.tape:{n}: bad count {rest:?}"))
            }
        };
        let key = |k: &'static str| Step::Key(k, count());
        let step = match cmd {
            "Output" | "Set" | "Require" | "Hide" | "Show" | "Screenshot" => continue,
            "Type" => {
                let q = rest.chars().next().expect("Type needs a string");
                assert!(
                    matches!(q, '"' | '\'' | '`') && rest.len() >= 2 && rest.ends_with(q),
                    "demo.tape:{n}: Type takes one quoted string"
                );
                Step::Type(rest[1..rest.len() - 1].to_string())
            }
            "Enter" => key("Enter"),
            "Escape" => key("Escape"),
            "Tab" => key("Tab"),
            "Space" => key("Space"),
            "Backspace" => key("BSpace"),
            "Up" => key("Up"),
            "Down" => key("Down"),
            "Left" => key("Left"),
            "Right" => key("Right"),
            "PageUp" => key("PPage"),
            "PageDown" => key("NPage"),
            "Sleep" => Step::Sleep(duration(rest)),
            c if c.starts_with("Wait") => {
                let timeout = match line
                    .split_once(' ')
                    .map(|x| x.0)
                    .and_then(|h| h.split_once('@'))
                {
                    Some((_, t)) => duration(t),
                    None => Duration::from_secs(15),
                };
                assert!(
                    c == "Wait+Screen",
                    "demo.tape:{n}: only Wait+Screen is replayed (plain Wait reads one line)"
                );
                let p = rest
                    .strip_prefix('/')
                    .and_then(|r| r.strip_suffix('/'))
                    .unwrap_or_else(|| panic!("demo.tape:{n}: Wait needs /pattern/"));
                Step::Wait(literal_pattern(p, n), timeout)
            }
            other => panic!("demo.tape:{n}: the replay does not know {other:?}"),
        };
        steps.push(step);
    }
    steps
}

#[test]
fn tape_parser_reads_the_commands_it_knows() {
    let steps = parse_tape(
        "# c\nOutput x.gif\nSet FontSize 14\nHide\nType 'a \"b\"'\nShow\nEnter\nDown 3\n\
         Sleep 500ms\nWait+Screen@20s /Tasks 1 · a\\.b/\nType@80ms \"!\"\n",
    );
    assert_eq!(
        steps,
        vec![
            Step::Type("a \"b\"".into()),
            Step::Key("Enter", 1),
            Step::Key("Down", 3),
            Step::Sleep(Duration::from_millis(500)),
            Step::Wait("Tasks 1 · a.b".into(), Duration::from_secs(20)),
            Step::Type("!".into()),
        ]
    );
}

/// demo.tape, replayed: a shell in tmux with the built `courier` first on
/// PATH types what the tape types, presses what it presses, and waits for
/// every screen the tape waits for. The tape registers a package through
/// the form, creates a task, watches it succeed, triages the demo's
/// failure, looks at its output, marks both causes, re-executes them after
/// the confirmation and quits.
#[test]
fn demo_tape_replays_against_the_real_binary() {
    let tape_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo.tape");
    let tape = std::fs::read_to_string(&tape_path).expect("demo.tape");
    let steps = parse_tape(&tape);
    // The tape must keep walking the whole flow the issue asks for.
    let waits: Vec<&str> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Wait(t, _) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    for must in [
        "Register a package",
        "registered",
        "New task",
        "created task",
        "✔ completed",
        "✖ exit 3",
        "libodbc",
        "Re-execute 2 destinations",
        "re-executing",
    ] {
        assert!(
            waits.iter().any(|w| w.contains(must)),
            "demo.tape no longer waits for {must:?} (waits: {waits:?})"
        );
    }

    let home = tempfile::tempdir().unwrap();
    let bin_dir = courier_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let tmp = home.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let env = [
        ("PATH", path),
        ("HOME", home.path().display().to_string()),
        ("TMPDIR", tmp.display().to_string()),
        (
            "XDG_CONFIG_HOME",
            home.path().join("config").display().to_string(),
        ),
        (
            "XDG_DATA_HOME",
            home.path().join("data").display().to_string(),
        ),
        ("PS1", "$ ".to_string()),
    ];
    let shell = vec![
        "bash".to_string(),
        "--norc".to_string(),
        "--noprofile".to_string(),
    ];
    let tmux = Tmux::start(120, 40, home.path(), &env, &shell);
    let demo_logs = || {
        // The demo keeps its agents' logs in its scratch dir under TMPDIR.
        let mut s = String::new();
        for e in walk(&tmp) {
            if e.extension().is_some_and(|x| x == "log") {
                s.push_str(&format!(
                    "--- {} ---\n{}\n",
                    e.display(),
                    crate::procs::tail(&e, 2048)
                ));
            }
        }
        s
    };
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Type(text) => tmux.type_text(text),
            Step::Key(k, n) => {
                for _ in 0..*n {
                    tmux.send(k);
                    // A lone Escape followed at once by a key reads as
                    // Alt+key; a typist leaves a gap, so does the replay.
                    std::thread::sleep(Duration::from_millis(60));
                }
            }
            // The tape's pauses are for the viewer; the waits decide.
            Step::Sleep(d) => std::thread::sleep((*d).min(Duration::from_millis(300))),
            Step::Wait(text, timeout) => {
                // Loaded CI machines get more time than the viewer needs.
                let t = (*timeout * 3).max(Duration::from_secs(20));
                let screen =
                    tmux.wait_for(text, t, || format!("step {i}: {step:?}\n{}", demo_logs()));
                // COURIER_TAPE_SCREENS=DIR keeps the screen of every wait,
                // to review what the tape shows without VHS.
                if let Some(dir) = std::env::var_os("COURIER_TAPE_SCREENS") {
                    let name = format!("{i:03}.txt");
                    std::fs::write(Path::new(&dir).join(name), &screen).unwrap();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(120));
    }
    // q left the console: the demo cleaned up its scratch dir and agents.
    wait_until(
        Duration::from_secs(20),
        "the demo to end and leave the shell",
        || {
            let s = tmux.screen();
            let gone = !s.contains("Triage");
            gone.then_some(())
        },
        || tmux.screen(),
    );
    wait_until(
        Duration::from_secs(20),
        "the demo to remove its scratch dir",
        || {
            let left: Vec<_> = std::fs::read_dir(&tmp)
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("courier-demo-"))
                .collect();
            left.is_empty().then_some(())
        },
        || format!("{:?}", walk(&tmp)),
    );
    assert!(!tmux.pane_dead(), "the shell should still run");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
