//! `qpq-server`: runs one quicproquo server node until interrupted.

use clap::Parser;
use qpq_server::{Config, Node};
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let filter = EnvFilter::try_new(&config.log)?;
    if config.log_json {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let node = Node::bind(config.clone()).await?;
        tracing::info!(
            listen = %node.local_addr(),
            domain = %config.domain,
            database = %redact_url(&config.database_url()),
            fingerprint = %node.fingerprint(),
            "qpq-server listening (QUIC, ALPN qpq/1)"
        );
        if let Some(addr) = node.metrics_addr() {
            tracing::info!(%addr, "metrics at http://{addr}/metrics (and /livez, /readyz)");
        }
        node.run(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        })
        .await;
        Ok(())
    })
}

/// Hides a password in a database URL.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((u, _)) => format!("{}{}:***{}", &url[..s + 3], u, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
