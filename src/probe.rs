//! Network probes of a server, each bounded by a short timeout so that no probe ever hangs:
//! is a TCP port open, does a port complete a TLS handshake for a name, what does an HTTPS
//! `GET` answer (status and `Location`), with or without certificate verification.
//!
//! Generic: it knows hosts, ports and names it is given, nothing about what runs there. It
//! prints nothing and returns plain values.

use crate::tls::AnyCertificate;
use rustls::pki_types::ServerName;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Whether `ip:port` accepts a TCP connection within `timeout`.
pub async fn tcp_open(ip: IpAddr, port: u16, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, tokio::net::TcpStream::connect((ip, port))).await,
        Ok(Ok(_))
    )
}

/// Complete a TLS handshake with `ip:port` presenting `sni`, accepting any certificate (this
/// asks "is TLS up", not "who is it"). `Err` says what failed.
pub async fn tls_handshake(
    ip: IpAddr,
    port: u16,
    sni: &str,
    timeout: Duration,
) -> Result<(), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(AnyCertificate::new(provider))
        .with_no_client_auth();
    let name = ServerName::try_from(sni.to_string()).map_err(|e| format!("SNI {sni}: {e}"))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect((ip, port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        connector
            .connect(name, tcp)
            .await
            .map(|_| ())
            .map_err(|e| format!("TLS handshake: {e}"))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", timeout.as_secs_f64())))
}

/// An HTTPS answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<String>,
}

/// `GET https://host:port/path` sent to `ip` (SNI and `Host` are `host`), without following
/// redirects. With `verify`, the certificate must be valid for `host` under the public roots;
/// without, any certificate is accepted.
pub async fn https_get(
    ip: IpAddr,
    port: u16,
    host: &str,
    path: &str,
    verify: bool,
    timeout: Duration,
) -> Result<HttpAnswer, String> {
    let client = reqwest::Client::builder()
        .resolve(host, SocketAddr::new(ip, port))
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(!verify)
        .connect_timeout(timeout)
        .timeout(timeout)
        .no_proxy()
        .user_agent(concat!("capsule/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTPS client: {e}"))?;
    let url = format!("https://{host}:{port}{path}");
    let resp = client.get(&url).send().await.map_err(|e| {
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg = format!("{msg}: {s}");
            src = s.source();
        }
        msg
    })?;
    Ok(HttpAnswer {
        status: resp.status().as_u16(),
        location: resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    })
}
