//! Command-line flags and their defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// How a server node runs. Every flag can also be given as an environment variable.
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "qpq-server",
    version,
    about = "A quicproquo server node: serves the NodeService Cap'n Proto API over QUIC.",
    long_about = "A quicproquo server node. It serves the NodeService Cap'n Proto API over QUIC \
                  (ALPN qpq/1, one RPC session per bidirectional stream) and stores only \
                  ciphertext and routing metadata, in an embedded SQLite file by default or in \
                  PostgreSQL, where several nodes can share one database."
)]
pub struct Config {
    /// The domain of this server: its users are name@DOMAIN.
    #[arg(long, env = "QPQ_DOMAIN", default_value = "localhost")]
    pub domain: String,

    /// UDP address to listen on for QUIC.
    #[arg(long, env = "QPQ_LISTEN", default_value = "127.0.0.1:7443")]
    pub listen: SocketAddr,

    /// Directory for the generated TLS certificate and the default SQLite database.
    #[arg(long, env = "QPQ_DATA_DIR", default_value = ".qpq/server")]
    pub data_dir: PathBuf,

    /// Database: sqlite://PATH (embedded; default DATA_DIR/qpq.sqlite) or
    /// postgres://USER@HOST:PORT/DB (cluster: several nodes may share it).
    #[arg(long, env = "QPQ_DATABASE")]
    pub database: Option<String>,

    /// NATS server (nats://HOST:PORT) over which the nodes of a PostgreSQL cluster wake each
    /// other, instead of PostgreSQL's LISTEN/NOTIFY, which serialises the commits that notify.
    /// Every node of a cluster must use the same bus.
    #[arg(long, env = "QPQ_NATS_URL")]
    pub nats_url: Option<String>,

    /// PEM certificate chain to serve instead of the generated self-signed one (needs --key).
    #[arg(long, env = "QPQ_CERT", requires = "key")]
    pub cert: Option<PathBuf>,

    /// PEM private key for --cert.
    #[arg(long, env = "QPQ_KEY", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Largest MLS message (commit, Welcome or application message) accepted, in bytes.
    #[arg(long, env = "QPQ_MAX_MESSAGE_BYTES", default_value_t = 1 << 20)]
    pub max_message_bytes: usize,

    /// Largest blob (encrypted file) accepted, in bytes.
    #[arg(long, env = "QPQ_MAX_BLOB_BYTES", default_value_t = 256 << 20)]
    pub max_blob_bytes: u64,

    /// Largest blob chunk accepted, in bytes.
    #[arg(long, env = "QPQ_MAX_CHUNK_BYTES", default_value_t = 1 << 20)]
    pub max_chunk_bytes: u32,

    /// Days a blob is kept after it is created.
    #[arg(long, env = "QPQ_BLOB_DAYS", default_value_t = 30)]
    pub blob_days: u64,

    /// Days a deleted account's name stays reserved before it can be registered again.
    #[arg(long, env = "QPQ_NAME_COOLDOWN_DAYS", default_value_t = 30)]
    pub name_cooldown_days: u64,

    /// Days an envelope waits in a delivery queue before it is dropped undelivered, whatever
    /// its kind (commits, Welcomes and messages without a timer included); a disappearing
    /// message's own timer is used when shorter.
    #[arg(long, env = "QPQ_ENVELOPE_DAYS", default_value_t = 30)]
    pub envelope_days: u64,

    /// Seconds a link code (a link slot on this node) stays good for linking a device.
    #[arg(long, env = "QPQ_LINK_SECS", default_value_t = 600)]
    pub link_secs: u64,

    /// Most envelopes waiting in one device's queue; a message that would go past it is
    /// refused with `quota_exceeded`.
    #[arg(long, env = "QPQ_MAX_QUEUE_PER_DEVICE", default_value_t = 10_000)]
    pub max_queue_per_device: u64,

    /// Most bytes of files (blobs) one account may hold at once.
    #[arg(long, env = "QPQ_MAX_BLOB_BYTES_PER_ACCOUNT", default_value_t = 1 << 30)]
    pub max_blob_bytes_per_account: u64,

    /// Most one-time key packages one device may hold.
    #[arg(long, env = "QPQ_MAX_KEY_PACKAGES_PER_DEVICE", default_value_t = 200)]
    pub max_key_packages_per_device: u32,

    /// Most users one account may block; blocking more is refused with `quota_exceeded`.
    #[arg(long, env = "QPQ_MAX_BLOCKS_PER_ACCOUNT", default_value_t = 10_000)]
    pub max_blocks_per_account: usize,

    /// Most calls one session may have in flight; more are refused with `quota_exceeded`.
    #[arg(long, env = "QPQ_MAX_CALLS_IN_FLIGHT", default_value_t = 64)]
    pub max_calls_in_flight: u32,

