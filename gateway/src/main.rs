//! `qpq-gateway`: serves the web app and pipes browser sessions to server nodes until
//! interrupted (SIGINT or SIGTERM), then shuts down gracefully.

use clap::Parser;
use qpq_gateway::{Config, Gateway};
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let filter = EnvFilter::try_new(&config.log)?;
    if config.log_json {
        tracing_subscriber::fmt().json().with_env_filter(filter).init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        let gateway = Gateway::bind(config.clone()).await?;
        tracing::info!(
            listen = %gateway.local_addr(),
            nodes = ?config.nodes,
            www = %config.www.display(),
            pkg = %config.pkg.display(),
            "qpq-gateway listening (HTTP, WebSocket on /ws)"
        );
        if let Some(addr) = gateway.metrics_addr() {
            tracing::info!(%addr, "metrics at http://{addr}/metrics (and /livez, /readyz)");
        }
        gateway.run(shutdown_signal()).await;
        Ok(())
    })
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
