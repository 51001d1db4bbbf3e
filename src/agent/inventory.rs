//! The software installed on this computer, as Windows lists it under
//! "Installed apps": the registry's Uninstall entries of both views, less
//! the system components and updates that list hides too. Read on demand
//! (`courier agent inventory`); countermeasure tasks compare it with what a
//! policy wants.

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
    pub view: View,
    /// The registry subkey, for whoever needs to look further.
    pub key: String,
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
            let uninstall = e
                .text("QuietUninstallString")
                .or_else(|| e.text("UninstallString"));
            Some(InstalledProgram {
                name,
                version: e.text("DisplayVersion"),
                publisher: e.text("Publisher"),
                product_code,
                uninstall,
                view: e.view,
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
#[cfg(not(windows))]
pub fn installed() -> std::io::Result<Vec<InstalledProgram>> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "the software inventory reads the Windows registry; this computer runs no Windows",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(hello.view, View::Bits32);
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
