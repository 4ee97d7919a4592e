//! Every provider end to end through the CLI against its local mock API: verify (good and bad
//! credential), deploy, status (pending → running), list (paged, managed-only vs `--all`), stop,
//! start, delete; throttles and 500s; name injection; no secret in any output or `-v`/`-vv` log;
//! a made-up provider added with catalog files alone; the plain-http endpoint refusal; SigV4
//! verified by the EC2 mock.

use crate::support::{capsule, Capsule, Output};
use serde_json::Value;
use std::time::{Duration, Instant};

use crate::support::mock::{
    self, Fault, MockConfig, MockServer, NodeSpec, Op, Provider, SigV4Check,
};

/// Distinctive secrets: a grep for them (or a long prefix) finds only leaks.
const TOKEN: &str = "qV9zPROVIDERSsecret7c1e5a3b9d2f4a6c8e0b1d3f5a7c9";
const ACCESS_KEY: &str = "AKIAPROVTESTQ7Z3K9W2";
const SECRET_KEY: &str = "wJalrPROVIDERSsecretK7MDENG/bPxRfiCYzQ9xK3m";
const BAD_TOKEN: &str = "bX4kBADprovidersTOKEN0f9e8d7c6b5a4f3e2d1c0b";

/// What differs between providers, for the table-driven tests.
struct Case {
    provider: Provider,
    template: &'static str,
    plan: &'static str,
    /// Catalog region slug given to `--region`.
    region: &'static str,
    /// The region as the mock (the real API) names it.
    api_region: &'static str,
    /// The credential variable to spoil for the bad-credential check.
    secret_var: &'static str,
    /// Part of the provider's own rejection message.
    rejection: &'static str,
    /// The server pages its list (Hivelocity's device list is one array).
    pages: bool,
    /// Extra deploy arguments (EC2: a plain AMI id; the mock does not resolve `resolve:ssm:`).
    deploy_args: &'static [&'static str],
    /// A catalog overlay file (path under the overlay dir, content), e.g. a pinned product id.
    overlay: Option<(&'static str, &'static str)>,
    /// What the provider appends to the name (Hivelocity hostnames are FQDNs).
    name_suffix: &'static str,
    /// Deploy already waits (a follow-up power-on; Hivelocity hides a device until it is
    /// provisioned, so the case deploys with `--wait`): the first status may be running.
    may_start_running: bool,
}

const CASES: &[Case] = &[
    Case {
        provider: Provider::DigitalOcean,
        template: "do-small",
        plan: "s-1vcpu-1gb",
        region: "nyc1",
        api_region: "nyc1",
        secret_var: "DIGITALOCEAN_TOKEN",
        rejection: "Unable to authenticate you",
        pages: true,
        deploy_args: &[],
        overlay: None,
        name_suffix: "",
        may_start_running: false,
    },
    Case {
        provider: Provider::Vultr,
        template: "vultr-vc2-1",
        plan: "vc2-1c-1gb",
        region: "ewr",
        api_region: "ewr",
        secret_var: "VULTR_API_KEY",
        rejection: "Invalid API token",
        pages: true,
        deploy_args: &[],
        overlay: None,
        name_suffix: "",
        may_start_running: false,
    },
    Case {
        provider: Provider::Linode,
        template: "linode-nanode-1gb",
        plan: "g6-nanode-1",
        region: "us-east",
        api_region: "us-east",
        secret_var: "LINODE_TOKEN",
        rejection: "Invalid Token",
        pages: true,
        deploy_args: &[],
        overlay: None,
        name_suffix: "",
        may_start_running: false,
    },
    Case {
        provider: Provider::Aws,
        template: "aws-t3-micro",
        plan: "t3.micro",
        region: "us-east-1",
        api_region: "us-east-1",
        secret_var: "AWS_SECRET_ACCESS_KEY",
        rejection: "signature",
        pages: true,
        deploy_args: &["--image", "ami-0abcdef1234567890"],
        overlay: None,
        name_suffix: "",
        may_start_running: false,
    },
    Case {
        provider: Provider::Hivelocity,
        template: "hive-small",
        plan: "525",
        region: "atlanta",
        api_region: "ATL2",
        secret_var: "HIVELOCITY_API_KEY",
        rejection: "The API key is missing or invalid",
        pages: false,
        // The API hides a new device until it is provisioned (see the dedicated test below).
        deploy_args: &["--wait", "--timeout", "20s"],
        overlay: Some((
            "hivelocity/templates.toml",
            "[[templates]]\nid = \"hive-small\"\nplan = \"525\"\n",
        )),
        name_suffix: ".capsule.local",
        may_start_running: true,
    },
    Case {
        provider: Provider::Scaleway,
        template: "scw-dev1-s",
        plan: "DEV1-S",
        region: "par1",
        api_region: "fr-par-1",
        secret_var: "SCW_SECRET_KEY",
        rejection: "authentication is denied",
        pages: true,
        deploy_args: &[],
        overlay: None,
        name_suffix: "",
        may_start_running: true,
    },
];

