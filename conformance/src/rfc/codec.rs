//! The TLS presentation language as RFC 9420 §2.1 uses it: fixed-width
//! big-endian integers, `opaque x<V>` vectors with a variable-length-integer
//! length prefix, and `optional<T>`.
//!
//! The reader never panics: every short read or malformed prefix is a
//! [`CheckError::Decode`].

use crate::error::CheckError;

/// A cursor over encoded bytes.
#[derive(Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The whole underlying buffer.
    pub(crate) fn buffer(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Fails unless every byte was consumed.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), CheckError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(CheckError::Decode(what, "trailing bytes"))
        }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], CheckError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or(CheckError::Decode("bytes", "truncated"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, CheckError> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, CheckError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, CheckError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, CheckError> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// A variable-length integer (RFC 9420 §2.1.2), minimal encoding required.
    pub(crate) fn varint(&mut self) -> Result<usize, CheckError> {
        let first = self.u8()?;
        let (len, mut value) = match first >> 6 {
            0 => (1, u64::from(first & 0x3f)),
            1 => (2, u64::from(first & 0x3f)),
            2 => (4, u64::from(first & 0x3f)),
            _ => return Err(CheckError::Decode("varint", "invalid length prefix 0b11")),
        };
        for _ in 1..len {
            value = (value << 8) | u64::from(self.u8()?);
        }
        let minimal = match len {
            1 => true,
            2 => value >= 0x40,
            _ => value >= 0x4000,
        };
        if !minimal {
            return Err(CheckError::Decode("varint", "not minimally encoded"));
        }
        usize::try_from(value).map_err(|_| CheckError::Decode("varint", "too large"))
    }

    /// `opaque x<V>`: the content without its length prefix.
    pub(crate) fn vec(&mut self) -> Result<&'a [u8], CheckError> {
        let n = self.varint()?;
        self.bytes(n)
    }

    /// `opaque x<V>`, returning where its length prefix and content lie.
    pub(crate) fn field(&mut self) -> Result<Field, CheckError> {
        let header = self.pos;
        let len = self.vec()?.len();
        Ok(Field {
            header,
            start: self.pos - len,
            end: self.pos,
        })
    }

    /// `optional<T>` presence flag.
    pub(crate) fn present(&mut self) -> Result<bool, CheckError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(CheckError::Decode("optional", "presence flag not 0 or 1")),
        }
    }

    /// Runs `f` and returns the bytes it consumed along with its result.
    pub(crate) fn span<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, CheckError>,
    ) -> Result<(&'a [u8], T), CheckError> {
        let start = self.pos;
        let out = f(self)?;
        Ok((&self.buf[start..self.pos], out))
    }

    /// Reads a `T items<V>` vector, decoding each item with `f`.
    pub(crate) fn vec_of<T>(
        &mut self,
        mut f: impl FnMut(&mut Reader<'a>) -> Result<T, CheckError>,
    ) -> Result<Vec<T>, CheckError> {
        let body = self.vec()?;
        let mut inner = Reader::new(body);
        let mut out = Vec::new();
        while !inner.is_empty() {
            out.push(f(&mut inner)?);
        }
        Ok(out)
    }
}

/// Where an `opaque x<V>` lies in a buffer: prefix at `header..start`,
/// content at `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) header: usize,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Encodes a variable-length integer (RFC 9420 §2.1.2).
pub(crate) fn varint(n: usize) -> Result<Vec<u8>, CheckError> {
    if n < 0x40 {
        Ok(vec![n as u8])
    } else if n < 0x4000 {
        Ok(((n as u16) | 0x4000).to_be_bytes().to_vec())
    } else if n < 0x4000_0000 {
        Ok(((n as u32) | 0x8000_0000).to_be_bytes().to_vec())
    } else {
        Err(CheckError::Encode("varint too large"))
    }
}

/// A growable encoding buffer.
#[derive(Default)]
pub(crate) struct Writer {
    out: Vec<u8>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.out.push(v);
        self
    }

    pub(crate) fn u16(&mut self, v: u16) -> &mut Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.out.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// Raw bytes, no prefix.
    pub(crate) fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.out.extend_from_slice(b);
        self
    }

    /// `opaque x<V>`.
    pub(crate) fn vec(&mut self, b: &[u8]) -> Result<&mut Self, CheckError> {
        self.out.extend_from_slice(&varint(b.len())?);
        self.out.extend_from_slice(b);
        Ok(self)
    }

    pub(crate) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}
