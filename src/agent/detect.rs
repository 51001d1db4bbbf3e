//! Evaluates a package's detection rules (`task::detect`) on this
//! computer: whether its software is really there, whatever an
//! installer's exit code said.
//!
//! A rule that cannot be evaluated here (a registry rule on Linux, a
//! package manager that is not installed, a file that cannot be read)
//! does not hold, and the reason says why, so a wrong rule shows as a
//! failed verification with its cause rather than as a silent success.

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::agent::exec::{self, RunSpec};
use crate::agent::inventory::{DPKG_FORMAT, RPM_FORMAT, from_dpkg, from_rpm};
use crate::task::detect::{FileCheck, Rule};
use crate::task::policy::compare_versions;

/// How long one `command:` rule, or one package manager query, may run.
pub const RULE_TIMEOUT: Duration = Duration::from_secs(60);

/// The most of a file read to find its version resource.
const VERSION_SCAN_MAX: u64 = 256 << 20;

/// What the rules say: whether all hold, and the first that does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub detected: bool,
    /// Why it is not detected (the rule and what was found), or which
    /// rules held.
    pub why: String,
}

/// Evaluates every rule in order, stopping at the first that does not
/// hold. An empty list is never "detected": there is nothing to go by.
pub async fn evaluate(rules: &[String]) -> Finding {
    for text in rules {
        let held = match text.parse::<Rule>() {
            Ok(rule) => holds(&rule).await,
            Err(e) => Err(e),
        };
        if let Err(why) = held {
            return Finding {
                detected: false,
                why: format!("{text}: {why}"),
            };
        }
    }
    Finding {
        detected: !rules.is_empty(),
        why: format!(
            "{} detection rule{} held",
            rules.len(),
            if rules.len() == 1 { "" } else { "s" }
        ),
    }
}

/// Ok when the rule holds; else why not.
async fn holds(rule: &Rule) -> Result<(), String> {
    match rule {
        Rule::Msi { product_code } => msi_registered(product_code),
        Rule::File { path, check } => {
            let (path, check) = (expand(path), check.clone());
            tokio::task::spawn_blocking(move || file_holds(Path::new(&path), &check))
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
        }
        Rule::Registry { key, value, data } => registry_holds(key, value, data.as_deref()),
        Rule::Dpkg { name, min_version } => {
            let text = query("dpkg-query", &["-W", "-f", DPKG_FORMAT, name]).await?;
            let found = from_dpkg(&text).into_iter().find(|p| &p.name == name);
            version_holds(name, found.map(|p| p.version), min_version)
        }
        Rule::Rpm { name, min_version } => {
            let text = query("rpm", &["-q", "--qf", RPM_FORMAT, name]).await?;
            let found = from_rpm(&text).into_iter().find(|p| &p.name == name);
            version_holds(name, found.map(|p| p.version), min_version)
        }
        Rule::Command { command } => {
            let cwd = std::env::temp_dir();
            let out = exec::run(RunSpec {
                command,
                cwd: &cwd,
                timeout: RULE_TIMEOUT,
                tail_bytes: 1024,
                live: None,
                on_start: None,
            })
            .await
            .map_err(|e| format!("cannot run it: {e}"))?;
            match (out.timed_out, out.exit_code) {
                (true, _) => Err(format!("ran past {} s", RULE_TIMEOUT.as_secs())),
                (false, Some(0)) => Ok(()),
                (false, Some(c)) => Err(format!("exited {c}")),
                (false, None) => Err("was killed".into()),
            }
        }
    }
}

/// `found` is None when the package is not installed at all, Some(None)
/// when installed without a version.
fn version_holds(
    name: &str,
    found: Option<Option<String>>,
    min: &Option<String>,
) -> Result<(), String> {
    let Some(version) = found else {
        return Err(format!("{name} is not installed"));
    };
    match (min, version) {
        (None, _) => Ok(()),
        (Some(m), Some(v)) if compare_versions(&v, m).is_ge() => Ok(()),
        (Some(m), Some(v)) => Err(format!("{name} {v} is older than {m}")),
        (Some(_), None) => Err(format!("{name} has no version")),
    }
}

/// A package manager's answer; its absence or failure is the reason the
/// rule does not hold.
async fn query(program: &str, args: &[&str]) -> Result<String, String> {
    let run = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(RULE_TIMEOUT, run).await {
        Err(_) => Err(format!("{program} ran past {} s", RULE_TIMEOUT.as_secs())),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(format!("{program} is not installed here"))
        }
        Ok(Err(e)) => Err(format!("cannot run {program}: {e}")),
        // dpkg-query and rpm exit non-zero for a package they do not know:
        // what they printed still says what is installed.
        Ok(Ok(out)) => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
    }
}

fn file_holds(path: &Path, check: &FileCheck) -> Result<(), String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{shown} does not exist"),
        _ => format!("cannot read {shown}: {e}"),
    })?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a file"));
    }
    match check {
        FileCheck::Exists => Ok(()),
        FileCheck::Sha256(want) => {
            let mut f =
                std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
            let mut h = Sha256::new();
            std::io::copy(&mut f, &mut h).map_err(|e| format!("cannot read {shown}: {e}"))?;
            let got = hex::encode(h.finalize());
            if &got == want {
                Ok(())
            } else {
                Err(format!("{shown} has SHA-256 {got}"))
            }
        }
        FileCheck::MinVersion(min) => {
            let mut bytes = Vec::new();
            std::fs::File::open(path)
                .and_then(|f| f.take(VERSION_SCAN_MAX).read_to_end(&mut bytes))
                .map_err(|e| format!("cannot read {shown}: {e}"))?;
            let Some(v) = file_version(&bytes) else {
                return Err(format!("{shown} has no version resource"));
            };
            if compare_versions(&v, min).is_ge() {
                Ok(())
            } else {
                Err(format!("{shown} is version {v}, older than {min}"))
            }
        }
    }
}

