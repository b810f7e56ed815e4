//! `qpq`: a command-line quicproquo client, a REPL over stdin and stdout — for people, and
//! for bots (everything a browser user does to messages and files is a command here).
//!
//! `commands.rs` runs the commands; `render.rs` shows history and prints events.

mod commands;
mod render;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;

use anyhow::{bail, Context};
use clap::Parser;
use qpq_client::Connector;
use qpq_native::{FileStore, NativeClient, QuicConnector, TokioPlatform};
use sha2::Digest;
use tokio::io::{AsyncBufReadExt, BufReader};

/// A command-line quicproquo client.
#[derive(Parser, Debug)]
#[command(name = "qpq", version, about = "A command-line quicproquo client (type `help` at the prompt).")]
struct Args {
    /// Server node address (QUIC).
    #[arg(long, env = "QPQ_SERVER", default_value = "127.0.0.1:7443")]
    server: SocketAddr,

    /// SHA-256 fingerprint (hex) of the server's certificate to trust.
    #[arg(long, env = "QPQ_FINGERPRINT", conflicts_with = "cert")]
    fingerprint: Option<String>,

    /// The server's certificate (DER) to trust; default: the development server's.
    #[arg(long, env = "QPQ_CERT", default_value = ".qpq/server/cert.der")]
    cert: PathBuf,

    /// Where this device's state is kept.
    #[arg(long, env = "QPQ_STATE", default_value = ".qpq/client.state")]
    state: PathBuf,

    /// Create an account with this name (name, or name@domain) if the state file has none.
    #[arg(long, conflicts_with_all = ["link", "restore"])]
    register: Option<String>,

    /// Make this a new device of an existing account, with the link code one of its devices
    /// shows (`link`, or Devices → Link a device in the browser).
    #[arg(long, conflicts_with = "restore")]
    link: Option<String>,

    /// Make this the device of the account in this backup file (`backup`, or Devices → Back up
    /// in the browser), in place of the account's other devices. The passphrase is read from
    /// QPQ_BACKUP_PASSPHRASE, else as the first line of standard input.
    #[arg(long)]
    restore: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    tokio::task::LocalSet::new().block_on(&rt, run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let pin = match &args.fingerprint {
        Some(f) => f.clone(),
        None => {
            let der = std::fs::read(&args.cert)
                .with_context(|| format!("reading the server certificate {} (or pass --fingerprint)", args.cert.display()))?;
            hex::encode(sha2::Sha256::digest(&der))
        }
    };
    let connector = Rc::new(QuicConnector::pinned(args.server, &pin)?);
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let store = FileStore::open(&args.state, true).with_context(|| format!("opening {}", args.state.display()))?;
    let client = match NativeClient::open(store, TokioPlatform).await? {
        Some(c) => c,
        None => {
            let store = FileStore::open(&args.state, true)?;
            if let Some(path) = &args.restore {
                let file = std::fs::read(path).with_context(|| format!("reading the backup {}", path.display()))?;
                let passphrase = match std::env::var("QPQ_BACKUP_PASSPHRASE") {
                    Ok(p) => p,
                    Err(_) => {
                        println!("passphrase of {}:", path.display());
                        lines.next_line().await?.unwrap_or_default()
                    }
                };
                let name = format!("qpq on {}", std::env::consts::OS);
                let r = NativeClient::restore(&*connector, store, TokioPlatform, &file, passphrase.trim_end(), &name, |_| {})
                    .await?;
                println!(
                    "restored {} ({} messages in {} conversations come back as their members add this device)",
                    r.client.user(),
                    r.messages,
                    r.conversations
                );
                r.client
            } else if let Some(code) = &args.link {
                println!("waiting for your other device to answer…");
                let name = format!("qpq on {}", std::env::consts::OS);
                let c = NativeClient::link(&*connector, store, TokioPlatform, code, &name, |_| {}).await?;
                println!("linked to {}", c.user());
                c
            } else {
                let Some(name) = &args.register else {
                    bail!(
                        "no account in {}; run again with --register name@domain, --link CODE or --restore FILE",
                        args.state.display()
                    );
                };
                let c = NativeClient::register(&*connector, store, TokioPlatform, name).await?;
                println!("registered {}", c.user());
                c
            }
        }
    };
    client.set_device_name(&format!("qpq on {}", std::env::consts::OS)).await?;
    println!("you are {} — type `help`", client.user());
    let printer = render::Printer::new(client.clone());
    client.on_event(move |ev| printer.print(ev));
    client.start(connector as Rc<dyn Connector>);

    while let Some(line) = lines.next_line().await? {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "quit" || line == "exit" {
            break;
        }
        if let Err(e) = commands::command(&client, line).await {
            println!("! {e}");
        }
    }
    client.shutdown().await;
    Ok(())
}
