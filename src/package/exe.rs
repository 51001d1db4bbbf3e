//! EXE recognition and installer-framework detection.
//!
//! An EXE needs a silent install command from the admin; naming the
//! framework that built it lets registration suggest the right switches
//! instead of a bare refusal. Frameworks leave recognisable strings in their
//! stub or data header, so a bounded scan of the first bytes is enough.

use std::io::{self, Read};

use memchr::memmem::Finder;

use super::{Framework, read_full};

/// How much of an EXE is scanned for signatures. Framework markers sit in
/// the stub and at the start of the appended data, not at the end of a
/// multi-gigabyte payload.
pub(super) const SCAN_LIMIT: u64 = 32 << 20;

/// Bytes of a PE header the sniffer keeps: signature (4), COFF header (20)
/// and the optional header up to and including Subsystem (68 + 2).
pub(super) const PE_WINDOW: usize = 4 + 20 + 70;

/// IMAGE_FILE_EXECUTABLE_IMAGE and IMAGE_FILE_DLL in the COFF header's
/// Characteristics, and IMAGE_SUBSYSTEM_NATIVE (drivers).
const EXECUTABLE_IMAGE: u16 = 0x0002;
const DLL: u16 = 0x2000;
const SUBSYSTEM_NATIVE: u16 = 1;

/// Signatures, most specific first: when several occur (a Burn bundle may
/// carry strings of what it wraps), the first in this list wins. The short,
/// generic ones come last because they also appear in ordinary text.
const SIGNATURES: &[(&[u8], Framework)] = &[
    // The PE section Burn adds to its engine: a structural marker.
    (b".wixburn", Framework::WixBurn),
    (b"NullsoftInst", Framework::Nsis),
    (b"Nullsoft Install System", Framework::Nsis),
    (b"Inno Setup Setup Data", Framework::InnoSetup),
    (b"InstallShield", Framework::InstallShield),
    (b"Advanced Installer", Framework::AdvancedInstaller),
    (b"SquirrelSetup", Framework::Squirrel),
    (b"Inno Setup", Framework::InnoSetup),
    (b"Squirrel", Framework::Squirrel),
];

/// Bytes read per step of the scan.
const CHUNK: usize = 256 << 10;

/// Where the PE header of an executable whose first bytes are `head` is
/// (`e_lfanew`), or None when `head` is not a DOS "MZ" header.
pub(super) fn pe_header_offset(head: &[u8]) -> Option<u64> {
    if head.len() < 0x40 || !head.starts_with(b"MZ") {
        return None;
    }
    let at = u32::from_le_bytes([head[0x3C], head[0x3D], head[0x3E], head[0x3F]]);
    // The PE header cannot overlap the "MZ" it is found from.
    (at >= 2).then_some(u64::from(at))
}

/// Whether a PE header window (see [`PE_WINDOW`]) describes an application
/// that can be run as an installer: an executable image that is neither a
/// DLL nor a driver. DLLs are PE files too, and every application's ZIP
/// holds some; counting them as installers would make every ZIP ambiguous.
pub(super) fn is_windows_app(window: &[u8]) -> bool {
    if window.len() < PE_WINDOW || !window.starts_with(b"PE\0\0") {
        return false;
    }
    let characteristics = u16::from_le_bytes([window[22], window[23]]);
    let subsystem = u16::from_le_bytes([window[24 + 68], window[24 + 69]]);
    characteristics & EXECUTABLE_IMAGE != 0
        && characteristics & DLL == 0
        && subsystem != SUBSYSTEM_NATIVE
}

