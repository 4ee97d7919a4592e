//! The generic, catalog-driven HTTP driver: deploy, list, get, start, stop and delete servers on
//! any provider whose `[api]` the catalog describes. Nothing here knows a provider by name;
//! everything provider-specific (URLs, auth scheme, bodies, field pointers, status values,
//! pagination, steps) comes from [`crate::catalog::schema::Api`].
//!
//! Files: `template` (minijinja rendering), `form` (AWS-Query flattening), `tree` (XML → JSON,
//! pointers, picks, status mapping), `auth` (bearer, header, sigv4), `http` (one exchange with
//! retries and logging), `ops` (the operations, steps, actions, paging, waits).
//!
//! The driver returns data and errors; it prints nothing except the `--verbose` request log on
//! stderr, with secrets redacted, and a note when it waits a few seconds or more before a retry.

mod auth;
mod error;
mod form;
mod http;
mod keys;
mod ops;
mod outcome;
mod template;
mod tree;

pub use error::{DriverError, ErrorKind, Refusal};
pub use keys::key_material;
pub use ops::{PlanPrice, PriceList, ResolvedPlan};
pub use outcome::CreateOutcome;

use crate::catalog::model::ProviderEntry;
use crate::catalog::schema::{Auth, Operation};
use crate::credentials::Credentials;
use crate::error::bad_input;
use auth::Authorizer;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use template::Renderer;

/// Network and pacing settings.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    pub connect_timeout: Duration,
    /// Total time for one HTTP exchange.
    pub timeout: Duration,
    /// Attempts per request (1 = no retry).
    pub max_attempts: u32,
    /// First backoff step; doubles per attempt, full jitter, capped at 30 s.
    pub backoff_base: Duration,
    /// Overrides `api.limits.poll_seconds`.
    pub poll_interval: Option<Duration>,
    /// `>= 1`: one stderr line per request; `>= 2`: headers and bodies too (secrets redacted).
    pub verbose: u8,
}

impl Default for DriverOptions {
    fn default() -> Self {
        DriverOptions {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(60),
            max_attempts: 5,
            backoff_base: Duration::from_millis(500),
            poll_interval: None,
            verbose: 0,
        }
    }
}

/// What to deploy.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateRequest {
    pub name: String,
    /// Region slug (empty = the provider's default region).
    pub region: String,
    /// The provider's plan id.
    pub plan: String,
    /// Capsule template id.
    pub template: String,
    /// OS image; `None` = the provider's `default_image`.
    pub image: Option<String>,
    pub ssh_keys: Vec<String>,
    pub user_data: Option<String>,
    /// Unique id of this deploy (goes into the tag and idempotency tokens).
    pub deploy_id: String,
    /// The template's `api_variant` (empty = main operations).
    pub api_variant: String,
    /// Extra template variables for the create and its steps (`xnode = true`).
    #[serde(default)]
    pub vars: std::collections::BTreeMap<String, Value>,
}

/// Common node states.
#[derive(Serialize, Deserialize, Copy, Clone, PartialEq, Eq, Debug, Hash)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    Pending,
    Running,
    Stopped,
    Deleting,
    Deleted,
    Error,
    Unknown,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Pending => "pending",
            NodeState::Running => "running",
            NodeState::Stopped => "stopped",
            NodeState::Deleting => "deleting",
            NodeState::Deleted => "deleted",
            NodeState::Error => "error",
            NodeState::Unknown => "unknown",
        }
    }

    pub const ALL: [NodeState; 7] = [
        NodeState::Pending,
        NodeState::Running,
        NodeState::Stopped,
        NodeState::Deleting,
        NodeState::Deleted,
        NodeState::Error,
        NodeState::Unknown,
    ];
}

impl From<crate::catalog::schema::CommonState> for NodeState {
    fn from(s: crate::catalog::schema::CommonState) -> Self {
        use crate::catalog::schema::CommonState as C;
        match s {
            C::Pending => NodeState::Pending,
            C::Running => NodeState::Running,
            C::Stopped => NodeState::Stopped,
            C::Deleting => NodeState::Deleting,
            C::Deleted => NodeState::Deleted,
            C::Error => NodeState::Error,
        }
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NodeState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeState::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown node state '{s}'"))
    }
}

