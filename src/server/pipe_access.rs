//! Who may open the admin pipe on Windows. A named pipe's default access
//! list lets every local account read it, and the admin API changes what
//! gets installed on every destination, so the pipe gets its own: full
//! access for Administrators and for the account the server runs as,
//! nothing for anyone else.
//!
//! The Windows security API has no safe wrapper in the crates courier uses,
//! hence the calls through `windows-sys` below; this module is the only
//! place the crate uses `unsafe` for it.

use std::io;
use std::path::Path;
use std::ptr::null_mut;

use tokio::net::windows::named_pipe::{NamedPipeServer, ServerOptions};
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, LocalFree};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER,
    TokenUser,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

/// A security descriptor made by Windows, freed on drop.
pub struct PipeAccess {
    descriptor: PSECURITY_DESCRIPTOR,
}

// SAFETY: the descriptor is written once, by the call that makes it; after
// that it is only read (by CreateNamedPipeW, which copies it) and freed once,
// in `drop`, so sharing the pointer between threads is sound.
unsafe impl Send for PipeAccess {}
// SAFETY: as for `Send`: nothing writes through the pointer after creation.
unsafe impl Sync for PipeAccess {}

impl PipeAccess {
    /// Administrators and this process's user (LocalSystem when the server
    /// runs as a service): full access; nobody else: none. The DACL is
    /// protected, so nothing is inherited from elsewhere.
    pub fn owner_and_administrators() -> io::Result<PipeAccess> {
        let sddl = format!("D:P(A;;GA;;;BA)(A;;GA;;;{})", current_user_sid()?);
        let wide: Vec<u16> = sddl.encode_utf16().chain(std::iter::once(0)).collect();
        let mut descriptor: PSECURITY_DESCRIPTOR = null_mut();
        // SAFETY: `wide` is NUL-terminated and outlives the call; on success
        // `descriptor` points at memory Windows allocated for us, which we
        // own and free in `drop`; the size out-parameter may be null.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                wide.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                null_mut(),
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PipeAccess { descriptor })
    }

    /// Creates one instance of the pipe `name` with this access list,
    /// refusing remote clients. `first`: fail if the name already exists.
    pub fn create(&self, name: &Path, first: bool) -> io::Result<NamedPipeServer> {
        let mut attrs = SECURITY_ATTRIBUTES {
            nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.descriptor,
            bInheritHandle: 0,
        };
        // SAFETY: `attrs` is a valid SECURITY_ATTRIBUTES for the duration of
        // the call, and its descriptor lives as long as `self`.
        unsafe {
            ServerOptions::new()
                .first_pipe_instance(first)
                .reject_remote_clients(true)
                .create_with_security_attributes_raw(name, (&raw mut attrs).cast())
        }
    }
}

impl Drop for PipeAccess {
    fn drop(&mut self) {
        // SAFETY: the descriptor was allocated by
        // ConvertStringSecurityDescriptorToSecurityDescriptorW and is freed
        // only here.
        unsafe { LocalFree(self.descriptor) };
    }
}

/// The SID of the account this process runs as, as text (`S-1-5-…`).
fn current_user_sid() -> io::Result<String> {
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
        let s = String::from_utf16_lossy(std::slice::from_raw_parts(text, n));
        LocalFree(text.cast());
        s
    };
    Ok(s)
}
