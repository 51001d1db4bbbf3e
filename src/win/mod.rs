//! The Windows calls courier makes that no safe crate wraps: access lists
//! (the admin pipe, the data dir, a replaced file's security), the Job
//! Object an install runs in, and the registry's list of installed
//! programs. This is the only module where the crate uses `unsafe`; every
//! call says why it is sound, and what leaves it is a safe type.

#![allow(unsafe_code)]

pub mod job;
pub mod pipe;
pub mod registry;
pub mod security;
pub mod service;
pub mod volumes;

use std::ffi::OsStr;
use std::os::windows::ffi::OsStrExt;

/// `s` as a NUL-terminated UTF-16 string, as the wide Win32 calls take it.
fn wide(s: impl AsRef<OsStr>) -> Vec<u16> {
    s.as_ref().encode_wide().chain(std::iter::once(0)).collect()
}

/// The UTF-16 string up to its first NUL (or its end), lossily decoded.
fn from_wide(units: &[u16]) -> String {
    let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
    String::from_utf16_lossy(&units[..end])
}
