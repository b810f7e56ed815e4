//! The certificate behind HTTPS and HTTP/3, and the development certificate's lifecycle.
//!
//! With `--tls-cert`/`--tls-key` the gateway presents that certificate and pages trust it the
//! usual way (a public CA). Without them it generates a **development certificate**: ECDSA
//! P-256, valid for `--dev-cert-validity-secs` (13 days; browsers trust a certificate by its
//! SHA-256 only when it is ECDSA and valid for at most 14 days), which pages trust for
//! WebTransport by hash: `/transport.json` lists the hashes.
//!
//! The running gateway renews it in two steps, so that a page always has a hash that works:
//!
//! 1. **announce**: when less than `renew_before` (2 days) of the current certificate remain,
//!    a new one is generated and listed in `/transport.json` *next to* the current one;
//!    connections still get the current one;
//! 2. **switch**: when less than half of `renew_before` remains, new connections (TCP and
//!    QUIC) get the new certificate, and only its hash is listed. Open connections keep the
//!    certificate they were made with.
//!
//! Both listeners share one [`rustls::server::ResolvesServerCert`] that reads the current
//! certificate for every handshake, so a switch needs no restart. [`plan`] decides the next
//! step from the state and the time; it does no I/O and is tested on its own.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use qpq_quic::CertificateBundle;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::GatewayError;

/// ALPN of HTTP/3.
pub const ALPN_H3: &[u8] = b"h3";

/// What the gateway presents now, and what comes next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// SHA-256 of the certificate new connections get.
    pub current: [u8; 32],
    /// When that certificate expires.
    pub current_not_after: SystemTime,
    /// SHA-256 of the development certificate announced to replace it (step 1 of a renewal).
    pub next: Option<[u8; 32]>,
    /// Whether these are generated development certificates that pages trust by hash (false
    /// for `--tls-cert`: pages trust it through its CA, and no hashes are published).
    pub development: bool,
}

impl CertificateInfo {
    /// The hashes a page should pass as WebTransport `serverCertificateHashes`: the current
    /// and announced development certificates, none for a real certificate.
    pub fn published_hashes(&self) -> Vec<[u8; 32]> {
        if !self.development {
            return Vec::new();
        }
        std::iter::once(self.current).chain(self.next).collect()
    }
}

/// How the development certificate is renewed.
#[derive(Clone, Copy, Debug)]
pub struct RenewalPolicy {
    /// Validity of each generated certificate.
    pub validity: Duration,
    /// Announce a successor when less than this remains; switch to it at half of it.
    pub renew_before: Duration,
}

/// The next step of the development certificate's lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing to do for this long.
    Wait(Duration),
    /// Generate the successor and list it next to the current certificate.
    Announce,
    /// Present the announced successor to new connections.
    Switch,
}

/// Decides the next step for a current certificate expiring at `not_after`, with or without
/// an announced successor, at time `now`.
pub fn plan(not_after: SystemTime, announced: bool, now: SystemTime, policy: RenewalPolicy) -> Step {
    let left = not_after.duration_since(now).unwrap_or(Duration::ZERO);
    let (threshold, step) =
        if announced { (policy.renew_before / 2, Step::Switch) } else { (policy.renew_before, Step::Announce) };
    if left <= threshold {
        step
    } else {
        Step::Wait(left - threshold)
    }
}

/// A certificate ready for rustls, with its hash and expiry.
#[derive(Clone, Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    sha256: [u8; 32],
    not_after: SystemTime,
}

impl Loaded {
    fn new(bundle: &CertificateBundle) -> Result<Self, String> {
        let signer = rustls::crypto::ring::sign::any_supported_type(&bundle.key).map_err(|e| e.to_string())?;
        let not_after = bundle.validity().map_err(|e| e.to_string())?.1;
        Ok(Loaded {
            key: Arc::new(CertifiedKey::new(bundle.chain.clone(), signer)),
            sha256: Sha256::digest(bundle.chain[0].as_ref()).into(),
            not_after,
        })
    }
}

#[derive(Debug)]
struct Slots {
    current: Loaded,
    next: Option<Loaded>,
}

/// The certificates of the HTTPS and HTTP/3 listeners. Cheap to clone (a handle).
#[derive(Clone, Debug)]
pub struct Certificates {
    slots: Arc<RwLock<Slots>>,
    info: Arc<watch::Sender<CertificateInfo>>,
    dev: Option<(RenewalPolicy, Vec<String>)>,
}