fn case(p: Provider) -> &'static Case {
    CASES.iter().find(|c| c.provider == p).expect("a case")
}

fn om(args: &[&str]) -> Vec<String> {
    std::iter::once("openmesh")
        .chain(args.iter().copied())
        .map(String::from)
        .collect()
}

/// A mock with this file's distinctive secrets.
fn config() -> MockConfig {
    let mut cfg = MockConfig::default()
        .with_token(TOKEN)
        .with_pending_polls(1);
    cfg.access_key_id = ACCESS_KEY.into();
    cfg.secret_access_key = SECRET_KEY.into();
    cfg.sigv4 = SigV4Check::Full;
    cfg
}

/// The mock for a case: Hivelocity hides a device from GET/list until it is provisioned, as the
/// real API does.
fn config_for(p: Provider) -> MockConfig {
    let mut cfg = config();
    cfg.hide_provisioning = p == Provider::Hivelocity;
    cfg
}

/// A capsule pointed at `mock` with its good credentials.
fn cli_for(mock: &MockServer) -> Capsule {
    let mut c = capsule();
    for (k, v) in mock.env() {
        c = c.env(&k, v);
    }
    c
}

/// A capsule pointed at `mock` with its good credentials and the case's catalog overlay (the
/// overlay directory lives as long as the returned guard).
fn cli_case(mock: &MockServer, c: &Case) -> (Capsule, Option<tempfile::TempDir>) {
    let cli = cli_for(mock);
    match c.overlay {
        None => (cli, None),
        Some((path, text)) => {
            let dir = tempfile::tempdir().expect("overlay dir");
            let file = dir.path().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, text).unwrap();
            let cli = cli.env("CAPSULE_CATALOG", dir.path().to_str().unwrap());
            (cli, Some(dir))
        }
    }
}

/// `deploy` in the manual form for a case.
fn deploy_args<'a>(c: &'a Case, name: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "deploy",
        "--provider",
        c.provider.id(),
        "--template",
        c.template,
        "--region",
        c.region,
        "--name",
        name,
        "--yes",
    ];
    v.extend_from_slice(c.deploy_args);
    v.extend_from_slice(extra);
    v
}

/// Runs commands and keeps every output for the final secret grep.
struct Session {
    cli: Capsule,
    outputs: Vec<(Vec<String>, Output)>,
    _overlay: Option<tempfile::TempDir>,
}

impl Session {
    fn new(cli: Capsule) -> Session {
        Session {
            cli,
            outputs: Vec::new(),
            _overlay: None,
        }
    }

    fn for_case(mock: &MockServer, c: &Case) -> Session {
        let (cli, overlay) = cli_case(mock, c);
        Session {
            cli,
            outputs: Vec::new(),
            _overlay: overlay,
        }
    }

    #[track_caller]
    fn run(&mut self, args: &[&str], want: i32) -> Output {
        let argv = om(args);
        let out = self.cli.run_args(&argv);
        assert_eq!(
            out.code, want,
            "capsule {argv:?} exited {} (wanted {want})\n--- stdout\n{}\n--- stderr\n{}",
            out.code, out.stdout, out.stderr
        );
        self.outputs.push((
            argv,
            Output {
                code: out.code,
                stdout: out.stdout.clone(),
                stderr: out.stderr.clone(),
            },
        ));
        out
    }

