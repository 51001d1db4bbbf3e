//! Detection rules: how an agent tells whether a package's software is
//! installed, independently of what its installer's exit code says.
//!
//! A package carries a list of rules, all of which must hold for the
//! software to count as installed. The agent evaluates them before an
//! install or uninstall (nothing to do: the destination ends at once) and
//! after it (the exit code is checked against what is really there). The
//! rules are text on the command line and in the JSON contract
//! (`msi:{…}`, `file:PATH>=1.2`, …); here they are parsed once, into
//! [`Rule`], and shown again in one canonical spelling.
//!
//! Invariant: pure; the agent does the looking (`agent::detect`).

use std::fmt;

use serde::{Deserialize, Serialize};

use super::Action;
use super::policy::is_product_code;

/// The most rules a package may carry, and the longest one.
pub const MAX_RULES: usize = 16;
const MAX_RULE_LEN: usize = 1024;

/// One detection rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// `msi:{ProductCode}`: Windows Installer has the product registered.
    Msi { product_code: String },
    /// `file:PATH`, `file:PATH>=VERSION` (the file's version resource, for
    /// Windows executables), `file:PATH#SHA256`.
    File { path: String, check: FileCheck },
    /// `registry:KEY\VALUE[=DATA]` (Windows): the value exists, with this
    /// data when given.
    Registry {
        key: String,
        value: String,
        data: Option<String>,
    },
    /// `dpkg:NAME[>=VERSION]`: a Debian package is installed.
    Dpkg {
        name: String,
        min_version: Option<String>,
    },
    /// `rpm:NAME[>=VERSION]`: an RPM package is installed.
    Rpm {
        name: String,
        min_version: Option<String>,
    },
    /// `command:CMD`: the command exits 0.
    Command { command: String },
}

/// What a `file:` rule checks besides the file's existence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileCheck {
    Exists,
    /// The file's version (its Windows version resource) is at least this.
    MinVersion(String),
    /// The file's SHA-256, lowercase hex.
    Sha256(String),
}

/// Registry roots a `registry:` rule may start with, and their short names.
const ROOTS: &[(&str, &str)] = &[
    ("HKEY_LOCAL_MACHINE", "HKLM"),
    ("HKEY_CURRENT_USER", "HKCU"),
    ("HKEY_CLASSES_ROOT", "HKCR"),
    ("HKEY_USERS", "HKU"),
];

const KINDS: &str = "msi:, file:, registry:, dpkg:, rpm: or command:";

impl std::str::FromStr for Rule {
    type Err = String;

    /// Parses one rule; the error names the rule and what is wrong with it.
    fn from_str(text: &str) -> Result<Rule, String> {
        let bad = |why: &str| format!("detection rule '{text}': {why}");
        let t = text.trim();
        if t.len() > MAX_RULE_LEN {
            return Err(bad(&format!("longer than {MAX_RULE_LEN} bytes")));
        }
        if t.chars().any(char::is_control) {
            return Err(bad("contains a control character"));
        }
        let Some((kind, rest)) = t.split_once(':') else {
            return Err(bad(&format!("starts with none of {KINDS}")));
        };
        let rest = rest.trim();
        if rest.is_empty() {
            return Err(bad("says nothing after the colon"));
        }
        // NAME or NAME>=VERSION.
        let versioned = |s: &str| -> Result<(String, Option<String>), String> {
            match s.split_once(">=") {
                Some((n, v)) if n.trim().is_empty() || v.trim().is_empty() => {
                    Err(bad("needs NAME>=VERSION with both parts"))
                }
                Some((n, v)) => Ok((n.trim().to_string(), Some(v.trim().to_string()))),
                None => Ok((s.to_string(), None)),
            }
        };
        match kind.trim().to_ascii_lowercase().as_str() {
            "msi" => {
                if !is_product_code(rest) {
                    return Err(bad(
                        "needs a ProductCode like {12345678-ABCD-1234-ABCD-1234567890AB}",
                    ));
                }
                Ok(Rule::Msi {
                    product_code: rest.to_ascii_uppercase(),
                })
            }
            "file" => {
                if let Some((path, hash)) = rest.rsplit_once('#')
                    && hash.len() == 64
                    && hash.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return Ok(Rule::File {
                        path: path.trim().to_string(),
                        check: FileCheck::Sha256(hash.to_ascii_lowercase()),
                    });
                }
                let (path, version) = versioned(rest)?;
                if !is_absolute(&path) {
                    return Err(bad(
                        "needs an absolute path (/opt/app/bin or C:\\App\\app.exe)",
                    ));
                }
                Ok(Rule::File {
                    path,
                    check: version.map_or(FileCheck::Exists, FileCheck::MinVersion),
                })
            }
            "registry" => {
                let (path, data) = match rest.split_once('=') {
                    Some((p, d)) => (p, Some(d.to_string())),
                    None => (rest, None),
                };
                let Some((key, value)) = path.rsplit_once('\\') else {
                    return Err(bad("needs KEY\\VALUE, as HKLM\\SOFTWARE\\Vendor\\Version"));
                };
                let (root, below) = key.split_once('\\').unwrap_or((key, ""));
                let Some((_, short)) = ROOTS.iter().find(|(long, short)| {
                    root.eq_ignore_ascii_case(long) || root.eq_ignore_ascii_case(short)
                }) else {
                    return Err(bad("the key starts with none of HKLM, HKCU, HKCR, HKU"));
                };
                if below.is_empty() || value.is_empty() {
                    return Err(bad("needs KEY\\VALUE, as HKLM\\SOFTWARE\\Vendor\\Version"));
                }
                Ok(Rule::Registry {
                    key: format!("{short}\\{below}"),
                    value: value.to_string(),
                    data,
                })
            }
            k @ ("dpkg" | "rpm") => {
                let (name, min_version) = versioned(rest)?;
                let ok = name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-._".contains(c));
                if !ok {
                    return Err(bad("a package name has only letters, digits and + - . _"));
                }
                Ok(if k == "dpkg" {
                    Rule::Dpkg { name, min_version }
                } else {
                    Rule::Rpm { name, min_version }
                })
            }
            "command" => Ok(Rule::Command {
                command: rest.to_string(),
            }),
            other => Err(bad(&format!("unknown kind '{other}:', use {KINDS}"))),
        }
    }
}

