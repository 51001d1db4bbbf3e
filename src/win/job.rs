//! A Job Object around one install: everything the command starts (msiexec,
//! a setup.exe's children, a script's helpers) is in the job, so a timeout
//! or a cancellation stops the whole tree, and so does the agent's own
//! death: the job kills what it holds when its last handle closes.
//!
//! The command is started suspended and put in the job before its first
//! instruction runs, so nothing it starts can escape by being quick.

use std::io;
use std::os::windows::io::RawHandle;
use std::ptr::null;

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
    SetInformationJobObject, TerminateJobObject,
};
use windows_sys::Win32::System::Threading::{OpenThread, ResumeThread, THREAD_SUSPEND_RESUME};

/// `CreateProcess` flag: the process's first thread waits to be resumed.
pub const CREATE_SUSPENDED: u32 = 0x0000_0004;

/// Exit code given to what a timeout or a cancellation stops.
const KILLED_EXIT_CODE: u32 = 1;

/// A Job Object that kills what it holds when closed, unless released.
pub struct Job {
    handle: HANDLE,
}

// SAFETY: a job handle may be used from any thread; `Job` owns it alone
// and closes it once.
unsafe impl Send for Job {}
// SAFETY: the calls made through `&Job` (terminate) are thread-safe.
unsafe impl Sync for Job {}

impl Job {
    /// A new, unnamed job that kills its processes when closed.
    pub fn kill_on_close() -> io::Result<Job> {
        // SAFETY: no attributes and no name: both may be null.
        let handle = unsafe { CreateJobObjectW(null(), null()) };
        if handle.is_null() {
            return Err(io::Error::last_os_error());
        }
        let job = Job { handle };
        job.set_limits(JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE)?;
        Ok(job)
    }

    fn set_limits(&self, flags: u32) -> io::Result<()> {
        // SAFETY: all-zero is a valid JOBOBJECT_EXTENDED_LIMIT_INFORMATION
        // (no limits); only the flags are set.
        let mut info: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
        info.BasicLimitInformation.LimitFlags = flags;
        // SAFETY: `info` is the structure this information class names, of
        // the size given, alive for the call.
        let ok = unsafe {
            SetInformationJobObject(
                self.handle,
                JobObjectExtendedLimitInformation,
                (&raw const info).cast(),
                size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Puts the suspended process `process` (id `pid`) in the job, then lets
    /// it run. It is resumed even when it cannot join the job: a command
    /// left suspended would hang until its timeout.
    pub fn adopt_suspended(&self, process: RawHandle, pid: u32) -> io::Result<()> {
        // SAFETY: `process` is the live handle of the child, owned by its
        // `Child`, which outlives this call.
        let assigned = unsafe { AssignProcessToJobObject(self.handle, process as HANDLE) };
        let assigned = if assigned == 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        };
        let resumed = resume_threads_of(pid);
        assigned.and(resumed)
    }

    /// Stops every process in the job at once.
    pub fn terminate(&self) -> io::Result<()> {
        // SAFETY: `self.handle` is a job handle we own.
        if unsafe { TerminateJobObject(self.handle, KILLED_EXIT_CODE) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Closes the job without killing what is left in it: the command has
    /// ended, and what it chose to leave running (a service it started, an
    /// application it opened) is its own business, as on Unix.
    pub fn release(self) {
        let _ = self.set_limits(0);
    }
}

impl Drop for Job {
    fn drop(&mut self) {
        // SAFETY: the handle is ours and closed only here; with the
        // kill-on-close limit still set this stops what the job holds.
        unsafe { CloseHandle(self.handle) };
    }
}

/// Resumes every thread of process `pid` (a process started suspended has
/// one).
pub fn resume_threads_of(pid: u32) -> io::Result<()> {
    // SAFETY: a thread snapshot of the whole system; the handle is closed
    // below.
    let snapshot = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
    if snapshot == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: all-zero is a valid THREADENTRY32; dwSize says which
    // version of the structure this is, as the API requires.
    let mut entry: THREADENTRY32 = unsafe { std::mem::zeroed() };
    entry.dwSize = size_of::<THREADENTRY32>() as u32;
    let mut resumed = 0;
    let mut failure = None;
    // SAFETY: `snapshot` is valid and `entry` is sized as declared.
    let mut more = unsafe { Thread32First(snapshot, &mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == pid {
            // SAFETY: opening a thread by id; the handle is closed below.
            let thread = unsafe { OpenThread(THREAD_SUSPEND_RESUME, 0, entry.th32ThreadID) };
            if thread.is_null() {
                failure = Some(io::Error::last_os_error());
            } else {
                // SAFETY: `thread` was opened with THREAD_SUSPEND_RESUME and
                // is closed once, right after.
                unsafe {
                    if ResumeThread(thread) == u32::MAX {
                        failure = Some(io::Error::last_os_error());
                    } else {
                        resumed += 1;
                    }
                    CloseHandle(thread);
                }
            }
        }
        // SAFETY: as for Thread32First.
        more = unsafe { Thread32Next(snapshot, &mut entry) } != 0;
    }
    // SAFETY: the snapshot handle is ours and not used after this.
    unsafe { CloseHandle(snapshot) };
    match (resumed, failure) {
        (0, Some(e)) => Err(e),
        (0, None) => Err(io::Error::other(format!(
            "process {pid} has no thread to resume"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suspended_process_joins_runs_and_is_terminated() {
        use std::os::windows::io::AsRawHandle;
        use std::os::windows::process::CommandExt;
        let mut child = std::process::Command::new("cmd")
            .args(["/c", "ping -n 60 127.0.0.1 >nul"])
            .creation_flags(CREATE_SUSPENDED)
            .spawn()
            .unwrap();
        let job = Job::kill_on_close().unwrap();
        job.adopt_suspended(child.as_raw_handle(), child.id())
            .unwrap();
        assert!(
            child.try_wait().unwrap().is_none(),
            "ended before it was stopped"
        );
        job.terminate().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(KILLED_EXIT_CODE as i32));
    }
}