    /// No secret in anything printed, nor in any file the run left in `CAPSULE_HOME`.
    #[track_caller]
    fn assert_no_secret(&self, secrets: &[&str]) {
        for (argv, out) in &self.outputs {
            for s in secrets {
                for needle in [*s, &s[..16]] {
                    assert!(
                        !out.stdout.contains(needle) && !out.stderr.contains(needle),
                        "secret {needle:?} leaked by capsule {argv:?}\n--- stdout\n{}\n--- stderr\n{}",
                        out.stdout,
                        out.stderr
                    );
                }
            }
        }
        let mut stack = vec![self.cli.home().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(bytes) = std::fs::read(&p) {
                    let text = String::from_utf8_lossy(&bytes);
                    for s in secrets {
                        assert!(
                            !text.contains(&s[..16]),
                            "secret leaked into {}",
                            p.display()
                        );
                    }
                }
            }
        }
    }
}

/// The one row of a `status` / the rows of a `list`.
fn rows(out: &Output) -> Vec<Value> {
    match out.json() {
        Value::Array(a) => a,
        other => panic!("expected a JSON array, got {other}"),
    }
}

fn one(out: &Output) -> Value {
    let r = rows(out);
    assert_eq!(r.len(), 1, "expected one row: {r:?}");
    r[0].clone()
}

#[track_caller]
fn assert_node_fields(row: &Value) {
    for f in [
        "provider",
        "id",
        "name",
        "template",
        "plan",
        "region",
        "status",
        "raw_status",
        "ipv4",
        "created_at",
    ] {
        assert!(row.get(f).is_some(), "node JSON lacks {f}: {row}");
    }
}

fn managed(n: &mock::Node) -> bool {
    n.tags
        .iter()
        .any(|t| t == "capsule" || t.starts_with("capsule="))
}

/// Poll `status NAME` until it reports `want` (bounded).
#[track_caller]
fn status_until(s: &mut Session, node: &str, want: &str) -> Value {
    let start = Instant::now();
    loop {
        let row = one(&s.run(&["status", node, "-o", "json"], 0));
        if row["status"] == want {
            return row;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{node} never became {want}: {row}"
        );
    }
}

// ---- 1 + 4 + 7: every provider end to end -----------------------------------------------------

