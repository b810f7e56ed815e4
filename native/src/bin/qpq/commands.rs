//! The REPL's commands. Conversations are named by their number in `list`, messages by their
//! number in `history N` (`#M`, this device's position in the history: another member's
//! numbers may differ), so a bot can act on what it printed.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use qpq_client::files::Cancel;
use qpq_client::LinkProgress;
use qpq_core::{Conversation, MessageId, Verification};
use qpq_native::{DiskSink, DiskSource, NativeClient};
use qpq_proto::{ChannelId, UserId};

use crate::render::{render, state_text};

pub const HELP: &str = "\
commands (N: a conversation's number in `list`; M: a message's number in `history N`,
which `send` and `reply` print too):
  list                      your conversations
  chat USER                 open the 1:1 chat with USER (name or name@domain)
  group NAME USER...        create a group
  add N USER...             add people to conversation N
  remove N USER...          remove people from conversation N
  send N TEXT               send TEXT to conversation N   (or: N> TEXT)
  history N                 show conversation N (and mark it read)
  reply N M TEXT            reply to message M
  react N M EMOJI           react to message M      unreact N M EMOJI: take it back
  edit N M TEXT             change the text of your message M
  delete N M                delete your message M for everyone
  sendfile N PATH           send the file at PATH (encrypted, in chunks)
  download N M PATH         save the file of message M to PATH (checked; an interrupted
                            download left in PATH.part continues)
  leave N                   leave conversation N (its history stays here)
  safety USER               the safety number with USER (compare it with theirs)
  verify USER DIGITS...     mark USER verified after comparing the number DIGITS
  profile [USER]            your profile, or USER's as this device holds it
  setprofile NAME | STATUS  set your display name and status (shared in your conversations;
                            a picture set in the browser is kept)
  devices                   your devices
  link                      a link code for a new device of your account (ten minutes)
  backup PATH PASSPHRASE    write a backup of this account to PATH, sealed under PASSPHRASE
                            (the rest of the line; restore it with qpq --restore PATH)
  status                    connection state
  quit";

fn numbered(client: &NativeClient) -> Vec<Conversation> {
    client.with_engine(|e| e.conversations().into_iter().cloned().collect())
}

fn conv_at(client: &NativeClient, n: &str) -> anyhow::Result<ChannelId> {
    let i: usize = n.parse().map_err(|_| anyhow!("{n:?} is not a conversation number (see `list`)"))?;
    numbered(client).get(i.wrapping_sub(1)).map(|c| c.id.clone()).ok_or_else(|| anyhow!("no conversation {i} (see `list`)"))
}

/// The id of message number `m` (`7` or `#7`) of `conv`.
fn message_at(client: &NativeClient, conv: &ChannelId, m: &str) -> anyhow::Result<MessageId> {
    let i: u64 = m.trim_start_matches('#').parse().map_err(|_| anyhow!("{m:?} is not a message number (see `history`)"))?;
    client.with_engine(|e| e.message(conv, i).map(|m| m.id)).ok_or_else(|| anyhow!("no message #{i} there (see `history`)"))
}

fn users(client: &NativeClient, args: &[&str]) -> anyhow::Result<Vec<UserId>> {
    args.iter().map(|u| client.resolve_user(u).map_err(|e| anyhow!("{e}"))).collect()
}

/// What follows the first `words` words of `line` (a text or a path, spaces kept).
fn rest(line: &str, words: usize) -> &str {
    let mut s = line.trim_start();
    for _ in 0..words {
        s = s.split_once(char::is_whitespace).map(|(_, r)| r.trim_start()).unwrap_or("");
    }
    s
}

fn non_empty<'a>(text: &'a str, what: &str) -> anyhow::Result<&'a str> {
    if text.is_empty() {
        bail!("{what} is missing; type `help`");
    }
    Ok(text)
}