/// A server as the driver sees it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Node {
    pub provider: String,
    pub id: String,
    pub name: String,
    /// Region slug.
    pub region: String,
    pub plan: String,
    pub state: NodeState,
    /// The provider's own status value.
    pub raw_status: String,
    pub ipv4: Option<String>,
    pub created_at: Option<String>,
    /// The deploy tag read back from the node (`capsule-<deploy id>`), if any.
    pub tag: Option<String>,
    /// API variant that manages it (empty = main operations).
    pub variant: String,
}

impl Node {
    /// A reference to address this node again.
    pub fn node_ref(&self) -> NodeRef {
        NodeRef {
            provider: self.provider.clone(),
            id: self.id.clone(),
            region: if self.region.is_empty() {
                None
            } else {
                Some(self.region.clone())
            },
            variant: self.variant.clone(),
        }
    }
}

/// How to address an existing node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct NodeRef {
    pub provider: String,
    pub id: String,
    /// Region slug; needed when the API is regional (else every region is tried).
    pub region: Option<String>,
    pub variant: String,
}

/// A request on an existing node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Start,
    Stop,
    Delete,
}

impl Lifecycle {
    /// The catalog operation's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Start => "start",
            Lifecycle::Stop => "stop",
            Lifecycle::Delete => "delete",
        }
    }
}

/// Work an operation leaves for after the node is gone (a catalog `cleanup` step, once per
/// element it reads from the node): kept in the state store until it ran.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cleanup {
    pub node: NodeRef,
    /// The catalog operation to run.
    pub operation: String,
    /// The step's extra template variables.
    #[serde(default)]
    pub vars: std::collections::BTreeMap<String, String>,
    /// The element of the node the step runs for (the template variable `item`); null = none.
    #[serde(default)]
    pub item: Value,
}

/// Where a pending cleanup stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupState {
    /// The node still exists: try again later.
    Waiting,
    /// Done (or what it removes was already gone).
    Done,
}

/// A request as it would be sent (dry run).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RenderedRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

pub(crate) struct Inner {
    pub provider: ProviderEntry,
    pub id: String,
    pub auth: Authorizer,
    /// Non-secret credential fields (`account.*` in templates).
    pub account: std::collections::BTreeMap<String, String>,
    /// Strings scrubbed from every log line and error: the credentials, plus one-time secrets
    /// generated for requests (`random_password`).
    pub secrets: std::sync::RwLock<Vec<String>>,
    pub opts: DriverOptions,
    pub client: reqwest::Client,
    pub endpoint: Option<Url>,
    pub renderer: Renderer,
}

impl Inner {
    /// A snapshot of the strings to scrub.
    pub(crate) fn secrets(&self) -> Vec<String> {
        self.secrets.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// Scrub this string from now on.
    pub(crate) fn add_secret(&self, secret: &str) {
        if let Ok(mut s) = self.secrets.write() {
            if !s.iter().any(|known| known == secret) {
                s.push(secret.to_string());
            }
        }
    }
}

/// The driver for one provider account. Cheap to clone; usable from many tasks at once.
#[derive(Clone)]
pub struct Driver {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("provider", &self.inner.id)
            .field("endpoint", &self.inner.endpoint)
            .finish()
    }
}

/// `CAPSULE_ENDPOINT_<ID>` for a provider id (upper-cased, `-` → `_`).
pub fn endpoint_env_name(provider_id: &str) -> String {
    format!(
        "CAPSULE_ENDPOINT_{}",
        provider_id.to_ascii_uppercase().replace('-', "_")
    )
}

/// The endpoint override for a provider, from `CAPSULE_ENDPOINT_<ID>` then `api.endpoint_env`.
/// Plain http is refused unless the host is loopback.
pub fn endpoint_override(provider: &ProviderEntry) -> anyhow::Result<Option<Url>> {
    first_endpoint(
        std::iter::once(endpoint_env_name(provider.id()))
            .chain(provider.api.endpoint_env.iter().cloned()),
    )
}

