//! Fake provider clouds for hermetic tests: one local HTTP server per test that answers like a
//! provider's published API (paths, auth headers, bodies, status values, pagination, errors, 429).
//!
//! This module owns what every provider shares: the server lifecycle ([`MockServer`]), the
//! configuration ([`MockConfig`]), the node store and its status stepping (one step per poll of a
//! node), the fault queue, the request log and call expectations. Each provider file
//! (`digitalocean.rs`, `vultr.rs`, …) only speaks its wire format through the [`Api`] trait.
//! Nothing here reaches the network beyond `127.0.0.1`.
//!
//! ```ignore
//! let mock = MockServer::start(Provider::DigitalOcean, MockConfig::default().with_page_size(3));
//! let mut cli = support::capsule().args(["openmesh", "list", "-o", "json"]);
//! for (k, v) in mock.env() {
//!     cli = cli.env(&k, v); // CAPSULE_ENDPOINT_DIGITALOCEAN + DIGITALOCEAN_TOKEN
//! }
//! cli.ok();
//! mock.assert_called(Op::List); // and at drop: every `expect(..)` met, no unmodelled path hit
//! ```

#![allow(dead_code)]

pub mod aws;
pub mod aws_pricing;
pub mod crypto;
pub mod digitalocean;
pub mod equinix;
pub mod hivelocity;
pub mod linode;
pub mod prices;
pub mod scaleway;
pub mod vultr;
mod wire;

pub use wire::{call, Reply};

use serde_json::{Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// The seven provider APIs the mock can impersonate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    DigitalOcean,
    Vultr,
    Linode,
    Aws,
    Equinix,
    Hivelocity,
    Scaleway,
}

impl Provider {
    pub const ALL: [Provider; 7] = [
        Provider::DigitalOcean,
        Provider::Vultr,
        Provider::Linode,
        Provider::Aws,
        Provider::Equinix,
        Provider::Hivelocity,
        Provider::Scaleway,
    ];

    /// The provider id capsule's catalog is expected to use.
    pub fn id(self) -> &'static str {
        match self {
            Provider::DigitalOcean => "digitalocean",
            Provider::Vultr => "vultr",
            Provider::Linode => "linode",
            Provider::Aws => "aws",
            Provider::Equinix => "equinix-metal",
            Provider::Hivelocity => "hivelocity",
            Provider::Scaleway => "scaleway",
        }
    }

    /// `CAPSULE_ENDPOINT_<ID>`: the variable that points capsule at a mock.
    pub fn endpoint_var(self) -> String {
        format!(
            "CAPSULE_ENDPOINT_{}",
            self.id().to_ascii_uppercase().replace('-', "_")
        )
    }

    fn api(self) -> &'static dyn Api {
        match self {
            Provider::DigitalOcean => &digitalocean::DigitalOcean,
            Provider::Vultr => &vultr::Vultr,
            Provider::Linode => &linode::Linode,
            Provider::Aws => &aws::Ec2,
            Provider::Equinix => &equinix::Equinix,
            Provider::Hivelocity => &hivelocity::Hivelocity,
            Provider::Scaleway => &scaleway::Scaleway,
        }
    }
}

/// An injected failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer 429 with the provider's throttle body and `Retry-After` (EC2: 503
    /// `RequestLimitExceeded`, as EC2 really throttles).
    Status429,
    /// Answer 500 with the provider's server-error body.
    Status500,
    /// Close the connection without answering.
    ConnectionReset,
    /// Only for a create: create the node, then sleep before answering (a client timeout after
    /// the server acted).
    DelayAfterCreate(Duration),
    /// Only for a create: create the node, then close the connection without answering.
    ResetAfterCreate,
    /// Only for a create: create the node, then answer 500.
    Status500AfterCreate,
}

impl Fault {
    fn after_create(&self) -> bool {
        matches!(
            self,
            Fault::DelayAfterCreate(_) | Fault::ResetAfterCreate | Fault::Status500AfterCreate
        )
    }
}

/// What a request did, in provider-neutral terms (for expectations and fault targeting).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Credential check: DO/Vultr `/v2/account`, Linode `/v4/profile`, EC2 `DescribeRegions`,
    /// Equinix `/user` + `/projects`, Hivelocity `/profile/`, Scaleway IAM api-key / projects.
    Verify,
    Create,
    List,
    Get,
    Start,
    Stop,
    Reboot,
    Delete,
    /// A follow-up poll that is not the node itself: DO `GET /v2/actions/{id}`, Hivelocity
    /// `GET /device/{id}/power`.
    Poll,
    /// A modelled request that is none of the above (e.g. a DO `rename` action).
    Other,
    /// Scaleway `…/user_data/{key}`.
    UserData,
    /// Listing or storing the account's SSH keys (DO `/v2/account/keys`).
    Key,
    /// A path or action the mock does not model (answered with the provider's 404 shape; fails
    /// the test at drop when `MockConfig::strict`).
    Unrouted,
}

/// How far the EC2 mock checks SigV4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigV4Check {
    /// Recompute the signature from the request and compare (default).
    Full,
    /// Only the header format, key id, scope (date, region, `ec2`, `aws4_request`) and that
    /// `host` and `x-amz-date` are signed.
    FormatOnly,
}

