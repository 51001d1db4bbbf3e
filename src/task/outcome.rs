//! What installer exit codes mean, and the line a finished attempt is
//! known by: shared by the agent (to decide), the server (to retry and to
//! record) and every screen that shows a code.
//!
//! An installer's exit code is the only verdict the agent gets, so the
//! decision is made in one place: the package's success codes say what
//! counts as success, and a few Windows Installer codes carry extra meaning
//! (a restart is needed, another installation holds the lock) whatever the
//! package says.

/// What an exit code means for the destination's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The installation succeeded and nothing more is needed.
    Success,
    /// The installation succeeded but takes full effect only after a restart
    /// (3010, or 1641 when the installer started the restart itself).
    SuccessRebootRequired,
    /// Another installation was running (1618): the same command is worth
    /// running again later, unchanged.
    RetryLater,
    /// Anything else: the admin has to look at it.
    Failure,
}

/// `ERROR_SUCCESS_REBOOT_REQUIRED`: succeeded, a restart is needed.
const REBOOT_REQUIRED: i64 = 3010;
/// `ERROR_SUCCESS_REBOOT_INITIATED`: succeeded, the installer restarts.
const REBOOT_INITIATED: i64 = 1641;
/// `ERROR_INSTALL_ALREADY_RUNNING`: Windows Installer's lock is held.
const ALREADY_RUNNING: i64 = 1618;

/// Decides what `code` means, given the codes the package counts as success.
///
/// A restart code counts as success only when the package lists it, so an
/// admin who wants 3010 treated as a failure can say so by leaving it out.
pub fn classify(code: i64, success_codes: &[i64]) -> Verdict {
    if success_codes.contains(&code) {
        if code == REBOOT_REQUIRED || code == REBOOT_INITIATED {
            Verdict::SuccessRebootRequired
        } else {
            Verdict::Success
        }
    } else if code == ALREADY_RUNNING {
        Verdict::RetryLater
    } else {
        Verdict::Failure
    }
}

/// A short explanation of a common installer exit code, for whoever reads
/// a failed destination's row: what happened and, where it helps, what to
/// look at. None for codes without a well-known meaning.
///
/// Windows reports exit codes as unsigned 32-bit values; they arrive here as
/// the signed value of the same bits, so `0x80070005` is `-2147024891`.
pub fn meaning(code: i64) -> Option<&'static str> {
    Some(match code {
        0 => "success",
        1 => "general error (the installer's own failure code)",
        2 => "general error, often a bad argument or a missing file",
        5 => "access denied (run as an administrator?)",
        126 => "command found but not executable (check the file's permissions)",
        127 => "command not found (check the command and PATH)",
        1602 => "the user cancelled the installation",
        1603 => "fatal error during installation (see the Windows Installer log)",
        1605 => "the product is not installed (nothing to uninstall or change)",
        1618 => "another installation is in progress; retry later",
        1619 => "the installation package could not be opened (missing or damaged)",
        1620 => "the installation package could not be opened (not a valid package)",
        1622 => "the installation log file could not be opened (check the /l path)",
        1625 => "the installation is forbidden by system policy",
        1627 => {
            "function failed during execution, often a custom action (see the Windows Installer log)"
        }
        1633 => "this platform is not supported by the package (32/64-bit or OS)",
        1638 => "another version of this product is already installed",
        1639 => "invalid command line argument",
        1641 => "success; the installer started a restart",
        3010 => "success; a restart is required to complete the installation",
        // 0x80070005, E_ACCESSDENIED as an HRESULT.
        -2147024891 => "access denied (run as an administrator?)",
        _ => return None,
    })
}

/// How an attempt ended, as data: what the agent saw, before any prose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending<'a> {
    /// The command exited with `code`, judged `verdict`; `said` is the
    /// last line it printed, if any.
    Exited {
        code: i64,
        verdict: Verdict,
        said: Option<&'a str>,
    },
    /// No exit code: the download failed, the command timed out or was
    /// killed; `reason` says which.
    Stopped { reason: Option<&'a str> },
    /// The package's detection rules decided: nothing was run (already
    /// done), or they overruled the exit code `code`. `said` is the rule
    /// that did not hold, when one did not.
    Detected {
        code: Option<i64>,
        detection: super::detect::Detection,
        action: super::Action,
        said: Option<&'a str>,
    },
}

