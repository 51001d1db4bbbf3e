//! Package inspection: what a file about to be registered really is.
//!
//! Registration copies the admin's file into the content store first and then
//! inspects that private copy, so what is inspected is exactly what will be
//! distributed. This module reads; it never writes outside the scratch
//! directory it is given.
//!
//! The format is decided by content, never by extension: an MSI is an OLE
//! compound file whose root storage carries the Windows Installer class id,
//! an EXE is a Windows application image (not a DLL or driver), a ZIP starts
//! with a local file header or is an empty archive, and anything else is a
//! plain file. A ZIP is checked entry by entry by really inflating it, because
//! its headers are written by whoever made it and may lie.

mod exe;
pub(crate) mod inflate;
mod msi;
mod msi_bounds;
pub(crate) mod zip;

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

pub use msi::is_guid;
pub use zip::entry_path;

/// The hard limits of the seed: 1 GiB per registered file, 2 GiB unzipped.
pub const MAX_FILE_SIZE: u64 = 1 << 30;
pub const MAX_UNZIPPED_SIZE: u64 = 2 << 30;

/// What the bytes of a file are, decided by content, never by extension.
pub use crate::task::Format;

/// Installer framework of an EXE, recognised from signatures in its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    Nsis,
    InnoSetup,
    InstallShield,
    WixBurn,
    AdvancedInstaller,
    Squirrel,
}

impl Framework {
    /// The name admins know the framework by.
    pub fn name(&self) -> &'static str {
        match self {
            Framework::Nsis => "NSIS",
            Framework::InnoSetup => "Inno Setup",
            Framework::InstallShield => "InstallShield",
            Framework::WixBurn => "WiX Burn",
            Framework::AdvancedInstaller => "Advanced Installer",
            Framework::Squirrel => "Squirrel",
        }
    }

    /// The switches that make an installer of this framework run without
    /// any window and without restarting the computer, to suggest to an
    /// admin who registered the EXE without an install command.
    pub fn silent_switches(&self) -> &'static str {
        match self {
            Framework::Nsis => "/S",
            Framework::InnoSetup => "/VERYSILENT /SUPPRESSMSGBOXES /NORESTART /SP-",
            Framework::InstallShield => "/s /v\"/qn /norestart\"",
            Framework::WixBurn => "/quiet /norestart",
            Framework::AdvancedInstaller => "/exenoui /qn /norestart",
            Framework::Squirrel => "--silent",
        }
    }

    /// The install command to suggest for the EXE at `exe` (relative to
    /// the unpacked package): the path, quoted when it needs it, and the
    /// framework's silent switches.
    pub fn suggested_command(&self, exe: &str) -> String {
        format!("{} {}", quote_path(exe), self.silent_switches())
    }
}

/// Quotes a path for a Windows command line when it needs it.
pub fn quote_path(p: &str) -> String {
    if p.contains(' ') {
        format!("\"{p}\"")
    } else {
        p.to_string()
    }
}

/// Properties read from an MSI's Property table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MsiInfo {
    pub product_name: Option<String>,
    pub product_version: Option<String>,
    pub product_code: Option<String>,
}

/// The installer chosen inside a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installer {
    /// Path inside the ZIP ('/'-separated), or None when the package is the
    /// installer itself.
    pub path: Option<String>,
    pub format: Format,
    pub msi: Option<MsiInfo>,
    pub framework: Option<Framework>,
}

impl Installer {
    /// The installer's path as a Windows command in the unpacked package
    /// names it: inside a ZIP its path with backslashes, else the file
    /// registered (`file_name`).
    pub fn command_path(&self, file_name: &str) -> String {
        match &self.path {
            Some(p) => p.replace('/', "\\"),
            None => file_name.to_string(),
        }
    }

    /// The install command to suggest for an EXE of a known framework.
    pub fn suggested_command(&self, file_name: &str) -> Option<String> {
        self.framework
            .map(|fw| fw.suggested_command(&self.command_path(file_name)))
    }
}

/// Result of inspecting one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub format: Format,
    /// The installer found (the file itself, or inside a ZIP).
    pub installer: Option<Installer>,
    /// Installers found in a ZIP when no single one could be chosen.
    pub ambiguous: Vec<String>,
    /// For a ZIP: bytes the entries really decompress to, and file count.
    pub unzipped_size: Option<u64>,
    pub entries: Option<u64>,
}

