//! Reading a certificate's validity period (`notBefore`, `notAfter`) from its DER encoding.
//!
//! Only the few DER elements in front of `validity` in an X.509 `TBSCertificate` are walked
//! (RFC 5280 §4.1): the certificate and TBS sequences, the optional version, the serial
//! number, the signature algorithm and the issuer. Nothing else is interpreted.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::CertError;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION: u8 = 0xa0;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The validity period of a DER certificate: `(notBefore, notAfter)`.
pub fn validity(der: &[u8]) -> Result<(SystemTime, SystemTime), CertError> {
    let bad = |what: &str| CertError::Invalid(format!("not an X.509 certificate: {what}"));
    let (cert, _) = element(der, SEQUENCE).ok_or_else(|| bad("no certificate sequence"))?;
    let (mut tbs, _) = element(cert, SEQUENCE).ok_or_else(|| bad("no TBS sequence"))?;
    if tbs.first() == Some(&VERSION) {
        tbs = element(tbs, VERSION).ok_or_else(|| bad("bad version"))?.1;
    }
    let (_, rest) = element(tbs, INTEGER).ok_or_else(|| bad("no serial number"))?;
    let (_, rest) = element(rest, SEQUENCE).ok_or_else(|| bad("no signature algorithm"))?;
    let (_, rest) = element(rest, SEQUENCE).ok_or_else(|| bad("no issuer"))?;
    let (validity, _) = element(rest, SEQUENCE).ok_or_else(|| bad("no validity"))?;
    let (not_before, rest) = time(validity).ok_or_else(|| bad("bad notBefore"))?;
    let (not_after, _) = time(rest).ok_or_else(|| bad("bad notAfter"))?;
    Ok((not_before, not_after))
}

/// Splits one DER element with tag `tag` off `input`: its contents and what follows it.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        rest = &rest[n..];
        len
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// A `UTCTime` or `GeneralizedTime` (both in the `Z` form certificates use).
fn time(input: &[u8]) -> Option<(SystemTime, &[u8])> {
    let (value, rest) = element(input, UTC_TIME)
        .map(|(v, r)| (v, r, true))
        .or_else(|| element(input, GENERALIZED_TIME).map(|(v, r)| (v, r, false)))
        .map(|(v, r, utc)| (parse_time(v, utc), r))?;
    Some((value?, rest))
}

fn parse_time(v: &[u8], utc: bool) -> Option<SystemTime> {
    let s = std::str::from_utf8(v).ok()?.strip_suffix('Z')?;
    let digits = |r: std::ops::Range<usize>| s.get(r)?.parse::<i32>().ok();
    let (year, off) = if utc {
        let yy = digits(0..2)?;
        (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
    } else {
        (digits(0..4)?, 4)
    };
    if s.len() != off + 10 {
        return None;
    }
    let month = time::Month::try_from(digits(off..off + 2)? as u8).ok()?;
    let date = time::Date::from_calendar_date(year, month, digits(off + 2..off + 4)? as u8).ok()?;
    let t = time::Time::from_hms(
        digits(off + 4..off + 6)? as u8,
        digits(off + 6..off + 8)? as u8,
        digits(off + 8..off + 10)? as u8,
    )
    .ok()?;
    let secs = time::PrimitiveDateTime::new(date, t).assume_utc().unix_timestamp();
    Some(if secs >= 0 { UNIX_EPOCH + Duration::from_secs(secs as u64) } else { UNIX_EPOCH })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_both_encodings_parse() {
        assert_eq!(parse_time(b"700101000000Z", true), Some(UNIX_EPOCH));
        assert_eq!(parse_time(b"20000101000000Z", false), Some(UNIX_EPOCH + Duration::from_secs(946_684_800)));
        assert_eq!(parse_time(b"491231235959Z", true), Some(UNIX_EPOCH + Duration::from_secs(2_524_607_999)));
        assert_eq!(parse_time(b"2000010100000Z", false), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [&b""[..], b"\x30", b"\x30\x84\xff\xff\xff\xff", b"\x30\x03\x30\x01\x02", &[0xffu8; 64]] {
            assert!(validity(bad).is_err());
        }
    }
}
