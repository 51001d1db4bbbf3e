//! Inflating one ZIP entry from its raw bytes, bounded and verified: the
//! one loop behind both the registration check and the agent's extraction,
//! so the server accepts exactly what an agent will extract.
//!
//! An entry's headers are its author's claims. The bytes that really come
//! out are counted and hashed here; inflating stops at the first byte past
//! the claimed size or past the caller's budget, so a bomb costs at most
//! its claim, and a size or CRC that differs from the claim is an error.

use std::io::{self, Read};

use ::zip::CompressionMethod;
use ::zip::read::ZipFile;
use flate2::Crc;
use flate2::read::DeflateDecoder;

/// What an entry's headers say about its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claim {
    pub method: CompressionMethod,
    /// Uncompressed size.
    pub size: u64,
    pub crc: u32,
}

impl Claim {
    /// The claim of `entry`, as its central directory record gives it.
    pub(crate) fn of<R: Read>(entry: &ZipFile<'_, R>) -> Claim {
        Claim {
            method: entry.compression(),
            size: entry.size(),
            crc: entry.crc32(),
        }
    }
}

/// Why an entry did not inflate to what it claims.
#[derive(Debug)]
pub(crate) enum InflateError {
    /// More bytes came out than the header claims; inflating stopped there.
    MoreThanClaimed,
    /// Fewer bytes came out than the header claims: this many.
    LessThanClaimed(u64),
    /// The bytes passed the budget the caller gave; inflating stopped there.
    OverBudget,
    /// The size is right but the CRC-32 of the content is not.
    CrcMismatch,
    /// The compressed stream is malformed or cut short.
    Corrupt(io::Error),
    /// Reading the archive failed.
    Read(io::Error),
    /// The sink refused a piece of content.
    Write(io::Error),
}

/// The decompressed content of an entry read raw from the archive (with
/// `by_index_raw`). Only Stored and Deflated are known; callers refuse any
/// other method before they get here.
pub(crate) fn decompressed<'a, R: Read + 'a>(
    raw: R,
    method: CompressionMethod,
) -> Box<dyn Read + 'a> {
    if method == CompressionMethod::Deflated {
        Box::new(DeflateDecoder::new(raw))
    } else {
        Box::new(raw)
    }
}

/// Inflates an entry read raw from the archive, handing each piece of
/// content to `sink` with its offset, and returns the size it really
/// inflated to, which is then the claimed one. Stops before handing over
/// any byte past `claim.size` or `budget`. `buf` sets how much is inflated
/// per read.
pub(crate) fn inflate<R: Read>(
    raw: R,
    claim: &Claim,
    budget: u64,
    buf: &mut [u8],
    mut sink: impl FnMut(u64, &[u8]) -> io::Result<()>,
) -> Result<u64, InflateError> {
    let mut reader = decompressed(raw, claim.method);
    let mut crc = Crc::new();
    let mut size: u64 = 0;
    loop {
        let n = match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The inflater reports a malformed stream as invalid data or
            // input, and a truncated one as an early end.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidData
                        | io::ErrorKind::InvalidInput
                        | io::ErrorKind::UnexpectedEof
                ) =>
            {
                return Err(InflateError::Corrupt(e));
            }
            Err(e) => return Err(InflateError::Read(e)),
        };
        let offset = size;
        size += n as u64;
        if size > claim.size {
            return Err(InflateError::MoreThanClaimed);
        }
        // Callers refuse a claim past the budget before inflating, which
        // makes this implied by the check above; kept so the bound never
        // rests on the caller alone.
        if size > budget {
            return Err(InflateError::OverBudget);
        }
        let piece = &buf[..n];
        crc.update(piece);
        sink(offset, piece).map_err(InflateError::Write)?;
    }
    if size != claim.size {
        return Err(InflateError::LessThanClaimed(size));
    }
    if crc.sum() != claim.crc {
        return Err(InflateError::CrcMismatch);
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::DeflateEncoder;

    fn deflated(content: &[u8]) -> Vec<u8> {
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(content).expect("deflate");
        encoder.finish().expect("finish")
    }

    fn claim(method: CompressionMethod, content: &[u8]) -> Claim {
        Claim {
            method,
            size: content.len() as u64,
            crc: crc32fast::hash(content),
        }
    }

    /// Inflates `raw` with a small buffer, collecting what the sink got.
    fn run(raw: &[u8], claim: &Claim, budget: u64) -> (Result<u64, InflateError>, Vec<u8>) {
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        let result = inflate(raw, claim, budget, &mut buf, |offset, piece| {
            assert_eq!(offset, out.len() as u64);
            out.extend_from_slice(piece);
            Ok(())
        });
        (result, out)
    }

    #[test]
    fn stored_and_deflated_entries_come_out_whole() {
        let content = b"the same content, stored and deflated".repeat(20);
        let (got, out) = run(
            &content,
            &claim(CompressionMethod::Stored, &content),
            u64::MAX,
        );
        assert_eq!(got.expect("stored"), content.len() as u64);
        assert_eq!(out, content);
        let (got, out) = run(
            &deflated(&content),
            &claim(CompressionMethod::Deflated, &content),
            u64::MAX,
        );
        assert_eq!(got.expect("deflated"), content.len() as u64);
        assert_eq!(out, content);
    }

    #[test]
    fn content_past_the_claim_stops_at_the_claim() {
        let content = vec![0u8; 1000];
        let mut lie = claim(CompressionMethod::Deflated, &content);
        lie.size = 10;
        let (got, out) = run(&deflated(&content), &lie, u64::MAX);
        assert!(matches!(got, Err(InflateError::MoreThanClaimed)), "{got:?}");
        assert!(out.len() <= 10, "{} bytes handed over", out.len());
    }

    #[test]
    fn content_past_the_budget_stops_at_the_budget() {
        let content = vec![1u8; 100];
        let (got, out) = run(&content, &claim(CompressionMethod::Stored, &content), 50);
        assert!(matches!(got, Err(InflateError::OverBudget)), "{got:?}");
        assert!(out.len() <= 50, "{} bytes handed over", out.len());
    }

    #[test]
    fn short_content_and_wrong_crc_are_errors() {
        let content = b"hello".to_vec();
        let mut long = claim(CompressionMethod::Stored, &content);
        long.size = 4096;
        let (got, _) = run(&content, &long, u64::MAX);
        assert!(
            matches!(got, Err(InflateError::LessThanClaimed(5))),
            "{got:?}"
        );

        let mut wrong = claim(CompressionMethod::Stored, &content);
        wrong.crc ^= 0xFF;
        let (got, _) = run(&content, &wrong, u64::MAX);
        assert!(matches!(got, Err(InflateError::CrcMismatch)), "{got:?}");
    }

    #[test]
    fn malformed_deflate_stream_is_corrupt() {
        // Block type 3 is reserved: no inflater accepts it.
        let raw = [0xFFu8; 32];
        let (got, _) = run(&raw, &claim(CompressionMethod::Deflated, b"x"), u64::MAX);
        assert!(matches!(got, Err(InflateError::Corrupt(_))), "{got:?}");
    }

    #[test]
    fn sink_failure_is_a_write_error() {
        let content = b"abc".to_vec();
        let mut buf = [0u8; 16];
        let got = inflate(
            &content[..],
            &claim(CompressionMethod::Stored, &content),
            u64::MAX,
            &mut buf,
            |_, _| Err(io::Error::other("disk full")),
        );
        assert!(matches!(got, Err(InflateError::Write(_))), "{got:?}");
    }
}
