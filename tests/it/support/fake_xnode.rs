//! A fake xNode on 127.0.0.1 for the readiness ladder: a TLS server with a self-signed
//! certificate (rcgen) standing in for XnodeOS's nginx on its HTTPS port. It answers `GET /` as
//! an installed node with an owner (302 to the login gateway), as one without (200 straight from
//! the manager), or never opens its port at all (an install that never finishes). The SSH port
//! it reports is always closed, as after the installer took over.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// 302 → `/xnode-auth?redirect=%2F` (an owner is set).
    Protected,
    /// 200 with the manager's answer (no owner: unprotected).
    Unprotected,
    /// The HTTPS port never opens.
    NeverOpens,
}

pub struct FakeXnode {
    pub https_port: u16,
    pub ssh_port: u16,
    /// `(sni, host header)` of each request answered.
    pub seen: Arc<Mutex<Vec<(String, String)>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

impl FakeXnode {
    pub fn start(behaviour: Behaviour) -> FakeXnode {
        let ssh_port = closed_port();
        let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        if behaviour == Behaviour::NeverOpens {
            return FakeXnode {
                https_port: closed_port(),
                ssh_port,
                seen,
                stop: None,
                thread: None,
            };
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind https");
        listener.set_nonblocking(true).expect("nonblocking");
        let https_port = listener.local_addr().expect("addr").port();
        let rcgen::CertifiedKey { cert, key_pair } =
            rcgen::generate_simple_self_signed(vec!["manager.xnode.local".to_string()])
                .expect("self-signed certificate");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(key_pair.serialize_der()),
        );
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let seen2 = seen.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    tokio::select! {
                        _ = &mut rx => return,
                        acc = listener.accept() => {
                            let Ok((tcp, _)) = acc else { continue };
                            let acceptor = acceptor.clone();
                            let seen = seen2.clone();
                            tokio::spawn(async move {
                                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                                let sni = tls.get_ref().1.server_name().unwrap_or("").to_string();
                                let mut buf = Vec::new();
                                let mut chunk = [0u8; 1024];
                                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16384 {
                                    match tls.read(&mut chunk).await {
                                        Ok(0) | Err(_) => return,
                                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                                    }
                                }
                                let head = String::from_utf8_lossy(&buf).to_string();
                                let host = head
                                    .lines()
                                    .find_map(|l| {
                                        let (k, v) = l.split_once(':')?;
                                        k.eq_ignore_ascii_case("host").then(|| v.trim().to_string())
                                    })
                                    .unwrap_or_default();
                                seen.lock().expect("seen").push((sni, host));
                                let answer = match behaviour {
                                    Behaviour::Protected => "HTTP/1.1 302 Found\r\nLocation: /xnode-auth?redirect=%2F\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
                                    _ => {
                                        let body = "{\"hostname\":\"xnode\"}";
                                        format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                                    }
                                };
                                let _ = tls.write_all(answer.as_bytes()).await;
                                let _ = tls.shutdown().await;
                            });
                        }
                    }
                }
            });
        });
        FakeXnode {
            https_port,
            ssh_port,
            seen,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    /// A catalog overlay directory pointing the probe at this fake, probing every 50 ms.
    pub fn overlay(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("overlay");
        std::fs::write(
            dir.path().join("xnode-probe.toml"),
            format!(
                "[bootstrap.xnode.probe]\nhttps_port = {}\nssh_port = {}\ninterval_seconds = 0.05\ntimeout_seconds = 2\n",
                self.https_port, self.ssh_port
            ),
        )
        .expect("write overlay");
        dir
    }
}

impl Drop for FakeXnode {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
