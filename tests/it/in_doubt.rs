//! Creates whose outcome is in doubt, and everything that must not turn one node into two:
//! a 500 after the server created the node (every provider), a failed tag lookup, a 2xx without
//! an id, a failed step after the create, the provider's hidden window, `deploy --resume` and
//! `sync` settling by the OLD tag, a custom tag format, the fleet lease after a `kill -9`, no
//! record left by a deploy that fails its checks, and `sync` failing when an update failed.

use crate::support::mock::{Fault, MockConfig, MockServer, NodeSpec, Op, Provider};
use crate::support::{against, capsule, Capsule, Output};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// The recorded nodes (`inventory list -o json`), deleted ones too with `all`.
#[track_caller]
pub(crate) fn records(c: &Capsule, all: bool) -> Vec<Value> {
    let mut args = vec!["openmesh", "inventory", "list", "-o", "json"];
    if all {
        args.push("--all");
    }
    let out = c.run_args(&args);
    assert_eq!(
        out.code, 0,
        "inventory failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    out.json().as_array().cloned().expect("an array")
}

pub(crate) fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

#[track_caller]
pub(crate) fn exit(out: &Output, code: i32) {
    assert_eq!(
        out.code, code,
        "exited {} (wanted {code})\n--- stdout\n{}\n--- stderr\n{}",
        out.code, out.stdout, out.stderr
    );
}

/// One template of each provider, for a one-node deploy.
fn template_of(p: Provider) -> &'static str {
    match p {
        Provider::DigitalOcean => "do-small",
        Provider::Vultr => "vultr-vc2-1",
        Provider::Linode => "linode-nanode-1gb",
        Provider::Aws => "aws-t3-micro",
        Provider::Equinix => "equinix-c3-small",
        Provider::Hivelocity => "hive-small",
        Provider::Scaleway => "scw-dev1-m",
    }
}

/// An overlay directory with `files` (relative path → text).
fn overlay(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("overlay dir");
    for (rel, body) in files {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    dir
}

/// Equinix Metal is retired in the catalog; this overlay lets the driver's create path run
/// against its mock like any other.
const UNRETIRE_EQUINIX: &str = "[provider.status]\nstate = \"active\"\n";

/// What a one-node deploy of the provider's mock needs beyond the template (as
/// `providers.rs` deploys them): an AMI id the EC2 mock accepts.
fn extra_args(p: Provider) -> &'static [&'static str] {
    match p {
        Provider::Aws => &["--image", "ami-0abcdef1234567890"],
        _ => &[],
    }
}

fn deploy_one(c: &Capsule, p: Provider, name: &str, cat: Option<&Path>) -> Output {
    let mut args = vec![
        "openmesh".to_string(),
        "deploy".into(),
        "--provider".into(),
        p.id().into(),
        "--template".into(),
        template_of(p).into(),
        "--name".into(),
        name.into(),
        "--yes".into(),
        "-o".into(),
        "json".into(),
    ];
    args.extend(extra_args(p).iter().map(|a| a.to_string()));
    if let Some(dir) = cat {
        args.push("--catalog".into());
        args.push(dir.to_string_lossy().into_owned());
    }
    c.run_args(&args)
}

// ---------------------------------------------------------------------------------------------
// 500 after create, on every provider

