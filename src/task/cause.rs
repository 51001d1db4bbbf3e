//! Why a destination failed, as a signature that groups failures: the
//! outcome (exit code, and the installer's failing action where the output
//! names it) plus the last meaningful line of output, normalised so that
//! numbers, paths, hosts and GUIDs do not split one error into many.
//!
//! Two different errors that exit with the same code are two causes; the
//! same error on many tasks and hosts is one. An exit code's meaning is a
//! Windows installer's convention, so it is offered only for Windows
//! destinations, and as a hint beside the line, never in its place.
//!
//! Invariant: pure functions over strings; no I/O.

use super::outcome::meaning;

/// What one failure's cause is told from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts<'a> {
    pub exit_code: Option<i64>,
    /// The destination runs Windows: only there do exit-code meanings
    /// apply.
    pub windows: bool,
    /// The installer's failing action, where the output names it
    /// (`failing_action`).
    pub action: Option<&'a str>,
    /// The last meaningful line of the command's output (`last_line`).
    pub said: Option<&'a str>,
    /// The stored message: the code's meaning, the command's last line or
    /// why the attempt stopped.
    pub message: Option<&'a str>,
    /// Detection overruled the exit code (`task::detect::Detection::
    /// overrules`): then the message, which says so, is the cause.
    pub overruled: bool,
}

/// A failure's cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// Equal signatures are one cause: `exit 5 · fatal: disk quota
    /// exceeded on <path>`.
    pub signature: String,
    /// The exit code's meaning, when the destination runs Windows.
    pub hint: Option<&'static str>,
}

/// The cause of a failure.
pub fn cause(f: &Facts) -> Cause {
    let mut parts = Vec::new();
    if let Some(code) = f.exit_code {
        parts.push(format!("exit {code}"));
    }
    if let Some(a) = f.action.filter(|a| !a.trim().is_empty()) {
        parts.push(format!("action {}", a.trim()));
    }
    let said = f.said.filter(|_| !f.overruled);
    let line = said.map(str::trim).filter(|l| !l.is_empty()).or_else(|| {
        // Without output, the message tells what is known, unless it only
        // repeats the code and its meaning.
        let m = f.message?.trim();
        let m = match f.exit_code {
            Some(code) => {
                let m = m.strip_prefix(&format!("exit {code}")).unwrap_or(m);
                let m = m.strip_prefix(':').unwrap_or(m).trim();
                if Some(m) == meaning(code) { "" } else { m }
            }
            None => m,
        };
        (!m.is_empty()).then_some(m)
    });
    match line {
        Some(l) => parts.push(normalise(l)),
        None if parts.is_empty() => parts.push("no message".into()),
        None => {}
    }
    Cause {
        signature: parts.join(" · "),
        hint: f
            .exit_code
            .filter(|_| f.windows)
            .and_then(meaning)
            .filter(|m| *m != "success"),
    }
}

/// Words that mark a line as the one that says what went wrong.
const ERROR_WORDS: &[&str] = &[
    "error",
    "fatal",
    "fail",
    "denied",
    "not found",
    "no such",
    "cannot",
    "can't",
    "unable",
    "exception",
    "refused",
    "missing",
    "exceeded",
    "invalid",
    "panic",
];

/// The last meaningful line of a command's output: the last line that
/// reads like an error, else the last line with a word in it. Blank
/// lines, lines of punctuation or numbers only, and the mark of a cut
/// output are not meaningful.
pub fn last_line(output: &str) -> Option<String> {
    let lines: Vec<String> = output
        .lines()
        .map(|l| {
            strip_escapes(l)
                .trim()
                .trim_start_matches('…')
                .trim()
                .to_string()
        })
        .filter(|l| l.chars().any(char::is_alphabetic))
        .collect();
    let is_error = |l: &&String| {
        let low = l.to_lowercase();
        ERROR_WORDS.iter().any(|w| low.contains(w))
    };
    let chosen = lines.iter().rev().find(is_error).or_else(|| lines.last())?;
    Some(chosen.chars().take(240).collect())
}

/// A line without terminal colour sequences (`ESC [ … letter`) and
/// control characters.
fn strip_escapes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for x in chars.by_ref() {
                    if x.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out
}

/// The installer's action that failed, where its output names it (the
/// Windows Installer's log: `CustomAction X returned actual error code`,
/// `Action ended …: X. Return value 3.`, `Error 1722. … Action X, …`).
pub fn failing_action(output: &str) -> Option<String> {
    let name = |s: &str| -> Option<String> {
        let n: String = s
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
            .collect();
        let n = n.trim_end_matches('.').to_string();
        (!n.is_empty()).then_some(n)
    };
    for line in output.lines().rev() {
        let l = line.trim();
        if let Some(rest) = l.split("CustomAction ").nth(1)
            && rest.contains("returned actual error code")
        {
            return name(rest);
        }
        if l.contains("Return value 3")
            && let Some(rest) = l.split("Action ended ").nth(1)
        {
            // "Action ended 12:00:01: InstallFinalize. Return value 3."
            let after = rest.split(": ").nth(1).unwrap_or(rest);
            return name(after);
        }
        if let Some(rest) = l.split(" Action ").nth(1)
            && rest.contains(", location:")
        {
            return name(rest);
        }
    }
    None
}

