//! Tag–length–value fields with LEB128 varints: the building block of the engine's own
//! formats (application messages, group metadata). Readers skip unknown tags.

/// Why bytes are not a well-formed record of the engine's own formats (an application
/// message or group metadata).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input ended inside a field.
    #[error("the message is truncated")]
    Truncated,
    /// A varint is longer than 10 bytes or overflows.
    #[error("a number in the message is malformed")]
    BadVarint,
    /// A required field is missing.
    #[error("the message lacks its {0}")]
    Missing(&'static str),
    /// A field has the wrong size or content.
    #[error("the message's {0} is malformed")]
    Malformed(&'static str),
    /// The message is empty or of an unknown format version.
    #[error("unknown message format {0}")]
    Version(u8),
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads a LEB128 varint, returning it and the bytes used.
pub(crate) fn get_varint(b: &[u8]) -> Result<(u64, usize), CodecError> {
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().enumerate().take(10) {
        let part = u64::from(byte & 0x7f);
        if i == 9 && part > 1 {
            return Err(CodecError::BadVarint);
        }
        v |= part << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    if b.len() < 10 {
        Err(CodecError::Truncated)
    } else {
        Err(CodecError::BadVarint)
    }
}

pub(crate) fn put_field(out: &mut Vec<u8>, tag: u64, value: &[u8]) {
    put_varint(out, tag);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

/// Iterates the fields of a TLV sequence.
pub(crate) struct Fields<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(rest: &'a [u8]) -> Self {
        Fields { rest, failed: false }
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, &'a [u8]), CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() || self.failed {
            return None;
        }
        let r = (|| {
            let (tag, a) = get_varint(self.rest)?;
            let (len, b) = get_varint(&self.rest[a..])?;
            let start = a + b;
            let len = usize::try_from(len).map_err(|_| CodecError::Truncated)?;
            let end = start.checked_add(len).ok_or(CodecError::Truncated)?;
            let value = self.rest.get(start..end).ok_or(CodecError::Truncated)?;
            self.rest = &self.rest[end..];
            Ok((tag, value))
        })();
        if r.is_err() {
            self.failed = true;
        }
        Some(r)
    }
}

