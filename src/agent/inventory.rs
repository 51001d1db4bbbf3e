//! The software installed on this computer. On Windows as it lists it
//! under "Installed apps": the registry's Uninstall entries of both views,
//! less the system components and updates that list hides too. On Linux
//! the package manager's database: dpkg's installed packages (Debian,
//! Ubuntu), else rpm's. Read on demand (`courier agent inventory`);
//! countermeasure tasks compare it with what a policy wants.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::package::is_guid;

/// Which registry view an entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum View {
    /// The native view of 64-bit Windows (64-bit installers).
    #[serde(rename = "64-bit")]
    Bits64,
    /// `WOW6432Node`: 32-bit installers, most MSIs among them.
    #[serde(rename = "32-bit")]
    Bits32,
}

/// A registry value as read: text (unexpanded) or a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegValue {
    Text(String),
    Number(u32),
}

/// One subkey of an Uninstall key, with the values the inventory reads.
#[derive(Debug, Clone)]
pub struct RawEntry {
    pub view: View,
    /// The subkey's name: the ProductCode for a Windows Installer package.
    pub key: String,
    pub values: BTreeMap<String, RegValue>,
}

/// Where an entry of the inventory was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Windows' Uninstall keys.
    Registry,
    /// dpkg's database of installed packages.
    Dpkg,
    /// rpm's database.
    Rpm,
}

/// One installed program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InstalledProgram {
    pub name: String,
    pub version: Option<String>,
    pub publisher: Option<String>,
    /// The ProductCode of a Windows Installer package, which uninstalls it
    /// (`msiexec /x`).
    pub product_code: Option<String>,
    /// The command that removes it, silently where the program gives one.
    pub uninstall: Option<String>,
    /// Whether `uninstall` runs without asking anyone (a quiet uninstall
    /// string, `msiexec /x … /qn`, the package manager's removal).
    pub quiet: bool,
    pub source: Source,
    /// The registry view of a Windows entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<View>,
    /// The registry subkey, or the package's name: for whoever needs to
    /// look further.
    pub key: String,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Registry => "registry",
            Source::Dpkg => "dpkg",
            Source::Rpm => "rpm",
        }
    }
}

impl InstalledProgram {
    /// Where it was read, in a word: the registry view, or the package
    /// manager.
    pub fn origin(&self) -> &'static str {
        match (self.source, self.view) {
            (_, Some(View::Bits64)) => "64-bit",
            (_, Some(View::Bits32)) => "32-bit",
            (Source::Registry, None) => "registry",
            (Source::Dpkg, None) => "dpkg",
            (Source::Rpm, None) => "rpm",
        }
    }
}

impl RawEntry {
    fn text(&self, name: &str) -> Option<String> {
        match self.values.get(name) {
            Some(RegValue::Text(t)) if !t.trim().is_empty() => Some(t.trim().to_string()),
            _ => None,
        }
    }

    fn number(&self, name: &str) -> Option<u32> {
        match self.values.get(name) {
            Some(RegValue::Number(n)) => Some(*n),
            Some(RegValue::Text(t)) => t.trim().parse().ok(),
            None => None,
        }
    }
}

/// The programs among `entries`, as "Installed apps" shows them: entries
/// without a name, system components and updates (which name a parent or
/// say they are one) are left out. Sorted by name, then view.
pub fn programs(entries: Vec<RawEntry>) -> Vec<InstalledProgram> {
    let mut out: Vec<InstalledProgram> = entries
        .into_iter()
        .filter_map(|e| {
            let name = e.text("DisplayName")?;
            if e.number("SystemComponent") == Some(1) || e.text("ParentKeyName").is_some() {
                return None;
            }
            if let Some(kind) = e.text("ReleaseType") {
                let kind = kind.to_ascii_lowercase();
                if kind.contains("update") || kind.contains("hotfix") {
                    return None;
                }
            }
            let product_code = is_guid(&e.key).then(|| e.key.to_ascii_uppercase());
            let quiet_string = e.text("QuietUninstallString");
            let quiet = quiet_string.is_some() || product_code.is_some();
            let uninstall = quiet_string.or_else(|| e.text("UninstallString"));
            Some(InstalledProgram {
                name,
                version: e.text("DisplayVersion"),
                publisher: e.text("Publisher"),
                product_code,
                uninstall,
                quiet,
                source: Source::Registry,
                view: Some(e.view),
                key: e.key,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        (a.name.to_lowercase(), a.view, &a.key).cmp(&(b.name.to_lowercase(), b.view, &b.key))
    });
    // 32-bit Windows has one view, which both names open.
    out.dedup_by(|a, b| a.key == b.key && a.name == b.name);
    out
}

/// What is installed here, from the registry.
#[cfg(windows)]
pub fn installed() -> std::io::Result<Vec<InstalledProgram>> {
    let mut entries = crate::win::registry::uninstall_entries(View::Bits64)?;
    entries.extend(crate::win::registry::uninstall_entries(View::Bits32)?);
    Ok(programs(entries))
}

/// Elsewhere there is no registry to read.
/// dpkg's installed packages, then rpm's; none where neither is there
/// (a computer whose software no package manager knows has an empty
/// inventory, not a failing one).
#[cfg(not(windows))]
pub fn installed() -> std::io::Result<Vec<InstalledProgram>> {
    use std::process::{Command, Stdio};
    let run = |program: &str, args: &[&str]| -> std::io::Result<Option<String>> {
        let out = match Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
        {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "{program} failed ({})",
                out.status
            )));
        }
        Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
    };
    if let Some(text) = run("dpkg-query", &["-W", "-f", DPKG_FORMAT])? {
        return Ok(from_dpkg(&text));
    }
    if let Some(text) = run("rpm", &["-qa", "--qf", RPM_FORMAT])? {
        return Ok(from_rpm(&text));
    }
    Ok(Vec::new())
}

