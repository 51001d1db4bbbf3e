//! The registry's list of installed programs: every subkey of
//! `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall`, in the 64-bit
//! view and in the 32-bit one (`WOW6432Node`), where 32-bit installers such
//! as most MSIs register. What the values mean is `agent::inventory`'s.

use std::io;
use std::ptr::{null, null_mut};

use windows_sys::Win32::Foundation::{ERROR_MORE_DATA, ERROR_NO_MORE_ITEMS, ERROR_SUCCESS};
use windows_sys::Win32::System::Registry::{
    HKEY, HKEY_LOCAL_MACHINE, KEY_READ, KEY_WOW64_32KEY, KEY_WOW64_64KEY, REG_DWORD, REG_EXPAND_SZ,
    REG_SZ, RRF_NOEXPAND, RRF_RT_ANY, RegCloseKey, RegEnumKeyExW, RegGetValueW, RegOpenKeyExW,
};

use super::{from_wide, wide};
use crate::agent::inventory::{RawEntry, RegValue, View};

const UNINSTALL: &str = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall";

/// The values read from each entry; the rest are of no use to an inventory.
const VALUES: [&str; 10] = [
    "DisplayName",
    "DisplayVersion",
    "Publisher",
    "UninstallString",
    "QuietUninstallString",
    "InstallLocation",
    "ParentKeyName",
    "ReleaseType",
    "WindowsInstaller",
    "SystemComponent",
];

/// Every entry of the Uninstall key in `view`. A view that does not exist
/// (the 32-bit one on 32-bit Windows) has no entries.
pub fn uninstall_entries(view: View) -> io::Result<Vec<RawEntry>> {
    let flag = match view {
        View::Bits64 => KEY_WOW64_64KEY,
        View::Bits32 => KEY_WOW64_32KEY,
    };
    let Some(key) = Key::open(HKEY_LOCAL_MACHINE, UNINSTALL, KEY_READ | flag)? else {
        return Ok(Vec::new());
    };
    let mut entries = Vec::new();
    for name in key.subkeys()? {
        let values = VALUES
            .iter()
            .filter_map(|v| key.value(&name, v).map(|x| (v.to_string(), x)))
            .collect();
        entries.push(RawEntry {
            view,
            key: name,
            values,
        });
    }
    Ok(entries)
}

/// The value `name` under `key` (`HKLM\\SOFTWARE\\…`, `HKCU\\…`), as
/// text (a number in decimal), looked for in the 64-bit view and then
/// the 32-bit one: a detection rule names a key as an admin sees it,
/// whichever view its installer wrote. None when absent.
pub fn read_value(key: &str, name: &str) -> io::Result<Option<String>> {
    use windows_sys::Win32::System::Registry::{HKEY_CLASSES_ROOT, HKEY_CURRENT_USER, HKEY_USERS};
    let (root, path) = key.split_once('\\').unwrap_or((key, ""));
    let root = match root.to_ascii_uppercase().as_str() {
        "HKLM" | "HKEY_LOCAL_MACHINE" => HKEY_LOCAL_MACHINE,
        "HKCU" | "HKEY_CURRENT_USER" => HKEY_CURRENT_USER,
        "HKCR" | "HKEY_CLASSES_ROOT" => HKEY_CLASSES_ROOT,
        "HKU" | "HKEY_USERS" => HKEY_USERS,
        _ => return Err(io::Error::other(format!("unknown registry root '{root}'"))),
    };
    for view in [KEY_WOW64_64KEY, KEY_WOW64_32KEY] {
        if let Some(k) = Key::open(root, path, KEY_READ | view)?
            && let Some(v) = k.value("", name)
        {
            return Ok(Some(match v {
                RegValue::Text(t) => t,
                RegValue::Number(n) => n.to_string(),
            }));
        }
    }
    Ok(None)
}

/// Whether Windows Installer's product `code` is registered: its entry
/// under the Uninstall key, in either view.
pub fn product_registered(code: &str) -> io::Result<bool> {
    let path = format!("{UNINSTALL}\\{code}");
    for view in [KEY_WOW64_64KEY, KEY_WOW64_32KEY] {
        if Key::open(HKEY_LOCAL_MACHINE, &path, KEY_READ | view)?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// An open registry key, closed on drop.
struct Key(HKEY);

impl Key {
    /// Opens `path` under `root`; None when it does not exist.
    fn open(root: HKEY, path: &str, access: u32) -> io::Result<Option<Key>> {
        let path = wide(path);
        let mut key: HKEY = null_mut();
        // SAFETY: `path` is NUL-terminated; `key` receives a handle we own
        // and close in `drop`.
        let status = unsafe { RegOpenKeyExW(root, path.as_ptr(), 0, access, &mut key) };
        match status {
            ERROR_SUCCESS => Ok(Some(Key(key))),
            windows_sys::Win32::Foundation::ERROR_FILE_NOT_FOUND => Ok(None),
            e => Err(io::Error::from_raw_os_error(e as i32)),
        }
    }

    /// The names of this key's subkeys.
    fn subkeys(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        // Key names are at most 255 characters.
        let mut buf = [0u16; 256];
        for index in 0.. {
            let mut len = buf.len() as u32;
            // SAFETY: `buf` holds `len` units; class and time are not asked
            // for (null).
            let status = unsafe {
                RegEnumKeyExW(
                    self.0,
                    index,
                    buf.as_mut_ptr(),
                    &mut len,
                    null(),
                    null_mut(),
                    null_mut(),
                    null_mut(),
                )
            };
            match status {
                ERROR_SUCCESS => names.push(from_wide(&buf[..len as usize])),
                ERROR_NO_MORE_ITEMS => break,
                // A name that does not fit is not a real entry; skip it.
                ERROR_MORE_DATA => continue,
                e => return Err(io::Error::from_raw_os_error(e as i32)),
            }
        }
        Ok(names)
    }

    /// The value `name` of subkey `sub`: text (unexpanded) or a number;
    /// None when absent or of another type.
    fn value(&self, sub: &str, name: &str) -> Option<RegValue> {
        let (sub, name) = (wide(sub), wide(name));
        let mut kind = 0u32;
        let mut size = 0u32;
        // SAFETY: a size query: no buffer, `size` receives the bytes needed.
        let status = unsafe {
            RegGetValueW(
                self.0,
                sub.as_ptr(),
                name.as_ptr(),
                RRF_RT_ANY | RRF_NOEXPAND,
                &mut kind,
                null_mut(),
                &mut size,
            )
        };
        if status != ERROR_SUCCESS {
            return None;
        }
        // Room for a NUL the stored string may lack.
        let mut buf = vec![0u16; (size as usize).div_ceil(2) + 1];
        let mut size = (buf.len() * 2) as u32;
        // SAFETY: `buf` holds `size` bytes.
        let status = unsafe {
            RegGetValueW(
                self.0,
                sub.as_ptr(),
                name.as_ptr(),
                RRF_RT_ANY | RRF_NOEXPAND,
                &mut kind,
                buf.as_mut_ptr().cast(),
                &mut size,
            )
        };
        if status != ERROR_SUCCESS {
            return None;
        }
        match kind {
            REG_SZ | REG_EXPAND_SZ => Some(RegValue::Text(from_wide(&buf))),
            REG_DWORD if size >= 4 => Some(RegValue::Number(
                u32::from(buf[0]) | u32::from(buf[1]) << 16,
            )),
            _ => None,
        }
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: the handle was opened by `Key::open` and is closed only
        // here.
        unsafe { RegCloseKey(self.0) };
    }
}
