//! Who may open the admin pipe on Windows. A named pipe's default access
//! list lets every local account read it, and the admin API changes what
//! gets installed on every destination, so the pipe gets its own: full
//! access for Administrators and for the account the server runs as,
//! nothing for anyone else.

use std::io;
use std::path::Path;

use tokio::net::windows::named_pipe::{NamedPipeServer, ServerOptions};
use windows_sys::Win32::Security::SECURITY_ATTRIBUTES;

use super::security::{Descriptor, current_user_sid};

/// The pipe's access list.
pub struct PipeAccess {
    descriptor: Descriptor,
}

impl PipeAccess {
    /// Administrators and this process's user (LocalSystem when the server
    /// runs as a service): full access; nobody else: none. The DACL is
    /// protected, so nothing is inherited from elsewhere.
    pub fn owner_and_administrators() -> io::Result<PipeAccess> {
        let sddl = format!("D:P(A;;GA;;;BA)(A;;GA;;;{})", current_user_sid()?);
        Ok(PipeAccess {
            descriptor: Descriptor::from_sddl(&sddl)?,
        })
    }

    /// Creates one instance of the pipe `name` with this access list,
    /// refusing remote clients. `first`: fail if the name already exists.
    pub fn create(&self, name: &Path, first: bool) -> io::Result<NamedPipeServer> {
        let mut attrs = SECURITY_ATTRIBUTES {
            nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.descriptor.as_ptr(),
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