/// Scans the first [`SCAN_LIMIT`] bytes of `reader` for framework
/// signatures. Memory is one chunk; consecutive chunks overlap by the
/// longest signature minus one byte, so a signature split across a chunk
/// boundary is still found.
pub(super) fn detect_framework(reader: impl Read) -> io::Result<Option<Framework>> {
    let finders: Vec<Finder<'static>> = SIGNATURES
        .iter()
        .map(|(needle, _)| Finder::new(*needle))
        .collect();
    let overlap = SIGNATURES.iter().map(|(n, _)| n.len()).max().unwrap_or(1) - 1;
    let mut reader = reader.take(SCAN_LIMIT);
    let mut buf = vec![0u8; overlap + CHUNK];
    let mut kept = 0;
    // Index into SIGNATURES of the most specific signature found so far.
    let mut best: Option<usize> = None;
    loop {
        let n = read_full(&mut reader, &mut buf[kept..])?;
        if n == 0 {
            break;
        }
        let window = &buf[..kept + n];
        // Only signatures more specific than the best so far are worth
        // looking for.
        let candidates = best.unwrap_or(SIGNATURES.len());
        if let Some(i) = finders[..candidates]
            .iter()
            .position(|f| f.find(window).is_some())
        {
            best = Some(i);
            if i == 0 {
                break;
            }
        }
        let keep = overlap.min(window.len());
        let end = window.len();
        buf.copy_within(end - keep..end, 0);
        kept = keep;
    }
    Ok(best.map(|i| SIGNATURES[i].1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::tests::pe_image;
    use std::io::Cursor;

    fn detect(bytes: &[u8]) -> Option<Framework> {
        detect_framework(Cursor::new(bytes)).expect("in-memory read")
    }

    #[test]
    fn each_framework_is_recognised() {
        let cases: &[(&[u8], Framework)] = &[
            (b"..Nullsoft Install System v3..", Framework::Nsis),
            (b"\xEF\xBE\xAD\xDENullsoftInst", Framework::Nsis),
            (b"Inno Setup Setup Data (6.2.0)", Framework::InnoSetup),
            (
                b"This installation was built with Inno Setup.",
                Framework::InnoSetup,
            ),
            (b"InstallShield(R) Setup Launcher", Framework::InstallShield),
            (b".wixburn\0\0\0\0", Framework::WixBurn),
            (b"Advanced Installer 21.0", Framework::AdvancedInstaller),
            (b"SquirrelSetup.log", Framework::Squirrel),
        ];
        for (body, framework) in cases {
            let image = pe_image(0x0102, 2, body);
            assert_eq!(detect(&image), Some(*framework), "{body:?}");
        }
        assert_eq!(detect(&pe_image(0x0102, 2, b"plain program")), None);
    }

    #[test]
    fn signature_split_across_chunks_is_found() {
        let needle = b"Nullsoft Install System";
        for cut in 1..needle.len() {
            let mut bytes = vec![0u8; CHUNK - cut];
            bytes.extend_from_slice(needle);
            bytes.extend_from_slice(&[0u8; 100]);
            assert_eq!(detect(&bytes), Some(Framework::Nsis), "cut at {cut}");
        }
    }

    #[test]
    fn the_most_specific_signature_wins() {
        // An NSIS installer whose license text mentions Inno Setup.
        let body = b"compared with Inno Setup ... NullsoftInst";
        assert_eq!(detect(body), Some(Framework::Nsis));
        let body = b"Squirrel ... InstallShield ... .wixburn";
        assert_eq!(detect(body), Some(Framework::WixBurn));
    }

    #[test]
    fn signatures_past_the_scan_limit_are_not_looked_for() {
        let within = io::repeat(0)
            .take(SCAN_LIMIT - 20)
            .chain(&b"NullsoftInst"[..]);
        assert_eq!(
            detect_framework(within).expect("read"),
            Some(Framework::Nsis)
        );
        let beyond = io::repeat(0).take(SCAN_LIMIT).chain(&b"NullsoftInst"[..]);
        assert_eq!(detect_framework(beyond).expect("read"), None);
    }

    #[test]
    fn pe_header_checks() {
        let app = pe_image(0x0102, 2, b"");
        let at = usize::try_from(pe_header_offset(&app).expect("mz")).expect("offset");
        assert!(is_windows_app(&app[at..at + PE_WINDOW]));
        let dll = pe_image(0x2102, 2, b"");
        assert!(!is_windows_app(&dll[at..at + PE_WINDOW]));
        let driver = pe_image(0x0102, SUBSYSTEM_NATIVE, b"");
        assert!(!is_windows_app(&driver[at..at + PE_WINDOW]));
        assert_eq!(pe_header_offset(b"ZM"), None);
    }
}
