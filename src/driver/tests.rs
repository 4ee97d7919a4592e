//! Driver tests against a local HTTP server (tiny_http on 127.0.0.1), with small generic
//! catalogs written inline: a JSON/bearer API and an XML/form/sigv4 regional API.

use super::*;
use crate::catalog::schema::FileDoc;
use crate::secret::Secret;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

const TOKEN: &str = "tok-very-secret-123456";

#[derive(Clone, Debug)]
struct Seen {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Reply = (u16, Vec<(&'static str, String)>, String);

struct Mock {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Mock {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn mock(handler: impl Fn(&Seen, usize) -> Reply + Send + 'static) -> Mock {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let count = AtomicUsize::new(0);
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            let s = Seen {
                method: req.method().to_string(),
                url: req.url().to_string(),
                headers: req
                    .headers()
                    .iter()
                    .map(|h| (h.field.to_string(), h.value.to_string()))
                    .collect(),
                body,
            };
            log.lock().unwrap().push(s.clone());
            let (status, headers, body) = handler(&s, count.fetch_add(1, Ordering::SeqCst));
            let mut resp = tiny_http::Response::from_string(body).with_status_code(status);
            for (k, v) in headers {
                resp.add_header(tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap());
            }
            let _ = req.respond(resp);
        }
    });
    Mock {
        url: format!("http://127.0.0.1:{port}"),
        seen,
    }
}

fn json(status: u16, body: serde_json::Value) -> Reply {
    (
        status,
        vec![("Content-Type", "application/json".into())],
        body.to_string(),
    )
}

const JSON_API: &str = r#"
[provider]
id = "@ID@"
name = "Acme"
default_region = "nyc3"
default_image = "ubuntu-24-04"

[[credentials]]
name = "token"
secret = true
required = true
api_key = true
env = ["ACME_TOKEN"]

[[credentials]]
name = "project_id"

[[regions]]
id = "nyc3"

[[regions]]
id = "ams3"
api_id = "AMS-3"

[api]
base_url = "https://api.acme.invalid"

[api.auth]
scheme = "bearer"
field = "token"

[api.errors]
message = ["/message"]
code = ["/id"]
throttle_codes = ["slow_down"]

[[api.errors.refusals]]
reason = "capacity"
codes = ["sold_out"]

[[api.errors.refusals]]
reason = "quota"
status = [403]
message_contains = ["limit reached"]

[api.status]
pending = ["new"]
running = ["active"]
stopped = ["off"]

[api.node]
id = "/id"
name = "/name"
status = "/status"
ipv4 = { list = "/networks/v4", where = { "/type" = "public" }, value = "/ip_address" }
plan = "/size_slug"
region = "/region/slug"
deploy_id = { list = "/tags", where = { "" = "~capsule-" }, value = "" }

[api.tagging]
server_side_filter = true

[api.limits]
poll_seconds = 0.01

[api.operations.verify]
method = "GET"
path = "/v2/account"

[api.operations.create]
method = "POST"
path = "/v2/droplets"
body = '''{"name": {{ name }}, "region": {{ region }}, "size": {{ plan }}, "image": {{ image }},
  "ssh_keys": {{ ssh_keys }}, "project": {{ account.project_id }},
  {% if user_data %}"user_data": {{ user_data }},{% endif %} "tags": {{ [managed_tag, tag] }}}'''
expect = [202]
node = "/droplet"

[api.operations.list]
method = "GET"
path = "/v2/droplets"
query = { tag_name = "{{ tag or list_tag }}" }
node = "/droplets"
paging = { style = "next_link", size_param = "per_page", size = 2, next = "/links/pages/next" }

[api.operations.get]
method = "GET"
path = "/v2/droplets/{{ id }}"
node = "/droplet"

[api.operations.start]
method = "POST"
path = "/v2/droplets/{{ id }}/actions"
body = '{"type": "power_on"}'
expect = [201]
action = { id = "/action/id", operation = "action", status = "/action/status", done = ["completed"], failed = ["errored"] }

[api.operations.stop]
method = "POST"
path = "/v2/droplets/{{ id }}/actions"
body = '{"type": {{ power }}}'
expect = [201]

[api.operations.delete]
method = "DELETE"
path = "/v2/droplets/{{ id }}"
expect = [204]
before = [{ operation = "stop", vars = { power = "power_off" }, unless = ["stopped"], wait_for = "stopped" }]

[api.operations.action]
method = "GET"
path = "/v2/actions/{{ action_id }}"
"#;

fn provider(src: &str, id: &str) -> ProviderEntry {
    let doc: FileDoc = toml::from_str(&src.replace("@ID@", id)).unwrap();
    ProviderEntry {
        meta: doc.provider.unwrap(),
        regions: doc.regions,
        credentials: doc.credentials,
        api: doc.api.unwrap(),
    }
}

fn creds() -> Credentials {
    let mut c = Credentials::new();
    c.set("token", Secret::new(TOKEN), true);
    c.set("project_id", Secret::new("proj-1"), false);
    c
}

fn opts() -> DriverOptions {
    DriverOptions {
        max_attempts: 3,
        backoff_base: Duration::from_millis(1),
        poll_interval: Some(Duration::from_millis(5)),
        ..DriverOptions::default()
    }
}

/// A driver for provider `id` pointed at `mock` through `CAPSULE_ENDPOINT_<ID>`.
fn driver_at(src: &str, id: &str, m: &Mock) -> Driver {
    std::env::set_var(endpoint_env_name(id), &m.url);
    Driver::new(&provider(src, id), creds(), opts()).unwrap()
}

fn droplet(id: u64, status: &str, tag: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id, "name": format!("n{id}"), "status": status, "size_slug": "s-1",
        "region": {"slug": "nyc3"},
        "networks": {"v4": [{"type": "private", "ip_address": "10.0.0.1"}, {"type": "public", "ip_address": "203.0.113.9"}]},
        "tags": ["capsule", tag]
    })
}