#[test]
fn a_500_after_the_server_created_the_node_gives_one_node_on_every_provider() {
    let cat = overlay(&[
        ("equinix-metal/active.toml", UNRETIRE_EQUINIX),
        // The Hivelocity mock sells product 525 (as providers.rs deploys it).
        (
            "hivelocity/templates.toml",
            "[[templates]]\nid = \"hive-small\"\nplan = \"525\"\n",
        ),
    ]);
    for p in Provider::ALL {
        let mock = MockServer::start(
            p,
            MockConfig::default()
                .with_faults([Fault::Status500AfterCreate])
                .with_pending_polls(0),
        );
        let c = against(capsule(), &[&mock]);
        // Hivelocity wants a fully qualified host name.
        let out = deploy_one(&c, p, "doubt-1.capsule.local", Some(cat.path()));
        if p == Provider::Hivelocity {
            // Hivelocity does not list a device while it provisions (its hidden window): the
            // lookup after the 500 finds nothing, so the node stays in doubt, the create is not
            // sent again, and a resume once it is listed adopts it.
            exit(&out, 1);
            out.stderr_has("in doubt");
            assert_eq!(text(&records(&c, false)[0], "status"), "in_doubt");
            assert_eq!(mock.count(Op::Create), 1, "{}", mock.log_summary());
            mock.settle();
            let group = text(&out.json(), "group_id").to_string();
            let r = c.run_args(&[
                "openmesh",
                "deploy",
                "--resume",
                &group,
                "--yes",
                "--catalog",
                cat.path().to_str().unwrap(),
            ]);
            exit(&r, 0);
        } else {
            exit(&out, 0);
        }
        assert_eq!(mock.count_creates(), 1, "{p:?}: {}", mock.log_summary());
        assert_eq!(mock.count(Op::Create), 1, "{p:?}: the create was re-sent");
        let recs = records(&c, true);
        assert_eq!(recs.len(), 1, "{p:?}: {recs:?}");
        let server = mock.nodes();
        assert_eq!(server.len(), 1, "{p:?}");
        assert_eq!(text(&recs[0], "provider_id"), server[0].id, "{p:?}");
        assert_eq!(text(&recs[0], "name"), "doubt-1.capsule.local");
        // The 500 was really met.
        assert!(
            mock.requests()
                .iter()
                .any(|r| r.fault == Some(Fault::Status500AfterCreate) && r.status == 500),
            "{p:?}: {}",
            mock.log_summary()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The fleet of 2 that became 4

/// A mock whose creates succeed server-side but answer 500, and whose tag lookups then fail
/// (every list answers 500 until the faults run out): the outcome is in doubt.
fn created_then_unreachable(p: Provider, creates: usize) -> MockServer {
    let mock = MockServer::start(
        p,
        MockConfig::default()
            .with_faults(vec![Fault::Status500AfterCreate; creates])
            .with_pending_polls(0),
    );
    // Each lookup is retried up to 5 times (a read); fail every one of them.
    for _ in 0..5 * creates {
        mock.set_fault_on(Op::List, Fault::Status500);
    }
    mock
}

#[test]
fn a_fleet_of_2_stays_2_when_creates_answer_500_and_lookups_fail() {
    let mock = created_then_unreachable(Provider::DigitalOcean, 2);
    let c = against(capsule(), &[&mock]);
    let out = c.run_args(&[
        "openmesh",
        "deploy",
        "--provider",
        "digitalocean",
        "--template",
        "do-small",
        "--name-prefix",
        "pair",
        "--count",
        "2",
        "--parallel",
        "1",
        "--yes",
        "-o",
        "json",
    ]);
    exit(&out, 1);
    out.stderr_has("in doubt");
    assert_eq!(mock.count_creates(), 2);
    assert_eq!(mock.count(Op::Create), 2, "a doubtful create was re-sent");
    let v = out.json();
    let group = text(&v, "group_id").to_string();
    for n in v["nodes"].as_array().unwrap() {
        assert_eq!(text(n, "status"), "in_doubt", "{n:#}");
        assert!(!n["error"].is_null());
    }
    // Both records are live and keep their names: a new deploy may not take them.
    let recs = records(&c, false);
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert!(recs.iter().all(|r| text(r, "status") == "in_doubt"));
    let table = c.run_args(&["openmesh", "inventory", "list"]);
    exit(&table, 0);
    table.stdout_has("in doubt");
    let taken = c.run_args(&[
        "openmesh",
        "deploy",
        "--provider",
        "digitalocean",
        "--template",
        "do-small",
        "--name",
        "pair-01",
        "--yes",
    ]);
    exit(&taken, 2);
    assert_eq!(mock.count(Op::Create), 2);

    // Resume looks the OLD tags up and adopts both nodes: still 2 at the server.
    let r = c.run_args(&[
        "openmesh", "deploy", "--resume", &group, "--yes", "-o", "json",
    ]);
    exit(&r, 0);
    assert_eq!(mock.count_creates(), 2, "{}", mock.log_summary());
    assert_eq!(mock.count(Op::Create), 2);
    let recs = records(&c, true);
    assert_eq!(recs.len(), 2, "{recs:?}");
    let rec_ids: BTreeSet<&str> = recs.iter().map(|r| text(r, "provider_id")).collect();
    let server_ids: BTreeSet<String> = mock.nodes().into_iter().map(|n| n.id).collect();
    assert_eq!(
        rec_ids,
        server_ids
            .iter()
            .map(String::as_str)
            .collect::<BTreeSet<_>>()
    );
    let again = c.run_args(&["openmesh", "deploy", "--resume", &group, "--yes"]);
    exit(&again, 0);
    again.stdout_has("all 2 nodes already exist");
    assert_eq!(mock.count(Op::Create), 2);
}

#[test]
fn sync_settles_an_in_doubt_node_by_its_tag() {
    let mock = created_then_unreachable(Provider::Linode, 1);
    let c = against(capsule(), &[&mock]);
    exit(&deploy_one(&c, Provider::Linode, "settle-me", None), 1);
    let recs = records(&c, false);
    assert_eq!(text(&recs[0], "status"), "in_doubt");
    let s = c.run_args(&["openmesh", "sync", "-o", "json"]);
    exit(&s, 0);
    let recs = records(&c, false);
    assert_eq!(recs.len(), 1);
    assert_eq!(text(&recs[0], "provider_id"), mock.nodes()[0].id);
    assert_ne!(text(&recs[0], "status"), "in_doubt");
    assert_eq!(mock.count(Op::Create), 1);
}

// ---------------------------------------------------------------------------------------------
// A 2xx without an id; a failed step after the create

#[test]
fn a_2xx_answer_without_a_node_id_is_in_doubt_and_resume_adopts_the_node() {
    // The overlay points the create's node pointer at nothing: the server creates the node and
    // answers 202, but capsule cannot read an id from the answer. The lookup fails too.
    let cat = overlay(&[(
        "digitalocean/blind.toml",
        "[api.operations.create]\nnode = \"/nothing_here\"\n",
    )]);
    let mock = MockServer::start(Provider::DigitalOcean, MockConfig::default());
    for _ in 0..5 {
        mock.set_fault_on(Op::List, Fault::Status500);
    }
    let c = against(capsule(), &[&mock]);
    let out = deploy_one(&c, Provider::DigitalOcean, "blind", Some(cat.path()));
    exit(&out, 1);
    out.stderr_has("names no node id").stderr_has("in doubt");
    let recs = records(&c, false);
    assert_eq!(recs.len(), 1, "the name is kept: {recs:?}");
    assert_eq!(text(&recs[0], "status"), "in_doubt");
    let group = text(&recs[0], "group_id").to_string();
    let r = c.run_args(&[
        "openmesh",
        "deploy",
        "--resume",
        &group,
        "--yes",
        "--catalog",
        cat.path().to_str().unwrap(),
    ]);
    exit(&r, 0);
    assert_eq!(mock.count(Op::Create), 1, "{}", mock.log_summary());
    assert_eq!(mock.count_creates(), 1);
    let recs = records(&c, false);
    assert_eq!(text(&recs[0], "provider_id"), mock.nodes()[0].id);
}

#[test]
fn a_failed_step_after_the_create_keeps_the_node_with_its_id() {
    // Scaleway powers a new server on after creating it; that step fails for good here.
    let mock = MockServer::start(Provider::Scaleway, MockConfig::default());
    for _ in 0..5 {
        mock.set_fault_on(Op::Start, Fault::Status500);
    }
    let c = against(capsule(), &[&mock]);
    let out = deploy_one(&c, Provider::Scaleway, "half-made", None);
    exit(&out, 1);
    out.stderr_has("in doubt");
    assert_eq!(mock.count_creates(), 1);
    let recs = records(&c, false);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(text(&recs[0], "status"), "in_doubt");
    assert_eq!(text(&recs[0], "provider_id"), mock.nodes()[0].id);
    // Resume has nothing to create: the node's id is known.
    let group = text(&recs[0], "group_id").to_string();
    exit(
        &c.run_args(&["openmesh", "deploy", "--resume", &group, "--yes"]),
        0,
    );
    assert_eq!(mock.count(Op::Create), 1);
}

// ---------------------------------------------------------------------------------------------
// The hidden window

#[test]
fn a_5xx_create_is_not_resent_inside_the_hidden_window() {
    // Hivelocity may not list a new device for up to an hour: a 500 create whose tag is not
    // found stays in doubt, and neither the deploy nor a resume sends it again.
    let mock = MockServer::new(Provider::Hivelocity);
    mock.set_fault_on(Op::Create, Fault::Status500);
    let c = against(capsule(), &[&mock]);
    let out = deploy_one(&c, Provider::Hivelocity, "bare.example.com", None);
    exit(&out, 1);
    out.stderr_has("in doubt");
    assert_eq!(mock.count(Op::Create), 1, "{}", mock.log_summary());
    assert!(mock.count(Op::List) >= 1, "the tag was looked up");
    let recs = records(&c, false);
    assert_eq!(text(&recs[0], "status"), "in_doubt");
    let group = text(&recs[0], "group_id").to_string();
    let r = c.run_args(&["openmesh", "deploy", "--resume", &group, "--yes"]);
    exit(&r, 1);
    r.stderr_has("3600 s");
    assert_eq!(mock.count(Op::Create), 1, "resume re-sent the create");
    assert_eq!(text(&records(&c, false)[0], "status"), "in_doubt");
    // sync --forget keeps it too.
    let s = c.run_args(&["openmesh", "sync", "--forget", "--yes"]);
    exit(&s, 0);
    assert_eq!(records(&c, false).len(), 1);
}

// ---------------------------------------------------------------------------------------------
// One tag format

const CUSTOM_TAG: &str = "[api.tagging]\ntag = \"fleet-{{ deploy_id }}\"\n\n[api.node]\ndeploy_id = { list = \"/tags\", where = { \"\" = \"~fleet-\" }, value = \"\" }\n";

#[test]
fn a_custom_tag_format_works_for_create_resume_and_sync() {
    let cat = overlay(&[("digitalocean/tag.toml", CUSTOM_TAG)]);
    let catdir = cat.path().to_str().unwrap().to_string();
    let mock = created_then_unreachable(Provider::DigitalOcean, 2);
    let c = against(capsule(), &[&mock]).env("CAPSULE_CATALOG", &catdir);
    let out = c.run_args(&[
        "openmesh",
        "deploy",
        "--provider",
        "digitalocean",
        "--template",
        "do-small",
        "--name-prefix",
        "ct",
        "--count",
        "2",
        "--parallel",
        "1",
        "--yes",
        "-o",
        "json",
    ]);
    exit(&out, 1);
    let group = text(&out.json(), "group_id").to_string();
    // The server holds the custom tags.
    let recs = records(&c, false);
    for n in mock.nodes() {
        let rec = recs.iter().find(|r| text(r, "name") == n.name).unwrap();
        let want = format!("fleet-{}", text(rec, "deploy_id"));
        assert!(n.tags.contains(&want), "{want} not in {:?}", n.tags);
    }
    exit(
        &c.run_args(&["openmesh", "deploy", "--resume", &group, "--yes"]),
        0,
    );
    assert_eq!(mock.count(Op::Create), 2, "{}", mock.log_summary());
    // sync reads the custom tags back: both nodes in sync, no orphan.
    let s = c.run_args(&["openmesh", "sync", "-o", "json"]);
    exit(&s, 0);
    let findings: Vec<String> = s
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| text(r, "finding").to_string())
        .collect();
    assert!(!findings.iter().any(|f| f == "orphan"), "{findings:?}");
    // The inventory shows the custom tag.
    let show = c.run_args(&["openmesh", "inventory", "show", "ct-01", "-o", "json"]);
    exit(&show, 0);
    assert!(text(&show.json(), "tag").starts_with("fleet-"));
}

#[test]
fn a_tag_format_that_cannot_be_read_back_is_refused() {
    for (body, needle) in [
        (
            "[api.tagging]\ntag = \"fleet-{{ deploy_id }}\"\n",
            "does not match the tags capsule writes",
        ),
        ("[api.tagging]\ntag = \"{{ name }}\"\n", "may template only"),
        ("[api.tagging]\ntag = \"{{ deploy_id }}\"\n", "literal text"),
    ] {
        let cat = overlay(&[("digitalocean/tag.toml", body)]);
        let out = capsule()
            .args([
                "openmesh",
                "catalog",
                "validate",
                cat.path().to_str().unwrap(),
            ])
            .run();
        exit(&out, 2);
        assert!(
            out.stderr.contains(needle) || out.stdout.contains(needle),
            "{body}: {}{}",
            out.stdout,
            out.stderr
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Nothing recorded when a check fails

#[test]
fn a_deploy_that_fails_its_checks_records_nothing() {
    let mock = MockServer::new(Provider::DigitalOcean);
    let base = [
        "openmesh",
        "deploy",
        "--provider",
        "digitalocean",
        "--template",
        "do-small",
        "--name-prefix",
        "ph",
        "--count",
        "3",
        "--yes",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter()
            .chain(extra.iter())
            .map(|s| s.to_string())
            .collect()
    };
    // No credentials at all.
    let c = capsule();
    let out = c.run_args(&with(&[]));
    assert_ne!(out.code, 0);
    assert!(records(&c, true).is_empty(), "no token: {}", out.stderr);
    // A credentials file that does not parse.
    let c = capsule();
    std::fs::write(c.home().join("credentials.toml"), "this is = = not toml").unwrap();
    let out = c.run_args(&with(&[]));
    assert_ne!(out.code, 0);
    assert!(records(&c, true).is_empty(), "bad file: {}", out.stderr);
    // A bad endpoint (plain http off loopback).
    let c = against(capsule(), &[&mock]).env("CAPSULE_ENDPOINT_DIGITALOCEAN", "http://192.0.2.1:9");
    let out = c.run_args(&with(&[]));
    exit(&out, 2);
    assert!(records(&c, true).is_empty(), "bad endpoint: {}", out.stderr);
    // A --timeout that does not parse, or is absurd.
    for t in ["soon", "99999999999999999999s"] {
        let c = against(capsule(), &[&mock]);
        let out = c.run_args(&with(&["--wait", "--timeout", t]));
        exit(&out, 2);
        assert!(
            records(&c, true).is_empty(),
            "--timeout {t}: {}",
            out.stderr
        );
    }
    // An unknown region, an unreadable --user-data.
    for extra in [
        &["--region", "mars"][..],
        &["--user-data", "/nonexistent/capsule-ud"][..],
    ] {
        let c = against(capsule(), &[&mock]);
        let out = c.run_args(&with(extra));
        exit(&out, 2);
        assert!(records(&c, true).is_empty(), "{extra:?}: {}", out.stderr);
    }
    assert_eq!(mock.count(Op::Create), 0);
}

// ---------------------------------------------------------------------------------------------
// Absurd numbers

#[test]
fn absurd_numbers_are_bad_input_not_a_crash() {
    for args in [
        &["openmesh", "templates", "--request-timeout", "1e20"][..],
        &["openmesh", "templates", "--connect-timeout", "1e300"][..],
        &["openmesh", "templates", "--request-timeout=-3"][..],
        &["openmesh", "templates", "--connect-timeout", "NaN"][..],
        &["openmesh", "history", "--since", "99999999999999999999d"][..],
        &["openmesh", "cost", "--since", "99999999999999999999w"][..],
        &["openmesh", "cost", "--since", "1e30w"][..],
    ] {
        let out = capsule().args(args).run();
        exit(&out, 2);
        assert!(
            !out.stderr.contains("panicked") && !out.stderr.contains("internal error"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stderr.lines().count() <= 4, "{args:?}: {}", out.stderr);
    }
}

// ---------------------------------------------------------------------------------------------
// sync fails when an update failed

#[test]
fn sync_exits_1_and_names_an_update_it_could_not_write() {
    // Two records named `twin`: one forgotten (deleted) whose node is back at the provider, one
    // live. Resurrecting the first would give two live nodes one name, so that update fails.
    let mock = MockServer::new(Provider::DigitalOcean);
    let live_id = mock.add_node(NodeSpec {
        tags: vec!["capsule".into(), "capsule-aaaaaaaaaaaa".into()],
        ..NodeSpec::named("twin")
    });
    let back_id = mock.add_node(NodeSpec {
        tags: vec!["capsule".into(), "capsule-bbbbbbbbbbbb".into()],
        ..NodeSpec::named("twin")
    });
    let c = against(capsule(), &[&mock]);
    let csv = format!(
        "deploy_id,group_id,name,provider,provider_id,template,plan,region,status,price_hourly,price_monthly,currency,recorded_at,deleted_at\n\
         aaaaaaaaaaaa,aaaaaaaaaaaa,twin,digitalocean,{live_id},do-small,s-1vcpu-1gb,nyc1,running,0.00893,6,USD,2024-05-01T00:00:00Z,\n\
         bbbbbbbbbbbb,bbbbbbbbbbbb,twin,digitalocean,{back_id},do-small,s-1vcpu-1gb,nyc1,deleted,0.00893,6,USD,2024-04-01T00:00:00Z,2024-04-02T00:00:00Z\n"
    );
    let file = c.home().join("nodes.csv");
    std::fs::write(&file, csv).unwrap();
    let imp = c.run_args(&["openmesh", "inventory", "import", file.to_str().unwrap()]);
    exit(&imp, 0);
    let s = c.run_args(&["openmesh", "sync"]);
    exit(&s, 1);
    s.stderr_has("twin")
        .stderr_has("bbbbbbbbbbbb")
        .stderr_has("not updated");
}

// ---------------------------------------------------------------------------------------------
// The fleet lease: kill -9 with creates in flight, then resume at once

fn spawn_fleet(c: &Capsule, mock: &MockServer, n: usize, parallel: usize) -> std::process::Child {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_capsule"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CAPSULE_HOME", c.home())
        .env("HOME", c.home())
        .env("NO_COLOR", "1")
        .env("CAPSULE_POLL_INTERVAL_MS", "20")
        .env("CAPSULE_BACKOFF_MS", "5")
        .env("CAPSULE_NO_SSH_KEY", "1");
    for (k, v) in mock.env() {
        cmd.env(k, v);
    }
    let (n, parallel) = (n.to_string(), parallel.to_string());
    cmd.args([
        "openmesh",
        "deploy",
        "--provider",
        "linode",
        "--template",
        "linode-nanode-1gb",
        "--name-prefix",
        "lease",
        "--count",
        &n,
        "--parallel",
        &parallel,
        "--yes",
    ])
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    cmd.spawn().expect("spawn capsule")
}

/// Wait until the mock has seen `k` create requests (the child must still be running).
fn await_creates(mock: &MockServer, child: &mut std::process::Child, k: usize) {
    let started = Instant::now();
    while mock.count(Op::Create) < k {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no creates after 30 s:\n{}",
            mock.log_summary()
        );
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("capsule ended ({status}) too early");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn group_of(c: &Capsule) -> String {
    let recs = records(c, false);
    let groups: BTreeSet<String> = recs
        .iter()
        .map(|r| text(r, "group_id").to_string())
        .collect();
    assert_eq!(groups.len(), 1, "{groups:?}");
    groups.into_iter().next().unwrap()
}

#[test]
fn resume_right_after_kill_9_does_not_duplicate_creates_in_flight() {
    const N: usize = 8;
    // Every request takes 800 ms before the server acts on it: at the kill, the creates sent
    // last are still in flight and land after it.
    let mock = MockServer::start(
        Provider::Linode,
        MockConfig::default()
            .with_latency(Duration::from_millis(800))
            .with_pending_polls(0),
    );
    let c = against(capsule(), &[&mock]);
    let mut child = spawn_fleet(&c, &mock, N, 4);
    await_creates(&mock, &mut child, 4);
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    let group = group_of(&c);
    // At once: the resume must wait for the in-flight creates, then find them by tag.
    let r = c.run_args(&["openmesh", "deploy", "--resume", &group, "--yes"]);
    exit(&r, 0);
    r.stderr_has("in flight");
    let names: Vec<String> = mock.nodes().into_iter().map(|n| n.name).collect();
    let distinct: BTreeSet<&String> = names.iter().collect();
    assert_eq!(mock.count_creates(), N, "{names:?}\n{}", mock.log_summary());
    assert_eq!(distinct.len(), N, "{names:?}");
    assert_eq!(records(&c, false).len(), N);
}

#[test]
fn a_second_process_cannot_resume_a_fleet_being_deployed() {
    let mock = MockServer::start(
        Provider::Linode,
        MockConfig::default()
            .with_latency(Duration::from_millis(300))
            .with_pending_polls(0),
    );
    let c = against(capsule(), &[&mock]);
    let mut child = spawn_fleet(&c, &mock, 6, 1);
    await_creates(&mock, &mut child, 1);
    let group = group_of(&c);
    let r = c.run_args(&["openmesh", "deploy", "--resume", &group, "--yes"]);
    let status = child.wait().expect("deploy ends");
    assert!(status.success(), "the deploy failed: {status}");
    exit(&r, 1);
    r.stderr_has("is being deployed by capsule process");
    assert_eq!(mock.count_creates(), 6, "{}", mock.log_summary());
}