/// Everything a test can tune. Start from `MockConfig::default()` and chain `with_*`.
#[derive(Clone, Debug)]
pub struct MockConfig {
    /// The accepted API token (Bearer for DO/Vultr/Linode, `X-Auth-Token` for Scaleway (secret
    /// key) and Equinix, `X-API-KEY` for Hivelocity).
    pub token: String,
    /// AWS access key id (EC2) / Scaleway access key (`SCW…`, used by the IAM whoami path).
    pub access_key_id: String,
    /// AWS secret access key.
    pub secret_access_key: String,
    /// The one existing project: Equinix `project_id`, Scaleway `project`.
    pub project_id: String,
    /// Region reported in `env()` as `AWS_REGION` (the EC2 mock accepts any real region in the
    /// credential scope and keeps nodes per region).
    pub region: String,
    /// Server-side cap on page size: lists return at most this many items per page whatever the
    /// client asks (so a test forces ≥3 pages with a few nodes). `None` = the provider's rules.
    pub page_size: Option<usize>,
    /// Polls a node spends in each transitional state before the next one (default 2).
    pub pending_polls: u32,
    /// Every Nth request (counting all requests) is throttled.
    pub rate_limit_every: Option<u32>,
    /// Every Nth request answers 500.
    pub error_500_every: Option<u32>,
    /// Seconds sent in `Retry-After` with throttles (default 0).
    pub retry_after: u32,
    /// Faults for the next requests, in order (after-create faults wait for the next create).
    pub fail_next: Vec<Fault>,
    /// Sleep before answering each request (benchmarks).
    pub latency: Duration,
    pub sigv4: SigV4Check,
    /// Fail the test at drop when a request hit a path the mock does not model (default true).
    pub strict: bool,
    /// Put the provider's real host (`https://api.digitalocean.com`) in absolute URLs the API
    /// returns (next links, action hrefs) instead of this server's, to test endpoint rewriting.
    pub public_links: bool,
    /// Replace the provider's known plan ids (sizes, types, products) accepted at create.
    pub plans: Option<Vec<String>>,
    /// Hivelocity: a device is absent (GET 404, not listed) until provisioning finished, as on
    /// the real API (default true); `false` shows it with `powerStatus: "OFF"` instead.
    pub hide_provisioning: bool,
    /// Hivelocity: answer the inventory as the spec's `Inventory` map of `Stock` arrays keyed by
    /// facility even when `group_by=flat` asks for one array (default false: `flat` is an array,
    /// `facility`/`city` or no `group_by` a map, as documented).
    pub inventory_grouped: bool,
    /// Give every node this public IPv4 (e.g. `127.0.0.1`, where a fake xNode listens).
    pub public_ip: Option<String>,
    /// Creates the provider refuses as it documents: `(region, why)`, region `*` for every
    /// region (providers with a documented refusal answer only: EC2, Scaleway).
    pub refusals: Vec<(String, Refusal)>,
    /// Tokens of other accounts on the same API: each is accepted too, and owns the nodes and
    /// keys it creates — no account lists or finds another's.
    pub other_accounts: Vec<String>,
}

/// Why a mock refuses a create (the provider's own documented answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No capacity for the plan in that region.
    Capacity,
    /// The account's quota is used up.
    Quota,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            token: "test-token-0123456789abcdef".into(),
            access_key_id: "AKIAMOCKTEST00000001".into(),
            secret_access_key: "mockSecretKey/0123456789+abcdefghijklmnopq".into(),
            project_id: "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9".into(),
            region: "us-east-1".into(),
            page_size: None,
            pending_polls: 2,
            rate_limit_every: None,
            error_500_every: None,
            retry_after: 0,
            fail_next: Vec::new(),
            latency: Duration::ZERO,
            sigv4: SigV4Check::Full,
            strict: true,
            public_links: false,
            plans: None,
            hide_provisioning: true,
            inventory_grouped: false,
            public_ip: None,
            refusals: Vec::new(),
            other_accounts: Vec::new(),
        }
    }
}

impl MockConfig {
    pub fn with_token(mut self, token: &str) -> Self {
        self.token = token.into();
        self
    }
    pub fn with_grouped_inventory(mut self) -> Self {
        self.inventory_grouped = true;
        self
    }
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page_size = Some(n);
        self
    }
    pub fn with_pending_polls(mut self, n: u32) -> Self {
        self.pending_polls = n;
        self
    }
    pub fn with_rate_limit_every(mut self, n: u32) -> Self {
        self.rate_limit_every = Some(n);
        self
    }
    pub fn with_error_500_every(mut self, n: u32) -> Self {
        self.error_500_every = Some(n);
        self
    }
    pub fn with_retry_after(mut self, secs: u32) -> Self {
        self.retry_after = secs;
        self
    }
    pub fn with_faults(mut self, faults: impl IntoIterator<Item = Fault>) -> Self {
        self.fail_next.extend(faults);
        self
    }
    pub fn with_latency(mut self, d: Duration) -> Self {
        self.latency = d;
        self
    }
    pub fn with_sigv4(mut self, check: SigV4Check) -> Self {
        self.sigv4 = check;
        self
    }
    /// Another account on the API, with this token (see `other_accounts`).
    pub fn with_other_account(mut self, token: &str) -> Self {
        self.other_accounts.push(token.into());
        self
    }
    pub fn lenient(mut self) -> Self {
        self.strict = false;
        self
    }
    pub fn with_public_links(mut self) -> Self {
        self.public_links = true;
        self
    }
    pub fn with_public_ip(mut self, ip: &str) -> Self {
        self.public_ip = Some(ip.into());
        self
    }
    /// Creates in `region` are refused for want of capacity.
    pub fn with_full_region(mut self, region: &str) -> Self {
        self.refusals.push((region.into(), Refusal::Capacity));
        self
    }
    /// Every create is refused: the account's quota is used up.
    pub fn with_quota_exhausted(mut self) -> Self {
        self.refusals.push(("*".into(), Refusal::Quota));
        self
    }
    /// The refusal a create in `region` meets, if any.
    fn refusal_in(&self, region: &str) -> Option<Refusal> {
        self.refusals
            .iter()
            .find(|(r, _)| r == "*" || r == region)
            .map(|(_, why)| *why)
    }
    pub fn with_plans(mut self, plans: &[&str]) -> Self {
        self.plans = Some(plans.iter().map(|p| p.to_string()).collect());
        self
    }

    /// The page size to serve: what the client asked (or the provider default), capped by
    /// `page_size`.
    fn effective_page_size(&self, requested: Option<usize>, default: usize) -> usize {
        let asked = requested.unwrap_or(default).max(1);
        match self.page_size {
            Some(cap) => asked.min(cap.max(1)),
            None => asked,
        }
    }

    fn plan_known(&self, builtin: &[&str], plan: &str) -> bool {
        match &self.plans {
            Some(list) => list.iter().any(|p| p == plan),
            None => builtin.contains(&plan),
        }
    }
}