/// Why a file cannot be registered. Each message is one line naming the
/// offending thing.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Inspects the file at `path` (already copied into the store). `scratch` is
/// a directory where large nested entries may be spilled while inspected.
pub fn inspect(path: &Path, scratch: &Path) -> Result<Inspection, InspectError> {
    inspect_with_limit(path, scratch, MAX_UNZIPPED_SIZE)
}

/// [`inspect`] with the unzipped-size limit as a parameter, so tests can
/// exercise the limit with megabytes instead of gigabytes (and fuzzing
/// keeps each input small).
pub fn inspect_with_limit(
    path: &Path,
    scratch: &Path,
    unzipped_limit: u64,
) -> Result<Inspection, InspectError> {
    let mut file = File::open(path)?;
    let kind = sniff_file(&mut file)?;
    file.seek(SeekFrom::Start(0))?;
    match kind {
        Kind::Msi => {
            let info = msi::read_properties(BufReader::new(file)).map_err(refused)?;
            Ok(Inspection::single(Format::Msi, Some(info), None))
        }
        Kind::Exe => {
            let framework = exe::detect_framework(BufReader::new(file))?;
            Ok(Inspection::single(Format::Exe, None, framework))
        }
        Kind::Zip => zip::inspect_zip(file, scratch, unzipped_limit),
        Kind::Other => Ok(Inspection {
            format: Format::File,
            installer: None,
            ambiguous: Vec::new(),
            unzipped_size: None,
            entries: None,
        }),
    }
}

impl Inspection {
    /// The inspection of a package that is itself one installer.
    fn single(format: Format, msi: Option<MsiInfo>, framework: Option<Framework>) -> Self {
        Inspection {
            format,
            installer: Some(Installer {
                path: None,
                format,
                msi,
                framework,
            }),
            ambiguous: Vec::new(),
            unzipped_size: None,
            entries: None,
        }
    }
}

fn refused(message: String) -> InspectError {
    InspectError::Refused(one_line(&message))
}

/// Messages quote names and reasons that come from untrusted files; a line
/// break in them must not split the one-line error.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Human-readable size for messages: "512 bytes", "1 KiB", "1.5 MiB".
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut unit = 0;
    let mut scale: u64 = 1024;
    while unit + 1 < UNITS.len() && bytes >= scale * 1024 {
        unit += 1;
        scale *= 1024;
    }
    if bytes.is_multiple_of(scale) {
        format!("{} {}", bytes / scale, UNITS[unit])
    } else {
        // Sizes here are far below 2^53, so the conversion is exact enough
        // for one decimal.
        format!("{:.1} {}", bytes as f64 / scale as f64, UNITS[unit])
    }
}

/// What a stream of bytes is, as far as choosing an installer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Msi,
    Exe,
    Zip,
    Other,
}

/// Bytes kept from the start of a stream: enough for the DOS header's
/// `e_lfanew` (0x3C) and the compound-file header fields up to 0x34.
const HEAD_LEN: usize = 64;
/// Largest second window a sniffer needs: a PE header up to the optional
/// header's Subsystem field.
const WINDOW_MAX: usize = exe::PE_WINDOW;

/// Decides the [`Kind`] of a stream from two small windows of it: the head,
/// and a window the head points to (the PE header of an EXE, the root
/// directory entry of a compound file). It works on a stream fed once from
/// start to end, as when inflating a ZIP entry, and on a seekable file that
/// reads only the windows ([`Sniffer::wanted`]); memory is fixed either way.
struct Sniffer {
    head: [u8; HEAD_LEN],
    head_len: usize,
    window: Option<Window>,
}

/// Bytes wanted at `offset`, filled contiguously from its start.
struct Window {
    offset: u64,
    len: usize,
    filled: usize,
    buf: [u8; WINDOW_MAX],
}

impl Sniffer {
    fn new() -> Self {
        Sniffer {
            head: [0; HEAD_LEN],
            head_len: 0,
            window: None,
        }
    }

