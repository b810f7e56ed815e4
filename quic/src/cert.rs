//! Certificates: generate, persist, load, fingerprint.

use std::path::Path;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use crate::error::CertError;

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct CertificateBundle {
    /// End-entity certificate first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key (PKCS#8).
    pub key: PrivateKeyDer<'static>,
}

impl Clone for CertificateBundle {
    fn clone(&self) -> Self {
        CertificateBundle { chain: self.chain.clone(), key: self.key.clone_key() }
    }
}

impl CertificateBundle {
    /// A new self-signed ECDSA P-256 certificate for `names` (DNS names or IP addresses),
    /// valid from an hour ago for `validity`.
    pub fn generate(names: &[String], validity: Duration) -> Result<Self, CertError> {
        Self::generate_backdated(names, validity, Duration::from_secs(3600))
    }

    /// A new self-signed ECDSA P-256 certificate for `names`, valid from `backdate` ago (to
    /// tolerate clock skew) for `validity` in all: it expires `validity - backdate` from now.
    /// Browsers trust a certificate by its hash (WebTransport `serverCertificateHashes`) only
    /// when it is ECDSA and valid for at most 14 days.
    pub fn generate_backdated(names: &[String], validity: Duration, backdate: Duration) -> Result<Self, CertError> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CertError::Generate(e.to_string()))?;
        let mut params =
            rcgen::CertificateParams::new(names.to_vec()).map_err(|e| CertError::Generate(e.to_string()))?;
        let span = |d: Duration| time::Duration::try_from(d).map_err(|e| CertError::Generate(e.to_string()));
        params.not_before = time::OffsetDateTime::now_utc() - span(backdate)?;
        params.not_after = params.not_before + span(validity)?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "quicproquo");
        let cert = params.self_signed(&key).map_err(|e| CertError::Generate(e.to_string()))?;
        Ok(CertificateBundle {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }

    /// Loads `cert.der` and `key.der` from `dir`, or generates and stores them there.
    pub fn load_or_generate(dir: &Path, names: &[String], validity: Duration) -> Result<Self, CertError> {
        let (cp, kp) = (dir.join("cert.der"), dir.join("key.der"));
        if cp.exists() && kp.exists() {
            let cert = read(&cp)?;
            let key = read(&kp)?;
            restrict_to_owner(&kp)?;
            return Ok(CertificateBundle {
                chain: vec![CertificateDer::from(cert)],
                key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
            });
        }
        let b = Self::generate(names, validity)?;
        std::fs::create_dir_all(dir).map_err(|e| CertError::Io { path: dir.to_path_buf(), source: e })?;
        write(&cp, b.chain[0].as_ref())?;
        write_private(&kp, b.key.secret_der())?;
        Ok(b)
    }

    /// Loads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, CertError> {
        use rustls::pki_types::pem::PemObject;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|e| CertError::Invalid(format!("{}: {e}", cert.display())))?
            .collect::<Result<_, _>>()
            .map_err(|e| CertError::Invalid(format!("{}: {e}", cert.display())))?;
        if chain.is_empty() {
            return Err(CertError::Invalid(format!("{}: no certificate", cert.display())));
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| CertError::Invalid(format!("{}: {e}", key.display())))?;
        Ok(CertificateBundle { chain, key })
    }

    /// SHA-256 of the end-entity certificate (what clients pin).
    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(self.chain[0].as_ref()).into()
    }

    /// When the end-entity certificate becomes valid and when it expires.
    pub fn validity(&self) -> Result<(std::time::SystemTime, std::time::SystemTime), CertError> {
        crate::validity::validity(self.chain[0].as_ref())
    }

    /// The fingerprint as lower-case hex.
    pub fn fingerprint(&self) -> String {
        hex::encode(self.sha256())
    }
}

fn read(p: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(p).map_err(|e| CertError::Io { path: p.to_path_buf(), source: e })
}

fn write(p: &Path, data: &[u8]) -> Result<(), CertError> {
    std::fs::write(p, data).map_err(|e| CertError::Io { path: p.to_path_buf(), source: e })
}

/// Takes read access away from everyone but the owner (a key file left by an older version).
fn restrict_to_owner(p: &Path) -> Result<(), CertError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let io = |e| CertError::Io { path: p.to_path_buf(), source: e };
        let mode = std::fs::metadata(p).map_err(io)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
    }
    let _ = p;
    Ok(())
}

/// Writes a secret (a private key) readable by its owner only: created with mode 0600 on Unix,
/// so there is no moment at which another account can read it.
pub fn write_private(p: &Path, data: &[u8]) -> Result<(), CertError> {
    use std::io::Write as _;
    let io = |e| CertError::Io { path: p.to_path_buf(), source: e };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        let mut f = options.open(p).map_err(io)?;
        // An older file keeps its mode on open; tighten it too.
        f.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        f.write_all(data).map_err(io)
    }
    #[cfg(not(unix))]
    {
        options.open(p).and_then(|mut f| f.write_all(data)).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificate_is_kept_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let a = CertificateBundle::load_or_generate(dir.path(), &names, Duration::from_secs(86400)).unwrap();
        let b = CertificateBundle::load_or_generate(dir.path(), &names, Duration::from_secs(86400)).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
    }

    #[cfg(unix)]
    #[test]
    fn the_private_key_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_string()];
        CertificateBundle::load_or_generate(dir.path(), &names, Duration::from_secs(86400)).unwrap();
        let keys: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("key"))
            .collect();
        assert_eq!(keys.len(), 1, "one key file: {keys:?}");
        let mode = std::fs::metadata(&keys[0]).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "key file mode {mode:o}");
        // A key file left world-readable by an older version is tightened when loaded.
        std::fs::set_permissions(&keys[0], std::fs::Permissions::from_mode(0o644)).unwrap();
        CertificateBundle::load_or_generate(dir.path(), &names, Duration::from_secs(86400)).unwrap();
        assert_eq!(std::fs::metadata(&keys[0]).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn a_generated_certificate_spans_exactly_its_validity() {
        let b = CertificateBundle::generate(&["localhost".into()], Duration::from_secs(13 * 86400)).unwrap();
        let (nb, na) = b.validity().unwrap();
        assert_eq!(na.duration_since(nb).unwrap(), Duration::from_secs(13 * 86400));
        let now = std::time::SystemTime::now();
        assert!(nb < now && now < na);
    }
}