fn request(name: &str) -> CreateRequest {
    CreateRequest {
        name: name.into(),
        region: "ams3".into(),
        plan: "s-1".into(),
        template: "acme-small".into(),
        image: None,
        ssh_keys: vec!["k1".into()],
        user_data: Some("#cloud-config\n".into()),
        deploy_id: "d1".into(),
        api_variant: String::new(),
        vars: Default::default(),
    }
}

#[test]
fn missing_token_is_bad_input_naming_flag_and_env() {
    let err = Driver::new(
        &provider(JSON_API, "acme-missing"),
        Credentials::new(),
        opts(),
    )
    .unwrap_err();
    assert_eq!(crate::error::exit_code(&err), 2);
    assert_eq!(
        err.to_string(),
        "acme-missing has no token — run `capsule openmesh provider configure acme-missing --api-key …` or set ACME_TOKEN"
    );
}

#[test]
fn endpoint_override_rules() {
    assert!(parse_endpoint("X", "http://127.0.0.1:4010").is_ok());
    assert!(parse_endpoint("X", "http://localhost:1").is_ok());
    assert!(parse_endpoint("X", "https://mock.example.com").is_ok());
    let e = parse_endpoint("X", "http://mock.example.com").unwrap_err();
    assert_eq!(crate::error::exit_code(&e), 2);
    assert!(e.to_string().contains("plain http"), "{e}");
    assert!(parse_endpoint("X", "ftp://127.0.0.1").is_err());
    assert!(parse_endpoint("X", "not a url").is_err());

    let id = "acme-env-refuse";
    std::env::set_var(endpoint_env_name(id), "http://10.1.2.3:80");
    let err = Driver::new(&provider(JSON_API, id), creds(), opts()).unwrap_err();
    assert_eq!(crate::error::exit_code(&err), 2);
    assert_eq!(endpoint_env_name("my-cloud"), "CAPSULE_ENDPOINT_MY_CLOUD");
}

#[test]
fn dry_run_escapes_hostile_name_and_redacts_auth() {
    let id = "acme-dry";
    std::env::set_var(endpoint_env_name(id), "http://127.0.0.1:9");
    let d = Driver::new(&provider(JSON_API, id), creds(), opts()).unwrap();
    let reqs = d.render_create(&request("a\",\"size\":\"x")).unwrap();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.url, "http://127.0.0.1:9/v2/droplets");
    let body: serde_json::Value = serde_json::from_str(r.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["name"], "a\",\"size\":\"x");
    assert_eq!(body["size"], "s-1");
    assert_eq!(body["region"], "AMS-3");
    assert_eq!(body["image"], "ubuntu-24-04");
    assert_eq!(body["project"], "proj-1");
    assert_eq!(body["user_data"], "#cloud-config\n");
    assert_eq!(body["tags"], serde_json::json!(["capsule", "capsule-d1"]));
    assert!(r
        .headers
        .contains(&("Authorization".into(), "(redacted)".into())));
    let all = serde_json::to_string(&reqs).unwrap();
    assert!(!all.contains(TOKEN));
}