impl Ending<'_> {
    /// The line stored with the destination: the exit code and its
    /// meaning, or what the installer said when the code has no known
    /// meaning; None for a plain success.
    pub fn message(&self) -> Option<String> {
        match *self {
            Ending::Exited {
                verdict: Verdict::Success,
                ..
            } => None,
            Ending::Exited {
                verdict: Verdict::SuccessRebootRequired,
                ..
            } => Some("reboot required".into()),
            Ending::Exited {
                code,
                verdict: Verdict::RetryLater,
                ..
            } => Some(format!(
                "exit {code}: {}",
                meaning(code).unwrap_or("retry later")
            )),
            Ending::Exited {
                code,
                verdict: Verdict::Failure,
                said,
            } => Some(match (meaning(code), said) {
                (Some(m), _) => format!("exit {code}: {m}"),
                (None, Some(l)) => format!("exit {code}: {l}"),
                (None, None) => format!("exit {code}"),
            }),
            Ending::Stopped { reason } => reason.map(str::to_string),
            Ending::Detected {
                code,
                detection,
                action,
                said,
            } => {
                let m = detection.message(action, code)?;
                Some(match said {
                    Some(s) => format!("{m} ({s})"),
                    None => m,
                })
            }
        }
    }

    /// One line for the event log, after the state's name: the exit code
    /// with its meaning and what the attempt said.
    pub fn describe(&self) -> String {
        match *self {
            Ending::Exited {
                code,
                verdict: verdict @ (Verdict::Success | Verdict::SuccessRebootRequired),
                ..
            } => {
                let mut s = format!(", exit {code}");
                if let Some(m) = meaning(code) {
                    s.push_str(&format!(" ({m})"));
                }
                if verdict == Verdict::SuccessRebootRequired {
                    s.push_str(": reboot required");
                }
                s
            }
            Ending::Exited { .. } | Ending::Detected { .. } => {
                format!(": {}", self.message().unwrap_or_default())
            }
            Ending::Stopped { reason: Some(r) } if !r.is_empty() => format!(": {r}"),
            Ending::Stopped { .. } => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT_SUCCESS: &[i64] = &[0, 3010, 1641];

    #[test]
    fn success_codes_decide_success() {
        assert_eq!(classify(0, DEFAULT_SUCCESS), Verdict::Success);
        assert_eq!(classify(0, &[]), Verdict::Failure);
        assert_eq!(classify(42, &[0, 42]), Verdict::Success);
        assert_eq!(classify(1, DEFAULT_SUCCESS), Verdict::Failure);
        assert_eq!(classify(1603, DEFAULT_SUCCESS), Verdict::Failure);
        assert_eq!(classify(-1, DEFAULT_SUCCESS), Verdict::Failure);
    }

    #[test]
    fn restart_codes_succeed_only_when_listed() {
        assert_eq!(
            classify(3010, DEFAULT_SUCCESS),
            Verdict::SuccessRebootRequired
        );
        assert_eq!(
            classify(1641, DEFAULT_SUCCESS),
            Verdict::SuccessRebootRequired
        );
        assert_eq!(classify(3010, &[0]), Verdict::Failure);
    }

    #[test]
    fn install_already_running_is_retried() {
        assert_eq!(classify(1618, DEFAULT_SUCCESS), Verdict::RetryLater);
        // An admin who lists 1618 as success gets what they asked for.
        assert_eq!(classify(1618, &[0, 1618]), Verdict::Success);
    }

    #[test]
    fn an_ending_is_told_from_its_data() {
        let failed = |code, said| Ending::Exited {
            code,
            verdict: classify(code, DEFAULT_SUCCESS),
            said,
        };
        assert_eq!(
            failed(1603, Some("ignored: the code says more"))
                .message()
                .as_deref(),
            Some("exit 1603: fatal error during installation (see the Windows Installer log)")
        );
        assert_eq!(
            failed(3, Some("error: disk full on /opt"))
                .message()
                .as_deref(),
            Some("exit 3: error: disk full on /opt")
        );
        assert_eq!(
            failed(424242, None).message().as_deref(),
            Some("exit 424242")
        );
        assert_eq!(failed(0, None).message(), None);
        assert_eq!(failed(0, None).describe(), ", exit 0 (success)");
        assert_eq!(
            failed(3010, None).message().as_deref(),
            Some("reboot required")
        );
        assert!(failed(3010, None).describe().ends_with(": reboot required"));
        assert_eq!(
            failed(1618, None).message().as_deref(),
            Some("exit 1618: another installation is in progress; retry later")
        );
        assert_eq!(failed(7, Some("x")).describe(), ": exit 7: x");
        let timeout = Ending::Stopped {
            reason: Some("timed out after 5 s and was killed"),
        };
        assert_eq!(timeout.describe(), ": timed out after 5 s and was killed");
        assert_eq!(Ending::Stopped { reason: None }.message(), None);
    }

    #[test]
    fn common_codes_have_a_meaning() {
        for code in [
            0, 1, 2, 5, 126, 127, 1602, 1603, 1605, 1618, 1619, 1620, 1622, 1625, 1627, 1633, 1638,
            1639, 1641, 3010,
        ] {
            let text = meaning(code).unwrap_or_else(|| panic!("{code} has no meaning"));
            assert!(!text.is_empty() && !text.ends_with('.'), "{code}: {text}");
        }
        assert_eq!(meaning(0x8007_0005_u32 as i32 as i64), meaning(5));
        assert!(meaning(1618).is_some_and(|m| m.contains("another installation")));
        assert_eq!(meaning(424242), None);
    }
}
