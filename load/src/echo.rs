//! The raw baseline: a quinn echo server on its own thread (as the node has its own), and the
//! same number of senders as the qpq phase, each on a QUIC connection of its own with one
//! bidirectional stream, sending length-prefixed frames of the ciphertext's size with the same
//! number in flight, each counted when its echo is back. No storage, no RPC, no fan-out: what
//! QUIC on this machine carries at this concurrency. Its socket is made as the node's is
//! (`qpq_quic::server_endpoint`, the same kernel buffers).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::future::{join_all, try_join};
use qpq_quic::Trust;
use tokio::sync::{oneshot, Semaphore};

use crate::window::{Latencies, Window};

const ALPN_ECHO: &[u8] = b"qpq-load-echo";
/// The echo server thread's name.
const THREAD: &str = "qpq-load-echo";

/// What the raw phase measured.
#[derive(Debug, Default)]
pub struct Echo {
    /// Frames echoed inside the window.
    pub echoed_in_window: u64,
    /// The window's length (s).
    pub secs: f64,
    /// Round trips inside the window.
    pub latency: Latencies,
    /// Bytes echoed in the whole run (both directions counted once).
    pub bytes_total: u64,
    /// Senders that failed, with why.
    pub failures: Vec<String>,
}

/// A quinn echo server on a thread of its own.
pub struct EchoServer {
    addr: SocketAddr,
    pin: [u8; 32],
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EchoServer {
    /// Starts it on an ephemeral port of 127.0.0.1.
    pub fn start() -> anyhow::Result<EchoServer> {
        let bundle = qpq_quic::CertificateBundle::generate(&["localhost".into()], Duration::from_secs(86400))?;
        let pin = bundle.sha256();
        let cfg = qpq_quic::server_config(&bundle, &[ALPN_ECHO], Duration::from_secs(30))?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name(THREAD.into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(anyhow::Error::from(e)));
                    return;
                }
            };
            rt.block_on(async move {
                let ep = match qpq_quic::server_endpoint(cfg, "127.0.0.1:0".parse().expect("address")) {
                    Ok(ep) => ep,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                let _ = ready_tx.send(ep.local_addr().map_err(Into::into));
                let accept = async {
                    while let Some(inc) = ep.accept().await {
                        tokio::spawn(serve_connection(inc));
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stopped => ep.close(0u32.into(), b"stopped"),
                }
            });
        })?;
        let addr = ready_rx.recv().context("the echo thread died while starting")??;
        Ok(EchoServer { addr, pin, stop: Some(stop), thread: Some(thread) })
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve_connection(inc: quinn::Incoming) {
    let Ok(conn) = inc.await else { return };
    while let Ok((mut send, mut recv)) = conn.accept_bi().await {
        tokio::spawn(async move {
            let mut len = [0u8; 4];
            let mut buf = Vec::new();
            while recv.read_exact(&mut len).await.is_ok() {
                buf.resize(u32::from_be_bytes(len) as usize, 0);
                if recv.read_exact(&mut buf).await.is_err() || send.write_all(&len).await.is_err() {
                    return;
                }
                if send.write_all(&buf).await.is_err() {
                    return;
                }
            }
            let _ = send.finish();
        });
    }
}

/// Runs `senders` senders of `frame_bytes`-byte frames with `in_flight` each against `server`.
pub async fn run(
    server: &EchoServer,
    senders: usize,
    in_flight: usize,
    frame_bytes: usize,
    warmup: Duration,
    span: Duration,
    mut at_edges: impl FnMut(),
) -> anyhow::Result<Echo> {
    let mut ep = qpq_quic::shared_client_endpoint(server.addr)?;
    ep.set_default_client_config(qpq_quic::client_config(&Trust::Pinned(vec![server.pin]), ALPN_ECHO, Duration::from_secs(30))?);
    let mut frame = (frame_bytes as u32).to_be_bytes().to_vec();
    frame.resize(4 + frame_bytes, 7);
    let frame = Rc::new(frame);
    let window = Rc::new(Window::default());
    let echoed = Rc::new(Cell::new(0u64));
    let failures = Rc::new(RefCell::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..senders {
        let conn = ep.connect(server.addr, "localhost")?.await.context("connecting to the echo server")?;
        let (frame, window, echoed, failures) = (frame.clone(), window.clone(), echoed.clone(), failures.clone());
        tasks.push(tokio::task::spawn_local(async move {
            if let Err(e) = sender(&conn, &frame, in_flight, &window, &echoed).await {
                failures.borrow_mut().push(format!("an echo sender failed: {e:#}"));
            }
            conn.close(0u32.into(), b"done");
        }));
    }
    let (e0, e1, secs) = window
        .run(warmup, span, || {
            at_edges();
            echoed.get()
        })
        .await;
    join_all(tasks).await;
    ep.close(0u32.into(), b"done");
    let failures = failures.borrow().clone();
    Ok(Echo { echoed_in_window: e1 - e0, secs, latency: window.latencies(), bytes_total: echoed.get() * frame_bytes as u64, failures })
}

/// One sender: a writer keeps `in_flight` frames outstanding, a reader takes the echoes.
async fn sender(conn: &quinn::Connection, frame: &[u8], in_flight: usize, window: &Window, echoed: &Cell<u64>) -> anyhow::Result<()> {
    let (mut send, mut recv) = conn.open_bi().await?;
    let slots = Semaphore::new(in_flight);
    let sent_at = RefCell::new(VecDeque::with_capacity(in_flight));
    let write = async {
        loop {
            slots.acquire().await?.forget();
            if window.stopped() {
                break;
            }
            sent_at.borrow_mut().push_back(Instant::now());
            send.write_all(frame).await?;
        }
        send.finish()?;
        anyhow::Ok(())
    };
    let read = async {
        let mut back = vec![0u8; frame.len()];
        loop {
            match recv.read_exact(&mut back).await {
                Ok(()) => {}
                Err(quinn::ReadExactError::FinishedEarly(0)) => return anyhow::Ok(()),
                Err(e) => return Err(e.into()),
            }
            if let Some(t) = sent_at.borrow_mut().pop_front() {
                window.record(t);
            }
            echoed.set(echoed.get() + 1);
            slots.add_permits(1);
        }
    };
    try_join(write, read).await?;
    Ok(())
}