#[tokio::test]
async fn documented_refusals_are_classified_and_a_5xx_one_is_settled_by_the_lookup_first() {
    let m = mock(|s, _| match (s.method.as_str(), s.url.as_str()) {
        ("POST", "/v2/droplets") if s.body.contains("\"full\"") => json(
            422,
            serde_json::json!({"id": "sold_out", "message": "No capacity here."}),
        ),
        ("POST", "/v2/droplets") if s.body.contains("\"busy\"") => json(
            503,
            serde_json::json!({"id": "sold_out", "message": "No capacity here."}),
        ),
        ("POST", "/v2/droplets") if s.body.contains("\"quota\"") => json(
            403,
            serde_json::json!({"id": "forbidden", "message": "Droplet limit reached."}),
        ),
        ("POST", "/v2/droplets") => json(
            422,
            serde_json::json!({"id": "unprocessable_entity", "message": "Bad size."}),
        ),
        ("GET", u) if u.starts_with("/v2/droplets?") => {
            json(200, serde_json::json!({"droplets": [], "links": {}}))
        }
        _ => json(
            404,
            serde_json::json!({"id": "not_found", "message": "nope"}),
        ),
    });
    let d = driver_at(JSON_API, "acme-refusals", &m);
    let full = d.create(&request("full")).await;
    assert_eq!(full.refusal(), Some(Refusal::Capacity));
    // A 5xx is in doubt until the lookup by tag found nothing; then it is the refusal it names.
    let busy = d.create(&request("busy")).await;
    assert!(matches!(busy, CreateOutcome::Rejected(_)), "{busy:?}");
    assert_eq!(busy.refusal(), Some(Refusal::Capacity));
    let sent: Vec<String> = m.seen().iter().map(|s| s.method.clone()).collect();
    assert_eq!(
        sent,
        ["POST", "POST", "GET"],
        "one lookup, no second create"
    );
    let quota = d.create(&request("quota")).await;
    assert_eq!(quota.refusal(), Some(Refusal::Quota));
    let e = quota.unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Api,
        "a quota is not a credentials problem"
    );
    assert!(e.hint.is_none(), "{e}");
    let other = d.create(&request("other")).await;
    assert!(matches!(other, CreateOutcome::Rejected(_)));
    assert_eq!(other.refusal(), None);
}

#[tokio::test]
async fn create_list_get_delete_against_a_local_server() {
    let m = mock(|s, _| {
        assert_eq!(
            s.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        match (s.method.as_str(), s.url.as_str()) {
            ("POST", "/v2/droplets") => json(
                202,
                serde_json::json!({"droplet": droplet(7, "new", "capsule-d1")}),
            ),
            ("GET", u) if u.starts_with("/v2/droplets?") && !u.contains("?page=2") => json(
                200,
                serde_json::json!({"droplets": [droplet(1, "active", "capsule-a"), droplet(2, "off", "capsule-b")],
                    "links": {"pages": {"next": "https://api.acme.invalid/v2/droplets?page=2&per_page=2&tag_name=capsule"}}}),
            ),
            ("GET", u) if u.starts_with("/v2/droplets?") => json(
                200,
                serde_json::json!({"droplets": [droplet(3, "active", "capsule-c")], "links": {}}),
            ),
            ("GET", "/v2/droplets/7") => json(
                200,
                serde_json::json!({"droplet": droplet(7, "active", "capsule-d1")}),
            ),
            ("GET", "/v2/droplets/8") => json(
                200,
                serde_json::json!({"droplet": droplet(8, "off", "capsule-x")}),
            ),
            ("DELETE", "/v2/droplets/8") => (204, vec![], String::new()),
            _ => json(
                404,
                serde_json::json!({"id": "not_found", "message": "The resource you were accessing could not be found."}),
            ),
        }
    });
    let d = driver_at(JSON_API, "acme-flow", &m);

    let node = d.create(&request("web-1")).await.unwrap();
    assert_eq!(node.id, "7");
    assert_eq!(node.state, NodeState::Pending);
    assert_eq!(node.raw_status, "new");
    assert_eq!(node.tag.as_deref(), Some("capsule-d1"));
    assert_eq!(node.ipv4.as_deref(), Some("203.0.113.9"));

    let nodes = d.list(false).await.unwrap();
    let ids: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["1", "2", "3"]);
    assert_eq!(nodes[1].state, NodeState::Stopped);

    let got = d.get(&node.node_ref()).await.unwrap();
    assert_eq!(got.state, NodeState::Running);
    let waited = d
        .wait_for(
            &node.node_ref(),
            NodeState::Running,
            true,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(waited.ipv4.as_deref(), Some("203.0.113.9"));

    let gone = NodeRef {
        provider: "acme-flow".into(),
        id: "99".into(),
        region: None,
        variant: String::new(),
    };
    assert_eq!(d.get(&gone).await.unwrap().state, NodeState::Deleted);

    // Delete of a stopped node: the `before` step is skipped by `unless`.
    let stopped = NodeRef {
        id: "8".into(),
        ..gone.clone()
    };
    d.delete(&stopped).await.unwrap();
    // Delete of a node already gone is fine.
    d.delete(&gone).await.unwrap();

    let seen = m.seen();
    let create = seen.iter().find(|s| s.method == "POST").unwrap();
    let body: serde_json::Value = serde_json::from_str(&create.body).unwrap();
    assert_eq!(body["name"], "web-1");
    assert_eq!(create.header("content-type"), Some("application/json"));
    let lists: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.url.starts_with("/v2/droplets?"))
        .collect();
    assert_eq!(lists.len(), 2, "next link followed through the override");
    assert!(lists[0].url.contains("tag_name=capsule") && lists[0].url.contains("per_page=2"));
    assert!(
        !seen.iter().any(|s| s.url.contains("/actions")),
        "no power-off for a stopped node"
    );
}

