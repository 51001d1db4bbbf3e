//! The validity of an X.509 certificate, read from its DER: the one field
//! the agent and the listener need. A general X.509 parser linked into the
//! agent for it made the binary 370 KB larger and its idle memory over
//! 5 MiB (docs/PERFORMANCE.md, "Agent memory"); this walks the few
//! elements before `validity` and reads its two times.

use anyhow::{Result, bail};

use crate::clock::UnixTime;

/// (`not_before`, `not_after`) of a DER certificate, in Unix seconds.
pub(crate) fn read(der: &[u8]) -> Result<(UnixTime, UnixTime)> {
    let (cert, _) = element(der, SEQUENCE)?;
    let (mut tbs, _) = element(cert, SEQUENCE)?;
    // version [0] EXPLICIT, absent in v1 certificates.
    if tbs.first() == Some(&VERSION) {
        tbs = element(tbs, VERSION)?.1;
    }
    tbs = element(tbs, INTEGER)?.1; // serialNumber
    tbs = element(tbs, SEQUENCE)?.1; // signature
    tbs = element(tbs, SEQUENCE)?.1; // issuer
    let (validity, _) = element(tbs, SEQUENCE)?;
    let (not_before, rest) = time(validity)?;
    let (not_after, _) = time(rest)?;
    Ok((not_before, not_after))
}

const INTEGER: u8 = 0x02;
const SEQUENCE: u8 = 0x30;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The contents of the element of type `tag` at the start of `der`, and
/// what follows it.
fn element(der: &[u8], tag: u8) -> Result<(&[u8], &[u8])> {
    let [t, first, rest @ ..] = der else {
        bail!("certificate: truncated");
    };
    if *t != tag {
        bail!("certificate: element {t:#04x} where {tag:#04x} belongs");
    }
    let (len, rest) = match *first {
        n if n < 0x80 => (usize::from(n), rest),
        0x81..=0x84 => {
            let n = usize::from(first & 0x7f);
            if rest.len() < n {
                bail!("certificate: truncated length");
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, &rest[n..])
        }
        _ => bail!("certificate: length form not DER"),
    };
    if rest.len() < len {
        bail!("certificate: truncated element");
    }
    Ok(rest.split_at(len))
}

/// A UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`), as DER writes them, in Unix seconds.
fn time(der: &[u8]) -> Result<(UnixTime, &[u8])> {
    let tag = *der.first().unwrap_or(&0);
    let (text, rest) = element(der, tag)?;
    let digits = |s: &[u8]| -> Result<i64> {
        if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
            bail!("certificate: a time that is not digits");
        }
        Ok(s.iter()
            .fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0')))
    };
    let (year, tail) = match (tag, text) {
        (UTC_TIME, [y @ .., b'Z']) if y.len() == 12 => {
            let yy = digits(&y[..2])?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &y[2..])
        }
        (GENERALIZED_TIME, [y @ .., b'Z']) if y.len() == 14 => (digits(&y[..4])?, &y[4..]),
        _ => bail!("certificate: a time neither UTCTime nor GeneralizedTime in UTC"),
    };
    let field = |i: usize| digits(&tail[i..i + 2]);
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        bail!("certificate: a time out of range");
    }
    let days = days_from_civil(year, month, day);
    Ok((days * 86_400 + hour * 3600 + minute * 60 + second, rest))
}

/// Days from 1970-01-01 to the proleptic Gregorian date `y-m-d`.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_count_from_the_epoch() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(4096, 1, 1), 776_506);
    }

    /// Both time forms, at the edges of UTCTime's century.
    #[test]
    fn reads_both_time_forms() {
        let utc = |s: &str| [&[UTC_TIME, s.len() as u8][..], s.as_bytes()].concat();
        let general = |s: &str| [&[GENERALIZED_TIME, s.len() as u8][..], s.as_bytes()].concat();
        assert_eq!(time(&utc("700101000000Z")).unwrap().0, 0);
        assert_eq!(time(&utc("491231235959Z")).unwrap().0, 2_524_607_999);
        assert_eq!(time(&utc("500101000000Z")).unwrap().0, -631_152_000);
        assert_eq!(time(&general("20500101000000Z")).unwrap().0, 2_524_608_000);
        for bad in [
            "7001010000Z",
            "700101000000+0100",
            "701301000000Z",
            "70010100000aZ",
        ] {
            assert!(time(&utc(bad)).is_err(), "{bad}");
        }
        assert!(time(&general("700101000000Z")).is_err());
    }

    /// The same times as a full X.509 parser reads, for certificates made
    /// with every validity rcgen writes (UTCTime before 2050,
    /// GeneralizedTime after).
    #[test]
    fn agrees_with_a_full_parser() {
        for (from, to) in [
            (0i64, 1),
            (157_766_400, 67_090_109_000),
            (1_790_000_000, 1_790_000_000 + 365 * 86_400),
            (2_524_607_999, 2_524_608_000),
            (-631_152_000, 32_503_680_000),
        ] {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(vec!["x".into()]).unwrap();
            params.not_before = time::OffsetDateTime::from_unix_timestamp(from).unwrap();
            params.not_after = time::OffsetDateTime::from_unix_timestamp(to).unwrap();
            let der = params.self_signed(&key).unwrap().der().to_vec();
            let (_, full) = x509_parser::parse_x509_certificate(&der).unwrap();
            let v = full.validity();
            assert_eq!(
                read(&der).unwrap(),
                (v.not_before.timestamp(), v.not_after.timestamp())
            );
            assert_eq!(read(&der).unwrap(), (from, to));
        }
    }

    /// Whatever the bytes, an answer or an error: never a panic.
    #[test]
    fn damaged_certificates_are_errors() {
        let cert = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
        let der = cert.cert.der().to_vec();
        assert!(read(&der).is_ok());
        for cut in 0..der.len() {
            let _ = read(&der[..cut]);
        }
        for i in 0..der.len().min(400) {
            let mut d = der.clone();
            d[i] ^= 0xff;
            let _ = read(&d);
        }
        assert!(read(&[0x30, 0x85, 1, 2, 3, 4, 5]).is_err());
        assert!(read(&[]).is_err());
    }
}