/// What a Windows Installer log says went wrong: the action that failed
/// first and the `Error NNNN.` message it logged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MsiFailure {
    pub action: Option<String>,
    pub error: Option<String>,
}

/// Reads a verbose Windows Installer log (`/l*v`) for why it failed. The
/// failing action is the first to end with `Return value 3` (a custom
/// action's "returned actual error code" line names it earlier still);
/// Wine's msi logs a failed action as `Return value 0`, so that is the
/// fallback. The error is the first `Error NNNN.` line that is not a
/// debug note.
pub fn msi_log_failure(log: &str) -> MsiFailure {
    let name = |s: &str| -> Option<String> {
        let n: String = s
            .trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
            .collect();
        let n = n.trim_end_matches('.').to_string();
        (!n.is_empty()).then_some(n)
    };
    // "Action ended 12:00:01: InstallFinalize. Return value 3."
    let ended_with = |line: &str, value: &str| -> Option<String> {
        let rest = line.split("Action ended ").nth(1)?;
        if !rest.trim_end().ends_with(&format!("Return value {value}.")) {
            return None;
        }
        name(rest.split(": ").nth(1)?)
    };
    let lines = || log.lines().map(str::trim);
    let custom = lines().find_map(|l| {
        l.split("CustomAction ")
            .nth(1)
            .filter(|r| r.contains("returned actual error code"))
            .and_then(name)
    });
    let action = custom
        .or_else(|| lines().find_map(|l| ended_with(l, "3")))
        .or_else(|| {
            lines()
                .find_map(|l| ended_with(l, "0"))
                .filter(|a| !a.eq_ignore_ascii_case("INSTALL"))
        });
    let error = lines().find_map(|l| {
        if l.contains("DEBUG: Error") {
            return None;
        }
        let at = l.find("Error ")?;
        let rest = &l[at..];
        let code = rest["Error ".len()..].split(['.', ':']).next()?;
        (code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit()))
            .then(|| rest.chars().take(240).collect())
    });
    MsiFailure { action, error }
}