fn end_to_end(p: Provider) {
    let c = case(p);
    let mock = MockServer::start(p, config_for(p).with_page_size(2));
    let foreign: Vec<String> = (0..5)
        .map(|i| mock.add_node(NodeSpec::named(&format!("foreign-{i}")).region(c.api_region)))
        .collect();
    let mut s = Session::for_case(&mock, c);
    let pid = p.id();

    // verify: good, then bad (the provider's own message, no secret).
    s.run(&["provider", "verify", pid], 0);
    let bad = cli_case(&mock, c)
        .0
        .env(c.secret_var, BAD_TOKEN)
        .run_args(&om(&["provider", "verify", pid]));
    assert_eq!(bad.code, 1, "verify with a bad key: {bad:?}");
    assert!(
        bad.stderr
            .to_lowercase()
            .contains(&c.rejection.to_lowercase()),
        "{pid}: the provider's message is not surfaced: {}",
        bad.stderr
    );
    assert!(
        !format!("{}{}", bad.stdout, bad.stderr).contains(&BAD_TOKEN[..16]),
        "bad key echoed"
    );

    // deploy (manual form), logged at -v.
    let name = format!("cap-{}", pid.replace('-', ""));
    let dep = s.run(&deploy_args(c, &name, &["-o", "json", "-vv"]), 0);
    assert!(
        dep.stderr.contains(&mock.url()) || dep.stderr.contains("POST"),
        "{pid}: -vv logs the requests: {}",
        dep.stderr
    );
    let dep = dep.json();
    assert_eq!(dep["nodes"][0]["name"], name.as_str(), "{dep}");
    let ours: Vec<_> = mock.nodes().into_iter().filter(managed).collect();
    assert_eq!(
        ours.len(),
        1,
        "{pid}: one managed node at the mock: {:?}",
        mock.nodes()
    );
    let n = &ours[0];
    assert_eq!(n.name, format!("{name}{}", c.name_suffix));
    assert_eq!(n.plan, c.plan);
    assert_eq!(n.region, c.api_region);
    assert_eq!(mock.count_creates(), 1);

    // status: pending → running.
    let first = one(&s.run(&["status", &name, "-o", "json"], 0));
    assert_node_fields(&first);
    if !c.may_start_running {
        assert_eq!(
            first["status"], "pending",
            "{pid}: a fresh node is not running yet: {first}"
        );
    }
    let row = status_until(&mut s, &name, "running");
    assert_node_fields(&row);
    assert_eq!(row["provider"], pid);
    // The CLI shows the name capsule gave, whatever hostname form the API keeps.
    assert_eq!(row["name"], name.as_str());
    assert_eq!(row["template"], c.template);
    assert_eq!(row["plan"], c.plan);
    assert_eq!(row["region"], c.region);
    assert!(
        row["ipv4"].is_string(),
        "{pid}: a running node has its public IPv4: {row}"
    );
    assert!(row["raw_status"].is_string(), "{row}");
    // A Hivelocity device carries no creation time (it is on the service object).
    if p != Provider::Hivelocity {
        assert!(row["created_at"].is_string(), "{pid}: created_at: {row}");
    }

    // list: only ours; --all: everything, over ≥3 pages.
    let listed = rows(&s.run(&["list", "--provider", pid, "-o", "json", "-v"], 0));
    assert_eq!(
        listed.len(),
        1,
        "{pid}: plain list shows only capsule's nodes: {listed:?}"
    );
    assert_node_fields(&listed[0]);
    assert_eq!(listed[0]["name"], name.as_str());
    assert_eq!(listed[0]["status"], "running");
    let before = mock.count(Op::List);
    let all = rows(&s.run(
        &["list", "--provider", pid, "--all", "-o", "json", "-vv"],
        0,
    ));
    let names: Vec<&str> = all.iter().filter_map(|r| r["name"].as_str()).collect();
    for i in 0..5 {
        assert!(
            names.contains(&format!("foreign-{i}").as_str()),
            "{pid}: --all lacks foreign-{i}: {names:?}"
        );
    }
    assert!(names.contains(&name.as_str()), "{names:?}");
    assert_eq!(all.len(), 6, "{pid}: {names:?}");
    if c.pages {
        // Pages of the region holding the nodes (regional APIs list every region: EC2 names
        // it in the SigV4 scope, Scaleway in the path).
        let scope = format!("/{}/", c.api_region);
        let in_region = mock.requests_for(Op::List)[before..]
            .iter()
            .filter(|r| r.status == 200)
            .filter(|r| {
                p != Provider::Aws && p != Provider::Scaleway
                    || r.path.contains(&scope)
                    || r.header("authorization")
                        .is_some_and(|a| a.contains(&scope))
            })
            .count();
        assert!(
            in_region >= 3,
            "{pid}: --all read at least 3 pages:\n{}",
            mock.log_summary()
        );
    }
    assert_eq!(foreign.len(), 5);

    // stop, start.
    let out = one(&s.run(
        &["stop", &name, "--wait", "--timeout", "20s", "-o", "json"],
        0,
    ));
    assert_eq!(out["status"], "stopped", "{out}");
    assert_eq!(
        one(&s.run(&["status", &name, "-o", "json"], 0))["status"],
        "stopped"
    );
    let out = one(&s.run(
        &["start", &name, "--wait", "--timeout", "20s", "-o", "json"],
        0,
    ));
    assert_eq!(out["status"], "running", "{out}");

    // delete.
    s.run(
        &[
            "delete",
            &name,
            "--yes",
            "--wait",
            "--timeout",
            "20s",
            "-o",
            "json",
            "-vv",
        ],
        0,
    );
    match mock.node_named(&format!("{name}{}", c.name_suffix)) {
        None => {}
        Some(n) => assert_eq!(
            n.status, "terminated",
            "{pid}: the node is gone at the mock: {n:?}"
        ),
    }
    assert_eq!(
        one(&s.run(&["status", &name, "-o", "json"], 0))["status"],
        "deleted"
    );
    assert_eq!(
        mock.nodes()
            .iter()
            .filter(|n| n.name.starts_with("foreign-"))
            .count(),
        5,
        "foreign nodes untouched"
    );
    if p == Provider::Aws {
        assert_eq!(mock.config().sigv4, SigV4Check::Full);
    }
    // Root passwords in answers (`api.secret_fields`) are scrubbed from `-vv` logs and state too.
    s.assert_no_secret(&[
        TOKEN,
        ACCESS_KEY,
        SECRET_KEY,
        mock::vultr::PASSWORD,
        mock::equinix::ROOT_PASSWORD,
    ]);
}