pub async fn command(client: &NativeClient, line: &str) -> anyhow::Result<()> {
    if let Some((n, text)) = line.split_once("> ") {
        if n.chars().all(|c| c.is_ascii_digit()) {
            let conv = conv_at(client, n)?;
            let id = client.send_text(&conv, text).await?;
            println!("sent {}", index_of(client, &conv, &id));
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
            let conv = conv_at(client, n)?;
            let id = client.send_text(&conv, non_empty(rest(line, 2), "the text")?).await?;
            println!("sent {}", index_of(client, &conv, &id));
        }
        ["history", n] => {
            let id = conv_at(client, n)?;
            client.with_engine(|e| {
                for m in e.history(&id) {
                    println!("  {}", render(e, &id, m, true));
                }
            });
            client.mark_read(&id).await?;
        }
        ["reply", n, m, ..] => {
            let conv = conv_at(client, n)?;
            let target = message_at(client, &conv, m)?;
            let id = client.send_reply(&conv, non_empty(rest(line, 3), "the text")?, target).await?;
            println!("sent {}", index_of(client, &conv, &id));
        }
        [verb @ ("react" | "unreact"), n, m, emoji] => {
            let conv = conv_at(client, n)?;
            client.react(&conv, message_at(client, &conv, m)?, emoji, *verb == "unreact").await?;
        }
        ["edit", n, m, ..] => {
            let conv = conv_at(client, n)?;
            client.edit_message(&conv, message_at(client, &conv, m)?, non_empty(rest(line, 3), "the new text")?).await?;
        }
        ["delete", n, m] => {
            let conv = conv_at(client, n)?;
            client.delete_message(&conv, message_at(client, &conv, m)?).await?;
        }
        ["sendfile", n, ..] => {
            let conv = conv_at(client, n)?;
            send_file(client, &conv, Path::new(non_empty(rest(line, 2), "the path")?)).await?;
        }
        ["download", n, m, ..] => {
            let conv = conv_at(client, n)?;
            let id = message_at(client, &conv, m)?;
            download(client, &conv, &id, Path::new(non_empty(rest(line, 3), "the path")?)).await?;
        }
        ["leave", n] => {
            client.leave_conversation(&conv_at(client, n)?).await?;
            println!("left conversation {n}");
        }
        ["safety", u] => {
            let user = client.resolve_user(u).map_err(|e| anyhow!("{e}"))?;
            let n = client.safety_number(&user).await?;
            println!("safety number with {user} ({}):", verification_text(n.verification));
            println!("  {}", n.grouped());
        }
        ["verify", u, ..] => {
            let user = client.resolve_user(u).map_err(|e| anyhow!("{e}"))?;
            client.mark_verified(&user, non_empty(rest(line, 2), "the digits")?).await?;
            println!("{user} is verified");
        }
        ["devices"] => {
            let mine = client.with_engine(|e| e.device_id());
            for d in client.own_devices().await? {
                let this = if d.record.device_id == mine { " (this device)" } else { "" };
                let name = d.name.as_deref().unwrap_or("unnamed");
                println!("  {} {name}{this}", d.record.device_id);
            }
        }
        ["link"] => {
            let (code, _) = client.open_link().await?;
            println!("link code: {} (good once, for ten minutes: on the new device choose \"I already have an \
                      account\", or run qpq --link CODE)", code.text());
            let client = client.clone();
            tokio::task::spawn_local(async move {
                let progress = |p: LinkProgress| match p {
                    LinkProgress::Waiting | LinkProgress::Settings(_) => {}
                    LinkProgress::Registering(name) => println!("* linking {name}"),
                    LinkProgress::History { done, total } if done == total => println!("* history sent ({total} bytes)"),
                    LinkProgress::History { .. } => {}
                    LinkProgress::Joining { done, total } if done == total => println!("* in {done} of {total} conversations"),
                    LinkProgress::Joining { .. } => {}
                };
                match client.serve_link(&code, "", progress).await {
                    Ok(d) => println!("* linked {} ({})", d.name, d.device),
                    Err(e) => println!("! linking: {e}"),
                }
            });
        }
        ["backup", path, ..] => {
            let passphrase = line.trim_start().strip_prefix("backup").unwrap_or("").trim_start();
            let passphrase = passphrase.strip_prefix(*path).unwrap_or("").trim();
            let file = client.backup(passphrase, "", |_| {}).await?;
            std::fs::write(path, &file).with_context(|| format!("writing {path}"))?;
            println!("* backup written to {path} ({} bytes)", file.len());
        }
        ["profile"] => print_profile(client, &client.user()),
        ["profile", u] => print_profile(client, &client.resolve_user(u).map_err(|e| anyhow!("{e}"))?),
        ["setprofile", ..] => {
            let (name, status) = rest(line, 1).split_once('|').unwrap_or((rest(line, 1), ""));
            let me = client.user();
            let picture = client.profile(&me).and_then(|k| k.profile).and_then(|p| p.picture);
            client.set_profile(name.trim(), status.trim(), picture).await?;
            println!("* profile set and shared in your conversations");
        }
        ["status"] => println!("{}", state_text(&client.connection_state())),
        _ => println!("unknown command; type `help`"),
    }
    Ok(())
}

