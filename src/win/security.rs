//! Security descriptors: made from SDDL text, read off a file and written
//! onto another, and the account this process runs as.

use std::io;
use std::path::Path;
use std::ptr::null_mut;

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_INVALID_OWNER, ERROR_PRIVILEGE_NOT_HELD, ERROR_SUCCESS,
    HANDLE, LocalFree, WIN32_ERROR,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW,
    GetNamedSecurityInfoW, SDDL_REVISION_1, SE_FILE_OBJECT, SetNamedSecurityInfoW,
};
use windows_sys::Win32::Security::{
    ACL, DACL_SECURITY_INFORMATION, GROUP_SECURITY_INFORMATION, GetSecurityDescriptorControl,
    GetSecurityDescriptorDacl, GetSecurityDescriptorGroup, GetSecurityDescriptorLength,
    GetSecurityDescriptorOwner, GetTokenInformation, OBJECT_SECURITY_INFORMATION,
    OWNER_SECURITY_INFORMATION, PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID,
    SE_DACL_PROTECTED, TOKEN_QUERY, TOKEN_USER, TokenUser, UNPROTECTED_DACL_SECURITY_INFORMATION,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

use super::{from_wide, wide};

/// A security descriptor Windows allocated for us, freed on drop.
pub struct Descriptor {
    raw: PSECURITY_DESCRIPTOR,
}

// SAFETY: the descriptor is written once, by the call that makes it; after
// that it is only read (by calls that copy it) and freed once, in `drop`,
// so sharing the pointer between threads is sound.
unsafe impl Send for Descriptor {}
// SAFETY: as for `Send`: nothing writes through the pointer after creation.
unsafe impl Sync for Descriptor {}

impl Descriptor {
    /// Parses SDDL text (`D:P(A;;GA;;;BA)…`).
    pub fn from_sddl(sddl: &str) -> io::Result<Descriptor> {
        let text = wide(sddl);
        let mut raw: PSECURITY_DESCRIPTOR = null_mut();
        // SAFETY: `text` is NUL-terminated and outlives the call; on success
        // `raw` points at memory Windows allocated, which we own and free in
        // `drop`; the size out-parameter may be null.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                text.as_ptr(),
                SDDL_REVISION_1,
                &mut raw,
                null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Descriptor { raw })
    }

    /// The raw pointer, valid as long as `self`.
    pub fn as_ptr(&self) -> PSECURITY_DESCRIPTOR {
        self.raw
    }

    /// The DACL (null when the descriptor has none).
    fn dacl(&self) -> io::Result<*mut ACL> {
        let mut present = 0;
        let mut defaulted = 0;
        let mut dacl: *mut ACL = null_mut();
        // SAFETY: `self.raw` is a valid descriptor; the out-parameters are
        // plain locals, and `dacl` points into the descriptor, which
        // outlives its use by the caller.
        let ok =
            unsafe { GetSecurityDescriptorDacl(self.raw, &mut present, &mut dacl, &mut defaulted) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(dacl)
    }
}

impl Drop for Descriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by Windows with LocalAlloc (SDDL conversion or
        // GetNamedSecurityInfoW) and freed only here.
        unsafe { LocalFree(self.raw) };
    }
}

/// Gives the folder `path` an access list of its own, inherited by
/// everything made inside it: full control for SYSTEM, Administrators and
/// the account this process runs as (SYSTEM itself for a service), nothing
/// for anyone else. Courier's data dirs hold keys and what gets installed.
pub fn restrict_to_admins(path: &Path) -> io::Result<()> {
    let me = current_user_sid()?;
    let sd = Descriptor::from_sddl(&format!(
        "D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;{me})"
    ))?;
    let dacl = sd.dacl()?;
    let name = wide(path);
    // SAFETY: `name` is NUL-terminated; `dacl` points into `sd`, alive for
    // the call; owner, group and SACL are not being set (null).
    let status = unsafe {
        SetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            null_mut(),
            null_mut(),
            dacl,
            null_mut(),
        )
    };
    win32(status)
}

/// The owner, group and DACL of a file, copied out so that they can be
/// given to another file: a replaced file keeps who owns it and who may use
/// it, as an in-place edit would have.
#[derive(Debug, Clone)]
pub struct FileSecurity {
    /// A self-relative descriptor (offsets, no pointers), in u32s to keep
    /// the alignment Windows expects.
    buf: Vec<u32>,
}

