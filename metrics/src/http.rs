//! The operator's listener: `GET /metrics` (the registry's text), `GET /livez` (the process
//! answers) and `GET /readyz` (it can serve: its database or its nodes answer).
//!
//! It speaks just enough HTTP/1.1 for Prometheus and for probes (one request per connection,
//! `Connection: close`), with a deadline and a size cap on the request head, so a slow or
//! oversized client costs one task for at most [`HEAD_TIMEOUT`]. Bind it to an address only
//! operators reach: the series say how busy the process is, though nothing about who uses it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::CONTENT_TYPE;

/// How long a client may take to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head read.
const MAX_HEAD: usize = 8 << 10;

/// A boxed future that can move between threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the listener asks of the process it reports on.
pub trait Probe: Send + Sync + 'static {
    /// The exposition text (refreshing any gauge read from elsewhere first).
    fn metrics(&self) -> BoxFuture<'_, String>;
    /// `Ok` when the process can serve requests; otherwise why not, in words.
    fn ready(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// Serves `listener` until the task is dropped or aborted.
pub async fn serve(listener: TcpListener, probe: Arc<dyn Probe>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors and the like: wait a moment rather than spin.
                tracing::warn!(error = %e, "metrics listener: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let probe = probe.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &*probe).await {
                tracing::debug!(error = %e, "metrics listener: request failed");
            }
        });
    }
}

async fn answer(mut stream: TcpStream, probe: &dyn Probe) -> io::Result<()> {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(Some(h))) => h,
        Ok(Ok(None)) => return respond(&mut stream, 431, "text/plain", "request head too large\n", false).await,
        Ok(Err(e)) => return Err(e),
        Err(_) => return respond(&mut stream, 408, "text/plain", "request timed out\n", false).await,
    };
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(&mut stream, 405, "text/plain", "only GET\n", false).await;
    }
    let path = target.split('?').next().unwrap_or_default();
    match path {
        "/metrics" => {
            let body = probe.metrics().await;
            respond(&mut stream, 200, CONTENT_TYPE, &body, head_only).await
        }
        "/livez" => respond(&mut stream, 200, "text/plain", "alive\n", head_only).await,
        "/readyz" => match probe.ready().await {
            Ok(()) => respond(&mut stream, 200, "text/plain", "ready\n", head_only).await,
            Err(why) => respond(&mut stream, 503, "text/plain", &format!("not ready: {why}\n"), head_only).await,
        },
        _ => respond(&mut stream, 404, "text/plain", "not found (try /metrics, /livez, /readyz)\n", head_only).await,
    }
}

/// Reads up to the blank line ending the head; `None` when it is larger than [`MAX_HEAD`].
async fn read_head(stream: &mut TcpStream) -> io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            return Ok(Some(String::from_utf8_lossy(&buf).into_owned()));
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before the end of the request head"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn respond(stream: &mut TcpStream, status: u16, content_type: &str, body: &str, head_only: bool) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        out.push_str(body);
    }
    stream.write_all(out.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::Registry;

    struct TestProbe {
        registry: Registry,
        ready: AtomicBool,
    }

    impl Probe for TestProbe {
        fn metrics(&self) -> BoxFuture<'_, String> {
            Box::pin(async move { self.registry.render() })
        }
        fn ready(&self) -> BoxFuture<'_, Result<(), String>> {
            Box::pin(async move { if self.ready.load(Ordering::Relaxed) { Ok(()) } else { Err("no database".into()) } })
        }
    }

    async fn get(addr: std::net::SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn answers_metrics_and_probes() {
        let registry = Registry::new();
        registry.counter("qpq_test_total", "A test counter.").add(5);
        let probe = Arc::new(TestProbe { registry, ready: AtomicBool::new(false) });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(serve(listener, probe.clone()));

        let m = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(m.starts_with("HTTP/1.1 200 OK\r\n"), "{m}");
        assert!(m.contains("Content-Type: text/plain; version=0.0.4"), "{m}");
        assert!(m.ends_with("\r\n\r\n# HELP qpq_test_total A test counter.\n# TYPE qpq_test_total counter\nqpq_test_total 5\n"), "{m}");

        assert!(get(addr, "GET /livez HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 200"));
        let r = get(addr, "GET /readyz HTTP/1.1\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 503") && r.ends_with("not ready: no database\n"), "{r}");
        probe.ready.store(true, Ordering::Relaxed);
        assert!(get(addr, "GET /readyz?verbose HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 200"));

        let head = get(addr, "HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"), "{head}");
        assert!(get(addr, "GET /nope HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 404"));
        assert!(get(addr, "POST /metrics HTTP/1.1\r\n\r\n").await.starts_with("HTTP/1.1 405"));
        let big = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
        assert!(get(addr, &big).await.starts_with("HTTP/1.1 431"));
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_dropped_after_the_deadline() {
        let probe = Arc::new(TestProbe { registry: Registry::new(), ready: AtomicBool::new(true) });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(serve(listener, probe));
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metr").await.unwrap();
        let mut out = String::new();
        // The paused clock jumps to the deadline once every task waits.
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 408"), "{out}");
        task.abort();
    }
}