fn print_profile(client: &NativeClient, user: &UserId) {
    match client.profile(user) {
        None => println!("{user} has shared no profile with you"),
        Some(k) => {
            if let Some(p) = &k.profile {
                let picture = if p.picture.is_some() { ", with a picture" } else { "" };
                println!("{user}: {:?}, status {:?}{picture}", p.name, p.status);
            }
            if k.forged {
                println!("! a profile for {user} whose signature did not verify was refused");
            }
        }
    }
}

fn verification_text(v: Verification) -> &'static str {
    match v {
        Verification::Unverified => "not verified",
        Verification::Verified => "verified",
        Verification::ChangedSinceVerified => "CHANGED since you verified it",
    }
}

fn position(client: &NativeClient, id: &ChannelId) -> String {
    numbered(client).iter().position(|c| c.id == *id).map(|i| format!("#{}", i + 1)).unwrap_or_default()
}

fn index_of(client: &NativeClient, conv: &ChannelId, id: &MessageId) -> String {
    client.with_engine(|e| e.message_by_id(conv, id).map(|m| format!("#{}", m.index)).unwrap_or_default())
}

/// The media type a receiver's app goes by (pictures get a preview in the browser).
fn mime_for(path: &Path) -> &'static str {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "bmp" => "image/bmp",
        "txt" => "text/plain",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

async fn send_file(client: &NativeClient, conv: &ChannelId, path: &Path) -> anyhow::Result<()> {
    let source = DiskSource::open(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let id = client.send_file(conv, &source, &name, mime_for(path), &|_, _| {}, &Cancel::default()).await?;
    println!("sent file {} ({} bytes) as {}", name, qpq_client::files::FileSource::size(&source), index_of(client, conv, &id));
    Ok(())
}

/// Downloads into `PATH.part` (continuing what an interrupted download left there) and
/// renames it to `path` once the whole file checked out; never overwrites `path`.
async fn download(client: &NativeClient, conv: &ChannelId, id: &MessageId, path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        bail!("{} exists; choose another path", path.display());
    }
    let mut part = PathBuf::from(path);
    part.as_mut_os_string().push(".part");
    let sink = DiskSink::open(&part).with_context(|| format!("writing {}", part.display()))?;
    let stored = sink.stored()?;
    match client.download_file(conv, id, &sink, stored, &|_, _| {}, &Cancel::default()).await {
        Ok(()) => {
            drop(sink);
            std::fs::rename(&part, path).with_context(|| format!("renaming {} to {}", part.display(), path.display()))?;
            let size = std::fs::metadata(path)?.len();
            println!("saved {} ({size} bytes, checked)", path.display());
            Ok(())
        }
        Err(e) => {
            if !e.is_transport() {
                // What is there failed its checks: start afresh next time.
                let _ = std::fs::remove_file(&part);
            }
            Err(e.into())
        }
    }
}