#[test]
fn digitalocean_end_to_end() {
    end_to_end(Provider::DigitalOcean);
}

#[test]
fn vultr_end_to_end() {
    end_to_end(Provider::Vultr);
}

#[test]
fn linode_end_to_end() {
    end_to_end(Provider::Linode);
}

#[test]
fn aws_end_to_end_with_sigv4_verified() {
    end_to_end(Provider::Aws);
}

#[test]
fn hivelocity_end_to_end() {
    end_to_end(Provider::Hivelocity);
}

#[test]
fn scaleway_end_to_end() {
    end_to_end(Provider::Scaleway);
}

/// Equinix Metal is retired: create is refused before any request; old nodes are still listed,
/// read, powered and deleted.
#[test]
fn equinix_metal_retired_but_manageable() {
    let mock = MockServer::start(Provider::Equinix, config().with_page_size(2));
    let mut s = Session::new(cli_for(&mock));
    s.run(&["provider", "verify", "equinix-metal"], 0);
    let bad = cli_for(&mock)
        .env("METAL_AUTH_TOKEN", BAD_TOKEN)
        .run_args(&om(&["provider", "verify", "equinix-metal"]));
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(
        bad.stderr.contains("Invalid authentication token"),
        "{}",
        bad.stderr
    );

    let refused = s.run(
        &[
            "deploy",
            "--provider",
            "equinix-metal",
            "--template",
            "equinix-c3-small",
            "--region",
            "da",
            "--name",
            "eq1",
            "--yes",
        ],
        2,
    );
    assert!(
        refused.stderr.contains("2026-06-30"),
        "the retirement date: {}",
        refused.stderr
    );
    mock.assert_not_called(Op::Create);

    for i in 0..5 {
        mock.add_node(NodeSpec::named(&format!("foreign-{i}")));
    }
    let id = mock.add_node(
        NodeSpec::named("old-capsule-node")
            .tag("capsule")
            .tag("capsule-0123abcd"),
    );
    let listed = rows(&s.run(&["list", "--provider", "equinix-metal", "-o", "json"], 0));
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_node_fields(&listed[0]);
    assert_eq!(listed[0]["name"], "old-capsule-node");
    let all = rows(&s.run(
        &[
            "list",
            "--provider",
            "equinix-metal",
            "--all",
            "-o",
            "json",
            "-vv",
        ],
        0,
    ));
    assert_eq!(all.len(), 6, "{all:?}");

    let node = format!("equinix-metal:{id}");
    let row = one(&s.run(&["status", &node, "-o", "json", "-vv"], 0));
    assert_node_fields(&row);
    assert_eq!(row["status"], "running");
    assert_eq!(
        one(&s.run(
            &["stop", &node, "--wait", "--timeout", "20s", "-o", "json"],
            0
        ))["status"],
        "stopped"
    );
    assert_eq!(
        one(&s.run(
            &["start", &node, "--wait", "--timeout", "20s", "-o", "json"],
            0
        ))["status"],
        "running"
    );
    s.run(
        &["delete", &node, "--yes", "--wait", "--timeout", "20s", "-v"],
        0,
    );
    assert!(mock.node(&id).is_none(), "deleted at the mock");
    assert_eq!(
        one(&s.run(&["status", &node, "-o", "json"], 0))["status"],
        "deleted"
    );
    // The devices' `root_password` is scrubbed from the `-vv` logs and the state.
    s.assert_no_secret(&[TOKEN, mock::equinix::ROOT_PASSWORD]);
}

// ---- 2: throttles and server errors -----------------------------------------------------------