/// The file version of a Windows executable: its `VS_FIXEDFILEINFO`,
/// found by its signature (0xFEEF04BD, 4-byte aligned, followed by
/// structure version 1.0), as `major.minor.build.revision`.
pub fn file_version(bytes: &[u8]) -> Option<String> {
    const SIGNATURE: [u8; 4] = 0xFEEF_04BD_u32.to_le_bytes();
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let mut at = 0;
    while at + 16 <= bytes.len() {
        if bytes[at..at + 4] == SIGNATURE && word(at + 4) == Some(0x0001_0000) {
            let (ms, ls) = (word(at + 8)?, word(at + 12)?);
            return Some(format!(
                "{}.{}.{}.{}",
                ms >> 16,
                ms & 0xffff,
                ls >> 16,
                ls & 0xffff
            ));
        }
        at += 4;
    }
    None
}

/// `%NAME%` replaced by the environment variable NAME where it is set (a
/// Windows path as `%ProgramFiles%\App\app.exe`).
fn expand(path: &str) -> String {
    expand_with(path, |name| std::env::var(name).ok())
}

fn expand_with(path: &str, var: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('%') {
            Some(end) if end > 0 => match var(&after[..end]) {
                Some(v) => {
                    out.push_str(&v);
                    rest = &after[end + 1..];
                }
                None => {
                    out.push('%');
                    rest = after;
                }
            },
            _ => {
                out.push('%');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(windows)]
fn msi_registered(code: &str) -> Result<(), String> {
    match crate::win::registry::product_registered(code) {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("product {code} is not registered")),
        Err(e) => Err(format!("cannot read the registry: {e}")),
    }
}

#[cfg(not(windows))]
fn msi_registered(_: &str) -> Result<(), String> {
    Err(format!(
        "Windows Installer rules apply only on Windows, not {}",
        std::env::consts::OS
    ))
}

#[cfg(windows)]
fn registry_holds(key: &str, value: &str, data: Option<&str>) -> Result<(), String> {
    match crate::win::registry::read_value(key, value) {
        Ok(None) => Err(format!("{key}\\{value} does not exist")),
        Ok(Some(found)) => match data {
            Some(want) if found.trim() != want.trim() => {
                Err(format!("{key}\\{value} is '{found}'"))
            }
            _ => Ok(()),
        },
        Err(e) => Err(format!("cannot read the registry: {e}")),
    }
}

#[cfg(not(windows))]
fn registry_holds(_: &str, _: &str, _: Option<&str>) -> Result<(), String> {
    Err(format!(
        "registry rules apply only on Windows, not {}",
        std::env::consts::OS
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_hashes_and_commands_are_looked_at() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("app.bin");
        std::fs::write(&f, b"hello").unwrap();
        let hello = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        let rules = |r: &[String]| r.to_vec();
        let p = f.display();
        let found = evaluate(&rules(&[
            format!("file:{p}"),
            format!("file:{p}#{hello}"),
            // `exit 0` means the same to sh and to cmd.
            "command:exit 0".into(),
        ]))
        .await;
        assert!(found.detected, "{found:?}");
        assert_eq!(found.why, "3 detection rules held");

        let wrong = evaluate(&[format!("file:{p}#{}", "0".repeat(64))]).await;
        assert!(!wrong.detected);
        assert!(
            wrong.why.contains(&format!("has SHA-256 {hello}")),
            "{wrong:?}"
        );

        let missing = evaluate(&[format!("file:{}/gone", dir.path().display())]).await;
        assert!(missing.why.ends_with("does not exist"), "{missing:?}");
        let exit = evaluate(&["command:exit 3".into()]).await;
        assert!(!exit.detected && exit.why.ends_with("exited 3"), "{exit:?}");
        let unversioned = evaluate(&[format!("file:{p}>=1.0")]).await;
        assert!(
            unversioned.why.ends_with("has no version resource"),
            "{unversioned:?}"
        );
        // Nothing to go by is never "installed".
        assert!(!evaluate(&[]).await.detected);
        #[cfg(not(windows))]
        {
            let reg = evaluate(&["registry:HKLM\\SOFTWARE\\X\\Y".into()]).await;
            assert!(reg.why.contains("only on Windows"), "{reg:?}");
        }
    }

    #[test]
    fn a_version_resource_is_found_by_its_signature() {
        let mut pe = vec![0u8; 64];
        pe.extend_from_slice(&0xFEEF_04BD_u32.to_le_bytes());
        pe.extend_from_slice(&0x0001_0000_u32.to_le_bytes());
        pe.extend_from_slice(&((2 << 16) | 10_u32).to_le_bytes());
        pe.extend_from_slice(&((3 << 16) | 4_u32).to_le_bytes());
        pe.extend_from_slice(&[0; 32]);
        assert_eq!(file_version(&pe).as_deref(), Some("2.10.3.4"));
        // Unaligned, or without the structure version: not it.
        let mut shifted = vec![0u8; 2];
        shifted.extend_from_slice(&pe);
        assert_eq!(file_version(&shifted), None);
        assert_eq!(file_version(b"no version here at all"), None);
    }

    #[test]
    fn environment_variables_are_expanded_in_paths() {
        let var = |n: &str| (n == "ProgramFiles").then(|| "C:\\Program Files".to_string());
        assert_eq!(
            expand_with("%ProgramFiles%\\App\\%UNSET%\\a.exe", var),
            "C:\\Program Files\\App\\%UNSET%\\a.exe"
        );
        assert_eq!(expand_with("50%", var), "50%");
        assert_eq!(expand_with("%%x", var), "%%x");
    }
}