    /// Most concurrent streams (sessions) on one QUIC connection. A gateway carries all its
    /// browser sessions to a node on one connection, so this matches its session limit.
    #[arg(long, env = "QPQ_MAX_STREAMS_PER_CONNECTION", default_value_t = 10_000)]
    pub max_streams_per_connection: u32,

    /// Most QUIC connections from one IP address at once.
    #[arg(long, env = "QPQ_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 64)]
    pub max_connections_per_address: usize,

    /// Rate limits, as `burst/per-minute` pairs: registrations (node-wide), and per account
    /// logins, key-package claims, sent messages (enqueues and commits) and blocks.
    #[command(flatten)]
    pub rates: crate::rate::RateConfig,

    /// Close a device's open sessions as soon as it is revoked or its account deleted (on
    /// by default; tests turn it off to reach the per-call check behind it).
    #[arg(skip = true)]
    pub close_revoked_sessions: bool,

    /// Seconds without traffic after which a QUIC connection is closed. The node sends no
    /// keep-alives: clients do, every 10 s (the gateway every 3 s), so keep this above that.
    #[arg(long, env = "QPQ_IDLE_TIMEOUT_SECS", default_value_t = 30)]
    pub idle_timeout_secs: u64,

    /// Contact for push services, sent in every VAPID token (`sub`): a mailto: or https: URL.
    /// Default: mailto:postmaster@DOMAIN.
    #[arg(long, env = "QPQ_PUSH_CONTACT")]
    pub push_contact: Option<String>,

    /// Milliseconds after a message is queued before its recipient device is woken by Web
    /// Push, if no session of it has fetched the message by then.
    #[arg(long, env = "QPQ_PUSH_DELAY_MS", default_value_t = 2000)]
    pub push_delay_ms: u64,

    /// Seconds a push service keeps a push for a browser that is offline (the TTL header).
    #[arg(long, env = "QPQ_PUSH_TTL_SECS", default_value_t = 86400)]
    pub push_ttl_secs: u32,

    /// Accept push subscriptions whose endpoint is plain http:// (a local push service for
    /// tests; browsers' push services are always https).
    #[arg(long, env = "QPQ_PUSH_ALLOW_HTTP")]
    pub push_allow_http: bool,

    /// TCP address of the operator's HTTP listener: `/metrics` (Prometheus text), `/livez`
    /// and `/readyz` (the database answers). Off when not given; bind it to an address only
    /// operators reach.
    #[arg(long, env = "QPQ_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// STUN server URLs handed to clients for calls (comma-separated), e.g.
    /// stun:turn.example.org:3478.
    #[arg(long, env = "QPQ_STUN_URL", value_delimiter = ',')]
    pub stun_url: Vec<String>,

    /// TURN server URLs handed to clients for calls (comma-separated), e.g.
    /// turn:turn.example.org:3478?transport=udp. Needs --turn-secret.
    #[arg(long, env = "QPQ_TURN_URL", value_delimiter = ',', requires = "turn_secret")]
    pub turn_url: Vec<String>,

    /// The secret shared with the TURN server (coturn: use-auth-secret, static-auth-secret):
    /// the node derives short-lived TURN credentials from it and stores none.
    #[arg(long, env = "QPQ_TURN_SECRET", hide_env_values = true)]
    pub turn_secret: Option<String>,

    /// Seconds a TURN credential stays valid (a call started before it expires keeps going).
    #[arg(long, env = "QPQ_TURN_TTL_SECS", default_value_t = 3600)]
    pub turn_ttl_secs: u64,

    /// Log filter (tracing env-filter syntax), e.g. "info" or "qpq_server=debug".
    #[arg(long, env = "QPQ_LOG", default_value = "info")]
    pub log: String,

    /// Write logs as JSON lines.
    #[arg(long, env = "QPQ_LOG_JSON")]
    pub log_json: bool,
}

impl Config {
    /// The database URL, defaulting to the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        self.database
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("qpq.sqlite").display()))
    }

    /// How this node sends Web Push.
    pub fn push_settings(&self) -> crate::push::PushSettings {
        crate::push::PushSettings {
            subject: self.push_contact.clone().unwrap_or_else(|| format!("mailto:postmaster@{}", self.domain)),
            delay: Duration::from_millis(self.push_delay_ms),
            ttl_secs: self.push_ttl_secs,
            allow_http: self.push_allow_http,
        }
    }

    /// The ICE servers this node hands out for calls.
    pub fn ice_settings(&self) -> crate::turn::IceSettings {
        crate::turn::IceSettings {
            stun_urls: self.stun_url.clone(),
            turn_urls: self.turn_url.clone(),
            secret: self.turn_secret.clone(),
            ttl_secs: self.turn_ttl_secs,
        }
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }

    /// A configuration for tests: everything default but the given data directory and an
    /// ephemeral port.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Self {
        use clap::Parser;
        let mut c = Config::parse_from(["qpq-server"]);
        c.data_dir = data_dir.into();
        c.listen = "127.0.0.1:0".parse().expect("address");
        c.log = "warn".into();
        c
    }
}