#[test]
fn throttles_and_server_errors_are_retried() {
    let threads: Vec<_> = CASES
        .iter()
        .map(|c| {
            std::thread::spawn(move || {
                let p = c.provider;
                let pid = p.id();
                // One throttle with Retry-After on the create (nothing was created), one on a list
                // and a 500 on a read.
                let mock = MockServer::start(p, config_for(p).with_retry_after(1));
                mock.set_fault_on(Op::Create, Fault::Status429);
                let mut s = Session::for_case(&mock, c);
                let name = format!("thr-{}", pid.replace('-', ""));
                s.run(&deploy_args(c, &name, &["-o", "json"]), 0);
                assert_eq!(
                    mock.count_creates(),
                    1,
                    "{pid}: exactly one node after a throttled create"
                );
                assert_eq!(mock.nodes().len(), 1, "{pid}");
                assert!(
                    mock.count(Op::Create) >= 2,
                    "{pid}: the throttled create was retried:\n{}",
                    mock.log_summary()
                );
                mock.set_fault_on(Op::List, Fault::Status429);
                mock.set_fault_on(Op::Get, Fault::Status500);
                let listed = rows(&s.run(&["list", "--provider", pid, "-o", "json"], 0));
                assert_eq!(listed.len(), 1, "{pid}: {listed:?}");
                s.run(&["status", &name, "-o", "json"], 0);
                // Periodic 500s while polling to running.
                mock.set_error_500_every(Some(4));
                status_until(&mut s, &name, "running");
                mock.set_error_500_every(None);
                assert!(
                    mock.requests()
                        .iter()
                        .any(|r| r.fault == Some(Fault::Status500)),
                    "{pid}: a 500 was served"
                );
            })
        })
        .collect();
    for t in threads {
        t.join().expect("provider thread");
    }
}

// ---- 3: injection -----------------------------------------------------------------------------

/// A create request for `c` as the driver builds it from the embedded catalog, with `name`
/// put in directly: the CLI refuses such names (they are not hostnames), so this checks the
/// driver's own encoding, which must hold whatever a name holds.
fn rendered_create(c: &Case, name: &str) -> capsule::driver::RenderedRequest {
    let catalog = capsule::catalog::embedded().unwrap();
    let p = catalog.provider(c.provider.id()).unwrap();
    let mut creds = capsule::credentials::Credentials::default();
    for f in &p.credentials {
        creds.set(
            &f.name,
            capsule::secret::Secret::new(format!("placeholder-{}", f.name)),
            f.secret,
        );
    }
    let driver = capsule::driver::Driver::new(p, creds, Default::default()).unwrap();
    let image = c
        .deploy_args
        .iter()
        .position(|a| *a == "--image")
        .map(|i| c.deploy_args[i + 1].to_string());
    let reqs = driver
        .render_create(&capsule::driver::CreateRequest {
            name: name.to_string(),
            region: c.region.to_string(),
            plan: c.plan.to_string(),
            template: c.template.to_string(),
            image,
            ssh_keys: Vec::new(),
            user_data: None,
            deploy_id: "d1".to_string(),
            api_variant: String::new(),
            ..Default::default()
        })
        .unwrap();
    reqs.into_iter().next().expect("a create request")
}

#[test]
fn json_injection_in_a_name_arrives_literally() {
    let evil = r#"a","size":"x"#;
    for c in CASES.iter().filter(|c| c.provider != Provider::Aws) {
        let pid = c.provider.id();
        // The CLI refuses the name before any request is sent.
        let mock = MockServer::start(c.provider, config_for(c.provider).lenient());
        let (cli, _overlay) = cli_case(&mock, c);
        let out = cli.run_args(&om(&deploy_args(c, evil, &["-o", "json"])));
        assert_eq!(out.code, 2, "{pid}: {out:?}");
        assert!(
            out.stderr.contains("is not a valid hostname"),
            "{pid}: {out:?}"
        );
        assert!(
            mock.requests_for(Op::Create).is_empty(),
            "{pid}: a create was sent"
        );
        // The driver, given it anyway, puts it in the name field as a literal.
        let r = rendered_create(c, evil);
        let body: Value = serde_json::from_str(r.body.as_deref().unwrap_or(""))
            .unwrap_or_else(|e| panic!("{pid}: the body is JSON ({e}): {:?}", r.body));
        let text = serde_json::to_string(&body).unwrap();
        let name_field = ["name", "label", "hostname"]
            .iter()
            .find_map(|k| body.get(*k).and_then(Value::as_str))
            .unwrap_or_default();
        assert_eq!(
            name_field,
            format!("{evil}{}", c.name_suffix),
            "{pid}: the literal name is in {text}"
        );
        let obj = body.as_object().unwrap();
        assert!(
            obj.values().all(|v| v != "x"),
            "{pid}: a field was injected: {text}"
        );
        assert!(
            !obj.contains_key("size") || obj["size"] != "x",
            "{pid}: {text}"
        );
    }
}