/// A path rooted on either family: `/…`, `C:\…`, `%ProgramFiles%\…`.
fn is_absolute(p: &str) -> bool {
    let b = p.as_bytes();
    p.starts_with('/')
        || p.starts_with("\\\\")
        || p.starts_with('%')
        || (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'\\')
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let min = |v: &Option<String>| v.as_ref().map(|v| format!(">={v}")).unwrap_or_default();
        match self {
            Rule::Msi { product_code } => write!(f, "msi:{product_code}"),
            Rule::File { path, check } => match check {
                FileCheck::Exists => write!(f, "file:{path}"),
                FileCheck::MinVersion(v) => write!(f, "file:{path}>={v}"),
                FileCheck::Sha256(h) => write!(f, "file:{path}#{h}"),
            },
            Rule::Registry { key, value, data } => match data {
                Some(d) => write!(f, "registry:{key}\\{value}={d}"),
                None => write!(f, "registry:{key}\\{value}"),
            },
            Rule::Dpkg { name, min_version } => write!(f, "dpkg:{name}{}", min(min_version)),
            Rule::Rpm { name, min_version } => write!(f, "rpm:{name}{}", min(min_version)),
            Rule::Command { command } => write!(f, "command:{command}"),
        }
    }
}

/// Parses a package's rules into their canonical spelling, refusing
/// duplicates and more than [`MAX_RULES`]; the error is one line.
pub fn canonical(rules: &[String]) -> Result<Vec<String>, String> {
    if rules.len() > MAX_RULES {
        return Err(format!(
            "{} detection rules: at most {MAX_RULES}",
            rules.len()
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(rules.len());
    for r in rules {
        let shown = r.parse::<Rule>()?.to_string();
        if out.contains(&shown) {
            return Err(format!("detection rule '{shown}' is given twice"));
        }
        out.push(shown);
    }
    Ok(out)
}

/// What detection said about one attempt, beside its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detection {
    /// Before running anything: what the action would bring about is
    /// already true (installed already, or nothing to uninstall).
    AlreadyDone,
    /// After a run whose exit code said success: detection agrees.
    Verified,
    /// After a run whose exit code said success: detection disagrees, so
    /// the destination failed.
    NotDone,
    /// After a run whose exit code said failure: detection says it is
    /// done anyway, so the destination succeeded, flagged.
    DoneDespiteExit,
}

impl Detection {
    pub const ALL: [Detection; 4] = [
        Detection::AlreadyDone,
        Detection::Verified,
        Detection::NotDone,
        Detection::DoneDespiteExit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Detection::AlreadyDone => "already_done",
            Detection::Verified => "verified",
            Detection::NotDone => "not_done",
            Detection::DoneDespiteExit => "done_despite_exit",
        }
    }

    pub fn parse(s: &str) -> Option<Detection> {
        Detection::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// Detection overruled the exit code: triage shows the destination
    /// under this verdict, whatever its output said.
    pub fn overrules(self) -> bool {
        matches!(self, Detection::NotDone | Detection::DoneDespiteExit)
    }

    /// The line stored with the destination (None for a plain verified
    /// success): what an admin reads in the task and in triage.
    pub fn message(self, action: Action, code: Option<i64>) -> Option<String> {
        let code = code.map(|c| c.to_string()).unwrap_or_else(|| "?".into());
        let uninstall = action == Action::Uninstall;
        Some(match self {
            Detection::Verified => return None,
            Detection::AlreadyDone if uninstall => "not installed: nothing to uninstall".into(),
            Detection::AlreadyDone => "already installed".into(),
            Detection::NotDone if uninstall => {
                "uninstaller reported success but the software is still detected".into()
            }
            Detection::NotDone => {
                "installer reported success but the software is not detected".into()
            }
            Detection::DoneDespiteExit if uninstall => format!("not detected despite exit {code}"),
            Detection::DoneDespiteExit => format!("detected despite exit {code}"),
        })
    }
}

/// What detection concludes from the rules' result after a run: `detected`
/// is whether every rule held, `succeeded` whether the exit code said
/// success. `Verified` when the exit code's verdict stands (a failure that
/// detection confirms included).
pub fn after_run(action: Action, succeeded: bool, detected: bool) -> Detection {
    let done = match action {
        Action::Uninstall => !detected,
        _ => detected,
    };
    match (succeeded, done) {
        (true, true) => Detection::Verified,
        (true, false) => Detection::NotDone,
        (false, true) => Detection::DoneDespiteExit,
        // The failure stands; detection only confirms it.
        (false, false) => Detection::Verified,
    }
}

/// Before a run: whether there is nothing to do.
pub fn already_done(action: Action, detected: bool) -> bool {
    match action {
        Action::Uninstall => !detected,
        _ => detected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Rule, String> {
        s.parse()
    }

    #[test]
    fn rules_parse_into_one_spelling() {
        let cases = [
            (
                "msi:{6f1c2b9a-3d4e-4f50-8a61-7b2c3d4e5f60}",
                "msi:{6F1C2B9A-3D4E-4F50-8A61-7B2C3D4E5F60}",
            ),
            ("file:/opt/app/bin/app", "file:/opt/app/bin/app"),
            ("FILE:C:\\App\\app.exe >= 2.1", "file:C:\\App\\app.exe>=2.1"),
            (
                "registry:HKEY_LOCAL_MACHINE\\SOFTWARE\\Vendor\\Version=2.0",
                "registry:HKLM\\SOFTWARE\\Vendor\\Version=2.0",
            ),
            (
                "registry:hkcu\\Software\\X\\Y",
                "registry:HKCU\\Software\\X\\Y",
            ),
            ("dpkg:hello>=2.10-3", "dpkg:hello>=2.10-3"),
            ("rpm:bash", "rpm:bash"),
            (
                "command:test -x /usr/bin/app",
                "command:test -x /usr/bin/app",
            ),
        ];
        for (given, shown) in cases {
            let r = parse(given).unwrap_or_else(|e| panic!("{given}: {e}"));
            assert_eq!(r.to_string(), shown, "{given}");
            assert_eq!(parse(shown), Ok(r), "{shown} parses back");
        }
        let h = "AB".repeat(32);
        assert_eq!(
            parse(&format!("file:/opt/a#{h}")),
            Ok(Rule::File {
                path: "/opt/a".into(),
                check: FileCheck::Sha256(h.to_lowercase())
            })
        );
        // A # that is not a hash is part of the path.
        assert_eq!(
            parse("file:/opt/a#1"),
            Ok(Rule::File {
                path: "/opt/a#1".into(),
                check: FileCheck::Exists
            })
        );
    }

    #[test]
    fn a_bad_rule_is_one_line_naming_it() {
        for (given, says) in [
            ("exists:/opt", "unknown kind 'exists:'"),
            ("/opt/app", "starts with none of"),
            ("msi:{X} /qn & del", "ProductCode"),
            ("file:relative/app", "absolute path"),
            ("file:/opt/a>=", "both parts"),
            ("registry:SOFTWARE\\X\\Y", "HKLM"),
            ("registry:HKLM\\Version", "KEY\\VALUE"),
            ("dpkg:hello world", "package name"),
            ("rpm:", "nothing after"),
            ("command:a\nb", "control character"),
            ("zip:/x", "unknown kind 'zip:'"),
        ] {
            let e = parse(given).unwrap_err();
            assert!(e.contains(says), "{given}: {e}");
            assert!(e.starts_with("detection rule '"), "{e}");
            assert!(!e.contains('\n') || given.contains('\n'), "{e}");
        }
        let many: Vec<String> = (0..17).map(|i| format!("file:/x{i}")).collect();
        assert!(canonical(&many).unwrap_err().contains("at most 16"));
        let twice = vec!["dpkg:a".to_string(), "DPKG: a".to_string()];
        assert!(canonical(&twice).unwrap_err().contains("given twice"));
    }

    #[test]
    fn detection_decides_before_and_after() {
        use Action::{Install, Uninstall};
        assert!(already_done(Install, true));
        assert!(!already_done(Install, false));
        assert!(already_done(Uninstall, false));
        assert_eq!(after_run(Install, true, true), Detection::Verified);
        assert_eq!(after_run(Install, true, false), Detection::NotDone);
        assert_eq!(after_run(Install, false, true), Detection::DoneDespiteExit);
        assert_eq!(after_run(Uninstall, true, true), Detection::NotDone);
        assert_eq!(
            after_run(Uninstall, false, false),
            Detection::DoneDespiteExit
        );
        assert_eq!(
            Detection::DoneDespiteExit
                .message(Install, Some(1603))
                .as_deref(),
            Some("detected despite exit 1603")
        );
        assert!(
            Detection::NotDone
                .message(Uninstall, Some(0))
                .is_some_and(|m| m.contains("still detected"))
        );
        for d in Detection::ALL {
            assert_eq!(Detection::parse(d.as_str()), Some(d));
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(json, format!("\"{}\"", d.as_str()));
        }
    }
}
