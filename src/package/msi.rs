//! MSI recognition and the properties registration needs from it.
//!
//! An MSI is an OLE compound file, like a Word document; what makes it an
//! installer is the class id of its root storage. That id sits in the root
//! directory entry, whose place the compound-file header gives, so it can be
//! checked from two small windows of a stream without parsing the file.

use std::io::{Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};

use ::msi::{Package, PackageType, Select, Value};

use super::MsiInfo;

/// Signature of an OLE compound file.
const CFB_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// Length of a class id, and of the window the sniffer keeps for it.
pub(super) const CLSID_LEN: usize = 16;

/// {000C1084-0000-0000-C000-000000000046}, the class id of an installer
/// database, in its on-disk (little-endian GUID) byte order. Patches
/// (000C1086) and transforms (000C1082) are not installers by themselves.
const INSTALLER_CLSID: [u8; CLSID_LEN] = [
    0x84, 0x10, 0x0C, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46,
];

/// Offset of the class id inside a 128-byte directory entry.
const CLSID_IN_ENTRY: u64 = 0x50;

/// Where the root storage's class id lies in a compound file whose first
/// bytes are `head`, or None when `head` is not a compound-file header.
pub(super) fn root_clsid_offset(head: &[u8]) -> Option<u64> {
    if head.len() < 0x34 || head[..8] != CFB_MAGIC {
        return None;
    }
    // Sector size is 2^shift: 512 bytes in version 3, 4096 in version 4.
    let shift = u16::from_le_bytes([head[0x1E], head[0x1F]]);
    if shift != 9 && shift != 12 {
        return None;
    }
    // The root entry is the first entry of the first directory sector.
    // Sector n starts after the one-sector header, at (n + 1) << shift.
    let first_dir_sector = u32::from_le_bytes([head[0x30], head[0x31], head[0x32], head[0x33]]);
    if first_dir_sector >= 0xFFFF_FFFA {
        // Reserved values (end of chain, free, ...): no directory at all.
        return None;
    }
    Some(((u64::from(first_dir_sector) + 1) << shift) + CLSID_IN_ENTRY)
}

pub(super) fn is_installer_clsid(clsid: &[u8]) -> bool {
    clsid == INSTALLER_CLSID
}

/// Reads ProductName, ProductVersion and ProductCode from an MSI. The error
/// is the reason, to be put after "… is ": "not a valid MSI: …" when it
/// declares more than it holds, "not a readable MSI: …" when the `msi`
/// crate cannot read it.
pub(super) fn read_properties<R: Read + Seek>(mut reader: R) -> Result<MsiInfo, String> {
    // The crate allocates the sizes the file declares before reading them:
    // those are checked first (`msi_bounds.rs`).
    super::msi_bounds::check(&mut reader)?;
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|e| format!("not a readable MSI: {e}"))?;
    // The file comes from whoever built the package; a parser bug on a
    // malformed one must refuse the package, not take the server down.
    catch_unwind(AssertUnwindSafe(|| read_unguarded(reader)))
        .unwrap_or_else(|_| Err("the MSI parser failed on it".to_string()))
        .map_err(|why| format!("not a readable MSI: {why}"))
}