/// A line with what differs between occurrences of one error masked:
/// GUIDs as `<guid>`, hosts and URLs as `<host>`, paths as `<path>`, and
/// every other run of digits (or a long hexadecimal number) as `N`.
pub fn normalise(line: &str) -> String {
    line.split_whitespace()
        .map(mask_word)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Top-level domains that tell a host name from a file name.
const TLDS: &[&str] = &[
    "com",
    "net",
    "org",
    "local",
    "lan",
    "internal",
    "intra",
    "corp",
    "example",
    "test",
    "home",
    "localdomain",
    "io",
    "de",
    "jp",
    "uk",
    "fr",
];

fn mask_word(word: &str) -> String {
    // Punctuation around a word (quotes, brackets, a trailing colon) stays.
    let is_edge = |c: char| "\"'`()[]<>,;:.!?".contains(c);
    let start = word.find(|c: char| !is_edge(c)).unwrap_or(word.len());
    let end = word.rfind(|c: char| !is_edge(c)).map_or(start, |i| {
        i + word[i..].chars().next().map_or(1, char::len_utf8)
    });
    if start >= end {
        return word.to_string();
    }
    let (head, core, tail) = (&word[..start], &word[start..end], &word[end..]);
    let masked = if is_guid(core) {
        "<guid>".to_string()
    } else if core.contains("://") || is_host(core) {
        "<host>".to_string()
    } else if let Some((k, v)) = core.split_once('=')
        && !k.is_empty()
        && !k.contains(['/', '\\'])
    {
        format!("{}={}", mask_numbers(k), mask_word(v))
    } else if is_path(core) {
        "<path>".to_string()
    } else {
        mask_numbers(core)
    };
    format!("{head}{masked}{tail}")
}

fn is_guid(s: &str) -> bool {
    let s = s.trim_start_matches('{').trim_end_matches('}');
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_path(s: &str) -> bool {
    let b = s.as_bytes();
    s.starts_with('/')
        || s.starts_with("~/")
        || s.starts_with("./")
        || s.starts_with("../")
        || s.starts_with("\\\\")
        || (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\')
        || (s.contains('\\') && !s.ends_with('\\'))
        || s.starts_with('%') && s.contains('\\')
}

fn is_host(s: &str) -> bool {
    let s = s.strip_prefix('[').unwrap_or(s);
    // host:port, user@host
    let s = s.rsplit_once('@').map_or(s, |(_, h)| h);
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.chars().all(|c| c.is_ascii_digit()) => (h, Some(p)),
        _ => (s, None),
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let labels: Vec<&str> = host.split('.').collect();
    let ipv4 = labels.len() == 4
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.len() <= 3 && l.chars().all(|c| c.is_ascii_digit()));
    let named = labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && labels
            .last()
            .is_some_and(|t| TLDS.contains(&t.to_ascii_lowercase().as_str()));
    let ipv6 = port.is_none()
        && s.matches(':').count() >= 2
        && s.chars().all(|c| c.is_ascii_hexdigit() || c == ':');
    ipv4 || named || ipv6
}

/// Runs of digits as `N`; a hexadecimal number (`0x…`, or 8 or more hex
/// digits with a digit among them) as one `N`.
fn mask_numbers(s: &str) -> String {
    let hexish = |w: &str| {
        let w = w
            .strip_prefix("0x")
            .or_else(|| w.strip_prefix("0X"))
            .filter(|r| !r.is_empty());
        w.is_some_and(|r| r.chars().all(|c| c.is_ascii_hexdigit()))
    };
    let long_hex = |w: &str| {
        w.len() >= 8
            && w.chars().all(|c| c.is_ascii_hexdigit())
            && w.chars().any(|c| c.is_ascii_digit())
    };
    if hexish(s) || long_hex(s) {
        return "N".into();
    }
    let mut out = String::with_capacity(s.len());
    let mut in_digits = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('N');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(code: i64, said: &str) -> Cause {
        cause(&Facts {
            exit_code: Some(code),
            said: Some(said),
            message: Some("exit 5: access denied (run as an administrator?)"),
            ..Facts::default()
        })
    }

    #[test]
    fn a_linux_failure_is_its_line_not_a_windows_meaning() {
        let c = linux(5, "fatal: disk quota exceeded on /var");
        assert_eq!(c.signature, "exit 5 · fatal: disk quota exceeded on <path>");
        assert_eq!(c.hint, None);
        assert!(!c.signature.contains("access denied"));
    }

    #[test]
    fn the_same_code_with_different_errors_is_two_causes() {
        let a = linux(1, "error: libodbc.so.2 not found");
        let b = linux(
            1,
            "npm ERR! network timeout at https://registry.npmjs.org/x",
        );
        assert_ne!(a.signature, b.signature);
        assert_eq!(a.signature, "exit 1 · error: libodbc.so.N not found");
        assert_eq!(b.signature, "exit 1 · npm ERR! network timeout at <host>");
    }

    #[test]
    fn the_same_error_on_other_hosts_and_paths_is_one_cause() {
        let a = linux(
            2,
            "cannot reach pc-hr-01.corp.example:8443 for /tmp/a1/x.msi after 30 s",
        );
        let b = linux(
            2,
            "cannot reach 10.0.0.7:443 for /var/tmp/zz/x.msi after 600 s",
        );
        assert_eq!(a.signature, b.signature);
        assert_eq!(
            a.signature,
            "exit 2 · cannot reach <host> for <path> after N s"
        );
    }

    #[test]
    fn guids_and_windows_paths_are_masked() {
        assert_eq!(
            normalise(
                r"product {6F1E3D4C-1B2A-4C5D-9E8F-0A1B2C3D4E5F} at C:\Windows\x.dll (0x80070005)"
            ),
            "product <guid> at <path> (N)"
        );
        assert_eq!(normalise("key=C:\\x\\y done"), "key=<path> done");
        assert_eq!(normalise("'/opt/app/bin' missing:"), "'<path>' missing:");
        assert_eq!(normalise("v1.2.30 on host1"), "vN.N.N on hostN");
    }

    #[test]
    fn windows_meanings_are_a_hint_beside_the_line() {
        let c = cause(&Facts {
            exit_code: Some(1603),
            windows: true,
            action: Some("InstallFinalize"),
            said: Some("Product: Courier Hello -- Installation failed."),
            message: None,
            overruled: false,
        });
        assert_eq!(
            c.signature,
            "exit 1603 · action InstallFinalize · Product: Courier Hello -- Installation failed."
        );
        assert!(c.hint.is_some_and(|h| h.contains("fatal error")));
        // Without output the message is used, but not when it only
        // repeats the meaning.
        let bare = cause(&Facts {
            exit_code: Some(1603),
            windows: true,
            message: Some(
                "exit 1603: fatal error during installation (see the Windows Installer log)",
            ),
            ..Facts::default()
        });
        assert_eq!(bare.signature, "exit 1603");
        assert!(bare.hint.is_some());
        let said = cause(&Facts {
            exit_code: Some(3),
            message: Some("exit 3: error: disk full on /opt"),
            ..Facts::default()
        });
        assert_eq!(said.signature, "exit 3 · error: disk full on <path>");
    }

    #[test]
    fn stopped_attempts_are_their_message() {
        let a = cause(&Facts {
            message: Some("download timed out after 600 s: no byte for 60 s"),
            ..Facts::default()
        });
        let b = cause(&Facts {
            message: Some("download timed out after 3600 s: no byte for 60 s"),
            ..Facts::default()
        });
        assert_eq!(a, b);
        assert_eq!(a.signature, "download timed out after N s: no byte for N s");
        assert_eq!(cause(&Facts::default()).signature, "no message");
    }

    #[test]
    fn the_last_meaningful_line_prefers_an_error() {
        let out = "…ing files\nerror: prerequisite missing\ncleaning up\n\n----\n";
        assert_eq!(
            last_line(out).as_deref(),
            Some("error: prerequisite missing")
        );
        assert_eq!(last_line("step 1\nstep 2\n  \n").as_deref(), Some("step 2"));
        assert_eq!(last_line("\n 42 \n---\n"), None);
        assert_eq!(
            last_line("\u{1b}[31mfatal: x\u{1b}[0m\r\n").as_deref(),
            Some("fatal: x")
        );
    }

    #[test]
    fn the_failing_action_is_read_from_an_installer_log() {
        let log = "Action start 12:00:00: InstallFiles.\n\
                   CustomAction WriteConfig returned actual error code 1603 (note this may not be 100% accurate)\n\
                   Action ended 12:00:02: InstallFinalize. Return value 3.\n";
        // The last one named wins: the action the installation ended in.
        assert_eq!(failing_action(log).as_deref(), Some("InstallFinalize"));
        assert_eq!(
            failing_action("CustomAction WriteConfig returned actual error code 1603").as_deref(),
            Some("WriteConfig")
        );
        assert_eq!(
            failing_action(
                "Error 1722. There is a problem. Action CA_Run, location: C:\\x, command: y"
            )
            .as_deref(),
            Some("CA_Run")
        );
        assert_eq!(failing_action("error: nothing of the sort"), None);
    }

    #[test]
    fn a_windows_installer_log_names_the_first_failing_action_and_its_error() {
        let windows = "Action start 12:00:00: InstallFiles.\n\
             Action ended 12:00:01: InstallFiles. Return value 1.\n\
             MSI (s) (F0:A8) [12:00:01:100]: Note: 1: 2205 2:  3: Error\n\
             DEBUG: Error 2826:  Control Line1 on dialog SetupDialog extends beyond\n\
             CustomAction WriteConfig returned actual error code 1603 (note this may not be 100% accurate)\n\
             MSI (s) (F0:A8) [12:00:02:000]: Product: Courier Hello -- Error 1722. There is a problem with this Windows Installer package. Action WriteConfig, location: C:\\x.exe, command: /c exit 1\n\
             Action ended 12:00:02: InstallFinalize. Return value 3.\n\
             Action ended 12:00:02: INSTALL. Return value 3.\n";
        let f = msi_log_failure(windows);
        assert_eq!(f.action.as_deref(), Some("WriteConfig"));
        assert!(
            f.error
                .as_deref()
                .is_some_and(|e| e.starts_with("Error 1722. There is a problem")),
            "{f:?}"
        );
        // Without a custom action's line: the first action ended with 3.
        let plain = "Action ended 1:00:00: CostFinalize. Return value 1.\n\
                     Action ended 1:00:01: InstallValidate. Return value 3.\n\
                     Action ended 1:00:01: INSTALL. Return value 3.\n";
        assert_eq!(
            msi_log_failure(plain).action.as_deref(),
            Some("InstallValidate")
        );
        // Wine: a failed action ends with 0.
        let wine = "Action ended 10:32:54: FailOnPurpose. Return value 1.\n\
                    Action ended 10:32:54: FailOnPurpose. Return value 0.\n\
                    Action ended 10:32:54: InstallFinalize. Return value 0.\n\
                    Action ended 10:32:54: INSTALL. Return value 0.\n";
        assert_eq!(
            msi_log_failure(wine),
            MsiFailure {
                action: Some("FailOnPurpose".into()),
                error: None
            }
        );
        assert_eq!(msi_log_failure("nothing here"), MsiFailure::default());
    }

    #[test]
    fn a_verdict_of_detection_is_its_own_cause_whatever_the_output() {
        let c = cause(&Facts {
            exit_code: Some(0),
            said: Some("Installation completed successfully"),
            message: Some(
                "installer reported success but the software is not detected (file:/opt/a: /opt/a does not exist)",
            ),
            overruled: true,
            ..Facts::default()
        });
        assert_eq!(
            c.signature,
            "exit 0 · installer reported success but the software is not detected (file:/opt/a: <path> does not exist)"
        );
    }
}
