//! One HTTP exchange and its retries: building the URL (endpoint override included), encoding
//! the body, authorising, sending, logging, classifying the answer and backing off.
//!
//! Retry rules: a `Safe` request (reads, deletes, power actions) is retried on 429, 5xx, throttle
//! codes, connection errors and timeouts; a `Create` is retried only when the server provably did
//! not act (429/throttle code, or a connect error before sending) — any other doubt is handed back
//! to the caller with `in_doubt = true`, who looks the node up by its tag before trying again.
//!
//! Servers are input too: no redirect is followed (a 3xx is an error naming its target, so no
//! credential header travels to another address); a body is read in chunks up to a cap
//! (`limits.max_body_mb`, default 8 MB); one deadline (`--request-timeout`) covers every attempt
//! and every wait of a request, and a wait of a few seconds or more is announced on stderr.

use super::error::{excerpt, scrub, DriverError, ErrorKind, Hint};
use super::{form, tree, Driver};
use crate::catalog::schema::{Encoding, Format, Operation};
use crate::messages;
use reqwest::header::HeaderMap;
use reqwest::{Method, Url};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Longest wait the driver accepts from a `Retry-After` or reset header.
const MAX_SERVER_WAIT: Duration = Duration::from_secs(120);
/// Cap of the exponential backoff.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Body cap when the catalog sets no `limits.max_body_mb`.
pub(crate) const DEFAULT_MAX_BODY_MB: f64 = 8.0;
/// A wait this long or longer is announced on stderr.
const ANNOUNCE_WAIT: Duration = Duration::from_secs(3);

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
    /// The URL as the catalog makes it, before any endpoint override: next-page links may point
    /// to its origin or to `url`'s, nowhere else.
    pub api_url: Url,
    /// The path of the catalog's base URL (`/v1`), which an endpoint override with a path of
    /// its own replaces.
    pub base_path: String,
    /// The endpoint override this request went to, if any.
    pub endpoint: Option<Url>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Body>,
    pub expect: Vec<u16>,
    /// SigV4 signing region (the API id).
    pub sign_region: String,
    /// SigV4 signing service when the operation names its own; empty = the API's.
    pub sign_service: String,
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
    /// Why the body did not parse, when it did not.
    pub parse_error: Option<String>,
}

