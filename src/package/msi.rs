//! MSI recognition and the properties registration needs from it.
//!
//! An MSI is an OLE compound file, like a Word document; what makes it an
//! installer is the class id of its root storage. That id sits in the root
//! directory entry, whose place the compound-file header gives, so it can be
//! checked from two small windows of a stream without parsing the file.

use std::io::{Read, Seek};
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
/// is the reason, to be put after "... is not a readable MSI: ".
pub(super) fn read_properties<R: Read + Seek>(reader: R) -> Result<MsiInfo, String> {
    // The file comes from whoever built the package; a parser bug on a
    // malformed one must refuse the package, not take the server down.
    catch_unwind(AssertUnwindSafe(|| read_unguarded(reader)))
        .unwrap_or_else(|_| Err("the MSI parser failed on it".to_string()))
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
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::tests::{HELLO_CODE, fixture};
    use std::fs::File;
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