#[test]
fn form_injection_in_a_name_arrives_literally_at_ec2() {
    let evil = "a&Action=TerminateInstances";
    let mock = MockServer::start(Provider::Aws, config());
    let keep = mock.add_node(NodeSpec::named("bystander").region("us-east-1"));
    let mut s = Session::new(cli_for(&mock));
    let out = s.run(&deploy_args(case(Provider::Aws), evil, &["-o", "json"]), 2);
    assert!(out.stderr.contains("is not a valid hostname"), "{out:?}");
    assert!(
        mock.requests_for(Op::Create).is_empty(),
        "{}",
        mock.log_summary()
    );
    mock.assert_not_called(Op::Delete);
    assert_eq!(mock.node(&keep).expect("bystander").status, "running");
    // The driver, given the name anyway, form-encodes it as one value.
    let r = rendered_create(case(Provider::Aws), evil);
    let form: Vec<(String, String)> = r
        .body
        .as_deref()
        .unwrap_or("")
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let dec = |x: &str| {
                percent_encoding::percent_decode_str(&x.replace('+', " "))
                    .decode_utf8()
                    .unwrap()
                    .into_owned()
            };
            (dec(k), dec(v))
        })
        .collect();
    let actions: Vec<_> = form.iter().filter(|(k, _)| k == "Action").collect();
    assert_eq!(actions.len(), 1, "one Action: {form:?}");
    assert_eq!(actions[0].1, "RunInstances");
    assert!(
        form.iter()
            .any(|(k, v)| k.starts_with("TagSpecification.1.Tag.") && v == evil),
        "{form:?}"
    );
}

// ---- 5: a provider made of catalog files alone -------------------------------------------------

#[test]
fn a_made_up_provider_from_catalog_files_alone() {
    let mock = MockServer::start(Provider::DigitalOcean, config().with_page_size(2));
    let base = capsule();
    let export = tempfile::tempdir().unwrap();
    let out = base.run_args(&om(&["catalog", "export", export.path().to_str().unwrap()]));
    assert_eq!(out.code, 0, "catalog export: {out:?}");
    let src = export.path().join("digitalocean");
    assert!(src.is_dir(), "export has a digitalocean folder: {out:?}");
    let dir = tempfile::tempdir().unwrap();
    let acme = dir.path().join("acme");
    std::fs::create_dir_all(&acme).unwrap();
    let mut token_vars = Vec::new();
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap();
        let mut text = text.replace("\"digitalocean\"", "\"acme\"");
        // Fresh template ids, and credentials under ACME_* names.
        text = text.replace("id = \"do-", "id = \"acme-");
        text = text
            .replace("DIGITALOCEAN_ACCESS_TOKEN", "ACME_ACCESS_TOKEN")
            .replace("DIGITALOCEAN_TOKEN", "ACME_TOKEN");
        text = text.replace("DIGITALOCEAN_API_URL", "ACME_API_URL");
        if text.contains("ACME_TOKEN") {
            token_vars.push("ACME_TOKEN");
        }
        std::fs::write(acme.join(e.file_name()), text).unwrap();
    }
    assert!(
        !token_vars.is_empty(),
        "the copied provider.toml declares its token variable"
    );
    let cat = dir.path().to_str().unwrap().to_string();
    let cli = capsule()
        .env("CAPSULE_CATALOG", &cat)
        .env("CAPSULE_ENDPOINT_ACME", mock.url())
        .env("ACME_TOKEN", TOKEN);
    let mut s = Session::new(cli);
    let provs = s.run(&["providers", "-o", "json"], 0);
    assert!(provs.stdout.contains("\"acme\""), "{}", provs.stdout);
    s.run(&["provider", "verify", "acme"], 0);
    let templates = rows(&s.run(&["templates", "--provider", "acme", "-o", "json"], 0));
    let t = templates
        .iter()
        .find(|t| t["plan"] == "s-1vcpu-1gb")
        .expect("acme's smallest template");
    let tid = t["id"].as_str().unwrap().to_string();
    s.run(
        &[
            "deploy",
            "--provider",
            "acme",
            "--template",
            &tid,
            "--region",
            "nyc1",
            "--name",
            "acme-1",
            "--yes",
            "-o",
            "json",
        ],
        0,
    );
    assert_eq!(mock.count_creates(), 1);
    let n = mock.node_named("acme-1").expect("created at the mock");
    assert_eq!(n.plan, "s-1vcpu-1gb");
    mock.add_node(NodeSpec::named("foreign"));
    let listed = rows(&s.run(&["list", "--provider", "acme", "-o", "json"], 0));
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["provider"], "acme");
    assert_eq!(listed[0]["name"], "acme-1");
    status_until(&mut s, "acme-1", "running");
    s.run(
        &["delete", "acme-1", "--yes", "--wait", "--timeout", "20s"],
        0,
    );
    assert!(mock.node_named("acme-1").is_none());
    s.assert_no_secret(&[TOKEN]);
}