    /// Takes `data`, which sits at `offset` in the stream. Bytes the sniffer
    /// does not want, or that would leave a gap in a window, are ignored, so
    /// a sequential feed and targeted reads both work.
    fn feed_at(&mut self, offset: u64, data: &[u8]) {
        if self.head_len < HEAD_LEN {
            self.head_len += copy_at(&mut self.head[..], self.head_len, 0, offset, data);
            if self.head_len == HEAD_LEN {
                self.open_window();
            }
        }
        if let Some(w) = &mut self.window {
            w.filled += copy_at(&mut w.buf[..w.len], w.filled, w.offset, offset, data);
        }
    }

    /// Once the head is complete, decides which second window the format
    /// named by the head needs, and takes what of it the head already holds.
    fn open_window(&mut self) {
        let (offset, len) = if let Some(at) = exe::pe_header_offset(&self.head) {
            (at, exe::PE_WINDOW)
        } else if let Some(at) = msi::root_clsid_offset(&self.head) {
            (at, msi::CLSID_LEN)
        } else {
            return;
        };
        let mut window = Window {
            offset,
            len,
            filled: 0,
            buf: [0; WINDOW_MAX],
        };
        window.filled = copy_at(&mut window.buf[..len], 0, offset, 0, &self.head[..]);
        self.window = Some(window);
    }

    /// The offset of the next byte the sniffer needs, if any.
    fn wanted(&self) -> Option<u64> {
        if self.head_len < HEAD_LEN {
            return Some(self.head_len as u64);
        }
        match &self.window {
            Some(w) if w.filled < w.len => Some(w.offset + w.filled as u64),
            _ => None,
        }
    }

    fn kind(&self) -> Kind {
        let head = &self.head[..self.head_len];
        let window = self
            .window
            .as_ref()
            .filter(|w| w.filled == w.len)
            .map(|w| &w.buf[..w.len]);
        match window {
            Some(w) if exe::pe_header_offset(head).is_some() && exe::is_windows_app(w) => {
                return Kind::Exe;
            }
            Some(w) if msi::root_clsid_offset(head).is_some() && msi::is_installer_clsid(w) => {
                return Kind::Msi;
            }
            _ => {}
        }
        if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
            Kind::Zip
        } else {
            Kind::Other
        }
    }
}

/// `dst[i]` holds the byte at stream position `base + i` and is filled up
/// to `pos`. Copies from `data`, which sits at stream position `offset`,
/// whatever continues `dst` without a gap; returns how many bytes that was.
fn copy_at(dst: &mut [u8], pos: usize, base: u64, offset: u64, data: &[u8]) -> usize {
    let Some(skip) = (base + pos as u64).checked_sub(offset) else {
        return 0;
    };
    let Ok(skip) = usize::try_from(skip) else {
        return 0;
    };
    if skip >= data.len() || pos >= dst.len() {
        return 0;
    }
    let n = (dst.len() - pos).min(data.len() - skip);
    dst[pos..pos + n].copy_from_slice(&data[skip..skip + n]);
    n
}

/// Sniffs a seekable file by reading only the windows the sniffer asks for:
/// a compound file's directory may sit anywhere in a 1 GiB MSI.
fn sniff_file(file: &mut File) -> io::Result<Kind> {
    let len = file.metadata()?.len();
    let mut sniffer = Sniffer::new();
    // The head and any window fit in one read of this size.
    const _: () = assert!(WINDOW_MAX >= HEAD_LEN);
    let mut buf = [0u8; WINDOW_MAX];
    while let Some(offset) = sniffer.wanted() {
        if offset >= len {
            break;
        }
        file.seek(SeekFrom::Start(offset))?;
        let n = read_full(file, &mut buf)?;
        if n == 0 {
            break;
        }
        sniffer.feed_at(offset, &buf[..n]);
    }
    Ok(sniffer.kind())
}

