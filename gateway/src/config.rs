//! Command-line flags and their defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The certificate `qpq-server` generates in its default data directory: what the gateway
/// trusts when no `--node-fingerprint` or `--node-cert` is given.
pub const DEFAULT_NODE_CERT: &str = ".qpq/server/cert.der";

/// How the gateway runs. Every flag can also be given as an environment variable
/// (repeatable flags as a comma-separated list).
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "qpq-gateway",
    version,
    about = "The quicproquo gateway: serves the web app and pipes browser sessions to server nodes.",
    long_about = "The quicproquo gateway. It serves the browser app (--www) and the wasm-bindgen \
                  output (--pkg) over HTTP, HTTPS (HTTP/1.1, HTTP/2) and HTTP/3, and turns every \
                  WebSocket on /ws and every WebTransport session on /wt into one Cap'n Proto RPC \
                  session with a server node: a new bidirectional stream on a pooled QUIC \
                  connection to the node with the fewest sessions. It is an edge, not an API: it \
                  never interprets the bytes it pipes. /healthz reports the nodes, /transport.json \
                  tells pages where WebTransport is."
)]
pub struct Config {
    /// TCP address to listen on for HTTP (HTTP/1.1 and HTTP/2) and WebSocket.
    #[arg(long, env = "QPQ_GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// TCP and UDP address for HTTPS: HTTP/1.1 and HTTP/2 over TLS on TCP, HTTP/3 and
    /// WebTransport (/wt) over QUIC on the same UDP port. Responses over TCP announce HTTP/3
    /// with Alt-Svc.
    #[arg(long, env = "QPQ_GATEWAY_HTTPS_LISTEN", default_value = "127.0.0.1:8443")]
    pub https_listen: SocketAddr,

    /// Do not serve HTTPS, HTTP/3 or WebTransport at all (only --listen).
    #[arg(long, env = "QPQ_GATEWAY_NO_HTTPS")]
    pub no_https: bool,

    /// Serve HTTPS on TCP but not HTTP/3 and WebTransport on UDP (/transport.json then offers
    /// no WebTransport, and no Alt-Svc is sent).
    #[arg(long, env = "QPQ_GATEWAY_NO_HTTP3")]
    pub no_http3: bool,

    /// TLS certificate chain (PEM) for HTTPS and HTTP/3. Without --tls-cert and --tls-key the
    /// gateway generates a short-lived development certificate that browsers trust for
    /// WebTransport by its SHA-256 (see /transport.json), and renews it while running.
    #[arg(long, env = "QPQ_GATEWAY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1) for --tls-cert.
    #[arg(long, env = "QPQ_GATEWAY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// The WebTransport URL /transport.json gives pages, when it is not this gateway's own
    /// https://HOST:PORT/wt (behind a port mapping or load balancer).
    #[arg(long, env = "QPQ_GATEWAY_WEBTRANSPORT_URL")]
    pub webtransport_url: Option<String>,

    /// Validity of a generated development certificate, in seconds (at most 14 days:
    /// browsers refuse longer ones when trusting by hash).
    #[arg(long, env = "QPQ_GATEWAY_DEV_CERT_VALIDITY_SECS", default_value_t = 13 * 86_400)]
    pub dev_cert_validity_secs: u64,

    /// Renew the development certificate when less than this many seconds of it remain.
    #[arg(long, env = "QPQ_GATEWAY_DEV_CERT_RENEW_BEFORE_SECS", default_value_t = 2 * 86_400)]
    pub dev_cert_renew_before_secs: u64,

    /// Directory of the browser app, served at / (index.html for /).
    #[arg(long, env = "QPQ_GATEWAY_WWW", default_value = "www")]
    pub www: PathBuf,

    /// Directory of the wasm-bindgen output, served at /pkg/.
    #[arg(long, env = "QPQ_GATEWAY_PKG", default_value = "pkg")]
    pub pkg: PathBuf,

    /// A server node, HOST:PORT (repeatable). New sessions go to the node that is up and has
    /// the fewest sessions.
    #[arg(long = "node", env = "QPQ_GATEWAY_NODES", value_delimiter = ',', default_value = "127.0.0.1:7443")]
    pub nodes: Vec<String>,

    /// Trust node certificates with this SHA-256 fingerprint, 64 hex digits (repeatable).
    #[arg(long = "node-fingerprint", env = "QPQ_GATEWAY_NODE_FINGERPRINTS", value_delimiter = ',')]
    pub node_fingerprints: Vec<String>,