/// One request as the mock saw it (the log entry for assertions).
#[derive(Clone, Debug)]
pub struct Request {
    /// 1-based arrival number.
    pub seq: u64,
    pub op: Op,
    pub method: String,
    /// Path without the query, as sent (percent-encoded).
    pub path: String,
    pub raw_query: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status answered (0 = connection closed without answering).
    pub status: u16,
    /// The fault applied to this request, if any.
    pub fault: Option<Fault>,
}

impl Request {
    fn from_raw(raw: wire::RawRequest) -> Request {
        let (path, raw_query) = match raw.target.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (raw.target.clone(), String::new()),
        };
        let query = parse_form(&raw_query);
        Request {
            seq: 0,
            op: Op::Unrouted,
            method: raw.method,
            path,
            raw_query,
            query,
            headers: raw.headers,
            body: raw.body,
            status: 0,
            fault: None,
        }
    }

    /// A header value (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A decoded query parameter.
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (`Value::Null` when empty or not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as decoded `application/x-www-form-urlencoded` pairs (EC2).
    pub fn form(&self) -> Vec<(String, String)> {
        parse_form(&self.body_text())
    }

    /// A form parameter (EC2 `Action`, `InstanceId.1`, …).
    pub fn form_value(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Path segments after the leading `/`, percent-decoded.
    fn segments(&self) -> Vec<String> {
        self.path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(pct_decode)
            .collect()
    }

    fn parsed_json(&self) -> Result<Value, String> {
        if self.body.is_empty() {
            return Err("request body is empty".into());
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("request body is not valid JSON: {e}"))
    }
}

/// A server-side node (droplet, instance, linode, device, server).
#[derive(Clone, Debug)]
pub struct Node {
    pub id: String,
    pub name: String,
    pub plan: String,
    pub region: String,
    pub image: String,
    /// Tags/labels. EC2 tags are stored as `key=value`.
    pub tags: Vec<String>,
    /// The provider's own status value (DO `new|active|off`, Linode `provisioning|booting|…`,
    /// EC2 `pending|running|…`, Scaleway `stopped|starting|running|…`, Equinix
    /// `queued|provisioning|active|…`). Vultr: `pending|active|stopped` (stopped = active with
    /// power_status stopped). Hivelocity: `provisioning|ON|OFF`.
    pub status: String,
    /// Public IPv4, once assigned.
    pub ip: Option<String>,
    pub private_ip: Option<String>,
    pub created_at: String,
    pub user_data: Option<String>,
    /// Provider-specific fields kept from the create request (project, zone, os id, …).
    pub extra: Map<String, Value>,
    steps: VecDeque<String>,
    seen: u32,
}

impl Node {
    fn new(id: String, name: &str, plan: &str, region: &str, status: &str) -> Node {
        Node {
            id,
            name: name.into(),
            plan: plan.into(),
            region: region.into(),
            image: String::new(),
            tags: Vec::new(),
            status: status.into(),
            ip: None,
            private_ip: None,
            created_at: now_rfc3339(),
            user_data: None,
            extra: Map::new(),
            steps: VecDeque::new(),
            seen: 0,
        }
    }

    /// No transition in progress.
    pub fn is_settled(&self) -> bool {
        self.steps.is_empty()
    }

    /// The states still to come, in order.
    pub fn pending_steps(&self) -> Vec<String> {
        self.steps.iter().cloned().collect()
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// The value of a `key=value` tag (EC2 tags are stored that way).
    pub fn tag_value(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find_map(|t| t.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
    }

    /// The state this node is heading to (its status when settled).
    pub fn target(&self) -> &str {
        self.steps
            .back()
            .map(String::as_str)
            .unwrap_or(&self.status)
    }

    fn extra_str(&self, key: &str) -> &str {
        self.extra.get(key).and_then(Value::as_str).unwrap_or("")
    }

    /// Start a transition: the node keeps its status for `pending_polls` polls per step.
    fn go(&mut self, steps: &[&str]) {
        self.steps = steps.iter().map(|s| s.to_string()).collect();
        self.seen = 0;
    }
}

/// A node to pre-populate (`MockServer::add_node`). Unset fields take provider defaults; the
/// node starts settled in the provider's running state with a public IP unless `status` says
/// otherwise.
#[derive(Clone, Debug, Default)]
pub struct NodeSpec {
    pub name: String,
    pub plan: Option<String>,
    pub region: Option<String>,
    pub tags: Vec<String>,
    /// Provider status value to start in (e.g. `"off"`, `"stopped"`, `"inactive"`).
    pub status: Option<String>,
}

impl NodeSpec {
    pub fn named(name: &str) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            ..NodeSpec::default()
        }
    }
    pub fn tag(mut self, tag: &str) -> Self {
        self.tags.push(tag.into());
        self
    }
    pub fn status(mut self, status: &str) -> Self {
        self.status = Some(status.into());
        self
    }
    pub fn region(mut self, region: &str) -> Self {
        self.region = Some(region.into());
        self
    }
    pub fn plan(mut self, plan: &str) -> Self {
        self.plan = Some(plan.into());
        self
    }
}

/// A running mock provider API on `127.0.0.1:<random port>`. Stops on drop, and then fails the
/// test if an expectation was not met or (strict mode) an unmodelled path was called.
pub struct MockServer {
    shared: Arc<Shared>,
    url: String,
    expectations: Mutex<Vec<Expectation>>,
    listener: Option<wire::Listener>,
}

impl MockServer {
    /// Start a mock of `provider` on a background thread.
    pub fn start(provider: Provider, config: MockConfig) -> MockServer {
        let store = Store::new(&config);
        let shared = Arc::new(Shared {
            provider,
            cfg: config,
            store: Mutex::new(store),
        });
        let handler: wire::Handler = {
            let shared = shared.clone();
            Arc::new(move |raw| dispatch(&shared, raw))
        };
        let listener = wire::Listener::start(handler);
        let url = format!("http://{}", listener.addr());
        MockServer {
            shared,
            url,
            expectations: Mutex::new(Vec::new()),
            listener: Some(listener),
        }
    }

    /// A mock with the default configuration.
    pub fn new(provider: Provider) -> MockServer {
        MockServer::start(provider, MockConfig::default())
    }

    /// `http://127.0.0.1:PORT` — the value for `CAPSULE_ENDPOINT_<PROVIDER>`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn provider(&self) -> Provider {
        self.shared.provider
    }

    pub fn config(&self) -> &MockConfig {
        &self.shared.cfg
    }

    /// Environment for running capsule against this mock: the endpoint override(s) and the
    /// credential variables the provider's official tools read, set to the accepted values.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![(self.shared.provider.endpoint_var(), self.url.clone())];
        env.extend(self.shared.provider.api().credential_env(&self.shared.cfg));
        if self.shared.provider == Provider::Aws {
            env.push(("AWS_ENDPOINT_URL_EC2".into(), self.url.clone()));
        }
        env
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().log.clone()
    }

    /// Requests classified as `op`.
    pub fn requests_for(&self, op: Op) -> Vec<Request> {
        self.lock()
            .log
            .iter()
            .filter(|r| r.op == op)
            .cloned()
            .collect()
    }

    /// How many requests were classified as `op` (attempts, including rejected ones).
    pub fn count(&self, op: Op) -> usize {
        self.lock().log.iter().filter(|r| r.op == op).count()
    }

    /// How many nodes create calls actually created server-side.
    pub fn count_creates(&self) -> usize {
        self.lock().creates
    }

    /// Current server-side nodes, in creation order.
    /// EC2 security groups: (group id, name, ingress rules as `proto:from-to:cidr`).
    pub fn security_groups(&self) -> Vec<(String, String, Vec<String>)> {
        self.lock().security_groups.clone()
    }

    pub fn nodes(&self) -> Vec<Node> {
        self.lock().nodes.clone()
    }

    /// The SSH keys stored at the provider, in its JSON shape.
    pub fn keys(&self) -> Vec<Value> {
        self.lock().keys.clone()
    }

    pub fn node(&self, id: &str) -> Option<Node> {
        self.lock().nodes.iter().find(|n| n.id == id).cloned()
    }

    pub fn node_named(&self, name: &str) -> Option<Node> {
        self.lock().nodes.iter().find(|n| n.name == name).cloned()
    }

    /// Queue a fault for the next matching request (after-create faults wait for a create).
    pub fn set_fault(&self, fault: Fault) {
        self.lock().faults.push_back((None, fault));
    }

    /// Queue a fault for the next request classified as `op`.
    pub fn set_fault_on(&self, op: Op, fault: Fault) {
        self.lock().faults.push_back((Some(op), fault));
    }

    /// Change the periodic faults at run time (`None` turns them off).
    pub fn set_rate_limit_every(&self, n: Option<u32>) {
        self.lock().rate_limit_every = n;
    }
    pub fn set_error_500_every(&self, n: Option<u32>) {
        self.lock().error_500_every = n;
    }

    /// Pre-populate a node (settled, running unless `spec.status` says otherwise). Returns its id.
    pub fn add_node(&self, spec: NodeSpec) -> String {
        let mut store = self.lock();
        let node = self
            .shared
            .provider
            .api()
            .seed(&spec, &mut store, &self.shared.cfg);
        let id = node.id.clone();
        store.nodes.push(node);
        id
    }

    /// Run every pending transition to its end (as if polled enough).
    pub fn settle(&self) {
        let api = self.shared.provider.api();
        let mut store = self.lock();
        let ids: Vec<String> = store.nodes.iter().map(|n| n.id.clone()).collect();
        for id in ids {
            while store
                .nodes
                .iter()
                .any(|n| n.id == id && !n.steps.is_empty())
            {
                store.advance(&id, 0, api);
            }
        }
    }

    /// Forget the request log (nodes stay).
    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }

    /// Require at least one request classified as `op` before the server is dropped.
    pub fn expect(&self, op: Op) -> &Self {
        self.expectations()
            .push(Expectation::Op { op, times: None });
        self
    }

    /// Require exactly `times` requests classified as `op` by drop time.
    pub fn expect_times(&self, op: Op, times: usize) -> &Self {
        self.expectations().push(Expectation::Op {
            op,
            times: Some(times),
        });
        self
    }

    /// Require a request with this method and a path matching `glob` (`*` = one segment's
    /// characters, `**` = anything).
    pub fn expect_request(&self, method: &str, glob: &str) -> &Self {
        self.expectations().push(Expectation::Path {
            method: method.into(),
            glob: glob.into(),
        });
        self
    }

    /// Panic now unless a request classified as `op` arrived.
    #[track_caller]
    pub fn assert_called(&self, op: Op) {
        if self.count(op) == 0 {
            panic!(
                "{:?} mock: expected a {op:?} request, got none.\n{}",
                self.provider(),
                self.log_summary()
            );
        }
    }

    /// Panic now if a request classified as `op` arrived.
    #[track_caller]
    pub fn assert_not_called(&self, op: Op) {
        if self.count(op) != 0 {
            panic!(
                "{:?} mock: expected no {op:?} request.\n{}",
                self.provider(),
                self.log_summary()
            );
        }
    }

    /// Check expectations and strictness now (also done at drop).
    #[track_caller]
    pub fn verify(&self) {
        if let Some(problems) = self.problems() {
            panic!("{problems}");
        }
    }

    /// One line per request: `#seq METHOD path?query -> status (op)`.
    pub fn log_summary(&self) -> String {
        let log = self.lock().log.clone();
        if log.is_empty() {
            return "  (no requests)".into();
        }
        log.iter()
            .map(|r| {
                let q = if r.raw_query.is_empty() {
                    String::new()
                } else {
                    format!("?{}", r.raw_query)
                };
                let action = r
                    .form_value("Action")
                    .map(|a| format!(" Action={a}"))
                    .unwrap_or_default();
                let fault = r
                    .fault
                    .as_ref()
                    .map(|f| format!(" [fault {f:?}]"))
                    .unwrap_or_default();
                format!(
                    "  #{} {} {}{}{} -> {} ({:?}){}",
                    r.seq, r.method, r.path, q, action, r.status, r.op, fault
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn problems(&self) -> Option<String> {
        let log = self.lock().log.clone();
        let mut problems = Vec::new();
        for e in self.expectations().iter() {
            match e {
                Expectation::Op { op, times } => {
                    let n = log.iter().filter(|r| r.op == *op).count();
                    match times {
                        None if n == 0 => {
                            problems.push(format!("expected a {op:?} request, got none"))
                        }
                        Some(t) if n != *t => {
                            problems.push(format!("expected {t} {op:?} request(s), got {n}"))
                        }
                        _ => {}
                    }
                }
                Expectation::Path { method, glob } => {
                    if !log
                        .iter()
                        .any(|r| r.method.eq_ignore_ascii_case(method) && glob_match(glob, &r.path))
                    {
                        problems.push(format!("expected {method} {glob}, never called"));
                    }
                }
            }
        }
        if self.shared.cfg.strict {
            for r in log.iter().filter(|r| r.op == Op::Unrouted) {
                problems.push(format!(
                    "unmodelled request {} {}{} (use MockConfig::lenient() if intended)",
                    r.method,
                    r.path,
                    if r.raw_query.is_empty() {
                        String::new()
                    } else {
                        format!("?{}", r.raw_query)
                    }
                ));
            }
        }
        if problems.is_empty() {
            None
        } else {
            Some(format!(
                "{:?} mock at {}: {}\nrequests:\n{}",
                self.provider(),
                self.url,
                problems.join("; "),
                self.log_summary()
            ))
        }
    }

    fn lock(&self) -> MutexGuard<'_, Store> {
        self.shared.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn expectations(&self) -> MutexGuard<'_, Vec<Expectation>> {
        self.expectations.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        drop(self.listener.take());
        if std::thread::panicking() {
            return;
        }
        if let Some(problems) = self.problems() {
            panic!("{problems}");
        }
    }
}

enum Expectation {
    Op { op: Op, times: Option<usize> },
    Path { method: String, glob: String },
}

// ---------------------------------------------------------------------------------------------
// Shared machinery for the provider files
// ---------------------------------------------------------------------------------------------

/// One provider's wire format.
trait Api: Send + Sync {
    /// Classify a request (before auth), for the log, expectations and fault targeting.
    fn classify(&self, req: &Request) -> Op;
    /// Check the credential; `Err` is the provider's rejection.
    fn authorize(&self, req: &Request, cfg: &MockConfig) -> Result<(), Resp>;
    /// Answer an authorised request.
    fn handle(&self, req: &Request, op: Op, cx: &mut Cx) -> Resp;
    /// The provider's throttle answer.
    fn throttled(&self, cfg: &MockConfig) -> Resp;
    /// The provider's 500 answer.
    fn server_error(&self) -> Resp;
    /// React to a node entering `state` (assign or drop addresses). Default: a public and a
    /// private IPv4 when the node enters the provider's running state.
    fn entered(&self, node: &mut Node, state: &str, ips: &mut IpPool) {
        if state == self.running_state() && node.ip.is_none() {
            node.ip = Some(ips.public());
            node.private_ip.get_or_insert_with(|| ips.private());
        }
    }
    /// The status value that means "running".
    fn running_state(&self) -> &'static str;
    /// Build a settled node for `MockServer::add_node`.
    fn seed(&self, spec: &NodeSpec, store: &mut Store, cfg: &MockConfig) -> Node;
    /// Credential variables for capsule.
    fn credential_env(&self, cfg: &MockConfig) -> Vec<(String, String)>;
    /// Headers added to every answer (rate-limit counters).
    fn common_headers(&self, _store: &Store) -> Vec<(String, String)> {
        Vec::new()
    }
    /// The provider's real API origin, for `MockConfig::public_links`.
    fn public_origin(&self) -> &'static str;
}

struct Shared {
    provider: Provider,
    cfg: MockConfig,
    store: Mutex<Store>,
}

/// Server-side state behind the mutex.
struct Store {
    /// EC2 security groups: (group id, name, ingress rules as `proto:from-to:cidr`).
    security_groups: Vec<(String, String, Vec<String>)>,
    nodes: Vec<Node>,
    seq: u64,
    ips: IpPool,
    creates: usize,
    actions: Vec<Action>,
    log: Vec<Request>,
    faults: VecDeque<(Option<Op>, Fault)>,
    counter: u64,
    rate_limit_every: Option<u32>,
    error_500_every: Option<u32>,
    pending_polls: u32,
    /// SSH keys stored at the provider (account keys), in the provider's own JSON shape.
    keys: Vec<Value>,
    /// The nodes and keys of the other accounts (`MockConfig::other_accounts`), by token; swapped
    /// into `nodes` and `keys` while one of their requests is answered.
    other: BTreeMap<String, (Vec<Node>, Vec<Value>)>,
}

/// A provider-side asynchronous action (DO action objects, Scaleway tasks).
#[derive(Clone, Debug)]
struct Action {
    id: u64,
    node_id: String,
    kind: String,
    /// The node status that completes the action (`None` = complete when the node is gone).
    target: Option<String>,
    started_at: String,
    completed_at: Option<String>,
    region: String,
}

/// Deterministic address allocation: public from TEST-NET-3/2, private from 10.0.0.0/16.
struct IpPool {
    public: u32,
    private: u32,
    fixed: Option<String>,
}

impl IpPool {
    fn public(&mut self) -> String {
        if let Some(ip) = &self.fixed {
            return ip.clone();
        }
        let n = self.public;
        self.public += 1;
        let nets = ["203.0.113", "198.51.100", "192.0.2"];
        format!("{}.{}", nets[(n / 240) as usize % 3], 10 + n % 240)
    }
    fn private(&mut self) -> String {
        let n = self.private;
        self.private += 1;
        format!("10.0.{}.{}", n / 250, 2 + n % 250)
    }
}

impl Store {
    fn new(cfg: &MockConfig) -> Store {
        Store {
            security_groups: Vec::new(),
            nodes: Vec::new(),
            seq: 0,
            ips: IpPool {
                public: 0,
                private: 0,
                fixed: cfg.public_ip.clone(),
            },
            creates: 0,
            actions: Vec::new(),
            log: Vec::new(),
            faults: cfg.fail_next.iter().cloned().map(|f| (None, f)).collect(),
            counter: 0,
            rate_limit_every: cfg.rate_limit_every,
            error_500_every: cfg.error_500_every,
            pending_polls: cfg.pending_polls,
            keys: Vec::new(),
            other: BTreeMap::new(),
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    fn node_mut(&mut self, id: &str) -> Option<&mut Node> {
        self.nodes.iter_mut().find(|n| n.id == id)
    }

    fn name_taken(&self, name: &str) -> bool {
        self.nodes.iter().any(|n| n.name == name)
    }

    /// Add a created node (counts as a create).
    fn create(&mut self, node: Node) {
        self.creates += 1;
        self.nodes.push(node);
    }

    /// A GET poll of node `id`: advance its transition by one poll. Returns the node as it is
    /// after the poll, or `None` when it does not exist (any more).
    fn poll(&mut self, id: &str, api: &dyn Api) -> Option<Node> {
        let polls = self.pending_polls;
        self.advance(id, polls, api);
        self.node(id).cloned()
    }

    fn advance(&mut self, id: &str, polls: u32, api: &dyn Api) {
        let Some(idx) = self.nodes.iter().position(|n| n.id == id) else {
            return;
        };
        let node = &mut self.nodes[idx];
        if node.steps.is_empty() {
            return;
        }
        if node.seen < polls {
            node.seen += 1;
            return;
        }
        node.seen = 0;
        let next = node.steps.pop_front().expect("a step");
        if next == GONE {
            self.nodes.remove(idx);
            return;
        }
        node.status = next.clone();
        api.entered(node, &next, &mut self.ips);
        let status = node.status.clone();
        let settled = node.steps.is_empty();
        let now = now_rfc3339();
        for a in self
            .actions
            .iter_mut()
            .filter(|a| a.node_id == id && a.completed_at.is_none())
        {
            if settled && a.target.as_deref() == Some(status.as_str()) {
                a.completed_at = Some(now.clone());
            }
        }
    }

    /// Record an action on a node.
    fn add_action(
        &mut self,
        node_id: &str,
        kind: &str,
        target: Option<&str>,
        region: &str,
    ) -> Action {
        let id = 36_000_000 + self.next_seq();
        let action = Action {
            id,
            node_id: node_id.into(),
            kind: kind.into(),
            target: target.map(str::to_string),
            started_at: now_rfc3339(),
            completed_at: None,
            region: region.into(),
        };
        self.actions.push(action.clone());
        action
    }

    /// Pick the fault for request number `n` classified `op`.
    fn take_fault(&mut self, op: Op, n: u64) -> Option<Fault> {
        let pos = self.faults.iter().position(|(target, f)| {
            if f.after_create() {
                op == Op::Create
            } else {
                target.is_none_or(|t| t == op)
            }
        });
        if let Some(pos) = pos {
            return self.faults.remove(pos).map(|(_, f)| f);
        }
        if self
            .rate_limit_every
            .is_some_and(|every| every > 0 && n.is_multiple_of(u64::from(every)))
        {
            return Some(Fault::Status429);
        }
        if self
            .error_500_every
            .is_some_and(|every| every > 0 && n.is_multiple_of(u64::from(every)))
        {
            return Some(Fault::Status500);
        }
        None
    }
}

/// Marker step: the node disappears (GET → 404).
const GONE: &str = "<gone>";

/// Per-request context handed to a provider.
struct Cx<'a> {
    store: &'a mut Store,
    cfg: &'a MockConfig,
    /// Origin for absolute URLs in answers: `http://<Host header>` or the real API origin.
    origin: String,
    api: &'a dyn Api,
}

impl Cx<'_> {
    fn poll(&mut self, id: &str) -> Option<Node> {
        self.store.poll(id, self.api)
    }
}

/// A response under construction.
#[derive(Clone, Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn json(status: u16, body: Value) -> Resp {
        Resp {
            status,
            headers: vec![(
                "Content-Type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: serde_json::to_vec(&body).expect("json"),
        }
    }
    fn empty(status: u16) -> Resp {
        Resp {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
    fn xml(status: u16, body: String) -> Resp {
        Resp {
            status,
            headers: vec![("Content-Type".into(), "text/xml;charset=UTF-8".into())],
            body: body.into_bytes(),
        }
    }
    fn text(status: u16, body: &str) -> Resp {
        Resp {
            status,
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: body.as_bytes().to_vec(),
        }
    }
    fn header(mut self, k: &str, v: impl Into<String>) -> Resp {
        self.headers.push((k.into(), v.into()));
        self
    }
}

/// Authorise a request for the main account (`Ok(None)`) or one of the others (`Ok(Some(cfg))`,
/// the config with that account's token).
fn authorize_account(
    api: &dyn Api,
    req: &Request,
    cfg: &MockConfig,
) -> Result<Option<MockConfig>, Resp> {
    let main = match api.authorize(req, cfg) {
        Ok(()) => return Ok(None),
        Err(r) => r,
    };
    for token in &cfg.other_accounts {
        let other = MockConfig {
            token: token.clone(),
            ..cfg.clone()
        };
        if api.authorize(req, &other).is_ok() {
            return Ok(Some(other));
        }
    }
    Err(main)
}

/// Exchange the main account's nodes and keys with those of the account `token` (twice: back).
fn swap_account(st: &mut Store, token: &str) {
    let st = &mut *st;
    let (nodes, keys) = st.other.entry(token.to_string()).or_default();
    std::mem::swap(&mut st.nodes, nodes);
    std::mem::swap(&mut st.keys, keys);
}

fn dispatch(shared: &Shared, raw: wire::RawRequest) -> wire::Outcome {
    let api = shared.provider.api();
    let cfg = &shared.cfg;
    let mut req = Request::from_raw(raw);
    let op = api.classify(&req);
    req.op = op;
    let (idx, fault) = {
        let mut st = shared.store.lock().unwrap_or_else(|e| e.into_inner());
        st.counter += 1;
        req.seq = st.counter;
        let fault = st.take_fault(op, req.seq);
        let mut logged = req.clone();
        logged.fault = fault.clone();
        st.log.push(logged);
        (st.log.len() - 1, fault)
    };
    if !cfg.latency.is_zero() {
        std::thread::sleep(cfg.latency);
    }
    let early = match &fault {
        Some(Fault::Status429) => Some(api.throttled(cfg)),
        Some(Fault::Status500) => Some(api.server_error()),
        Some(Fault::ConnectionReset) => None,
        _ => None,
    };
    let mut st = shared.store.lock().unwrap_or_else(|e| e.into_inner());
    let set_status = |st: &mut Store, status: u16| {
        if let Some(r) = st.log.get_mut(idx) {
            r.status = status;
        }
    };
    if fault == Some(Fault::ConnectionReset) {
        return wire::Outcome::Reset;
    }
    let resp = match early {
        Some(r) => r,
        None => match authorize_account(api, &req, cfg) {
            Err(r) => r,
            Ok(other) => {
                let origin = if cfg.public_links {
                    api.public_origin().to_string()
                } else {
                    format!("http://{}", req.header("host").unwrap_or("127.0.0.1"))
                };
                let owner = other.as_ref().map(|c| c.token.clone());
                if let Some(t) = &owner {
                    swap_account(&mut st, t);
                }
                let mut cx = Cx {
                    store: &mut st,
                    cfg: other.as_ref().unwrap_or(cfg),
                    origin,
                    api,
                };
                let resp = api.handle(&req, op, &mut cx);
                if let Some(t) = &owner {
                    swap_account(&mut st, t);
                }
                resp
            }
        },
    };
    let (resp, outcome_delay, reset) = match &fault {
        Some(Fault::DelayAfterCreate(d)) => (resp, Some(*d), false),
        Some(Fault::ResetAfterCreate) => (resp, None, true),
        Some(Fault::Status500AfterCreate) => (api.server_error(), None, false),
        _ => (resp, None, false),
    };
    if reset {
        set_status(&mut st, 0);
        return wire::Outcome::Reset;
    }
    set_status(&mut st, resp.status);
    let mut headers = api.common_headers(&st);
    drop(st);
    // An answer's own header (a throttle's reset) replaces the common one of the same name.
    headers.retain(|(k, _)| {
        !resp
            .headers
            .iter()
            .any(|(rk, _)| rk.eq_ignore_ascii_case(k))
    });
    headers.extend(resp.headers);
    let raw = wire::RawResponse {
        status: resp.status,
        headers,
        body: resp.body,
    };
    match outcome_delay {
        Some(d) => wire::Outcome::RespondAfter(d, raw),
        None => wire::Outcome::Respond(raw),
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers shared by the provider files
// ---------------------------------------------------------------------------------------------

/// Decode `a=1&b=x%20y` (also `+` as space).
fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                pct_decode(&k.replace('+', " ")),
                pct_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

fn pct_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Percent-encode everything but RFC 3986 unreserved characters.
fn pct_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Encode pairs as a query string.
fn query_string(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", pct_encode(k), pct_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `*` matches within one path segment, `**` matches anything.
fn glob_match(glob: &str, text: &str) -> bool {
    fn go(g: &[u8], t: &[u8]) -> bool {
        match g.first() {
            None => t.is_empty(),
            Some(b'*') if g.get(1) == Some(&b'*') => (0..=t.len()).any(|i| go(&g[2..], &t[i..])),
            Some(b'*') => {
                let mut i = 0;
                loop {
                    if go(&g[1..], &t[i..]) {
                        return true;
                    }
                    if i >= t.len() || t[i] == b'/' {
                        return false;
                    }
                    i += 1;
                }
            }
            Some(c) => t.first() == Some(c) && go(&g[1..], &t[1..]),
        }
    }
    go(glob.as_bytes(), text.as_bytes())
}

/// A deterministic UUID-shaped id.
fn uuid(salt: u32, seq: u64) -> String {
    format!(
        "{salt:08x}-{:04x}-4{:03x}-8{:03x}-{seq:012x}",
        (seq >> 16) & 0xffff,
        seq & 0xfff,
        (seq >> 4) & 0xfff
    )
}

fn now() -> time::OffsetDateTime {
    let t = time::OffsetDateTime::now_utc();
    t.replace_nanosecond(0).unwrap_or(t)
}

/// `2026-01-02T03:04:05Z`
fn now_rfc3339() -> String {
    let t = now();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Problems found by [`check_fields`].
#[derive(Debug)]
struct FieldError {
    field: String,
    problem: String,
}

impl FieldError {
    fn new(field: &str, problem: &str) -> FieldError {
        FieldError {
            field: field.into(),
            problem: problem.into(),
        }
    }
    fn message(&self) -> String {
        format!("{} {}", self.field, self.problem)
    }
}

/// JSON types a field may have.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Str,
    Int,
    Bool,
    Obj,
    StrList,
    StrOrInt,
    StrOrIntList,
}

impl Kind {
    fn accepts(self, v: &Value) -> bool {
        let int = |v: &Value| v.as_i64().is_some() || v.as_u64().is_some();
        match self {
            Kind::Str => v.is_string(),
            Kind::Int => int(v),
            Kind::Bool => v.is_boolean(),
            Kind::Obj => v.is_object(),
            Kind::StrList => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            Kind::StrOrInt => v.is_string() || int(v),
            Kind::StrOrIntList => v
                .as_array()
                .is_some_and(|a| a.iter().all(|x| x.is_string() || int(x))),
        }
    }
    fn describe(self) -> &'static str {
        match self {
            Kind::Str => "must be a string",
            Kind::Int => "must be an integer",
            Kind::Bool => "must be a boolean",
            Kind::Obj => "must be an object",
            Kind::StrList => "must be an array of strings",
            Kind::StrOrInt => "must be a string or an integer",
            Kind::StrOrIntList => "must be an array of strings or integers",
        }
    }
}

/// Check a JSON object body: `required` fields present (non-null) with the right type,
/// `optional` fields of the right type when present and not null.
fn check_fields(
    body: &Value,
    required: &[(&str, Kind)],
    optional: &[(&str, Kind)],
) -> Result<(), FieldError> {
    let Some(obj) = body.as_object() else {
        return Err(FieldError::new("body", "must be a JSON object"));
    };
    for (name, kind) in required {
        match obj.get(*name) {
            None | Some(Value::Null) => return Err(FieldError::new(name, "is required")),
            Some(v) if !kind.accepts(v) => return Err(FieldError::new(name, kind.describe())),
            _ => {}
        }
    }
    for (name, kind) in optional {
        if let Some(v) = obj.get(*name) {
            if !v.is_null() && !kind.accepts(v) {
                return Err(FieldError::new(name, kind.describe()));
            }
        }
    }
    Ok(())
}

fn str_field<'a>(body: &'a Value, name: &str) -> &'a str {
    body.get(name).and_then(Value::as_str).unwrap_or("")
}

fn str_list(body: &Value, name: &str) -> Vec<String> {
    body.get(name)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn is_base64(s: &str) -> bool {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .is_ok()
}

/// Slice `items` to 1-based `page` of `size`; returns the page and the page count (≥ 1).
fn paginate<T: Clone>(items: &[T], page: usize, size: usize) -> (Vec<T>, usize) {
    let size = size.max(1);
    let pages = items.len().div_ceil(size).max(1);
    let start = (page.max(1) - 1).saturating_mul(size);
    let slice = items.iter().skip(start).take(size).cloned().collect();
    (slice, pages)
}

/// Bearer token from `Authorization`.
fn bearer(req: &Request) -> Option<&str> {
    let v = req.header("authorization")?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Parse a positive integer query parameter; `Err` with a message when present but invalid.
fn int_param(req: &Request, name: &str) -> Result<Option<usize>, String> {
    match req.q(name) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<usize>()
            .map(Some)
            .map_err(|_| format!("{name} must be a positive integer, got '{v}'")),
    }
}
