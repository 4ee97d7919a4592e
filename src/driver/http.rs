//! One HTTP exchange and its retries: building the URL (endpoint override included), encoding
//! the body, authorising, sending, logging, classifying the answer and backing off.
//!
//! Retry rules: a `Safe` request (reads, deletes, power actions) is retried on 429, 5xx, throttle
//! codes, connection errors and timeouts; a `Create` is retried only when the server provably did
//! not act (429/throttle code, or a connect error before sending) — any other doubt is handed back
//! to the caller with `in_doubt = true`, who looks the node up by its tag before trying again.

use super::error::{scrub, DriverError, ErrorKind};
use super::{form, tree, Driver};
use crate::catalog::schema::Operation;
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Longest wait the driver accepts from a `Retry-After` or reset header.
const MAX_SERVER_WAIT: Duration = Duration::from_secs(120);
/// Cap of the exponential backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How a request may be retried.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Mode {
    Safe,
    Create,
}

/// A body and how it was encoded (kept as JSON so paging can add a token).
#[derive(Clone, Debug)]
pub(crate) enum Body {
    Json(Value),
    Form(Value),
    Text(String),
}

impl Body {
    pub fn encode(&self) -> String {
        match self {
            Body::Json(v) => v.to_string(),
            Body::Form(v) => form::urlencode_pairs(&form::flatten(v)),
            Body::Text(s) => s.clone(),
        }
    }

    /// Set a top-level parameter (JSON and form bodies).
    pub fn set_param(&mut self, key: &str, value: Value) {
        if let Body::Json(Value::Object(m)) | Body::Form(Value::Object(m)) = self {
            m.insert(key.to_string(), value);
        }
    }
}

/// A request ready to send, without its auth headers (those are made per attempt).
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    pub op: String,
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Option<Body>,
    pub expect: Vec<u16>,
    /// SigV4 signing region (the API id).
    pub sign_region: String,
}

impl Prepared {
    /// Replace (or add) a query parameter.
    pub fn set_query(&mut self, key: &str, value: &str) {
        let kept: Vec<(String, String)> = self
            .url
            .query_pairs()
            .filter(|(k, _)| k != key)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        self.url.set_query(None);
        {
            let mut q = self.url.query_pairs_mut();
            for (k, v) in &kept {
                q.append_pair(k, v);
            }
            q.append_pair(key, value);
        }
    }
}

/// An answer.
#[derive(Debug)]
pub(crate) struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The parsed body (JSON, or XML converted); `Null` when empty or unparsable.
    pub value: Value,
}

enum Failure {
    /// The connection was never made (refused, DNS, connect timeout): nothing reached the server.
    Connect { timeout: bool, message: String },
    /// Sent (or maybe sent) but no usable answer.
    Transport { timeout: bool, message: String },
}

/// Whether a host is loopback (plain http is allowed only there).
pub fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Put the override's scheme, host and port on `url`; the path and query stay.
pub fn apply_override(url: &mut Url, endpoint: &Url) {
    let _ = url.set_scheme(endpoint.scheme());
    let _ = url.set_host(endpoint.host_str());
    let _ = url.set_port(endpoint.port());
}

/// Parse an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) as a Unix time.
fn http_date(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(s.trim(), &fmt)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// The wait a server asked for: `Retry-After` (seconds or HTTP date), else the reset header
/// (seconds, or a Unix time when it is that large).
pub(crate) fn server_wait(headers: &HeaderMap, reset_header: &str) -> Option<Duration> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let secs = |v: &str| -> Option<f64> {
        let n: f64 = v.parse().ok()?;
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        Some(if n > 1e9 {
            (n - now as f64).max(0.0)
        } else {
            n
        })
    };
    let wait = if let Some(ra) = get("retry-after") {
        secs(ra).or_else(|| http_date(ra).map(|t| (t - now).max(0) as f64))
    } else if !reset_header.is_empty() {
        get(reset_header).and_then(secs)
    } else {
        None
    }?;
    Some(Duration::from_secs_f64(wait).min(MAX_SERVER_WAIT))
}

/// Full-jitter exponential backoff for attempt `n` (1-based).
pub(crate) fn backoff(base: Duration, n: u32) -> Duration {
    use rand::Rng;
    let exp = base
        .saturating_mul(1u32 << (n.saturating_sub(1)).min(16))
        .min(MAX_BACKOFF);
    let ms = exp.as_millis() as u64;
    Duration::from_millis(if ms == 0 {
        0
    } else {
        rand::thread_rng().gen_range(0..=ms)
    })
}

