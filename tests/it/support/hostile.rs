//! A hostile HTTP server on 127.0.0.1, controlled byte by byte: it answers each request with
//! whatever the test's handler returns — redirects, truncated or endless bodies, deep XML or
//! JSON, echoed tokens, `Retry-After` — and records every request it received (method, path,
//! headers), so a test can check that nothing reached a server it should not have.
//!
//! One request per connection (`Connection: close`); a handler may stream its body, and a
//! client that hangs up just ends the stream.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A request as received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query, as on the request line.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What to send back.
pub enum Reply {
    /// These exact bytes.
    Raw(Vec<u8>),
    /// A head (status line and headers, without the blank line) and then parts produced one
    /// by one until `None`, each sent as one HTTP/1.1 chunk.
    Chunked {
        head: String,
        next: Box<dyn FnMut() -> Option<Vec<u8>> + Send>,
    },
}

impl Reply {
    /// A complete answer with `Content-Length`.
    pub fn status(code: u16, headers: &[(&str, &str)], body: impl AsRef<[u8]>) -> Reply {
        let body = body.as_ref();
        let mut head = format!("HTTP/1.1 {code} {}\r\n", reason(code));
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        ));
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        Reply::Raw(bytes)
    }

    /// A JSON answer.
    pub fn json(code: u16, body: impl AsRef<[u8]>) -> Reply {
        Reply::status(code, &[("Content-Type", "application/json")], body)
    }

    /// A chunked answer whose body is `parts` in turn.
    pub fn chunked(
        code: u16,
        content_type: &str,
        next: impl FnMut() -> Option<Vec<u8>> + Send + 'static,
    ) -> Reply {
        Reply::Chunked {
            head: format!(
                "HTTP/1.1 {code} {}\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n",
                reason(code)
            ),
            next: Box::new(next),
        }
    }

    /// A chunked body that never ends (1 MiB chunks of `fill`).
    pub fn endless(code: u16, content_type: &str, fill: u8) -> Reply {
        let chunk = vec![fill; 1 << 20];
        Reply::chunked(code, content_type, move || Some(chunk.clone()))
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Whatever",
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// The server; stops accepting when dropped.
pub struct Hostile {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

impl Hostile {
    /// Start on a free loopback port with this handler.
    pub fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind hostile server");
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s, st) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (s, h) = (s.clone(), handler.clone());
                std::thread::spawn(move || serve(conn, &s, &*h));
            }
        });
        Hostile { port, seen, stop }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(conn: TcpStream, seen: &Mutex<Vec<Seen>>, handler: &Handler) {
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return; // the wake-up connection, or a client that gave up
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let req = Seen {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    seen.lock().unwrap().push(req.clone());
    let mut out = conn;
    match handler(&req) {
        Reply::Raw(bytes) => {
            let _ = out.write_all(&bytes);
        }
        Reply::Chunked { head, mut next } => {
            if out.write_all(format!("{head}\r\n").as_bytes()).is_err() {
                return;
            }
            while let Some(part) = next() {
                if part.is_empty() {
                    continue;
                }
                let mut chunk = format!("{:x}\r\n", part.len()).into_bytes();
                chunk.extend_from_slice(&part);
                chunk.extend_from_slice(b"\r\n");
                if out.write_all(&chunk).is_err() {
                    return; // the client hung up
                }
            }
            let _ = out.write_all(b"0\r\n\r\n");
        }
    }
    let _ = out.flush();
    let _ = out.shutdown(std::net::Shutdown::Write);
    // Let the client read to the end before the socket goes.
    let mut sink = [0u8; 1024];
    while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
}