/// The endpoint override of an operation with its own base URL: `CAPSULE_ENDPOINT_<ID>` (every
/// operation), then the operation's own `endpoint_env`; the API's `endpoint_env` does not apply.
pub(crate) fn op_endpoint(
    provider: &ProviderEntry,
    endpoint_env: &[String],
) -> anyhow::Result<Option<Url>> {
    first_endpoint(
        std::iter::once(endpoint_env_name(provider.id())).chain(endpoint_env.iter().cloned()),
    )
}

fn first_endpoint(names: impl Iterator<Item = String>) -> anyhow::Result<Option<Url>> {
    for name in names {
        let Ok(value) = std::env::var(&name) else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        return parse_endpoint(&name, value).map(Some);
    }
    Ok(None)
}

fn parse_endpoint(name: &str, value: &str) -> anyhow::Result<Url> {
    let url = Url::parse(value).map_err(|e| {
        bad_input(format!(
            "{name}='{value}' is not a URL ({e}) — use e.g. https://host:port"
        ))
    })?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad_input(format!(
            "{name}='{value}' has no host — use e.g. https://host:port"
        )));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if http::is_loopback(&url) => Ok(url),
        "http" => Err(bad_input(format!(
            "{name}='{value}' uses plain http to a non-loopback host — use https, or http only to 127.0.0.1, ::1 or localhost"
        ))),
        s => Err(bad_input(format!("{name}='{value}' has scheme '{s}' — use https (or http to a loopback host)"))),
    }
}