impl Certificates {
    /// Loads `--tls-cert`/`--tls-key`, or generates a development certificate for the
    /// loopback names and the HTTPS listener's address.
    pub fn from_config(config: &Config) -> Result<Self, GatewayError> {
        match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => {
                let bundle = CertificateBundle::from_pem_files(cert, key)
                    .map_err(|e| GatewayError::Certificate(e.to_string()))?;
                let loaded = Loaded::new(&bundle).map_err(GatewayError::Certificate)?;
                Ok(Self::with(loaded, None))
            }
            _ => {
                let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
                let ip = config.https_listen.ip();
                if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
                    names.push(ip.to_string());
                }
                let policy =
                    RenewalPolicy { validity: config.dev_cert_validity(), renew_before: config.dev_cert_renew_before() };
                let loaded = generate(&names, policy).map_err(GatewayError::Certificate)?;
                Ok(Self::with(loaded, Some((policy, names))))
            }
        }
    }

    fn with(current: Loaded, dev: Option<(RenewalPolicy, Vec<String>)>) -> Self {
        let info = CertificateInfo {
            current: current.sha256,
            current_not_after: current.not_after,
            next: None,
            development: dev.is_some(),
        };
        Certificates {
            slots: Arc::new(RwLock::new(Slots { current, next: None })),
            info: Arc::new(watch::channel(info).0),
            dev,
        }
    }

    /// What is presented now and what is announced.
    pub fn info(&self) -> CertificateInfo {
        self.info.borrow().clone()
    }

    /// The same, as it changes (tests wait on renewals with it).
    pub fn watch(&self) -> watch::Receiver<CertificateInfo> {
        self.info.subscribe()
    }

    /// rustls configuration for HTTPS on TCP (HTTP/2 and HTTP/1.1).
    pub(crate) fn tcp_config(&self) -> Result<rustls::ServerConfig, GatewayError> {
        self.rustls_config(&[b"h2", b"http/1.1"], &[&rustls::version::TLS13, &rustls::version::TLS12])
    }

    /// rustls configuration for HTTP/3 on QUIC.
    pub(crate) fn quic_config(&self) -> Result<rustls::ServerConfig, GatewayError> {
        self.rustls_config(&[ALPN_H3], &[&rustls::version::TLS13])
    }

    fn rustls_config(
        &self,
        alpn: &[&[u8]],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Result<rustls::ServerConfig, GatewayError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .map_err(|e| GatewayError::Certificate(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(self.slots.clone())));
        tls.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
        Ok(tls)
    }

    /// Renews the development certificate as [`plan`] says until `stop` (returns at once
    /// for a configured certificate).
    pub(crate) async fn renew(self, stop: CancellationToken) {
        let Some((policy, names)) = self.dev.clone() else { return };
        loop {
            let (not_after, announced) = {
                let s = read(&self.slots);
                (s.current.not_after, s.next.is_some())
            };
            match plan(not_after, announced, SystemTime::now(), policy) {
                Step::Wait(d) => {
                    tokio::select! {
                        () = tokio::time::sleep(d) => {}
                        () = stop.cancelled() => return,
                    }
                }
                Step::Announce => {
                    let names = names.clone();
                    let made = tokio::task::spawn_blocking(move || generate(&names, policy))
                        .await
                        .unwrap_or_else(|e| Err(e.to_string()));
                    match made {
                        Ok(next) => {
                            tracing::info!(next = %hex::encode(next.sha256), "development certificate renewal: successor announced");
                            write(&self.slots).next = Some(next);
                            self.publish();
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "cannot generate the next development certificate; retrying in a minute");
                            tokio::select! {
                                () = tokio::time::sleep(Duration::from_secs(60)) => {}
                                () = stop.cancelled() => return,
                            }
                        }
                    }
                }
                Step::Switch => {
                    {
                        let mut s = write(&self.slots);
                        if let Some(next) = s.next.take() {
                            s.current = next;
                        }
                    }
                    self.publish();
                    tracing::info!(current = %hex::encode(self.info().current), "development certificate renewed: new connections get the new certificate");
                }
            }
        }
    }

    fn publish(&self) {
        let s = read(&self.slots);
        self.info.send_replace(CertificateInfo {
            current: s.current.sha256,
            current_not_after: s.current.not_after,
            next: s.next.as_ref().map(|n| n.sha256),
            development: self.dev.is_some(),
        });
    }
}

fn generate(names: &[String], policy: RenewalPolicy) -> Result<Loaded, String> {
    // Backdate a little for clock skew, within the validity (a page trusts it by hash only
    // while it is valid).
    let backdate = (policy.validity / 8).min(Duration::from_secs(3600));
    let bundle = CertificateBundle::generate_backdated(names, policy.validity, backdate).map_err(|e| e.to_string())?;
    Loaded::new(&bundle)
}

fn read(l: &RwLock<Slots>) -> std::sync::RwLockReadGuard<'_, Slots> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write(l: &RwLock<Slots>) -> std::sync::RwLockWriteGuard<'_, Slots> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// Hands every TLS handshake the current certificate.
#[derive(Debug)]
struct Resolver(Arc<RwLock<Slots>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(read(&self.0).current.key.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn renewal_announces_two_days_before_and_switches_one_day_before() {
        let policy = RenewalPolicy { validity: 13 * DAY, renew_before: 2 * DAY };
        let now = SystemTime::UNIX_EPOCH + 1000 * DAY;
        let expires = now + 13 * DAY;
        assert_eq!(plan(expires, false, now, policy), Step::Wait(11 * DAY));
        assert_eq!(plan(expires, false, now + 11 * DAY, policy), Step::Announce);
        assert_eq!(plan(expires, true, now + 11 * DAY, policy), Step::Wait(DAY));
        assert_eq!(plan(expires, true, now + 12 * DAY, policy), Step::Switch);
        // Already expired (a suspended machine woke up): catch up at once.
        assert_eq!(plan(expires, false, now + 20 * DAY, policy), Step::Announce);
        assert_eq!(plan(expires, true, now + 20 * DAY, policy), Step::Switch);
    }

    #[test]
    fn only_development_certificates_publish_hashes() {
        let mut info = CertificateInfo {
            current: [1; 32],
            current_not_after: SystemTime::UNIX_EPOCH,
            next: Some([2; 32]),
            development: true,
        };
        assert_eq!(info.published_hashes(), vec![[1; 32], [2; 32]]);
        info.next = None;
        assert_eq!(info.published_hashes(), vec![[1; 32]]);
        info.development = false;
        assert!(info.published_hashes().is_empty());
    }
}