impl FileSecurity {
    /// Reads `path`'s owner, group and DACL.
    pub fn of(path: &Path) -> io::Result<FileSecurity> {
        let name = wide(path);
        let mut raw: PSECURITY_DESCRIPTOR = null_mut();
        // SAFETY: `name` is NUL-terminated; the pointers to the parts are
        // not asked for (null), only the whole descriptor, which Windows
        // allocates for us and `Descriptor` frees.
        let status = unsafe {
            GetNamedSecurityInfoW(
                name.as_ptr(),
                SE_FILE_OBJECT,
                OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                null_mut(),
                null_mut(),
                null_mut(),
                null_mut(),
                &mut raw,
            )
        };
        win32(status)?;
        let owned = Descriptor { raw };
        // SAFETY: `raw` is the valid, self-relative descriptor just read.
        let len = unsafe { GetSecurityDescriptorLength(owned.raw) } as usize;
        let mut buf = vec![0u32; len.div_ceil(4)];
        // SAFETY: both regions are `len` bytes long and do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(owned.raw.cast::<u8>(), buf.as_mut_ptr().cast(), len)
        };
        Ok(FileSecurity { buf })
    }

    /// Gives `path` this DACL (protected or inheriting, as the original
    /// was) and, where this process may, this owner and group. Only an
    /// administrator or SYSTEM can give a file away; otherwise the owner
    /// stays this process's account, as on Unix.
    pub fn apply_to(&self, path: &Path) -> io::Result<()> {
        let sd: PSECURITY_DESCRIPTOR = self.buf.as_ptr().cast_mut().cast();
        let (mut control, mut revision) = (0u16, 0u32);
        let (mut owner, mut group): (PSID, PSID) = (null_mut(), null_mut());
        let (mut present, mut defaulted) = (0, 0);
        let mut dacl: *mut ACL = null_mut();
        // SAFETY: `sd` is a valid self-relative descriptor (copied whole by
        // `of`) that outlives every pointer these calls return into it; the
        // out-parameters are locals.
        let ok = unsafe {
            GetSecurityDescriptorControl(sd, &mut control, &mut revision) != 0
                && GetSecurityDescriptorOwner(sd, &mut owner, &mut defaulted) != 0
                && GetSecurityDescriptorGroup(sd, &mut group, &mut defaulted) != 0
                && GetSecurityDescriptorDacl(sd, &mut present, &mut dacl, &mut defaulted) != 0
        };
        if !ok {
            return Err(io::Error::last_os_error());
        }
        let protection = if control & SE_DACL_PROTECTED != 0 {
            PROTECTED_DACL_SECURITY_INFORMATION
        } else {
            UNPROTECTED_DACL_SECURITY_INFORMATION
        };
        let name = wide(path);
        let set = |what: OBJECT_SECURITY_INFORMATION, owner: PSID, group: PSID| {
            // SAFETY: `name` is NUL-terminated; `owner`, `group` and `dacl`
            // point into `self.buf`, alive for the call.
            let status = unsafe {
                SetNamedSecurityInfoW(
                    name.as_ptr(),
                    SE_FILE_OBJECT,
                    what,
                    owner,
                    group,
                    dacl,
                    null_mut(),
                )
            };
            win32(status)
        };
        let with_owner = OWNER_SECURITY_INFORMATION
            | GROUP_SECURITY_INFORMATION
            | DACL_SECURITY_INFORMATION
            | protection;
        match set(with_owner, owner, group) {
            Err(e)
                if [
                    ERROR_INVALID_OWNER,
                    ERROR_ACCESS_DENIED,
                    ERROR_PRIVILEGE_NOT_HELD,
                ]
                .iter()
                .any(|&c| e.raw_os_error() == Some(c as i32)) =>
            {
                set(
                    DACL_SECURITY_INFORMATION | protection,
                    null_mut(),
                    null_mut(),
                )
            }
            other => other,
        }
    }
}

/// The SID of the account this process runs as, as text (`S-1-5-…`).
pub fn current_user_sid() -> io::Result<String> {
    let mut token: HANDLE = null_mut();
    // SAFETY: GetCurrentProcess returns a pseudo-handle that needs no
    // closing; `token` receives a handle we close below.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let sid = token_user_sid(token);
    // SAFETY: `token` was opened above and is not used after this.
    unsafe { CloseHandle(token) };
    sid
}

fn token_user_sid(token: HANDLE) -> io::Result<String> {
    let mut len = 0u32;
    // SAFETY: with a null buffer of length 0 the call only reports the size
    // it needs in `len` (and fails, as expected).
    unsafe { GetTokenInformation(token, TokenUser, null_mut(), 0, &mut len) };
    if len == 0 {
        return Err(io::Error::last_os_error());
    }
    // u64s: TOKEN_USER holds a pointer and must be aligned like one.
    let mut buf = vec![0u64; (len as usize).div_ceil(8)];
    // SAFETY: `buf` has room for `len` bytes, as the call asked for.
    let ok =
        unsafe { GetTokenInformation(token, TokenUser, buf.as_mut_ptr().cast(), len, &mut len) };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success `buf` starts with a TOKEN_USER (suitably aligned)
    // whose SID points into `buf`, which outlives its use here.
    let sid = unsafe { (*buf.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    let mut text: *mut u16 = null_mut();
    // SAFETY: `sid` is valid (above); on success `text` is a NUL-terminated
    // string Windows allocated, read and freed below.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `text` is NUL-terminated, so every unit up to the NUL is
    // readable; it is freed once, after being copied.
    let s = unsafe {
        let n = (0..).take_while(|&i| *text.add(i) != 0).count();
        let s = from_wide(std::slice::from_raw_parts(text, n));
        LocalFree(text.cast());
        s
    };
    Ok(s)
}

/// A Win32 status code as a Result.
fn win32(status: WIN32_ERROR) -> io::Result<()> {
    if status == ERROR_SUCCESS {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(status as i32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_dir_can_be_restricted_and_a_files_security_copied() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("private");
        std::fs::create_dir(&private).unwrap();
        restrict_to_admins(&private).unwrap();
        // Still usable by this account.
        std::fs::write(private.join("key.pem"), "secret").unwrap();
        let old = dir.path().join("old.txt");
        let new = dir.path().join("new.txt");
        std::fs::write(&old, "old").unwrap();
        std::fs::write(&new, "new").unwrap();
        FileSecurity::of(&old).unwrap().apply_to(&new).unwrap();
        assert!(FileSecurity::of(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn this_process_has_an_account() {
        assert!(current_user_sid().unwrap().starts_with("S-1-"));
    }
}