/// Reads until `buf` is full or the reader is exhausted.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    pub(super) fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    /// The ProductCode fixed in tests/fixtures/hello.wxs.
    pub(super) const HELLO_CODE: &str = "{6F1C2B9A-3D4E-4F50-8A61-7B2C3D4E5F60}";

    /// A minimal Windows GUI application image: DOS header, PE signature,
    /// COFF header with `characteristics`, optional header with `subsystem`.
    pub(super) fn pe_image(characteristics: u16, subsystem: u16, body: &[u8]) -> Vec<u8> {
        let mut image = vec![0u8; 0x200];
        image[0..2].copy_from_slice(b"MZ");
        image[0x3C..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        image[0x80..0x84].copy_from_slice(b"PE\0\0");
        image[0x84..0x86].copy_from_slice(&0x14Cu16.to_le_bytes());
        image[0x80 + 22..0x80 + 24].copy_from_slice(&characteristics.to_le_bytes());
        image[0x80 + 24..0x80 + 26].copy_from_slice(&0x10Bu16.to_le_bytes());
        image[0x80 + 24 + 68..0x80 + 24 + 70].copy_from_slice(&subsystem.to_le_bytes());
        image.extend_from_slice(body);
        image
    }

    fn inspect_bytes(bytes: &[u8]) -> Result<Inspection, InspectError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("package");
        std::fs::write(&path, bytes).expect("write");
        inspect(&path, dir.path())
    }

    #[test]
    fn msi_properties_are_read_from_hello_msi() {
        let dir = tempfile::tempdir().expect("tempdir");
        let got = inspect(&fixture("hello.msi"), dir.path()).expect("inspect");
        assert_eq!(got.format, Format::Msi);
        let installer = got.installer.expect("installer");
        assert_eq!(installer.path, None);
        assert_eq!(installer.format, Format::Msi);
        assert_eq!(
            installer.msi,
            Some(MsiInfo {
                product_name: Some("Courier Hello".into()),
                product_version: Some("1.2.3".into()),
                product_code: Some(HELLO_CODE.into()),
            })
        );
    }

    #[test]
    fn nsis_is_detected_in_hello_nsis_exe() {
        let dir = tempfile::tempdir().expect("tempdir");
        let got = inspect(&fixture("hello-nsis.exe"), dir.path()).expect("inspect");
        assert_eq!(got.format, Format::Exe);
        let installer = got.installer.expect("installer");
        assert_eq!(installer.framework, Some(Framework::Nsis));
        assert_eq!(Framework::Nsis.silent_switches(), "/S");
    }

    #[test]
    fn plain_exe_has_no_framework() {
        let got = inspect_bytes(&pe_image(0x0102, 2, b"just a program")).expect("inspect");
        assert_eq!(got.format, Format::Exe);
        assert_eq!(got.installer.expect("installer").framework, None);
    }

    #[test]
    fn dll_and_dos_program_are_plain_files() {
        let dll = pe_image(0x2102, 2, b"");
        assert_eq!(inspect_bytes(&dll).expect("dll").format, Format::File);
        let mut dos = pe_image(0x0102, 2, b"");
        dos[0x80..0x84].copy_from_slice(b"NE\0\0");
        assert_eq!(inspect_bytes(&dos).expect("dos").format, Format::File);
    }

    #[test]
    fn plain_text_and_tiny_files_are_files() {
        for bytes in [&b"hello, world\n"[..], b"", b"M", b"MZ", b"PK"] {
            let got = inspect_bytes(bytes).expect("inspect");
            assert_eq!(got.format, Format::File, "{bytes:?}");
            assert_eq!(got.installer, None);
        }
    }

    #[test]
    fn compound_file_that_is_not_an_msi_is_a_file() {
        // A Word document is a compound file too; only the Windows Installer
        // class id of the root storage makes one an MSI.
        let mut doc = std::fs::read(fixture("hello.msi")).expect("fixture");
        let at = msi::root_clsid_offset(&doc[..HEAD_LEN]).expect("cfb header");
        let at = usize::try_from(at).expect("offset");
        doc[at..at + msi::CLSID_LEN].copy_from_slice(&[0x11; 16]);
        assert_eq!(inspect_bytes(&doc).expect("inspect").format, Format::File);
    }

    #[test]
    fn damaged_msi_is_refused() {
        let mut bytes = std::fs::read(fixture("hello.msi")).expect("fixture");
        let at = msi::root_clsid_offset(&bytes[..HEAD_LEN]).expect("cfb header");
        bytes.truncate(usize::try_from(at).expect("offset") + 512);
        match inspect_bytes(&bytes) {
            Err(InspectError::Refused(m)) => assert!(m.starts_with("not a readable MSI: "), "{m}"),
            other => panic!("expected refusal, got {other:?}"),
        }
    }

    #[test]
    fn sizes_read_well_in_messages() {
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(1024), "1 KiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(MAX_UNZIPPED_SIZE), "2 GiB");
    }
}