// ---- 6: endpoint override edge ------------------------------------------------------------------

#[test]
fn plain_http_endpoint_is_refused_unless_loopback() {
    let out = capsule()
        .env("CAPSULE_ENDPOINT_DIGITALOCEAN", "http://example.com")
        .env("DIGITALOCEAN_TOKEN", TOKEN)
        .args(om(&["list", "--provider", "digitalocean"]))
        .code(2);
    let msg = out.stderr.to_lowercase();
    assert!(
        msg.contains("http") && msg.contains("loopback"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(&TOKEN[..16]));
}

/// Hivelocity hides a new device from GET until it is provisioned: right after a deploy,
/// `status` says pending (not deleted), and the record keeps its name.
#[test]
fn a_device_hidden_while_provisioning_reads_as_pending() {
    let c = case(Provider::Hivelocity);
    let cfg = config_for(Provider::Hivelocity).with_pending_polls(3);
    let mock = MockServer::start(Provider::Hivelocity, cfg);
    let mut s = Session::for_case(&mock, c);
    let name = "hidden-1";
    // Without --wait: the deploy returns while the device is still hidden.
    let args = [
        "deploy",
        "--provider",
        "hivelocity",
        "--template",
        c.template,
        "--region",
        c.region,
        "--name",
        name,
        "--yes",
    ];
    s.run(&args, 0);
    let first = one(&s.run(&["status", name, "-o", "json"], 0));
    assert_eq!(first["status"], "pending", "{first}");
    assert_eq!(
        first["raw_status"], "provisioning (not listed yet)",
        "{first}"
    );
    let row = status_until(&mut s, name, "running");
    assert_eq!(row["name"], name);
}

/// Deleting a Scaleway server also deletes the volume it leaves behind (a step run per element
/// of the server read before the delete).
#[test]
fn scaleway_delete_cleans_up_the_servers_volumes() {
    let c = case(Provider::Scaleway);
    let mock = MockServer::start(Provider::Scaleway, config_for(Provider::Scaleway));
    let mut s = Session::for_case(&mock, c);
    let name = "vol-1";
    s.run(&deploy_args(c, name, &["--wait", "--timeout", "20s"]), 0);
    let node = mock.node_named(name).expect("created");
    s.run(&["delete", name, "--yes", "--wait", "--timeout", "20s"], 0);
    assert!(mock.node_named(name).is_none(), "the server is gone");
    let volume_deletes: Vec<String> = mock
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE" && r.path.contains("/volumes/"))
        .map(|r| r.path)
        .collect();
    assert_eq!(
        volume_deletes.len(),
        1,
        "one volume deleted: {volume_deletes:?}"
    );
    assert!(
        volume_deletes[0].starts_with(&format!("/instance/v1/zones/{}/volumes/", node.region)),
        "{volume_deletes:?}"
    );
}
