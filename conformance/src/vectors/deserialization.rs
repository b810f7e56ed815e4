//! deserialization.json: variable-length vector headers (RFC 9420 §2.1.2),
//! decoded and re-encoded with `tls_codec`'s vector-length functions (the
//! codec openmls uses) and with this crate's reader. Only the header is
//! handled: the largest case announces a 1 GiB vector, which is not built.

use serde::Deserialize;
use serde_json::Value;

use crate::{
    error::CheckError,
    rfc::codec::{self, Reader},
    vectors::json::{typed, Hex},
};

#[derive(Deserialize)]
struct Vector {
    vlbytes_header: Hex,
    length: usize,
}

pub(crate) fn check(v: &Value) -> Result<(), CheckError> {
    let t: Vector = typed(v)?;
    // This crate's reader.
    let mut r = Reader::new(&t.vlbytes_header);
    let len = r.varint()?;
    r.finish("vlbytes_header")?;
    if len != t.length {
        return Err(CheckError::mismatch("decoded length"));
    }
    if codec::varint(t.length)? != t.vlbytes_header.0 {
        return Err(CheckError::mismatch("re-encoded header"));
    }
    // tls_codec's length prefix of variable-length vectors.
    let mut input = t.vlbytes_header.0.as_slice();
    let (len, header_len) = tls_codec::vlen::read_length(&mut input)
        .map_err(|e| CheckError::Mismatch(format!("tls_codec decode: {e}")))?;
    if len != t.length || header_len != t.vlbytes_header.len() || !input.is_empty() {
        return Err(CheckError::mismatch("tls_codec decoded length"));
    }
    let mut out = Vec::new();
    tls_codec::vlen::write_length(&mut out, t.length)
        .map_err(|e| CheckError::Mismatch(format!("tls_codec encode: {e}")))?;
    if out != t.vlbytes_header.0 {
        return Err(CheckError::mismatch("tls_codec re-encoding"));
    }
    Ok(())
}