    /// Trust the node certificate in this DER file, by its SHA-256 (repeatable; read again on
    /// every connection attempt). When neither this nor --node-fingerprint is given:
    /// .qpq/server/cert.der, what qpq-server generates in its default data directory.
    #[arg(long = "node-cert", env = "QPQ_GATEWAY_NODE_CERTS", value_delimiter = ',')]
    pub node_certs: Vec<PathBuf>,

    /// Also accept WebSockets from this origin, e.g. https://chat.example (repeatable). The
    /// gateway's own origin (the one in the Host header) is always accepted.
    #[arg(long = "allow-origin", env = "QPQ_GATEWAY_ALLOW_ORIGINS", value_delimiter = ',')]
    pub allow_origins: Vec<String>,

    /// Who may frame the chat widget's page (/embed.html, which /embed.js embeds): CSP
    /// frame-ancestors sources, e.g. "https://shop.example https://blog.example". Every other
    /// page, the app included, cannot be framed at all.
    #[arg(long, env = "QPQ_GATEWAY_FRAME_ANCESTORS", default_value = "'none'")]
    pub frame_ancestors: String,

    /// Largest WebSocket message (and frame), or Cap'n Proto message on a WebTransport
    /// stream, accepted from a browser, in bytes; a bigger one closes that session with code
    /// 1009.
    #[arg(long, env = "QPQ_GATEWAY_MAX_MESSAGE_BYTES", default_value_t = 4 << 20)]
    pub max_message_bytes: usize,

    /// Most sessions (WebSockets and WebTransport sessions) at once; more are refused with 503.
    #[arg(long, env = "QPQ_GATEWAY_MAX_SESSIONS", default_value_t = 10_000)]
    pub max_sessions: usize,

    /// Most sessions at once from one client IP address; more are refused with 429.
    #[arg(long, env = "QPQ_GATEWAY_MAX_SESSIONS_PER_IP", default_value_t = 64)]
    pub max_sessions_per_ip: usize,

    /// New sessions per minute from one client IP address (a bucket of this many that
    /// refills continuously); more are refused with 429 and a `Retry-After`. 0: unlimited.
    #[arg(long, env = "QPQ_GATEWAY_SESSIONS_PER_MIN_PER_IP", default_value_t = 300)]
    pub sessions_per_min_per_ip: u32,

    /// TCP address of the operator's HTTP listener: `/metrics` (Prometheus text), `/livez`
    /// and `/readyz` (ready while at least one node is up). Off when not given; bind it to an
    /// address only operators reach.
    #[arg(long, env = "QPQ_GATEWAY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Let `/healthz` also list node addresses, their state and session counts. Off by
    /// default: the public answer says only whether the gateway is healthy.
    #[arg(long, env = "QPQ_GATEWAY_HEALTHZ_DETAILS")]
    pub healthz_details: bool,

    /// Seconds without any frame in either direction (pings count) after which a session is
    /// closed.
    #[arg(long, env = "QPQ_GATEWAY_IDLE_TIMEOUT_SECS", default_value_t = 120)]
    pub idle_timeout_secs: u64,

    /// Seconds a QUIC handshake with a node (or opening a stream on it) may take.
    #[arg(long, env = "QPQ_GATEWAY_NODE_CONNECT_TIMEOUT_SECS", default_value_t = 5)]
    pub node_connect_timeout_secs: u64,

    /// Longest wait, in milliseconds, between attempts to reconnect a node that is down (the
    /// wait starts at 200 ms and doubles).
    #[arg(long, env = "QPQ_GATEWAY_NODE_RETRY_MAX_MS", default_value_t = 10_000)]
    pub node_retry_max_ms: u64,

    /// Seconds a graceful shutdown waits for sessions and connections to close.
    #[arg(long, env = "QPQ_GATEWAY_SHUTDOWN_GRACE_SECS", default_value_t = 5)]
    pub shutdown_grace_secs: u64,

    /// Benchmarks only: also serve `/echo`, a WebSocket (and, over HTTP/3, a WebTransport
    /// session) that sends every byte it receives straight back, without any node. It
    /// measures what the transports themselves cost next to a real session. Off by default;
    /// the same origin check and session limits apply.
    #[arg(long, env = "QPQ_GATEWAY_BENCH_ECHO")]
    pub bench_echo: bool,

    /// Log filter (tracing env-filter syntax), e.g. "info" or "qpq_gateway=debug". Client IP
    /// addresses are logged only at debug level.
    #[arg(long, env = "QPQ_GATEWAY_LOG", default_value = "info")]
    pub log: String,