/// The inventory as the agent sends it: the entries the server would
/// take (one with control characters or fields past the server's limits
/// stays here), and the digest of that list.
pub fn wire(programs: Vec<InstalledProgram>) -> crate::proto::Inventory {
    let programs: Vec<crate::model::Software> = programs
        .into_iter()
        .map(|p| crate::model::Software {
            name: p.name,
            version: p.version,
            publisher: p.publisher,
            source: p.source.as_str().to_string(),
            product_code: p.product_code,
            uninstall: p.uninstall,
            quiet: p.quiet,
        })
        .filter(|s| crate::proto::check_software(s).is_ok())
        .collect();
    // BLAKE3 of the list as sent: equal lists, equal digests.
    let digest = blake3::hash(&serde_json::to_vec(&programs).unwrap_or_default())
        .to_hex()
        .to_string();
    crate::proto::Inventory { digest, programs }
}

/// One line per package: status, name, version, maintainer.
pub const DPKG_FORMAT: &str = "${db:Status-Abbrev}\t${Package}\t${Version}\t${Maintainer}\n";

/// One line per package: name, version-release, vendor.
pub const RPM_FORMAT: &str = "%{NAME}\t%{VERSION}-%{RELEASE}\t%{VENDOR}\n";

/// dpkg-query's lines (`DPKG_FORMAT`): the packages installed (`ii`),
/// each removed by `apt-get remove`.
pub fn from_dpkg(text: &str) -> Vec<InstalledProgram> {
    let mut out: Vec<InstalledProgram> = text
        .lines()
        .filter_map(|line| {
            let mut f = line.split('\t');
            let (status, name) = (f.next()?, f.next()?.trim());
            // "ii ": wanted install, installed, no error.
            if !status.starts_with("ii") || !valid_package_name(name) {
                return None;
            }
            Some(InstalledProgram {
                name: name.to_string(),
                version: f
                    .next()
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(Into::into),
                publisher: f
                    .next()
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(Into::into),
                product_code: None,
                uninstall: Some(format!(
                    "DEBIAN_FRONTEND=noninteractive apt-get remove -y {name}"
                )),
                quiet: true,
                source: Source::Dpkg,
                view: None,
                key: name.to_string(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

/// rpm's lines (`RPM_FORMAT`), each removed by `rpm -e`.
pub fn from_rpm(text: &str) -> Vec<InstalledProgram> {
    let mut out: Vec<InstalledProgram> = text
        .lines()
        .filter_map(|line| {
            let mut f = line.split('\t');
            let name = f.next()?.trim();
            if !valid_package_name(name) || name == "gpg-pubkey" {
                return None;
            }
            let known = |v: &str| !v.is_empty() && !v.contains("(none)");
            Some(InstalledProgram {
                name: name.to_string(),
                version: f.next().map(str::trim).filter(|v| known(v)).map(Into::into),
                publisher: f.next().map(str::trim).filter(|v| known(v)).map(Into::into),
                product_code: None,
                uninstall: Some(format!("rpm -e {name}")),
                quiet: true,
                source: Source::Rpm,
                view: None,
                key: name.to_string(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out.dedup_by(|a, b| a.name == b.name);
    out
}

/// A package name as dpkg and rpm allow them, so that it can stand in a
/// shell command as it is: letters, digits and `+-._:~`, not starting
/// with `-`.
fn valid_package_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"+-._:~".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_what_dpkg_has_installed() {
        let text = "ii \tcurl\t7.88.1-10+deb12u8\tDebian Curl Maintainers <curl@packages.debian.org>\n\
                    rc \told-tool\t1.0\tSomeone\n\
                    iU \thalf\t2.0\tSomeone\n\
                    ii \tlibc6:amd64\t2.36-9\t\n\
                    ii \tevil;rm -rf /\t1\tx\n\
                    ii \tcourier-hello\t1.2.0\tCourier\n";
        let list = from_dpkg(text);
        let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["courier-hello", "curl", "libc6:amd64"]);
        assert_eq!(list[1].version.as_deref(), Some("7.88.1-10+deb12u8"));
        assert_eq!(
            list[0].uninstall.as_deref(),
            Some("DEBIAN_FRONTEND=noninteractive apt-get remove -y courier-hello")
        );
        assert_eq!(list[2].publisher, None);
        assert_eq!(list[0].source, Source::Dpkg);
    }

    #[test]
    fn lists_what_rpm_has_installed() {
        let text = "bash\t5.2.15-2.fc39\tFedora Project\n\
                    gpg-pubkey\t18b8e74c-62f2920f\t(none)\n\
                    hello\t1.0-1\t(none)\n";
        let list = from_rpm(text);
        let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["bash", "hello"]);
        assert_eq!(list[1].publisher, None);
        assert_eq!(list[0].uninstall.as_deref(), Some("rpm -e bash"));
    }

    /// This machine's own packages, read as the agent reads them.
    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_computers_packages() {
        let list = installed().unwrap();
        if std::path::Path::new("/var/lib/dpkg/status").exists() {
            assert!(
                list.iter()
                    .any(|p| p.name == "dpkg" && p.source == Source::Dpkg),
                "{} packages, no dpkg among them",
                list.len()
            );
        }
    }

    fn entry(view: View, key: &str, values: &[(&str, RegValue)]) -> RawEntry {
        RawEntry {
            view,
            key: key.into(),
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    fn text(s: &str) -> RegValue {
        RegValue::Text(s.into())
    }

    #[test]
    fn lists_programs_as_installed_apps_does() {
        let code = "{6f1c2b9a-3d4e-4f50-8a61-7b2c3d4e5f60}";
        let list = programs(vec![
            entry(
                View::Bits32,
                code,
                &[
                    ("DisplayName", text("Courier Hello")),
                    ("DisplayVersion", text("1.0.0")),
                    ("Publisher", text("Courier")),
                    ("UninstallString", text(&format!("MsiExec.exe /X{code}"))),
                    ("WindowsInstaller", RegValue::Number(1)),
                ],
            ),
            entry(
                View::Bits64,
                "7-Zip",
                &[
                    ("DisplayName", text("7-Zip 24.08 (x64)")),
                    (
                        "UninstallString",
                        text("\"C:\\Program Files\\7-Zip\\Uninstall.exe\""),
                    ),
                    (
                        "QuietUninstallString",
                        text("\"C:\\Program Files\\7-Zip\\Uninstall.exe\" /S"),
                    ),
                ],
            ),
            // Hidden as Windows hides them.
            entry(View::Bits64, "NoName", &[("DisplayVersion", text("1"))]),
            entry(View::Bits64, "Blank", &[("DisplayName", text("  "))]),
            entry(
                View::Bits64,
                "Component",
                &[
                    ("DisplayName", text("Runtime part")),
                    ("SystemComponent", RegValue::Number(1)),
                ],
            ),
            entry(
                View::Bits32,
                "KB123",
                &[
                    ("DisplayName", text("Update for Hello")),
                    ("ParentKeyName", text("Hello")),
                ],
            ),
            entry(
                View::Bits64,
                "KB456",
                &[
                    ("DisplayName", text("Security fix")),
                    ("ReleaseType", text("Security Update")),
                ],
            ),
        ]);
        let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["7-Zip 24.08 (x64)", "Courier Hello"]);
        assert_eq!(
            list[0].uninstall.as_deref(),
            Some("\"C:\\Program Files\\7-Zip\\Uninstall.exe\" /S"),
            "the silent command is preferred"
        );
        assert_eq!(list[0].product_code, None);
        let hello = &list[1];
        assert_eq!(
            hello.product_code.as_deref(),
            Some("{6F1C2B9A-3D4E-4F50-8A61-7B2C3D4E5F60}")
        );
        assert_eq!(hello.version.as_deref(), Some("1.0.0"));
        assert_eq!(hello.view, Some(View::Bits32));
        let json = serde_json::to_value(hello).unwrap();
        assert_eq!(json["view"], "32-bit");
    }

    #[test]
    fn one_view_read_twice_lists_once() {
        let e = entry(View::Bits64, "App", &[("DisplayName", text("App"))]);
        let mut again = e.clone();
        again.view = View::Bits32;
        assert_eq!(programs(vec![e, again]).len(), 1);
    }
}