impl Driver {
    /// Render an operation into a request.
    pub(crate) fn prepare(
        &self,
        name: &str,
        op: &Operation,
        ctx: &Value,
    ) -> Result<Prepared, DriverError> {
        let inner = &self.inner;
        let api = &inner.provider.api;
        let bad = |what: &str, e: String| {
            DriverError::new(
                &inner.id,
                ErrorKind::Refused,
                format!("the catalog's `{name}` {what} does not render: {e}"),
            )
        };
        let base = inner
            .renderer
            .plain(&api.base_url, ctx)
            .map_err(|e| bad("base URL", e))?;
        let path = inner
            .renderer
            .path(&op.path, ctx)
            .map_err(|e| bad("path", e))?;
        let full = format!("{}{}", base.trim_end_matches('/'), path);
        let mut url = Url::parse(&full).map_err(|e| {
            DriverError::new(
                &inner.id,
                ErrorKind::Refused,
                format!("invalid URL '{full}' for `{name}`: {e}"),
            )
        })?;
        for (k, tpl) in &op.query {
            let v = inner
                .renderer
                .plain(tpl, ctx)
                .map_err(|e| bad(&format!("query `{k}`"), e))?;
            if !v.is_empty() {
                url.query_pairs_mut().append_pair(k, &v);
            }
        }
        if let Some(ep) = &inner.endpoint {
            apply_override(&mut url, ep);
        }
        let mut headers = Vec::new();
        for (k, tpl) in api.headers.iter().chain(op.headers.iter()) {
            let v = inner
                .renderer
                .plain(tpl, ctx)
                .map_err(|e| bad(&format!("header `{k}`"), e))?;
            if !v.is_empty() {
                headers.retain(|(hk, _): &(String, String)| !hk.eq_ignore_ascii_case(k));
                headers.push((k.clone(), v));
            }
        }
        let body = if op.body.trim().is_empty() {
            None
        } else {
            match op.encoding.as_str() {
                "text" => Some(Body::Text(
                    inner
                        .renderer
                        .plain(&op.body, ctx)
                        .map_err(|e| bad("body", e))?,
                )),
                enc => {
                    let rendered = inner
                        .renderer
                        .body(&op.body, ctx)
                        .map_err(|e| bad("body", e))?;
                    let v: Value = serde_json::from_str(&rendered).map_err(|e| {
                        DriverError::new(
                            &inner.id,
                            ErrorKind::Refused,
                            format!(
                                "the catalog's `{name}` body is not valid JSON once rendered: {e}"
                            ),
                        )
                    })?;
                    if enc == "form" {
                        Some(Body::Form(v))
                    } else {
                        Some(Body::Json(v))
                    }
                }
            }
        };
        if let Some(b) = &body {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                let ct = if !op.content_type.is_empty() {
                    op.content_type.clone()
                } else {
                    match b {
                        Body::Json(_) => "application/json".into(),
                        Body::Form(_) => "application/x-www-form-urlencoded; charset=utf-8".into(),
                        Body::Text(_) => "text/plain".into(),
                    }
                };
                headers.push(("Content-Type".into(), ct));
            }
        }
        let method = if op.method.is_empty() {
            "GET".to_string()
        } else {
            op.method.to_ascii_uppercase()
        };
        let method = Method::from_bytes(method.as_bytes()).map_err(|_| {
            DriverError::new(
                &inner.id,
                ErrorKind::Refused,
                format!("invalid method '{}' for `{name}`", op.method),
            )
        })?;
        let region = ctx.get("region").and_then(Value::as_str).unwrap_or("");
        let sign_region = if region.is_empty() {
            inner
                .provider
                .region_api_id(&inner.provider.meta.default_region)
                .to_string()
        } else {
            region.to_string()
        };
        Ok(Prepared {
            op: name.to_string(),
            method,
            url,
            headers,
            body,
            expect: op.expect.clone(),
            sign_region,
        })
    }

    /// Send with retries; an unexpected status becomes a [`DriverError`].
    pub(crate) async fn send(&self, prep: &Prepared, mode: Mode) -> Result<Resp, DriverError> {
        let inner = &self.inner;
        let max = inner.opts.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.attempt(prep).await {
                Ok(resp) => {
                    let ok = if prep.expect.is_empty() {
                        (200..300).contains(&resp.status)
                    } else {
                        prep.expect.contains(&resp.status)
                    };
                    if ok {
                        return Ok(resp);
                    }
                    let mut err = self.api_error(&resp);
                    let throttled = resp.status == 429 || err.kind == ErrorKind::Throttled;
                    let server = resp.status >= 500;
                    let retry = throttled || (mode == Mode::Safe && server);
                    if retry && attempt < max {
                        // `Retry-After` counts on any retried answer; the rate-limit reset
                        // header only on a throttle (many APIs send it on every answer, where it
                        // is the window's end, not a reason to wait after a 500).
                        let reset = if throttled {
                            inner.provider.api.limits.reset_header.as_str()
                        } else {
                            ""
                        };
                        let wait = server_wait(&resp.headers, reset)
                            .unwrap_or_else(|| backoff(inner.opts.backoff_base, attempt));
                        self.log(
                            1,
                            &format!("retrying {} in {} ms ({err})", prep.op, wait.as_millis()),
                        );
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    if mode == Mode::Create && server && !throttled {
                        err.in_doubt = true;
                    }
                    return Err(err);
                }
                Err(f) => {
                    let (connect, timeout, message) = match f {
                        Failure::Connect { timeout, message } => (true, timeout, message),
                        Failure::Transport { timeout, message } => (false, timeout, message),
                    };
                    let retry = mode == Mode::Safe || connect;
                    if retry && attempt < max {
                        let wait = backoff(inner.opts.backoff_base, attempt);
                        self.log(
                            1,
                            &format!(
                                "retrying {} in {} ms ({message})",
                                prep.op,
                                wait.as_millis()
                            ),
                        );
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    let kind = if timeout {
                        ErrorKind::Timeout
                    } else {
                        ErrorKind::Network
                    };
                    let mut err =
                        DriverError::new(&inner.id, kind, scrub(&message, &inner.secrets()));
                    err.in_doubt = mode == Mode::Create && !connect;
                    return Err(err);
                }
            }
        }
    }

    async fn attempt(&self, prep: &Prepared) -> Result<Resp, Failure> {
        let inner = &self.inner;
        let body = prep.body.as_ref().map(Body::encode).unwrap_or_default();
        let auth = inner
            .auth
            .headers(
                prep.method.as_str(),
                prep.url.as_str(),
                &prep.headers,
                body.as_bytes(),
                &prep.sign_region,
            )
            .map_err(|m| Failure::Transport {
                timeout: false,
                message: m,
            })?;
        let mut rb = inner.client.request(prep.method.clone(), prep.url.clone());
        for (k, v) in prep.headers.iter().chain(auth.iter()) {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if prep.body.is_some() {
            rb = rb.body(body.clone());
        }
        if inner.opts.verbose >= 2 {
            let secret_names = inner.auth.secret_header_names();
            for (k, v) in prep.headers.iter().chain(auth.iter()) {
                let shown = if secret_names.iter().any(|s| s.eq_ignore_ascii_case(k)) {
                    "(redacted)"
                } else {
                    v
                };
                self.log(2, &format!("  > {k}: {shown}"));
            }
            if prep.body.is_some() {
                self.log(2, &format!("  > {}", scrub(&body, &inner.secrets())));
            }
        }
        let started = Instant::now();
        let result = rb.send().await;
        let ms = started.elapsed().as_millis();
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                let message = describe(&e);
                self.log(
                    1,
                    &format!("{} {} → {message} ({ms} ms)", prep.method, prep.url),
                );
                return Err(if e.is_connect() {
                    Failure::Connect {
                        timeout: e.is_timeout(),
                        message,
                    }
                } else {
                    Failure::Transport {
                        timeout: e.is_timeout(),
                        message,
                    }
                });
            }
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = match resp.text().await {
            Ok(t) => t,
            Err(e) => {
                let message = describe(&e);
                self.log(
                    1,
                    &format!(
                        "{} {} → {status}, {message} ({ms} ms)",
                        prep.method, prep.url
                    ),
                );
                return Err(Failure::Transport {
                    timeout: e.is_timeout(),
                    message,
                });
            }
        };
        self.log(
            1,
            &format!(
                "{} {} → {status} ({} ms)",
                prep.method,
                prep.url,
                started.elapsed().as_millis()
            ),
        );
        if inner.opts.verbose >= 2 && !text.is_empty() {
            let shown: String = text.chars().take(2000).collect();
            self.log(2, &format!("  < {}", scrub(&shown, &inner.secrets())));
        }
        let value = self.parse_body(&text);
        Ok(Resp {
            status,
            headers,
            text,
            value,
        })
    }

    /// Parse an answer per `api.format` (falling back to the other format, then to `Null`).
    pub(crate) fn parse_body(&self, text: &str) -> Value {
        let t = text.trim_start();
        if t.is_empty() {
            return Value::Null;
        }
        let api = &self.inner.provider.api;
        let xml = || tree::xml_to_json(t, &api.xml_list_elements).ok();
        let json = || serde_json::from_str::<Value>(t).ok();
        if api.format == "xml" {
            xml().or_else(json).unwrap_or(Value::Null)
        } else {
            json()
                .or_else(|| if t.starts_with("<?xml") { xml() } else { None })
                .unwrap_or(Value::Null)
        }
    }

    /// Turn an unexpected answer into a [`DriverError`] with the provider's message and code.
    pub(crate) fn api_error(&self, resp: &Resp) -> DriverError {
        let inner = &self.inner;
        let shape = &inner.provider.api.errors;
        let code = shape
            .code
            .iter()
            .find_map(|p| tree::text_at(&resp.value, p).filter(|s| !s.trim().is_empty()));
        let mut message = shape
            .message
            .iter()
            .find_map(|p| tree::text_at(&resp.value, p).filter(|s| !s.trim().is_empty()));
        if message.is_none() {
            let t = resp.text.trim();
            if !t.is_empty() && !t.starts_with('<') {
                let one_line: String = t.split_whitespace().collect::<Vec<_>>().join(" ");
                let mut excerpt: String = one_line.chars().take(200).collect();
                if one_line.chars().count() > 200 {
                    excerpt.push('…');
                }
                message = Some(excerpt);
            }
        }
        let reason = reqwest::StatusCode::from_u16(resp.status)
            .ok()
            .and_then(|s| s.canonical_reason().map(str::to_string))
            .unwrap_or_else(|| "error".to_string());
        let message = scrub(&message.unwrap_or(reason), &inner.secrets());
        let in_list = |list: &[String]| {
            code.as_ref()
                .is_some_and(|c| list.iter().any(|x| x.eq_ignore_ascii_case(c)))
        };
        let kind = if in_list(&shape.not_found_codes) {
            ErrorKind::NotFound
        } else if in_list(&shape.throttle_codes) || resp.status == 429 {
            ErrorKind::Throttled
        } else if resp.status == 404 {
            ErrorKind::NotFound
        } else if resp.status == 401 || resp.status == 403 {
            ErrorKind::Auth
        } else {
            ErrorKind::Api
        };
        let mut err = DriverError::new(&inner.id, kind, message).with_status(resp.status);
        err.code = code.map(|c| scrub(&c, &inner.secrets()));
        if kind == ErrorKind::Auth {
            err.hint = Some(format!(
                "check the {} with `capsule openmesh provider verify {}`",
                self.auth_noun(),
                inner.id
            ));
        }
        err
    }

    /// One log line on stderr when `verbose >= level`.
    pub(crate) fn log(&self, level: u8, line: &str) {
        if self.inner.opts.verbose >= level {
            eprintln!("capsule: {line}");
        }
    }
}