fn read_unguarded<R: Read + Seek>(reader: R) -> Result<MsiInfo, String> {
    let mut package = Package::open(reader).map_err(|e| e.to_string())?;
    if package.package_type() != PackageType::Installer {
        return Err("it is a patch or transform, not an installer database".to_string());
    }
    // Selecting the two columns by name means indexing the rows by position
    // below cannot panic.
    let query = Select::table("Property").columns(&["Property", "Value"]);
    let rows = package
        .select_rows(query)
        .map_err(|e| format!("cannot read its Property table: {e}"))?;
    let mut info = MsiInfo::default();
    for row in rows {
        let Some(name) = row[0].as_str() else {
            continue;
        };
        let slot = match name {
            "ProductName" => &mut info.product_name,
            "ProductVersion" => &mut info.product_version,
            "ProductCode" => &mut info.product_code,
            _ => continue,
        };
        *slot = match &row[1] {
            Value::Str(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Int(i) => Some(i.to_string()),
            _ => None,
        };
    }
    // The ProductCode goes into the uninstall command line: anything but a
    // GUID is a damaged or hostile database, not a product to remove.
    if let Some(code) = info.product_code.as_deref().filter(|c| !is_guid(c)) {
        let shown: String = code.chars().filter(|c| !c.is_control()).take(60).collect();
        return Err(format!(
            "its ProductCode '{shown}' is not a GUID like {{12345678-ABCD-1234-ABCD-1234567890AB}}"
        ));
    }
    Ok(info)
}

/// True for a braced GUID, `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}` in hex
/// digits of either case: the only form a ProductCode takes.
pub fn is_guid(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('{').and_then(|t| t.strip_suffix('}')) else {
        return false;
    };
    let groups: Vec<&str> = inner.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::tests::{HELLO_CODE, fixture};
    use std::fs::File;

    #[test]
    fn only_braced_guids_are_product_codes() {
        assert!(is_guid(HELLO_CODE));
        assert!(is_guid("{9a1b2c3d-0000-4e5f-8a9b-0c1d2e3f4a5b}"));
        for bad in [
            "",
            "9A1B2C3D-0000-4E5F-8A9B-0C1D2E3F4A5B",
            "{9A1B2C3D-0000-4E5F-8A9B-0C1D2E3F4A5}",
            "{9A1B2C3D-0000-4E5F-8A9B0C1D2E3F4A5B}",
            "{9A1B2C3D-0000-4E5F-8A9B-0C1D2E3F4A5G}",
            "{X} /qn & del C:\\*",
        ] {
            assert!(!is_guid(bad), "{bad}");
        }
    }
    use std::io::BufReader;

    #[test]
    fn root_clsid_of_hello_msi_is_the_installer_one() {
        let bytes = std::fs::read(fixture("hello.msi")).expect("fixture");
        let at = root_clsid_offset(&bytes[..64]).expect("cfb header");
        let at = usize::try_from(at).expect("offset");
        assert!(is_installer_clsid(&bytes[at..at + CLSID_LEN]));
    }

    #[test]
    fn properties_of_hello_msi() {
        let file = File::open(fixture("hello.msi")).expect("fixture");
        let info = read_properties(BufReader::new(file)).expect("properties");
        assert_eq!(info.product_name.as_deref(), Some("Courier Hello"));
        assert_eq!(info.product_version.as_deref(), Some("1.2.3"));
        assert_eq!(info.product_code.as_deref(), Some(HELLO_CODE));
    }

    #[test]
    fn garbage_is_not_a_compound_file() {
        assert_eq!(root_clsid_offset(&[0u8; 64]), None);
        let mut head = [0u8; 64];
        head[..8].copy_from_slice(&CFB_MAGIC);
        head[0x1E] = 7; // not a valid sector shift
        assert_eq!(root_clsid_offset(&head), None);
    }
}

#[cfg(test)]
mod hostile {
    use super::*;
    use msi::{Column, Insert};
    use std::io::Cursor;

    /// An installer database whose Property table holds `code` as its
    /// ProductCode, as a hostile file could.
    fn msi_with_product_code(code: &str) -> Vec<u8> {
        let mut p = Package::create(PackageType::Installer, Cursor::new(Vec::new())).unwrap();
        p.create_table(
            "Property",
            vec![
                Column::build("Property").primary_key().id_string(72),
                Column::build("Value").nullable().formatted_string(0),
            ],
        )
        .unwrap();
        p.insert_rows(
            Insert::into("Property")
                .row(vec![Value::from("ProductName"), Value::from("Evil")])
                .row(vec![Value::from("ProductCode"), Value::from(code)]),
        )
        .unwrap();
        p.into_inner().unwrap().into_inner()
    }

    #[test]
    fn a_product_code_that_is_not_a_guid_is_refused() {
        let bytes = msi_with_product_code("{X} /qn & del /q C:\\*");
        let e = read_properties(Cursor::new(bytes)).unwrap_err();
        assert!(
            e.contains("ProductCode '{X} /qn & del /q C:\\*' is not a GUID"),
            "{e}"
        );
        let ok = msi_with_product_code("{9A1B2C3D-0000-4E5F-8A9B-0C1D2E3F4A5B}");
        let info = read_properties(Cursor::new(ok)).unwrap();
        assert_eq!(info.product_name.as_deref(), Some("Evil"));
    }
}