enum Failure {
    /// The connection was never made (refused, DNS, connect timeout): nothing reached the server.
    Connect { timeout: bool, message: String },
    /// Sent (or maybe sent) but no usable answer.
    Transport { timeout: bool, message: String },
    /// An answer whose body is past the cap: not retried.
    Body { status: u16, message: String },
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

/// Put the override's scheme, host and port on `url`. An override with a path of its own
/// (`http://127.0.0.1:4000/v1`, as `HCLOUD_ENDPOINT`-style variables carry) is the whole base
/// URL: its path replaces `base_path`, the path of the catalog's base URL, at the start of the
/// request's path. Without one, the path and query stay.
pub fn apply_override(url: &mut Url, endpoint: &Url, base_path: &str) {
    let _ = url.set_scheme(endpoint.scheme());
    let _ = url.set_host(endpoint.host_str());
    let _ = url.set_port(endpoint.port());
    let prefix = endpoint.path().trim_end_matches('/');
    if prefix.is_empty() {
        return;
    }
    let base = base_path.trim_end_matches('/');
    let path = url.path();
    let rest = match path.strip_prefix(base) {
        Some(r) if r.is_empty() || r.starts_with('/') => r,
        _ => path,
    };
    let joined = format!("{prefix}{rest}");
    url.set_path(&joined);
}

/// Parse an HTTP date (RFC 9110: IMF-fixdate, or the obsolete RFC 850 and asctime forms) as a
/// Unix time.
fn http_date(s: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    let secs = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    i64::try_from(secs).ok()
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
            .from_catalog()
        };
        let base_tpl = if op.base_url.is_empty() {
            &api.base_url
        } else {
            &op.base_url
        };
        let base = inner
            .renderer
            .plain(base_tpl, ctx)
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
            .from_catalog()
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
        let api_url = url.clone();
        let base_path = Url::parse(&base)
            .map(|b| b.path().to_string())
            .unwrap_or_default();
        let own_endpoint;
        let endpoint = if op.base_url.is_empty() {
            inner.endpoint.as_ref()
        } else {
            own_endpoint = super::op_endpoint(&inner.provider, &op.endpoint_env).map_err(|e| {
                DriverError::new(&inner.id, ErrorKind::Refused, e.to_string()).from_catalog()
            })?;
            own_endpoint.as_ref()
        };
        if let Some(ep) = endpoint {
            apply_override(&mut url, ep, &base_path);
        }
        let endpoint = endpoint.cloned();
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
            match op.encoding {
                Encoding::Text => Some(Body::Text(
                    inner
                        .renderer
                        .plain(&op.body, ctx)
                        .map_err(|e| bad("body", e))?,
                )),
                enc @ (Encoding::Json | Encoding::Form) => {
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
                        .from_catalog()
                    })?;
                    if enc == Encoding::Form {
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
        let sign = op.sign.clone().unwrap_or_default();
        let region = ctx.get("region").and_then(Value::as_str).unwrap_or("");
        let sign_region = if !sign.region.is_empty() {
            sign.region
        } else if region.is_empty() {
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
            api_url,
            base_path,
            endpoint,
            headers,
            body,
            expect: op.expect.clone(),
            sign_region,
            sign_service: sign.service,
        })
    }

    /// Send with retries; an unexpected status becomes a [`DriverError`]. Every attempt and
    /// every wait between them fits in one deadline, `opts.timeout` (`--request-timeout`).
    pub(crate) async fn send(&self, prep: &Prepared, mode: Mode) -> Result<Resp, DriverError> {
        let inner = &self.inner;
        let max = inner.opts.max_attempts.max(1);
        // A day stands for "no limit" when the option is absurdly large.
        let now = Instant::now();
        let deadline = now
            .checked_add(inner.opts.timeout)
            .unwrap_or_else(|| now + Duration::from_secs(86_400));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.attempt(prep, remaining).await {
                Ok(resp) => {
                    let ok = if prep.expect.is_empty() {
                        (200..300).contains(&resp.status)
                    } else {
                        prep.expect.contains(&resp.status)
                    };
                    if ok {
                        return Ok(resp);
                    }
                    if (300..400).contains(&resp.status) {
                        // A create answered with a redirect (`303 See Other`) may have acted.
                        let mut err = self.redirect_error(prep, &resp);
                        err.in_doubt = mode == Mode::Create;
                        return Err(err);
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
                        let (wait, why) = match server_wait(&resp.headers, reset) {
                            Some(w) if resp.headers.contains_key("retry-after") => {
                                (w, "Retry-After".to_string())
                            }
                            Some(w) => (w, reset.to_string()),
                            None => (
                                backoff(inner.opts.backoff_base, attempt),
                                "backoff".to_string(),
                            ),
                        };
                        match self
                            .pause(prep, wait, &why, deadline, &err.to_string())
                            .await
                        {
                            Ok(()) => continue,
                            Err(note) => err.message = format!("{}; {note}", err.message),
                        }
                    }
                    if mode == Mode::Create && server && !throttled {
                        err.in_doubt = true;
                    }
                    return Err(err);
                }
                Err(Failure::Body { status, message }) => {
                    let mut err =
                        DriverError::new(&inner.id, ErrorKind::Api, message).with_status(status);
                    err.in_doubt = mode == Mode::Create;
                    return Err(err);
                }
                Err(f) => {
                    let (connect, timeout, mut message) = match f {
                        Failure::Connect { timeout, message } => (true, timeout, message),
                        Failure::Transport { timeout, message } => (false, timeout, message),
                        Failure::Body { message, .. } => (false, false, message),
                    };
                    let retry = mode == Mode::Safe || connect;
                    if retry && attempt < max {
                        let wait = backoff(inner.opts.backoff_base, attempt);
                        match self.pause(prep, wait, "backoff", deadline, &message).await {
                            Ok(()) => continue,
                            Err(note) => message = format!("{message}; {note}"),
                        }
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

    /// Wait before the next attempt, if that still fits before the deadline; a long wait is
    /// announced on stderr. `Err` says why the request is not retried.
    async fn pause(
        &self,
        prep: &Prepared,
        wait: Duration,
        why: &str,
        deadline: Instant,
        last: &str,
    ) -> Result<(), String> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let limit = secs_text(self.inner.opts.timeout);
        if wait >= remaining {
            return Err(if why == "backoff" {
                format!("not retried: the request's {limit} limit (--request-timeout) is used up")
            } else {
                format!(
                    "not retried: {why} asks for a {} wait, past the request's {limit} limit (--request-timeout)",
                    secs_text(wait)
                )
            });
        }
        if wait >= ANNOUNCE_WAIT {
            messages::info(format!(
                "waiting {} for {} ({why})…",
                secs_text(wait),
                self.inner.id
            ));
        }
        self.log(
            1,
            &format!("retrying {} in {} ms ({last})", prep.op, wait.as_millis()),
        );
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// The largest body read, in bytes.
    fn body_cap(&self) -> usize {
        let mb = self.inner.provider.api.limits.max_body_mb;
        let mb = if mb.is_finite() && mb > 0.0 {
            mb.min(1024.0)
        } else {
            DEFAULT_MAX_BODY_MB
        };
        (mb * 1024.0 * 1024.0) as usize
    }

    fn too_large(&self, cap: usize) -> String {
        format!(
            "the answer is larger than {} MB, the most capsule reads (raise `limits.max_body_mb` in the provider's catalog if the API really sends that much)",
            crate::render::num(cap as f64 / (1024.0 * 1024.0))
        )
    }

    async fn attempt(&self, prep: &Prepared, remaining: Duration) -> Result<Resp, Failure> {
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
                &prep.sign_service,
            )
            .map_err(|m| Failure::Transport {
                timeout: false,
                message: m,
            })?;
        let mut rb = inner
            .client
            .request(prep.method.clone(), prep.url.clone())
            .timeout(remaining);
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
        let mut resp = match result {
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
        // The body in chunks, never past the cap (a declared length past it is refused unread).
        let cap = self.body_cap();
        if resp.content_length().is_some_and(|n| n > cap as u64) {
            self.log(
                1,
                &format!("{} {} → {status}, body too large", prep.method, prep.url),
            );
            return Err(Failure::Body {
                status,
                message: self.too_large(cap),
            });
        }
        let mut bytes: Vec<u8> = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > cap {
                        self.log(
                            1,
                            &format!("{} {} → {status}, body too large", prep.method, prep.url),
                        );
                        return Err(Failure::Body {
                            status,
                            message: self.too_large(cap),
                        });
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
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
            }
        }
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
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
        let (value, parse_error) = match self.parse_body(&text) {
            Ok(v) => (v, None),
            Err(e) => (Value::Null, Some(e)),
        };
        // Secrets the answer carries (`api.secret_fields`) are scrubbed from here on: from this
        // log line, from errors, and from every node field read out of the answer.
        for secret in tree::texts_named(&value, &inner.provider.api.secret_fields) {
            inner.add_secret(&secret);
        }
        if inner.opts.verbose >= 2 && !text.is_empty() {
            self.log(
                2,
                &format!("  < {}", excerpt(&text, &inner.secrets(), 2000)),
            );
        }
        Ok(Resp {
            status,
            headers,
            text,
            value,
            parse_error,
        })
    }

    /// Parse an answer per `api.format` (falling back to the other format); an empty body is
    /// `Null`. JSON deeper than 128 levels (serde_json's limit) and XML deeper than
    /// [`tree::MAX_XML_DEPTH`] are errors.
    pub(crate) fn parse_body(&self, text: &str) -> Result<Value, String> {
        let t = text.trim_start();
        if t.is_empty() {
            return Ok(Value::Null);
        }
        let api = &self.inner.provider.api;
        let xml = || tree::xml_to_json(t, &api.xml_list_elements);
        let json = || serde_json::from_str::<Value>(t).map_err(|e| format!("invalid JSON: {e}"));
        // An XML API may have a JSON operation (a price list on another endpoint): a body that
        // opens like JSON is read as JSON.
        if api.format == Format::Xml && !t.starts_with(['{', '[']) {
            xml().or_else(|xe| json().map_err(|_| xe))
        } else if t.starts_with('<') {
            json().or_else(|je| {
                if t.starts_with("<?xml") {
                    xml()
                } else {
                    Err(je)
                }
            })
        } else {
            json()
        }
    }

    /// A 3xx answer: capsule follows no redirect, so credentials never travel to another
    /// address; the error names where the server pointed.
    fn redirect_error(&self, prep: &Prepared, resp: &Resp) -> DriverError {
        let inner = &self.inner;
        let target = resp
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(|l| {
                prep.url
                    .join(l.trim())
                    .map_or_else(|_| l.to_string(), |u| u.to_string())
            })
            .map(|l| excerpt(&l, &inner.secrets(), 200));
        let to = target.map_or_else(String::new, |t| format!(" to {t}"));
        DriverError::new(
            &inner.id,
            ErrorKind::Api,
            format!("`{}` was answered with a redirect{to}, which capsule does not follow (credentials go only to the API's own address)", prep.op),
        )
        .with_status(resp.status)
        .with_hint("check the catalog's base URL and any endpoint override")
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
                message = Some(excerpt(t, &inner.secrets(), 200));
            }
        }
        let reason = reqwest::StatusCode::from_u16(resp.status)
            .ok()
            .and_then(|s| s.canonical_reason().map(str::to_string))
            .unwrap_or_else(|| "error".to_string());
        let message = excerpt(&message.unwrap_or(reason), &inner.secrets(), 500);
        let in_list = |list: &[String]| {
            code.as_ref()
                .is_some_and(|c| list.iter().any(|x| x.eq_ignore_ascii_case(c)))
        };
        let refusal = shape.refusal(resp.status, code.as_deref(), &message);
        let kind = if refusal.is_some() {
            // A documented refusal (a quota answered 403, say) is not a credentials problem.
            ErrorKind::Api
        } else if in_list(&shape.not_found_codes) {
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
        err.code = code.map(|c| excerpt(&c, &inner.secrets(), 100));
        err.refusal = refusal;
        if kind == ErrorKind::Auth {
            err.hint = Some(Box::new(Hint::Verify {
                provider: inner.id.clone(),
                noun: self.auth_noun().to_string(),
            }));
        }
        err
    }

    /// One log line on stderr when `verbose >= level`.
    pub(crate) fn log(&self, level: u8, line: &str) {
        if self.inner.opts.verbose >= level {
            messages::info(line);
        }
    }
}

/// `60 s`, `0.5 s`.
fn secs_text(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 10.0 || s.fract() == 0.0 {
        format!("{} s", s.round())
    } else {
        format!("{s:.1} s")
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
        apply_override(&mut u, &ep, "");
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:4010/v2/droplets?page=2&per_page=200"
        );
        let ep = Url::parse("https://mock.internal").unwrap();
        let mut u = Url::parse("https://compute.us-east-1.example.com:8443/").unwrap();
        apply_override(&mut u, &ep, "/");
        assert_eq!(u.as_str(), "https://mock.internal/");
    }

    #[test]
    fn an_override_with_a_path_replaces_the_base_path() {
        let ep = Url::parse("http://127.0.0.1:4000/v1").unwrap();
        let mut u = Url::parse("https://api.example.com/v1/servers/7?x=1").unwrap();
        apply_override(&mut u, &ep, "/v1");
        assert_eq!(u.as_str(), "http://127.0.0.1:4000/v1/servers/7?x=1");
        // A prefix of another name, a trailing slash, and a base URL without a path.
        let ep = Url::parse("https://gw.example.net/proxy/cloud/").unwrap();
        let mut u = Url::parse("https://api.example.com/v1/servers").unwrap();
        apply_override(&mut u, &ep, "/v1/");
        assert_eq!(u.as_str(), "https://gw.example.net/proxy/cloud/servers");
        let mut u = Url::parse("https://api.example.com/api/v2/compute/").unwrap();
        apply_override(&mut u, &ep, "/");
        assert_eq!(
            u.as_str(),
            "https://gw.example.net/proxy/cloud/api/v2/compute/"
        );
        // A path that does not start with the base path (`/v10` under `/v1`) keeps it whole.
        let mut u = Url::parse("https://api.example.com/v10/x").unwrap();
        apply_override(&mut u, &ep, "/v1");
        assert_eq!(u.as_str(), "https://gw.example.net/proxy/cloud/v10/x");
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
        // The obsolete forms a server may still send (RFC 9110 §5.6.7).
        for old in ["Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"] {
            assert_eq!(http_date(old), Some(784_111_777), "{old}");
        }
        assert_eq!(http_date("Sun, 31 Feb 1994 08:49:37 GMT"), None);
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
            api_url: Url::parse("http://h/x?a=1&page=1").unwrap(),
            base_path: String::new(),
            endpoint: None,
            headers: vec![],
            body: None,
            expect: vec![],
            sign_region: String::new(),
            sign_service: String::new(),
        };
        p.set_query("page", "2");
        assert_eq!(p.url.as_str(), "http://h/x?a=1&page=2");
    }
}
