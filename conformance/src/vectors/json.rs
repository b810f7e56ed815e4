//! Reading vector JSON: hex strings and typed vector structs.

use serde::{de::DeserializeOwned, Deserialize, Deserializer};
use serde_json::Value;

use crate::{error::CheckError, rfc::crypto::Suite};

/// A hex-encoded byte string in a vector.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Hex(pub(crate) Vec<u8>);

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s)
            .map(Hex)
            .map_err(|_| serde::de::Error::custom("invalid hex string"))
    }
}

impl std::ops::Deref for Hex {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// Decodes one vector object into its typed form.
pub(crate) fn typed<T: DeserializeOwned>(v: &Value) -> Result<T, CheckError> {
    T::deserialize(v).map_err(|e| CheckError::Json(e.to_string()))
}

/// The suite named by a vector's `cipher_suite` field.
pub(crate) fn suite_of(v: &Value) -> Result<Suite, CheckError> {
    let id = v
        .get("cipher_suite")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .ok_or_else(|| CheckError::Json("missing cipher_suite".into()))?;
    Suite::new(id)
}
