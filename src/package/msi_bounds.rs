//! What an MSI declares, checked against what its streams hold before the
//! `msi` crate reads it. The crate (0.11.1) allocates what the file says
//! before reading it: each string of the string pool (`_StringPool` gives
//! the lengths, up to 4 GiB each, `_StringData` the bytes) and each string
//! of the summary information (a 32-bit length). A file of a few KiB could
//! so ask for 4 GiB, which aborts the process where memory is not
//! overcommitted. Here each declared size is compared with the bytes its
//! stream really holds (a stream's length in the compound file's directory
//! is only a claim too), reading nothing into memory.
//!
//! What else the crate reads on opening grows only with the bytes it
//! really reads: string-pool entries and summary properties, as many as
//! their stream holds; tables at most 65,536 rows (the crate checks that,
//! from the stream's claimed length, before its one allocation of rows)
//! and as many cells as their stream holds; the compound file's own
//! tables (FAT, directory, chains), its sectors (the `cfb` crate checks
//! chains for loops).

use std::collections::BTreeMap;
use std::io::{BufReader, Read, Seek, SeekFrom};

/// A stream's name in the compound file, for a table (`table`) or not, as
/// Windows Installer encodes it: a table's name carries a prefix, and the
/// characters of `[0-9A-Za-z._]` are packed two to a UTF-16 unit.
pub(super) fn stream_name(name: &str, table: bool) -> String {
    fn code(c: char) -> Option<u32> {
        Some(match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            'a'..='z' => c as u32 - 'a' as u32 + 36,
            '.' => 62,
            '_' => 63,
            _ => return None,
        })
    }
    let mut out = String::new();
    if table {
        out.push('\u{4840}');
    }
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        let Some(first) = code(c) else {
            out.push(c);
            continue;
        };
        let unit = match chars.peek().copied().and_then(code) {
            Some(second) => {
                chars.next();
                0x3800 + (second << 6) + first
            }
            None => 0x4800 + first,
        };
        out.extend(char::from_u32(unit));
    }
    out
}

const SUMMARY_INFORMATION: &str = "\u{5}SummaryInformation";

/// Checks the sizes an MSI declares before the `msi` crate allocates
/// them. The error is the whole reason, to follow "… is ": "not a valid
/// MSI: string pool …", or "not a readable MSI: …" for a file that is no
/// compound file at all.
pub(super) fn check<R: Read + Seek>(mut reader: R) -> Result<(), String> {
    // No stream holds more than the file: a cap on every count below.
    let cap = reader.seek(SeekFrom::End(0)).map_err(unreadable)?;
    reader.seek(SeekFrom::Start(0)).map_err(unreadable)?;
    let mut comp = cfb::CompoundFile::open(reader).map_err(unreadable)?;
    // In the crate's order: the summary information, then the string
    // pool. A missing stream is the crate's to refuse: it allocates
    // nothing before it looks for the next one.
    if let Ok(summary) = comp.open_stream(SUMMARY_INFORMATION) {
        let held = real_len(summary, cap);
        let summary = comp.open_stream(SUMMARY_INFORMATION).map_err(unreadable)?;
        if let Some(len) = oversized_summary_string(summary, held) {
            return Err(format!(
                "not a valid MSI: summary information declares a string of {len} bytes, but its stream holds {held}"
            ));
        }
    }
    let pool = comp.open_stream(stream_name("_StringPool", true));
    let data = comp.open_stream(stream_name("_StringData", true));
    if let (Ok(pool), Ok(data)) = (pool, data) {
        let declared = declared_strings(pool, cap);
        let held = real_len(data, cap);
        if declared > held {
            return Err(format!(
                "not a valid MSI: string pool declares {declared} bytes of strings, but its string data holds {held}"
            ));
        }
    }
    Ok(())
}

fn unreadable(e: std::io::Error) -> String {
    format!("not a readable MSI: {e}")
}

/// Bytes that can really be read from `stream`, counting no further than
/// just past `cap`.
fn real_len(stream: impl Read, cap: u64) -> u64 {
    let mut stream = BufReader::with_capacity(64 << 10, stream);
    let mut buf = [0u8; 8 << 10];
    let mut n = 0u64;
    while n <= cap {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    n
}

fn u16_of(r: &mut impl Read) -> Option<u16> {
    let mut b = [0u8; 2];
    r.read_exact(&mut b).ok().map(|()| u16::from_le_bytes(b))
}

fn u32_of(r: &mut impl Read) -> Option<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).ok().map(|()| u32::from_le_bytes(b))
}

/// The bytes of all strings the string pool declares, read as the crate
/// reads it: a code page, then for each string a 16-bit length and
/// reference count, the length in 32 bits after them when the 16-bit one
/// is 0 and the count is not. Counts no further than just past `cap`.
fn declared_strings(pool: impl Read, cap: u64) -> u64 {
    let mut r = BufReader::new(pool);
    if u32_of(&mut r).is_none() {
        return 0;
    }
    let mut total = 0u64;
    while total <= cap {
        let (Some(len), Some(refcount)) = (u16_of(&mut r), u16_of(&mut r)) else {
            break;
        };
        let len = match (len, refcount) {
            (0, 1..) => match u32_of(&mut r) {
                Some(long) => u64::from(long),
                None => break,
            },
            _ => u64::from(len),
        };
        total += len;
    }
    total
}

/// The length of the first string of the summary information (a property
/// set) that needs more bytes than its stream of `held` bytes has after
/// it, read as the crate reads the set: header, section offset, property
/// offsets, then each property's type and, for a string (type 30), its
/// 32-bit length. None when every string fits, or when the set is
/// damaged in a way the crate refuses before it reads a string.
fn oversized_summary_string(mut s: impl Read + Seek, held: u64) -> Option<u64> {
    let bom = u16_of(&mut s)?;
    let version = u16_of(&mut s)?;
    let _os_version = u16_of(&mut s)?;
    let os = u16_of(&mut s)?;
    let mut clsid = [0u8; 16];
    s.read_exact(&mut clsid).ok()?;
    let reserved = u32_of(&mut s)?;
    if bom != 0xFFFE || version > 1 || os > 2 || reserved < 1 {
        return None;
    }
    let mut fmtid = [0u8; 16];
    s.read_exact(&mut fmtid).ok()?;
    let section = u64::from(u32_of(&mut s)?);
    s.seek(SeekFrom::Start(section)).ok()?;
    let _size = u32_of(&mut s)?;
    let count = u32_of(&mut s)?;
    let mut offsets = BTreeMap::new();
    for _ in 0..count {
        // Bounded by the stream: each pair is 8 bytes of it.
        let name = u32_of(&mut s)?;
        let offset = u32_of(&mut s)?;
        if offsets.insert(name, offset).is_some() {
            return None;
        }
    }
    for offset in offsets.into_values() {
        let at = section + u64::from(offset);
        if s.seek(SeekFrom::Start(at)).is_err() {
            continue;
        }
        let (Some(30), Some(len)) = (u32_of(&mut s), u32_of(&mut s)) else {
            continue;
        };
        // The string and its terminating NUL follow the type and length.
        let len = u64::from(len);
        if len > held.saturating_sub(at + 8) {
            return Some(len);
        }
    }
    None
}

#[cfg(test)]
#[path = "msi_bounds_tests.rs"]
mod tests;