/// A transport error in a few words, without the URL's query (never a secret, but noise).
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut msg = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else {
        "request failed".to_string()
    };
    let mut src = e.source();
    let mut last = None;
    while let Some(s) = src {
        last = Some(s.to_string());
        src = s.source();
    }
    if let Some(l) = last {
        msg = format!("{msg}: {l}");
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_replaces_scheme_host_port_only() {
        let ep = Url::parse("http://127.0.0.1:4010").unwrap();
        let mut u = Url::parse("https://api.example.com/v2/droplets?page=2&per_page=200").unwrap();
        apply_override(&mut u, &ep);
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:4010/v2/droplets?page=2&per_page=200"
        );
        let ep = Url::parse("https://mock.internal").unwrap();
        let mut u = Url::parse("https://compute.us-east-1.example.com:8443/").unwrap();
        apply_override(&mut u, &ep);
        assert_eq!(u.as_str(), "https://mock.internal/");
    }

    #[test]
    fn loopback_hosts() {
        for ok in [
            "http://127.0.0.1:1",
            "http://localhost",
            "http://[::1]:9",
            "http://127.1.2.3",
        ] {
            assert!(is_loopback(&Url::parse(ok).unwrap()), "{ok}");
        }
        for no in [
            "http://10.0.0.1",
            "http://example.com",
            "http://localhost.example.com",
        ] {
            assert!(!is_loopback(&Url::parse(no).unwrap()), "{no}");
        }
    }

    #[test]
    fn retry_after_seconds_date_and_reset() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(server_wait(&h, ""), Some(Duration::from_secs(3)));
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(server_wait(&h, ""), Some(Duration::ZERO));
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", "7".parse().unwrap());
        assert_eq!(
            server_wait(&h, "X-RateLimit-Reset"),
            Some(Duration::from_secs(7))
        );
        assert_eq!(server_wait(&h, ""), None);
        h.insert("retry-after", "100000".parse().unwrap());
        assert_eq!(server_wait(&h, ""), Some(MAX_SERVER_WAIT));
    }

    #[test]
    fn backoff_is_capped() {
        for n in 1..40 {
            assert!(backoff(Duration::from_millis(500), n) <= MAX_BACKOFF);
        }
    }

    #[test]
    fn set_query_replaces() {
        let mut p = Prepared {
            op: "list".into(),
            method: Method::GET,
            url: Url::parse("http://h/x?a=1&page=1").unwrap(),
            headers: vec![],
            body: None,
            expect: vec![],
            sign_region: String::new(),
        };
        p.set_query("page", "2");
        assert_eq!(p.url.as_str(), "http://h/x?a=1&page=2");
    }
}