    /// Write logs as JSON lines.
    #[arg(long, env = "QPQ_GATEWAY_LOG_JSON")]
    pub log_json: bool,
}

impl Config {
    /// Idle timeout of a session.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }

    /// How long connecting to a node (or opening a stream) may take.
    pub fn node_connect_timeout(&self) -> Duration {
        Duration::from_secs(self.node_connect_timeout_secs.max(1))
    }

    /// Longest wait between reconnection attempts.
    pub fn node_retry_max(&self) -> Duration {
        Duration::from_millis(self.node_retry_max_ms.max(NODE_RETRY_MIN.as_millis() as u64))
    }

    /// How long a graceful shutdown waits.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// The certificate files to pin: the given ones, or the default when no trust was given.
    pub fn node_cert_files(&self) -> Vec<PathBuf> {
        if self.node_certs.is_empty() && self.node_fingerprints.is_empty() {
            vec![PathBuf::from(DEFAULT_NODE_CERT)]
        } else {
            self.node_certs.clone()
        }
    }

    /// Validity of a generated development certificate (at most 14 days).
    pub fn dev_cert_validity(&self) -> Duration {
        Duration::from_secs(self.dev_cert_validity_secs.clamp(2, 14 * 86_400))
    }

    /// How long before its end the development certificate is renewed (less than its
    /// validity).
    pub fn dev_cert_renew_before(&self) -> Duration {
        Duration::from_secs(self.dev_cert_renew_before_secs).min(self.dev_cert_validity() * 3 / 4)
    }

    /// Whether HTTP/3 and WebTransport are served.
    pub fn serves_http3(&self) -> bool {
        !self.no_https && !self.no_http3
    }

    /// A configuration for tests: defaults, ephemeral ports, the given nodes trusted by
    /// fingerprint, and static files from `www` and `pkg`.
    pub fn for_tests(nodes: &[(SocketAddr, &str)], www: impl Into<PathBuf>, pkg: impl Into<PathBuf>) -> Self {
        use clap::Parser;
        let mut c = Config::parse_from(["qpq-gateway"]);
        c.listen = "127.0.0.1:0".parse().expect("address");
        c.https_listen = "127.0.0.1:0".parse().expect("address");
        c.nodes = nodes.iter().map(|(a, _)| a.to_string()).collect();
        c.node_fingerprints = nodes.iter().map(|(_, f)| f.to_string()).collect();
        c.www = www.into();
        c.pkg = pkg.into();
        c.node_retry_max_ms = 1_000;
        c.shutdown_grace_secs = 2;
        c.log = "warn".into();
        // The tests read node states from /healthz.
        c.healthz_details = true;
        c
    }
}

/// First wait before reconnecting a node that went down.
pub(crate) const NODE_RETRY_MIN: Duration = Duration::from_millis(200);

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn defaults_trust_the_server_default_certificate() {
        let c = Config::parse_from(["qpq-gateway"]);
        assert_eq!(c.nodes, vec!["127.0.0.1:7443".to_string()]);
        assert_eq!(c.node_cert_files(), vec![PathBuf::from(DEFAULT_NODE_CERT)]);
        assert_eq!(c.max_message_bytes, 4 << 20);
        assert_eq!(c.idle_timeout(), Duration::from_secs(120));
        assert_eq!(c.frame_ancestors, "'none'");
        assert!(!c.bench_echo, "the echo endpoint is off unless asked for");
        assert_eq!(c.https_listen, "127.0.0.1:8443".parse().unwrap());
        assert!(c.serves_http3() && c.tls_cert.is_none());
        assert_eq!(c.dev_cert_validity(), Duration::from_secs(13 * 86_400));
        assert_eq!(c.dev_cert_renew_before(), Duration::from_secs(2 * 86_400));
    }

    #[test]
    fn a_certificate_needs_its_key() {
        assert!(Config::try_parse_from(["qpq-gateway", "--tls-cert", "c.pem"]).is_err());
        let c = Config::try_parse_from(["qpq-gateway", "--tls-cert", "c.pem", "--tls-key", "k.pem"]).unwrap();
        assert_eq!(c.tls_key, Some(PathBuf::from("k.pem")));
    }

    #[test]
    fn a_fingerprint_replaces_the_default_certificate() {
        let fp = "ab".repeat(32);
        let c = Config::parse_from(["qpq-gateway", "--node", "a:1", "--node", "b:2", "--node-fingerprint", &fp]);
        assert_eq!(c.nodes, vec!["a:1".to_string(), "b:2".to_string()]);
        assert!(c.node_cert_files().is_empty());
    }
}
