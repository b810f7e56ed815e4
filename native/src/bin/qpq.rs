//! `qpq`: a small REPL client for quicproquo (and a first SDK example).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;

use anyhow::{anyhow, bail, Context};
use clap::Parser;
use qpq_client::{ClientEvent, ConnState, Connector};
use qpq_core::{Content, Conversation, Status, SystemEvent};
use qpq_native::{FileStore, NativeClient, QuicConnector, TokioPlatform};
use qpq_proto::{ChannelId, UserId};
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
    #[arg(long)]
    register: Option<String>,
}

const HELP: &str = "\
commands:
  list                      your conversations (numbered)
  chat USER                 open the 1:1 chat with USER (name@domain)
  group NAME USER...        create a group
  add N USER...             add people to conversation N
  remove N USER...          remove people from conversation N
  send N TEXT               send TEXT to conversation N   (or: N> TEXT)
  history N                 show conversation N
  devices                   your devices
  status                    connection state
  quit";

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
    let store = FileStore::open(&args.state, true).with_context(|| format!("opening {}", args.state.display()))?;
    let client = match NativeClient::open(store, TokioPlatform).await? {
        Some(c) => c,
        None => {
            let Some(name) = &args.register else {
                bail!("no account in {}; run again with --register name@domain", args.state.display());
            };
            let store = FileStore::open(&args.state, true)?;
            let c = NativeClient::register(&*connector, store, TokioPlatform, name).await?;
            println!("registered {}", c.user());
            c
        }
    };
    println!("you are {} — type `help`", client.user());
    client.on_event({
        let c = client.clone();
        move |ev| print_event(&c, ev)
    });
    client.start(connector as Rc<dyn Connector>);

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "quit" || line == "exit" {
            break;
        }
        if let Err(e) = command(&client, line).await {
            println!("! {e}");
        }
    }
    client.stop();
    Ok(())
}

fn numbered(client: &NativeClient) -> Vec<Conversation> {
    client.with_engine(|e| e.conversations().into_iter().cloned().collect())
}

fn conv_at(client: &NativeClient, n: &str) -> anyhow::Result<ChannelId> {
    let i: usize = n.parse().map_err(|_| anyhow!("{n:?} is not a conversation number (see `list`)"))?;
    numbered(client).get(i.wrapping_sub(1)).map(|c| c.id.clone()).ok_or_else(|| anyhow!("no conversation {i} (see `list`)"))
}

fn users(client: &NativeClient, args: &[&str]) -> anyhow::Result<Vec<UserId>> {
    args.iter().map(|u| client.resolve_user(u).map_err(|e| anyhow!("{e}"))).collect()
}

async fn command(client: &NativeClient, line: &str) -> anyhow::Result<()> {
    if let Some((n, text)) = line.split_once("> ") {
        if n.chars().all(|c| c.is_ascii_digit()) {
            client.send_text(&conv_at(client, n)?, text).await?;
            return Ok(());
        }
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["help"] => println!("{HELP}"),
        ["list"] => {
            let me = client.user();
            for (i, c) in numbered(client).iter().enumerate() {
                let unread = if c.unread > 0 { format!(" ({} unread)", c.unread) } else { String::new() };
                let gone = if c.active { "" } else { " [left]" };
                println!("{:>3}. {}{unread}{gone}", i + 1, c.title(&me));
            }
        }
        ["chat", user] => {
            let id = client.start_chat(&users(client, &[user])?[0]).await?;
            println!("chat ready: {}", position(client, &id));
        }
        ["group", name, rest @ ..] => {
            let id = client.create_group(name, &users(client, rest)?).await?;
            println!("group ready: {}", position(client, &id));
        }
        ["add", n, rest @ ..] if !rest.is_empty() => client.add_members(&conv_at(client, n)?, &users(client, rest)?).await?,
        ["remove", n, rest @ ..] if !rest.is_empty() => client.remove_members(&conv_at(client, n)?, &users(client, rest)?).await?,
        ["send", n, ..] => {
            let text = line.splitn(3, ' ').nth(2).unwrap_or("");
            client.send_text(&conv_at(client, n)?, text).await?;
        }
        ["history", n] => {
            let id = conv_at(client, n)?;
            client.with_engine(|e| {
                for m in e.history(&id) {
                    println!("  {}", render(m));
                }
            });
            client.mark_read(&id).await?;
        }
        ["devices"] => {
            let (_, devices) = client.session()?.list_devices(&client.user()).await?;
            let mine = client.with_engine(|e| e.device_id());
            for d in devices {
                let this = if d.device_id == mine { " (this device)" } else { "" };
                println!("  {}{this}", d.device_id);
            }
        }
        ["status"] => println!("{}", state_text(&client.connection_state())),
        _ => println!("unknown command; type `help`"),
    }
    Ok(())
}

fn position(client: &NativeClient, id: &ChannelId) -> String {
    numbered(client).iter().position(|c| c.id == *id).map(|i| format!("#{}", i + 1)).unwrap_or_default()
}

fn render(m: &qpq_core::Message) -> String {
    let state = match &m.status {
        Status::Sending => " …",
        Status::Sent => " ✓",
        Status::Delivered => " ✓✓",
        Status::Failed(_) => " ✗",
        Status::Received => "",
    };
    match &m.content {
        Content::Text { text, .. } => format!("{}: {text}{state}", m.sender.name()),
        Content::Unsupported { .. } => format!("{}: (a message this version cannot show)", m.sender.name()),
        Content::Deleted => format!("{}: (message deleted)", m.sender.name()),
        Content::File { file } => format!("{}: [file {} · {} bytes]{state}", m.sender.name(), file.name, file.size),
        Content::System(ev) => match ev {
            SystemEvent::Created => format!("— {} created the conversation", m.sender),
            SystemEvent::Added(u) => format!("— {} added {}", m.sender, join(u)),
            SystemEvent::Removed(u) => format!("— {} removed {}", m.sender, join(u)),
            SystemEvent::Joined => format!("— you were added by {}", m.sender),
            SystemEvent::YouWereRemoved => format!("— {} removed you", m.sender),
            SystemEvent::Undecryptable(why) => format!("— {why}"),
            SystemEvent::TimerChanged(0) => format!("— {} turned off disappearing messages", m.sender),
            SystemEvent::TimerChanged(s) => format!("— {} set disappearing messages to {s} s", m.sender),
            SystemEvent::Left => format!("— {} left", m.sender),
            SystemEvent::AccountDeleted => format!("— {} deleted their account", m.sender),
        },
    }
}

fn join(u: &[UserId]) -> String {
    u.iter().map(UserId::as_str).collect::<Vec<_>>().join(", ")
}

fn state_text(s: &ConnState) -> String {
    match s {
        ConnState::Connecting => "connecting…".into(),
        ConnState::Online { transport } => format!("online ({transport})"),
        ConnState::Offline { reason, retry_in_ms } => format!("offline: {reason} (retrying in {}s)", retry_in_ms / 1000),
    }
}

fn print_event(client: &NativeClient, ev: &ClientEvent) {
    match ev {
        ClientEvent::Engine(qpq_core::Event::MessageAdded { conv, index }) => {
            client.with_engine(|e| {
                if let Some(m) = e.message(conv, *index) {
                    if !m.outgoing {
                        let title = e.conversation(conv).map(|c| c.title(e.user())).unwrap_or_default();
                        println!("[{}] {}", title, render(m));
                    }
                }
            });
        }
        ClientEvent::Connection(s) => println!("* {}", state_text(s)),
        ClientEvent::Notice(n) => println!("! {n}"),
        ClientEvent::Engine(_) => {}
    }
}
