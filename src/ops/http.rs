//! The metrics endpoint: `GET /metrics` over HTTP/1.1 on `[metrics] listen`.
//!
//! Hand-written rather than a web framework: it answers one path for a scraper on a trusted
//! network, and a server stack would be most of the binary's dependency tree. Each request
//! is bounded (8 KiB of headers, 5 s to send them) and the connection closes after the
//! answer, so a stuck or hostile client costs one small task for at most 5 s.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info};

const MAX_HEAD: usize = 8 * 1024;
const READ_LIMIT: Duration = Duration::from_secs(5);
/// Scrapers never need many connections; beyond this, new ones are closed at once.
const MAX_CONNECTIONS: usize = 64;

/// Bind the listener (startup fails clearly if the address is taken).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serve until the task is aborted.
pub async fn serve(listener: TcpListener) {
    if let Ok(a) = listener.local_addr() {
        info!(listen = %a, "metrics endpoint up");
    }
    let open = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((conn, peer)) = listener.accept().await else {
            // EMFILE and friends: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            continue;
        };
        tokio::spawn(async move {
            if let Err(e) = answer(conn).await {
                debug!(%peer, error = %e, "metrics request failed");
            }
            drop(permit);
        });
    }
}

async fn answer(mut conn: TcpStream) -> std::io::Result<()> {
    let head = match tokio::time::timeout(READ_LIMIT, read_head(&mut conn)).await {
        Ok(h) => h?,
        Err(_) => return Ok(()),
    };
    let (status, ctype, body) = respond(&head);
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(reply.as_bytes()).await?;
    conn.write_all(body.as_bytes()).await?;
    conn.shutdown().await
}

/// Read up to the blank line ending the request head.
async fn read_head(conn: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_HEAD {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf)
}

/// Status line, content type and body for a request head. Pure, for tests.
fn respond(head: &[u8]) -> (&'static str, &'static str, String) {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    const TEXT: &str = "text/plain; charset=utf-8";
    match (method, path) {
        ("GET", "/metrics") => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            super::metrics::get().render(),
        ),
        ("GET", _) => ("404 Not Found", TEXT, "only /metrics is served\n".into()),
        _ => ("405 Method Not Allowed", TEXT, "GET only\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_served() {
        let (s, t, b) = respond(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(s, "200 OK");
        assert!(t.starts_with("application/openmetrics-text"));
        assert!(b.contains("stox_component_link_up"), "{b}");
        assert_eq!(respond(b"GET /metrics?x=1 HTTP/1.1\r\n\r\n").0, "200 OK");
        assert_eq!(respond(b"GET / HTTP/1.1\r\n\r\n").0, "404 Not Found");
        assert_eq!(
            respond(b"POST /metrics HTTP/1.1\r\n\r\n").0,
            "405 Method Not Allowed"
        );
        assert_eq!(respond(b"\xff\xfe garbage").0, "405 Method Not Allowed");
    }

    #[tokio::test]
    async fn scrape_over_tcp() {
        let l = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(serve(l));
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.trim_end().ends_with("# EOF"), "{out}");
        task.abort();
    }
}