/// A handler whose first answer is `status` with one header and `body`, and every later one the
/// account (what `verify` reads).
fn first_fails_then_account(
    status: u16,
    header: (&'static str, &'static str),
    body: &'static str,
) -> impl Fn(&Seen, usize) -> Reply + Send + 'static {
    move |_, n| {
        if n == 0 {
            (status, vec![(header.0, header.1.into())], body.into())
        } else {
            json(200, serde_json::json!({"account": {}}))
        }
    }
}

#[tokio::test]
async fn retries_429_with_retry_after_then_succeeds() {
    let m = mock(first_fails_then_account(
        429,
        ("Retry-After", "0"),
        "{\"id\":\"too_many_requests\",\"message\":\"slow\"}",
    ));
    let d = driver_at(JSON_API, "acme-429", &m);
    d.verify().await.unwrap();
    assert_eq!(m.seen().len(), 2);
}

/// A rate-limit reset header sent on every answer (the window's end) is no reason to wait after
/// a 500: only a throttle waits for it.
#[tokio::test]
async fn reset_header_is_not_a_wait_after_a_server_error() {
    let m = mock(first_fails_then_account(
        500,
        ("X-RateLimit-Reset", "100"),
        "{\"id\":\"server_error\",\"message\":\"oops\"}",
    ));
    let src = JSON_API.replace(
        "poll_seconds = 0.01",
        "poll_seconds = 0.01\nreset_header = \"X-RateLimit-Reset\"",
    );
    let d = driver_at(&src, "acme-reset", &m);
    let t = std::time::Instant::now();
    d.verify().await.unwrap();
    assert_eq!(m.seen().len(), 2);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn auth_error_is_one_sentence_with_the_providers_message() {
    let m = mock(|_, _| {
        json(
            401,
            serde_json::json!({"id": "unauthorized", "message": "Unable to authenticate you"}),
        )
    });
    let d = driver_at(JSON_API, "acme-401", &m);
    let e = d.verify().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert_eq!(
        e.to_string(),
        "acme-401: Unable to authenticate you (HTTP 401, unauthorized) — check the token with `capsule openmesh provider verify acme-401`"
    );
    assert_eq!(m.seen().len(), 1, "401 is not retried");
}

#[tokio::test]
async fn server_error_without_message_and_no_secret_in_excerpt() {
    let m = mock(|_, _| (500, vec![], format!("boom {TOKEN}")));
    let d = driver_at(JSON_API, "acme-500", &m);
    let e = d.verify().await.unwrap_err();
    assert_eq!(e.status, Some(500));
    assert!(!e.to_string().contains(TOKEN), "{e}");
    assert_eq!(m.seen().len(), 3, "5xx retried up to max_attempts");
}

#[tokio::test]
async fn create_in_doubt_looks_up_the_tag_instead_of_duplicating() {
    let m = mock(|s, _| match s.method.as_str() {
        "POST" => json(
            500,
            serde_json::json!({"id": "server_error", "message": "oops"}),
        ),
        _ => json(
            200,
            serde_json::json!({"droplets": [droplet(42, "new", "capsule-d1")], "links": {}}),
        ),
    });
    let d = driver_at(JSON_API, "acme-doubt", &m);
    let node = d.create(&request("web-1")).await.unwrap();
    assert_eq!(node.id, "42");
    let seen = m.seen();
    assert_eq!(
        seen.iter().filter(|s| s.method == "POST").count(),
        1,
        "create sent once"
    );
    assert!(seen
        .iter()
        .any(|s| s.method == "GET" && s.url.contains("tag_name=capsule-d1")));
}

#[tokio::test]
async fn create_throttled_is_retried() {
    let m = mock(|_, n| {
        if n == 0 {
            (429, vec![("Retry-After", "0".into())], String::new())
        } else {
            json(
                202,
                serde_json::json!({"droplet": droplet(5, "new", "capsule-d1")}),
            )
        }
    });
    let d = driver_at(JSON_API, "acme-create429", &m);
    assert_eq!(d.create(&request("x")).await.unwrap().id, "5");
    assert_eq!(m.seen().len(), 2);
}

#[tokio::test]
async fn power_action_is_polled_until_done() {
    let m = mock(|s, _| match (s.method.as_str(), s.url.as_str()) {
        ("POST", _) => json(
            201,
            serde_json::json!({"action": {"id": 9, "status": "in-progress"}}),
        ),
        ("GET", "/v2/actions/9") => json(
            200,
            serde_json::json!({"action": {"id": 9, "status": "completed"}}),
        ),
        _ => json(404, serde_json::json!({})),
    });
    let d = driver_at(JSON_API, "acme-action", &m);
    let n = NodeRef {
        provider: "acme-action".into(),
        id: "7".into(),
        region: None,
        variant: String::new(),
    };
    d.start(&n).await.unwrap();
    let seen = m.seen();
    assert_eq!(seen[0].body, r#"{"type":"power_on"}"#);
    assert_eq!(seen[1].url, "/v2/actions/9");
}

/// `action.id` as a list, with a `*` pointer: the operation's own action and every action
/// queued after it are followed, in order, each until it is done; a failed one fails the call.
#[tokio::test]
async fn every_follow_up_action_is_polled() {
    let src = JSON_API.replace(
        r#"action = { id = "/action/id","#,
        r#"action = { id = ["/action/id", "/next_actions/*/id"],"#,
    );
    let answer = |n: u64, st: &str| serde_json::json!({"action": {"id": n, "status": st}});
    let m = mock(move |s, _| match (s.method.as_str(), s.url.as_str()) {
        ("POST", _) => json(
            201,
            serde_json::json!({
                "action": {"id": 9, "status": "completed"},
                "next_actions": [{"id": 10, "status": "running"}, {"id": 11, "status": "running"}, {"id": 9}]
            }),
        ),
        ("GET", "/v2/actions/10") => json(200, answer(10, "completed")),
        ("GET", "/v2/actions/11") => json(200, answer(11, "completed")),
        _ => json(404, serde_json::json!({})),
    });
    let d = driver_at(&src, "acme-actions", &m);
    let n = NodeRef {
        provider: "acme-actions".into(),
        id: "7".into(),
        region: None,
        variant: String::new(),
    };
    d.start(&n).await.unwrap();
    let urls: Vec<String> = m.seen().into_iter().map(|s| s.url).collect();
    assert_eq!(
        urls,
        ["/v2/droplets/7/actions", "/v2/actions/10", "/v2/actions/11"],
        "action 9 was done in the answer and is not fetched twice"
    );

    let m = mock(move |s, _| match (s.method.as_str(), s.url.as_str()) {
        ("POST", _) => json(
            201,
            serde_json::json!({"action": {"id": 9, "status": "completed"}, "next_actions": [{"id": 12}]}),
        ),
        ("GET", "/v2/actions/12") => json(200, answer(12, "errored")),
        _ => json(404, serde_json::json!({})),
    });
    let d = driver_at(&src, "acme-actions-fail", &m);
    let n = NodeRef {
        provider: "acme-actions-fail".into(),
        ..n
    };
    let e = d.start(&n).await.unwrap_err();
    assert!(
        e.to_string().contains("action 12 ended as 'errored'"),
        "{e}"
    );
}

#[tokio::test]
async fn retired_provider_refuses_create_only() {
    let src = JSON_API.replace(
        "default_image = \"ubuntu-24-04\"",
        "default_image = \"ubuntu-24-04\"\nstatus = { state = \"retired\", date = \"2026-06-30\", suggestion = \"use another provider\" }",
    );
    let m = mock(|_, _| json(200, serde_json::json!({"droplets": [], "links": {}})));
    let d = driver_at(&src, "acme-retired", &m);
    let e = d.create(&request("x")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Refused);
    assert!(
        e.to_string().contains("2026-06-30") && e.to_string().contains("use another provider"),
        "{e}"
    );
    assert!(d.list(true).await.unwrap().is_empty());
    assert!(m.seen().iter().all(|s| s.method == "GET"));
}

const XML_API: &str = r#"
[provider]
id = "@ID@"
name = "Query Cloud"
default_region = "east"

[[credentials]]
name = "access_key_id"
required = true

[[credentials]]
name = "secret_access_key"
secret = true
required = true

[[regions]]
id = "east"
api_id = "us-east-1"

[[regions]]
id = "west"
api_id = "us-west-2"

[api]
base_url = "https://compute.{{ region }}.example.invalid"
regional = true
format = "xml"
xml_list_elements = ["item"]

[api.auth]
scheme = "sigv4"
service = "compute"
access_key_field = "access_key_id"
secret_key_field = "secret_access_key"

[api.errors]
message = ["/Response/Errors/Error/Message"]
code = ["/Response/Errors/Error/Code"]
not_found_codes = ["InvalidInstanceID.NotFound"]
throttle_codes = ["RequestLimitExceeded"]

[api.status]
pending = ["pending", "stopping"]
running = ["running"]
stopped = ["stopped"]
deleting = ["shutting-down"]
deleted = ["terminated"]

[api.node]
id = "/instanceId"
status = "/instanceState/name"
ipv4 = "/ipAddress"
plan = "/instanceType"
name = { list = "/tagSet/item", where = { "/key" = "Name" }, value = "/value" }
deploy_id = { list = "/tagSet/item", where = { "/key" = "capsule-id" }, value = "/value" }

[api.operations.create]
method = "POST"
path = "/"
encoding = "form"
body = '''{"Action": "RunInstances", "Version": "2016-11-15", "ImageId": {{ image }}, "InstanceType": {{ plan }},
  "MinCount": 1, "MaxCount": 1, "ClientToken": {{ deploy_id }}, "UserData": {{ user_data_b64 }},
  "TagSpecification": [{"ResourceType": "instance", "Tag": [{"Key": "Name", "Value": {{ name }}}, {"Key": "capsule-id", "Value": {{ tag }}}]}]}'''
node = "/RunInstancesResponse/instancesSet/item"

[api.operations.list]
method = "POST"
path = "/"
encoding = "form"
body = '''{"Action": "DescribeInstances", "Version": "2016-11-15"
  {% if list_tag %}, "Filter": [{"Name": "tag-key", "Value": ["capsule-id"]}]{% endif %}}'''
node = "/DescribeInstancesResponse/reservationSet/item/*/instancesSet/item"
paging = { style = "token", next = "/DescribeInstancesResponse/nextToken", cursor_param = "NextToken", size_param = "MaxResults", size = 5 }

[api.operations.get]
method = "POST"
path = "/"
encoding = "form"
body = '{"Action": "DescribeInstances", "Version": "2016-11-15", "InstanceId": [{{ id }}]}'
node = "/DescribeInstancesResponse/reservationSet/item/*/instancesSet/item"
"#;

fn instance(id: &str, state: &str, tag: &str) -> String {
    format!(
        "<item><instanceId>{id}</instanceId><instanceState><code>16</code><name>{state}</name></instanceState>\
         <instanceType>t3.micro</instanceType><ipAddress>198.51.100.4</ipAddress>\
         <tagSet><item><key>Name</key><value>n-{id}</value></item><item><key>capsule-id</key><value>{tag}</value></item></tagSet></item>"
    )
}

fn describe(instances: &str, next: &str) -> Reply {
    (
        200,
        vec![("Content-Type", "text/xml".into())],
        format!(
            "<?xml version=\"1.0\"?><DescribeInstancesResponse xmlns=\"http://compute.example.com/doc/2016-11-15/\">\
             <requestId>r</requestId><reservationSet><item><reservationId>r-1</reservationId><instancesSet>{instances}</instancesSet></item></reservationSet>\
             <nextToken>{next}</nextToken></DescribeInstancesResponse>"
        ),
    )
}

#[tokio::test]
async fn xml_form_sigv4_regional_api() {
    let m = mock(|s, _| {
        let auth = s.header("authorization").unwrap_or_default().to_string();
        let region = if auth.contains("/us-west-2/compute/aws4_request") {
            "us-west-2"
        } else {
            "us-east-1"
        };
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/"),
            "{auth}"
        );
        assert!(s.header("x-amz-date").is_some());
        let b = &s.body;
        if b.contains("Action=RunInstances") {
            return (
                200,
                vec![],
                format!(
                    "<RunInstancesResponse><instancesSet>{}</instancesSet></RunInstancesResponse>",
                    instance("i-new", "pending", "capsule-d1")
                ),
            );
        }
        if b.contains("InstanceId.1=i-gone") {
            return (
                400,
                vec![],
                "<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance ID 'i-gone' does not exist</Message></Error></Errors><RequestID>x</RequestID></Response>".into(),
            );
        }
        if b.contains("InstanceId.1=") {
            return describe(&instance("i-east1", "running", "capsule-a"), "");
        }
        match (region, b.contains("NextToken=t2")) {
            ("us-east-1", false) => describe(&instance("i-east1", "running", "capsule-a"), "t2"),
            ("us-east-1", true) => describe(&instance("i-east2", "terminated", "capsule-b"), ""),
            _ => describe(&instance("i-west1", "stopped", "capsule-c"), ""),
        }
    });
    let id = "qcloud";
    std::env::set_var(endpoint_env_name(id), &m.url);
    let mut c = Credentials::new();
    c.set("access_key_id", Secret::new("AKIDTEST"), false);
    c.set(
        "secret_access_key",
        Secret::new("secret-key-value-xyz"),
        true,
    );
    let d = Driver::new(&provider(XML_API, id), c, opts()).unwrap();

    let mut req = request("node-1");
    req.region = "east".into();
    req.image = Some("ami-1".into());
    let node = d.create(&req).await.unwrap();
    assert_eq!(
        (node.id.as_str(), node.state, node.region.as_str()),
        ("i-new", NodeState::Pending, "east")
    );
    assert_eq!(node.name, "n-i-new");

    let nodes = d.list(false).await.unwrap();
    let got: Vec<(&str, &str, NodeState)> = nodes
        .iter()
        .map(|n| (n.id.as_str(), n.region.as_str(), n.state))
        .collect();
    assert_eq!(
        got,
        [
            ("i-east1", "east", NodeState::Running),
            ("i-east2", "east", NodeState::Deleted),
            ("i-west1", "west", NodeState::Stopped)
        ]
    );

    let r = NodeRef {
        provider: id.into(),
        id: "i-east1".into(),
        region: Some("east".into()),
        variant: String::new(),
    };
    assert_eq!(d.get(&r).await.unwrap().state, NodeState::Running);
    let gone = NodeRef {
        id: "i-gone".into(),
        ..r.clone()
    };
    assert_eq!(d.get(&gone).await.unwrap().state, NodeState::Deleted);
    // Without a region every region is tried.
    let anywhere = NodeRef { region: None, ..r };
    assert_eq!(d.get(&anywhere).await.unwrap().region, "east");

    let seen = m.seen();
    let create = seen
        .iter()
        .find(|s| s.body.contains("RunInstances"))
        .unwrap();
    assert_eq!(
        create.header("content-type"),
        Some("application/x-www-form-urlencoded; charset=utf-8")
    );
    assert!(
        create
            .body
            .contains("TagSpecification.1.Tag.1.Key=Name&TagSpecification.1.Tag.1.Value=node-1"),
        "{}",
        create.body
    );
    assert!(create.body.contains("ClientToken=d1"));
    assert!(
        create.body.contains("UserData=I2Nsb3VkLWNvbmZpZwo%3D"),
        "{}",
        create.body
    );
    assert!(create
        .header("authorization")
        .unwrap()
        .contains("/us-east-1/compute/aws4_request"));
    let lists: Vec<&Seen> = seen
        .iter()
        .filter(|s| s.body.contains("DescribeInstances") && !s.body.contains("InstanceId"))
        .collect();
    assert_eq!(lists.len(), 3, "two pages in east, one in west");
    assert!(lists
        .iter()
        .all(|s| s.body.contains("MaxResults=5") && s.body.contains("Filter.1.Name=tag-key")));
}

const PAGE_API: &str = r#"
[provider]
id = "@ID@"
name = "Paged"
default_region = "r1"

[[credentials]]
name = "api_key"
secret = true
required = true

[[regions]]
id = "r1"

[api]
base_url = "https://paged.invalid/api/v2"

[api.auth]
scheme = "header"
field = "api_key"
header = "X-API-KEY"

[api.status]
running = ["ON"]
stopped = ["OFF"]

[api.node]
id = "/deviceId"
status = "/powerStatus"
deploy_id = { list = "/tags", where = { "" = "~capsule-" }, value = "" }

[api.operations.list]
method = "GET"
path = "/compute/"
headers = { X-Filter = '{% if list_tag %}{"tags": {{ list_tag | tojson }}}{% endif %}' }
node = "/data"
paging = { style = "page", page_param = "page", size_param = "page_size", size = 2, total = "header:X-Total-Count" }

[api.operations.get]
method = "GET"
path = "/compute/{{ id }}"

[api.variants.metal.list]
method = "GET"
path = "/metal/"
node = "/items"
paging = { style = "cursor", next = "/next", cursor_param = "after" }

[api.variants.metal.get]
method = "GET"
path = "/metal/{{ id }}"
"#;

#[tokio::test]
async fn page_and_cursor_paging_across_variants() {
    let dev = |id: u64, tag: &str| serde_json::json!({"deviceId": id, "powerStatus": "ON", "tags": [tag]});
    let m = mock(move |s, _| {
        assert_eq!(s.header("x-api-key"), Some("key-123456789"));
        let total = ("X-Total-Count", "3".to_string());
        match s.url.as_str() {
            u if u.starts_with("/api/v2/compute/?") && u.contains("&page=1") => (
                200,
                vec![total],
                serde_json::json!({"data": [dev(1, "capsule-a"), dev(2, "other")]}).to_string(),
            ),
            u if u.starts_with("/api/v2/compute/?") && u.contains("&page=2") => (
                200,
                vec![total],
                serde_json::json!({"data": [dev(3, "capsule-c")]}).to_string(),
            ),
            "/api/v2/metal/" => json(
                200,
                serde_json::json!({"items": [dev(10, "capsule-m")], "next": "t1"}),
            ),
            "/api/v2/metal/?after=t1" => json(
                200,
                // The last page: a repeated cursor would be an error (issue 9, defect 13).
                serde_json::json!({"items": [dev(11, "x")], "next": ""}),
            ),
            "/api/v2/metal/11" => json(
                200,
                serde_json::json!({"deviceId": 11, "powerStatus": "OFF"}),
            ),
            _ => json(404, serde_json::json!({})),
        }
    });
    let mut c = Credentials::new();
    c.set("api_key", Secret::new("key-123456789"), true);
    let id = "paged";
    std::env::set_var(endpoint_env_name(id), &m.url);
    let d = Driver::new(&provider(PAGE_API, id), c, opts()).unwrap();

    let all = d.list(true).await.unwrap();
    let ids: Vec<(&str, &str)> = all
        .iter()
        .map(|n| (n.id.as_str(), n.variant.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            ("1", ""),
            ("2", ""),
            ("3", ""),
            ("10", "metal"),
            ("11", "metal")
        ]
    );
    // Client-side filter by the deploy tag (no server-side filter declared).
    let mine = d.list(false).await.unwrap();
    let mine: Vec<&str> = mine.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(mine, ["1", "3", "10"]);
    let found = d.find_by_tag("capsule-m", None).await.unwrap().unwrap();
    assert_eq!((found.id.as_str(), found.variant.as_str()), ("10", "metal"));
    assert!(d.find_by_tag("capsule-zzz", None).await.unwrap().is_none());

    let r = NodeRef {
        provider: id.into(),
        id: "11".into(),
        region: None,
        variant: "metal".into(),
    };
    assert_eq!(d.get(&r).await.unwrap().state, NodeState::Stopped);

    let seen = m.seen();
    let first = seen.iter().find(|s| s.url.contains("/compute/?")).unwrap();
    assert!(
        first.header("x-filter").is_none(),
        "empty header dropped with all=true"
    );
    assert!(seen
        .iter()
        .any(|s| s.header("x-filter") == Some(r#"{"tags": "capsule"}"#)));
    assert_eq!(
        seen.iter()
            .filter(|s| s.url.starts_with("/api/v2/metal/?after=t1"))
            .count(),
        4,
        "one list each, the empty cursor ends paging"
    );
}

#[tokio::test]
async fn connection_refused_is_a_network_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let id = "acme-refused";
    std::env::set_var(endpoint_env_name(id), format!("http://127.0.0.1:{port}"));
    let d = Driver::new(&provider(JSON_API, id), creds(), opts()).unwrap();
    let e = d.create(&request("x")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Network);
    assert!(!e.in_doubt);
    assert!(
        e.to_string().starts_with("acme-refused: could not connect"),
        "{e}"
    );
}
