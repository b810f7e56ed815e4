//! Conversions between the generated readers/builders and the domain types. Every reader
//! validates, so a malformed value from the network becomes a `bad_request` error, never a
//! panic.

use qpq_types::{
    ChannelId, DeviceAddress, DeviceId, DeviceRecord, DomainError, Envelope, EnvelopeKind, ErrorCode,
    RemoteError, UserId,
};

use crate::node_capnp::{device_address, device_record, envelope};

/// Builds the exception a server returns for `code`.
pub fn error(code: ErrorCode, message: impl AsRef<str>) -> capnp::Error {
    capnp::Error::failed(RemoteError::wire_text(code, message.as_ref()))
}

/// A `bad_request` exception naming the field and what is wrong with it.
pub fn bad(field: &str, e: impl std::fmt::Display) -> capnp::Error {
    error(ErrorCode::BadRequest, format!("{field}: {e}"))
}

/// Reads text as a user id.
pub fn read_user(t: capnp::text::Reader<'_>, field: &str) -> Result<UserId, capnp::Error> {
    let s = t.to_str().map_err(|e| bad(field, e))?;
    UserId::parse(s).map_err(|e| bad(field, e))
}

/// Reads a device id.
pub fn read_device_id(d: &[u8], field: &str) -> Result<DeviceId, capnp::Error> {
    DeviceId::from_slice(d).map_err(|e| bad(field, e))
}

/// Reads a channel id.
pub fn read_channel(d: &[u8], field: &str) -> Result<ChannelId, capnp::Error> {
    ChannelId::from_slice(d).map_err(|e| bad(field, e))
}

/// Reads a device address.
pub fn read_device_address(r: device_address::Reader<'_>) -> Result<DeviceAddress, capnp::Error> {
    Ok(DeviceAddress { user: read_user(r.get_user()?, "user")?, device: read_device_id(r.get_device_id()?, "deviceId")? })
}

/// Writes a device address.
pub fn write_device_address(mut b: device_address::Builder<'_>, a: &DeviceAddress) {
    b.set_user(a.user.as_str());
    b.set_device_id(&a.device.0);
}

/// Reads a device record (its signature is *not* checked here).
pub fn read_device_record(r: device_record::Reader<'_>) -> Result<DeviceRecord, capnp::Error> {
    let fixed = |d: &[u8], field: &'static str, n: usize| -> Result<Vec<u8>, capnp::Error> {
        if d.len() == n {
            Ok(d.to_vec())
        } else {
            Err(bad(field, DomainError::BadLength { field, expected: n, got: d.len() }))
        }
    };
    let key = fixed(r.get_device_key()?, "deviceKey", 32)?;
    let sig = fixed(r.get_signature()?, "signature", 64)?;
    Ok(DeviceRecord {
        user: read_user(r.get_user()?, "user")?,
        device_id: read_device_id(r.get_device_id()?, "deviceId")?,
        device_key: key.try_into().expect("checked length"),
        created_at: r.get_created_at(),
        signature: sig.try_into().expect("checked length"),
    })
}

/// Writes a device record.
pub fn write_device_record(mut b: device_record::Builder<'_>, d: &DeviceRecord) {
    b.set_user(d.user.as_str());
    b.set_device_id(&d.device_id.0);
    b.set_device_key(&d.device_key);
    b.set_created_at(d.created_at);
    b.set_signature(&d.signature);
}

/// Reads an envelope.
pub fn read_envelope(r: envelope::Reader<'_>) -> Result<Envelope, capnp::Error> {
    let kind = match r.get_kind() {
        Ok(envelope::Kind::Application) => EnvelopeKind::Application,
        Ok(envelope::Kind::Commit) => EnvelopeKind::Commit,
        Ok(envelope::Kind::Welcome) => EnvelopeKind::Welcome,
        Ok(envelope::Kind::Proposal) => EnvelopeKind::Proposal,
        Ok(envelope::Kind::Devices) => EnvelopeKind::Devices,
        Ok(envelope::Kind::Account) => EnvelopeKind::Account,
        Err(e) => return Err(bad("kind", e)),
    };
    Ok(Envelope {
        seq: r.get_seq(),
        channel: read_channel(r.get_channel_id()?, "channelId")?,
        kind,
        payload: r.get_payload()?.to_vec(),
        server_time: r.get_server_time(),
        expires_at: r.get_expires_at(),
    })
}

/// Writes an envelope.
pub fn write_envelope(mut b: envelope::Builder<'_>, e: &Envelope) {
    b.set_seq(e.seq);
    b.set_channel_id(e.channel.as_bytes());
    b.set_kind(match e.kind {
        EnvelopeKind::Application => envelope::Kind::Application,
        EnvelopeKind::Commit => envelope::Kind::Commit,
        EnvelopeKind::Welcome => envelope::Kind::Welcome,
        EnvelopeKind::Proposal => envelope::Kind::Proposal,
        EnvelopeKind::Devices => envelope::Kind::Devices,
        EnvelopeKind::Account => envelope::Kind::Account,
    });
    b.set_payload(&e.payload);
    b.set_server_time(e.server_time);
    b.set_expires_at(e.expires_at);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_round_trips_and_bad_ids_are_bad_requests() {
        let env = Envelope {
            seq: 9,
            channel: ChannelId::from_slice(&[1; 16]).unwrap(),
            kind: EnvelopeKind::Commit,
            payload: vec![1, 2, 3],
            server_time: 5,
            expires_at: 0,
        };
        let mut msg = capnp::message::Builder::new_default();
        write_envelope(msg.init_root::<envelope::Builder>(), &env);
        let r = msg.get_root_as_reader::<envelope::Reader>().unwrap();
        assert_eq!(read_envelope(r).unwrap(), env);

        let mut msg = capnp::message::Builder::new_default();
        let mut b = msg.init_root::<device_address::Builder>();
        b.set_user("nobody");
        b.set_device_id(&[1, 2]);
        let e = read_device_address(msg.get_root_as_reader().unwrap()).unwrap_err();
        let re = RemoteError::from_description(&e.extra);
        assert_eq!(re.code, Some(ErrorCode::BadRequest));
    }
}