impl Driver {
    /// Build the driver for a provider: resolves the endpoint override and checks that every
    /// credential field the provider needs is present.
    pub fn new(
        provider: &ProviderEntry,
        creds: Credentials,
        opts: DriverOptions,
    ) -> anyhow::Result<Driver> {
        let id = provider.id().to_string();
        let mut needed: Vec<String> = auth::required_fields(&provider.api.auth)
            .into_iter()
            .map(str::to_string)
            .collect();
        for c in &provider.credentials {
            if c.required && !needed.contains(&c.name) {
                needed.push(c.name.clone());
            }
        }
        for field in needed.iter().filter(|f| !f.is_empty()) {
            if creds.get(field).is_none() {
                return Err(missing_field(provider, field));
            }
        }
        let auth = Authorizer::from_catalog(&provider.api.auth, &creds)
            .map_err(|f| missing_field(provider, &f))?;
        let endpoint = endpoint_override(provider)?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.timeout)
            // No redirect is followed: a 3xx is an error naming its target (see `http`), so
            // no credential header ever travels to another scheme, host or port.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("capsule/", env!("CARGO_PKG_VERSION")));
        if endpoint.as_ref().is_some_and(http::is_loopback) {
            builder = builder.no_proxy();
        }
        let client = builder
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
        let secrets = auth.secret_values();
        let mut secrets_all = secrets;
        for c in &provider.credentials {
            if c.secret {
                if let Some(s) = creds.get(&c.name) {
                    secrets_all.push(s.expose().to_string());
                }
            }
        }
        Ok(Driver {
            inner: Arc::new(Inner {
                provider: provider.clone(),
                id,
                auth,
                account: creds.public_fields(),
                secrets: std::sync::RwLock::new(secrets_all),
                opts,
                client,
                endpoint,
                renderer: Renderer::new(),
            }),
        })
    }

    /// The provider id.
    pub fn provider_id(&self) -> &str {
        &self.inner.id
    }

    /// The endpoint override in effect, if any.
    pub fn endpoint(&self) -> Option<&Url> {
        self.inner.endpoint.as_ref()
    }

    /// What to call the credentials in a hint (`token`, `credentials`).
    pub(crate) fn auth_noun(&self) -> String {
        match &self.inner.provider.api.auth {
            Auth::Bearer { field } | Auth::Header { field, .. } if !field.is_empty() => {
                field.replace('_', " ")
            }
            _ => "credentials".into(),
        }
    }

    /// The operation `name` for a variant (falling back to the main operations).
    pub(crate) fn op(&self, variant: &str, name: &str) -> Option<&Operation> {
        let api = &self.inner.provider.api;
        if !variant.is_empty() {
            if let Some(o) = api.variants.get(variant).and_then(|v| v.get(name)) {
                return Some(o);
            }
        }
        api.operations.get(name)
    }

    pub(crate) fn managed_tag(&self) -> String {
        let t = &self.inner.provider.api.tagging.managed_tag;
        if t.is_empty() {
            "capsule".into()
        } else {
            t.clone()
        }
    }

    /// Template context shared by every operation: `account`, `managed_tag`, `region`,
    /// `region_slug`.
    pub(crate) fn base_ctx(&self, region_slug: Option<&str>) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(
            "account".into(),
            serde_json::to_value(&self.inner.account).unwrap_or(Value::Null),
        );
        m.insert("managed_tag".into(), Value::String(self.managed_tag()));
        let (api_id, slug) = match region_slug.filter(|s| !s.is_empty()) {
            Some(s) => {
                let p = &self.inner.provider;
                let slug = p.region(s).map_or(s, |r| r.id.as_str());
                (p.region_api_id(s).to_string(), slug.to_string())
            }
            None => (String::new(), String::new()),
        };
        m.insert("region".into(), Value::String(api_id));
        m.insert("region_slug".into(), Value::String(slug));
        m
    }

    /// Read a node out of a node object.
    pub(crate) fn node_from(&self, v: &Value, variant: &str, region_slug: Option<&str>) -> Node {
        let p = &self.inner.provider;
        let f = &p.api.node;
        // Text from the server: no control character and no secret the answer carried reaches
        // a table, a log or the store.
        let secrets = self.inner.secrets();
        let field = |f: &crate::catalog::schema::Field| {
            tree::field(v, f).map(|t| crate::error::printable(&error::scrub(&t, &secrets)))
        };
        let raw = field(&f.status).unwrap_or_default();
        let state = if raw.is_empty() {
            NodeState::Unknown
        } else {
            tree::map_status(&p.api.status, &raw).map_or(NodeState::Unknown, NodeState::from)
        };
        let field_region = field(&f.region).map(|r| p.region_slug_for_api_id(&r).to_string());
        let ctx_region = region_slug
            .filter(|s| !s.is_empty())
            .map(|s| p.region(s).map_or(s, |r| r.id.as_str()).to_string());
        let region = if p.api.regional {
            ctx_region.or(field_region)
        } else {
            field_region.or(ctx_region)
        };
        Node {
            provider: self.inner.id.clone(),
            id: field(&f.id).unwrap_or_default(),
            name: field(&f.name).unwrap_or_default(),
            region: region.unwrap_or_default(),
            plan: field(&f.plan).unwrap_or_default(),
            state,
            raw_status: raw,
            ipv4: field(&f.ipv4),
            created_at: field(&f.created_at),
            tag: field(&f.deploy_id),
            variant: variant.to_string(),
        }
    }

    /// Polling interval: the option, else `api.limits.poll_seconds`, else 5 s.
    pub(crate) fn poll_interval(&self) -> Duration {
        if let Some(d) = self.inner.opts.poll_interval {
            return d;
        }
        let s = self.inner.provider.api.limits.poll_seconds;
        if s > 0.0 && s.is_finite() {
            Duration::from_secs_f64(s)
        } else {
            Duration::from_secs(5)
        }
    }
}

fn missing_field(provider: &ProviderEntry, field: &str) -> anyhow::Error {
    let id = provider.id();
    let cf = provider.credentials.iter().find(|c| c.name == field);
    let flag = match cf {
        Some(c) if c.api_key => "--api-key".to_string(),
        _ => format!("--{}", field.replace('_', "-")),
    };
    let noun = field.replace('_', " ");
    crate::error::bad_input_hint(
        format!("{id} has no {noun}"),
        crate::error::Hint::Configure {
            provider: id.to_string(),
            flag,
            env: cf.and_then(|c| c.env.first()).cloned(),
        },
    )
}

#[cfg(test)]
mod tests;
