//! Fleet operations against the provider mocks: bulk start/stop/delete (by list, group, glob),
//! the confirmation text, partial failure and its retry command; no hidden waits (one request
//! for a DigitalOcean stop; Scaleway's volume cleanup recorded, then finished); honest answers
//! (not found exits 1, a re-delete is a no-op); requests as the official specs define them.

use crate::support::mock::{Fault, MockConfig, MockServer, NodeSpec, Op, Provider};
use crate::support::{capsule, Capsule, Output};
use serde_json::Value;

fn om(args: &[&str]) -> Vec<String> {
    std::iter::once("openmesh")
        .chain(args.iter().copied())
        .map(String::from)
        .collect()
}

fn cli_for(mock: &MockServer) -> Capsule {
    let mut c = capsule();
    for (k, v) in mock.env() {
        c = c.env(&k, v);
    }
    c
}

#[track_caller]
fn run(cli: &Capsule, args: &[&str], want: i32) -> Output {
    let out = cli.run_args(&om(args));
    assert_eq!(
        out.code, want,
        "capsule {args:?} exited {} (wanted {want})\n--- stdout\n{}\n--- stderr\n{}",
        out.code, out.stdout, out.stderr
    );
    out
}

fn rows(out: &Output) -> Vec<Value> {
    match out.json() {
        Value::Array(a) => a,
        other => panic!("expected a JSON array, got {other}"),
    }
}

/// The recorded nodes (deleted ones too), by name.
fn inventory(cli: &Capsule) -> Vec<Value> {
    rows(&run(cli, &["inventory", "--all", "-o", "json"], 0))
}

fn record<'a>(inv: &'a [Value], name: &str) -> &'a Value {
    inv.iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no record {name} in {inv:?}"))
}

fn do_mock() -> MockServer {
    MockServer::start(
        Provider::DigitalOcean,
        MockConfig::default().with_pending_polls(0),
    )
}

/// A DigitalOcean fleet `web-01…web-0N` and its group id.
fn do_fleet(cli: &Capsule, n: u32) -> String {
    run(
        cli,
        &[
            "deploy",
            "--provider",
            "digitalocean",
            "--template",
            "do-small",
            "--region",
            "nyc1",
            "--name",
            "web",
            "--count",
            &n.to_string(),
            "--yes",
        ],
        0,
    );
    let inv = inventory(cli);
    let group = record(&inv, "web-01")["group_id"]
        .as_str()
        .expect("a group id")
        .to_string();
    assert!(inv
        .iter()
        .filter(|r| r["name"].as_str().is_some_and(|n| n.starts_with("web-")))
        .all(|r| r["group_id"] == group.as_str()));
    group
}

fn do_single(cli: &Capsule, name: &str) {
    run(
        cli,
        &[
            "deploy",
            "--provider",
            "digitalocean",
            "--template",
            "do-small",
            "--region",
            "nyc1",
            "--name",
            name,
            "--yes",
        ],
        0,
    );
}

#[test]
fn bulk_delete_by_group_glob_and_list_with_its_confirmation() {
    let mock = do_mock();
    let cli = cli_for(&mock);
    let group = do_fleet(&cli, 3);
    do_single(&cli, "db-1");
    mock.settle();

    // Off a terminal without --yes: the plan is shown and nothing is sent.
    let refused = run(&cli, &["delete", "--group", &group], 2);
    let err = &refused.stderr;
    assert!(
        err.contains("Delete 3 nodes — their disks and data go with them:"),
        "{err}"
    );
    for n in ["web-01", "web-02", "web-03"] {
        assert!(err.contains(n), "{n} listed: {err}");
    }
    assert!(!err.contains("db-1"), "only the fleet: {err}");
    assert!(
        err.contains("nyc1") && err.contains("digitalocean:"),
        "{err}"
    );
    // do-small is $0.00893/h (catalog): three of them.
    assert!(err.contains("Billing of $0.0268/h stops."), "{err}");
    assert!(err.contains("--yes"), "{err}");
    mock.assert_not_called(Op::Delete);

    // By glob: two of the fleet.
    let out = rows(&run(
        &cli,
        &["delete", "--name", "web-0[12]", "--yes", "-o", "json"],
        0,
    ));
    let names: Vec<&str> = out.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["web-01", "web-02"]);
    assert!(out.iter().all(|r| r["status"] == "deleting"), "{out:?}");
    assert_eq!(mock.count(Op::Delete), 2);

    // By group: web-03, and the two whose deletion was asked before are now gone.
    let out = rows(&run(
        &cli,
        &["delete", "--group", &group, "--yes", "-o", "json"],
        0,
    ));
    let got: Vec<(&str, &str)> = out
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["result"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("web-01", "already gone"),
            ("web-02", "already gone"),
            ("web-03", "deletion started")
        ]
    );
    let inv = inventory(&cli);
    assert_eq!(record(&inv, "web-01")["status"], "deleted");
    assert_eq!(record(&inv, "web-03")["status"], "deleting");

    // By list, table output.
    let out = run(&cli, &["delete", "db-1", "--yes"], 0);
    assert!(out.stdout.contains("db-1 (digitalocean:"), "{}", out.stdout);
    assert!(out.stdout.contains("deletion started"), "{}", out.stdout);
    assert!(mock.nodes().is_empty(), "{:?}", mock.nodes());
}

#[test]
fn a_partial_failure_exits_1_with_the_command_that_retries_the_rest() {
    let mock = do_mock();
    let cli = cli_for(&mock);
    let group = do_fleet(&cli, 3);
    mock.settle();
    // One at a time, in fleet order: web-01's delete keeps failing (every retry answers 500).
    for _ in 0..5 {
        mock.set_fault_on(Op::Delete, Fault::Status500);
    }
    let out = run(
        &cli,
        &["delete", "--group", &group, "--yes", "--parallel", "1"],
        1,
    );
    assert!(
        out.stdout.contains("web-01") && out.stdout.contains("failed"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(
            "1 of 3 nodes failed; retry them with:\n  capsule openmesh delete web-01 --yes"
        ),
        "{}",
        out.stderr
    );
    let inv = inventory(&cli);
    assert_eq!(
        record(&inv, "web-01")["status"],
        "pending",
        "untouched since the deploy"
    );
    assert_eq!(record(&inv, "web-02")["status"], "deleting");
    assert_eq!(mock.nodes().len(), 1);

    run(&cli, &["delete", "web-01", "--yes"], 0);
    assert!(mock.nodes().is_empty());
}

#[test]
fn bulk_stop_and_start_confirm_and_report_each_node() {
    let mock = do_mock();
    let cli = cli_for(&mock);
    let group = do_fleet(&cli, 2);
    mock.settle();
    let refused = run(&cli, &["stop", "--group", &group], 2);
    assert!(
        refused.stderr.contains("Stop 2 nodes:"),
        "{}",
        refused.stderr
    );
    // DigitalOcean bills stopped droplets: the spend continues.
    assert!(
        refused.stderr.contains(
            "Billing of $0.0000/h stops; $0.0179/h continues (digitalocean bill stopped nodes)."
        ),
        "{}",
        refused.stderr
    );
    let out = rows(&run(
        &cli,
        &[
            "stop",
            "--group",
            &group,
            "--yes",
            "--wait",
            "--timeout",
            "20s",
            "-o",
            "json",
        ],
        0,
    ));
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|r| r["status"] == "stopped"), "{out:?}");
    let out = rows(&run(
        &cli,
        &["start", "web-01", "web-02", "--yes", "-o", "json"],
        0,
    ));
    assert!(
        out.iter().all(|r| r["result"] == "asked to be started"),
        "{out:?}"
    );
    // Selection needs something to select.
    let bad = run(&cli, &["stop", "--provider", "digitalocean"], 2);
    assert!(bad.stderr.contains("--all"), "{}", bad.stderr);
    let bad = run(&cli, &["delete"], 2);
    assert!(bad.stderr.contains("--group GROUP_ID"), "{}", bad.stderr);
    let bad = run(&cli, &["delete", "--group", "nosuchgroup", "--yes"], 2);
    assert!(
        bad.stderr.contains("no fleet 'nosuchgroup'"),
        "{}",
        bad.stderr
    );
}

#[test]
fn provider_all_deletes_every_recorded_node_there() {
    let mock = do_mock();
    let cli = cli_for(&mock);
    do_fleet(&cli, 2);
    do_single(&cli, "solo");
    mock.add_node(NodeSpec::named("foreign"));
    mock.settle();
    let out = rows(&run(
        &cli,
        &[
            "delete",
            "--provider",
            "digitalocean",
            "--all",
            "--yes",
            "-o",
            "json",
        ],
        0,
    ));
    assert_eq!(out.len(), 3, "{out:?}");
    let left: Vec<String> = mock.nodes().into_iter().map(|n| n.name).collect();
    assert_eq!(left, ["foreign"], "a node capsule did not record stays");
}

#[test]
fn digitalocean_stop_returns_after_one_request() {
    let mock = do_mock();
    let cli = cli_for(&mock);
    do_single(&cli, "one");
    mock.settle();
    mock.clear_requests();
    let out = run(&cli, &["stop", "one"], 0);
    assert!(out.stdout.contains("asked to be stopped"), "{}", out.stdout);
    let sent: Vec<_> = mock.requests();
    assert_eq!(
        sent.iter().filter(|r| r.op == Op::Stop).count(),
        1,
        "{}",
        mock.log_summary()
    );
    assert_eq!(
        mock.count(Op::Poll),
        0,
        "no action polling:\n{}",
        mock.log_summary()
    );
    assert_eq!(sent.len(), 1, "{}", mock.log_summary());
    // With --wait the action is followed to the end.
    mock.settle();
    run(&cli, &["start", "one", "--wait", "--timeout", "20s"], 0);
    assert!(mock.count(Op::Poll) >= 1, "{}", mock.log_summary());
}

#[test]
fn scaleway_delete_records_the_volume_cleanup_then_finishes_it() {
    let mock = MockServer::start(
        Provider::Scaleway,
        MockConfig::default().with_pending_polls(0),
    );
    let cli = cli_for(&mock);
    run(
        &cli,
        &[
            "deploy",
            "--provider",
            "scaleway",
            "--template",
            "scw-dev1-s",
            "--region",
            "par1",
            "--name",
            "vol-1",
            "--yes",
            "--wait",
            "--timeout",
            "20s",
        ],
        0,
    );
    let id = mock.node_named("vol-1").expect("created").id;
    mock.clear_requests();
    let out = run(&cli, &["delete", "vol-1", "--yes"], 0);
    assert!(
        out.stdout
            .contains("deletion started; 1 cleanup(s) pending"),
        "{}",
        out.stdout
    );
    // One read (the volumes), one terminate; no wait for the server to go.
    let sent = mock.requests();
    assert_eq!(sent.len(), 2, "{}", mock.log_summary());
    assert_eq!(sent[1].json()["action"], "terminate");
    let pending = rows(&run(&cli, &["inventory", "cleanups", "-o", "json"], 0));
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["node_ref"], format!("scaleway:{id}"));
    assert!(pending[0]["what"]
        .as_str()
        .unwrap()
        .starts_with("delete_volume "));
    let listed = run(&cli, &["inventory"], 0);
    assert!(
        listed.stderr.contains("1 pending cleanup(s)"),
        "{}",
        listed.stderr
    );

    // While the server still exists, the cleanup waits.
    run(&cli, &["sync", "--provider", "scaleway"], 0);
    assert_eq!(
        rows(&run(&cli, &["inventory", "cleanups", "-o", "json"], 0)).len(),
        1
    );
    assert!(!mock
        .requests()
        .iter()
        .any(|r| r.method == "DELETE" && r.path.contains("/volumes/")));

    // Once it is gone, the next command on the provider finishes it.
    mock.settle();
    assert!(mock.node(&id).is_none());
    let synced = run(&cli, &["sync", "--provider", "scaleway", "--forget"], 0);
    assert!(
        synced
            .stderr
            .contains("finished 1 pending cleanup(s) at scaleway"),
        "{}",
        synced.stderr
    );
    let deletes: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE" && r.path.contains("/volumes/"))
        .collect();
    assert_eq!(deletes.len(), 1, "{}", mock.log_summary());
    assert!(rows(&run(&cli, &["inventory", "cleanups", "-o", "json"], 0)).is_empty());
    let history = run(&cli, &["inventory", "show", "vol-1"], 0);
    assert!(
        history.stdout.contains("cleanup done: delete_volume"),
        "{}",
        history.stdout
    );
}

#[test]
fn a_node_the_provider_does_not_have_is_not_found_exit_1() {
    let mock = do_mock();
    let cli = cli_for(&mock);
    for cmd in [
        &["status", "digitalocean:424242"][..],
        &["stop", "digitalocean:424242"][..],
        &["start", "digitalocean:424242"][..],
        &["delete", "digitalocean:424242", "--yes"][..],
    ] {
        let out = run(&cli, cmd, 1);
        assert!(
            out.stderr.contains("not found at digitalocean"),
            "{cmd:?}: {}",
            out.stderr
        );
        assert!(!out.stdout.contains("deletion started"), "{}", out.stdout);
    }
    assert!(mock
        .requests_for(Op::Delete)
        .iter()
        .all(|r| r.status == 404));
}

#[test]
fn deleting_a_deleted_node_is_a_no_op_that_says_so() {
    let mock = do_mock();
    let cli = cli_for(&mock);
    do_single(&cli, "gone-1");
    mock.settle();
    run(
        &cli,
        &["delete", "gone-1", "--yes", "--wait", "--timeout", "20s"],
        0,
    );
    let before = record(&inventory(&cli), "gone-1").clone();
    assert_eq!(before["status"], "deleted");
    let deletes = mock.count(Op::Delete);
    let cost_before = run(&cli, &["cost", "-o", "json"], 0).stdout;

    let out = run(&cli, &["delete", "gone-1", "--yes"], 0);
    assert!(out.stdout.contains("already deleted"), "{}", out.stdout);
    assert_eq!(mock.count(Op::Delete), deletes, "no request");
    let after = record(&inventory(&cli), "gone-1").clone();
    assert_eq!(before, after, "the record is left alone");
    assert_eq!(run(&cli, &["cost", "-o", "json"], 0).stdout, cost_before);
    // status of it says deleted (capsule deleted it), exit 0.
    let st = rows(&run(&cli, &["status", "gone-1", "-o", "json"], 0));
    assert_eq!(st[0]["status"], "deleted");
}

#[test]
fn commands_that_need_a_provider_exit_2_when_none_has_credentials() {
    let cli = capsule();
    for cmd in [&["list"][..], &["sync"][..]] {
        let out = run(&cli, cmd, 2);
        assert!(
            out.stderr.contains("provider configure"),
            "{cmd:?}: {}",
            out.stderr
        );
    }
}

#[test]
fn linode_shutdown_has_no_body_and_vultr_lists_without_the_deprecated_tag() {
    let mock = MockServer::start(
        Provider::Linode,
        MockConfig::default().with_pending_polls(0),
    );
    let cli = cli_for(&mock);
    let id = mock.add_node(NodeSpec::named("lin").tag("capsule"));
    run(&cli, &["stop", &format!("linode:{id}")], 0);
    let stop = mock.requests_for(Op::Stop);
    assert_eq!(stop.len(), 1);
    assert!(stop[0].body.is_empty(), "body: {:?}", stop[0].body_text());

    let mock = MockServer::start(Provider::Vultr, MockConfig::default());
    let cli = cli_for(&mock);
    mock.add_node(
        NodeSpec::named("mine")
            .tag("capsule")
            .tag("capsule-0a1b2c3d4e5f"),
    );
    mock.add_node(NodeSpec::named("theirs"));
    let listed = rows(&run(
        &cli,
        &["list", "--provider", "vultr", "-o", "json"],
        0,
    ));
    let names: Vec<&str> = listed.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["mine"], "filtered client-side");
    let lists = mock.requests_for(Op::List);
    assert!(!lists.is_empty());
    assert!(
        lists.iter().all(|r| r.q("tag").is_none()),
        "{}",
        mock.log_summary()
    );
}

// ---- expiry ------------------------------------------------------------------------------------

/// Move a node's recorded expiry (as if time had passed).
fn set_expiry(cli: &Capsule, name: &str, at: &str) {
    let inv = inventory(cli);
    let d = record(&inv, name)["deploy_id"]
        .as_str()
        .unwrap()
        .to_string();
    let store = capsule::state::open(cli.home()).expect("store");
    store.set_expiries(&[(d, at.to_string())]).expect("expiry");
}

#[test]
fn ttl_is_shown_and_reap_deletes_only_expired_nodes() {
    let mock = do_mock();
    let cli = cli_for(&mock);
    for (name, ttl) in [("old", Some("8h")), ("young", Some("8h")), ("keep", None)] {
        let mut args = vec![
            "deploy",
            "--provider",
            "digitalocean",
            "--template",
            "do-small",
            "--region",
            "nyc1",
            "--name",
            name,
            "--yes",
        ];
        if let Some(t) = ttl {
            args.extend(["--ttl", t]);
        }
        run(&cli, &args, 0);
    }
    mock.settle();
    let bad = run(
        &cli,
        &["deploy", "--template", "do-small", "--ttl", "soon", "--yes"],
        2,
    );
    assert!(bad.stderr.contains("is not a duration"), "{}", bad.stderr);

    // Time left in list and inventory.
    let table = run(&cli, &["list"], 0).stdout;
    let left = |t: &str| t.contains("in 7h") || t.contains("in 8h");
    assert!(table.contains("EXPIRES") && left(&table), "{table}");
    let inv = run(&cli, &["inventory"], 0).stdout;
    assert!(inv.contains("EXPIRES") && left(&inv), "{inv}");
    let listed = rows(&run(&cli, &["list", "-o", "json"], 0));
    let keep = listed.iter().find(|r| r["name"] == "keep").unwrap();
    assert!(keep["expires_at"].is_null());
    let young = listed.iter().find(|r| r["name"] == "young").unwrap();
    assert!(young["expires_at"].is_string());

    set_expiry(&cli, "old", "2020-01-01T00:00:00Z");
    let due = rows(&run(&cli, &["reap", "--dry-run", "-o", "json"], 0));
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0]["name"], "old");
    let refused = run(&cli, &["reap"], 2);
    assert!(
        refused
            .stderr
            .contains("Delete 1 node (their --ttl ran out)"),
        "{}",
        refused.stderr
    );
    mock.assert_not_called(Op::Delete);

    let out = run(&cli, &["reap", "--yes"], 0);
    assert!(out.stdout.contains("old (digitalocean:"), "{}", out.stdout);
    assert_eq!(mock.count(Op::Delete), 1);
    let names: Vec<String> = mock.nodes().into_iter().map(|n| n.name).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"young".to_string()) && names.contains(&"keep".to_string()));
    let history = run(&cli, &["inventory", "show", "old"], 0).stdout;
    assert!(
        history.contains("reaped: expired at 2020-01-01T00:00:00Z"),
        "{history}"
    );
    // Nothing else is due.
    let again = run(&cli, &["reap", "--yes"], 0);
    assert!(again.stderr.contains("nothing to reap"), "{}", again.stderr);
}

// ---- SSH ---------------------------------------------------------------------------------------

const PUB_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxQkz0R1cM3L7n8cMOCKtestkeyFLEETops0000 me@laptop";

/// A DigitalOcean deploy that may need a key: the refusal of keyless deploys is on.
fn keyed(cli: Capsule) -> Capsule {
    cli.env("CAPSULE_NO_SSH_KEY", "false")
}

fn do_deploy_args<'a>(name: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "deploy",
        "--provider",
        "digitalocean",
        "--template",
        "do-small",
        "--region",
        "nyc1",
        "--name",
        name,
        "--yes",
    ];
    v.extend_from_slice(extra);
    v
}

#[test]
fn a_key_file_is_registered_once_then_reused() {
    let mock = do_mock();
    let cli = keyed(cli_for(&mock));
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("fleet.pub");
    std::fs::write(&key, format!("{PUB_KEY}\n")).unwrap();
    let key = key.to_str().unwrap();
    run(&cli, &do_deploy_args("k1", &["--ssh-key", key]), 0);
    assert_eq!(mock.keys().len(), 1, "registered");
    let id = mock.keys()[0]["id"].clone();
    // A second deploy (and a fleet) finds it by its key material: nothing stored again.
    run(&cli, &do_deploy_args("k2", &["--ssh-key", key]), 0);
    run(
        &cli,
        &do_deploy_args("kf", &["--ssh-key", key, "--count", "2"]),
        0,
    );
    assert_eq!(mock.keys().len(), 1, "{:?}", mock.keys());
    let creates = mock.requests_for(Op::Create);
    assert_eq!(creates.len(), 4);
    for c in &creates {
        // The spec takes ids as integers or strings.
        assert_eq!(
            c.json()["ssh_keys"],
            serde_json::json!([id.to_string()]),
            "{}",
            c.body_text()
        );
    }
    let posts = mock
        .requests_for(Op::Key)
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 1);
    // A NAME or ID goes through as it is.
    run(&cli, &do_deploy_args("k3", &["--ssh-key", "512190"]), 0);
    let last = mock.requests_for(Op::Create).pop().unwrap();
    assert_eq!(last.json()["ssh_keys"], serde_json::json!(["512190"]));
}

#[test]
fn the_default_key_is_used_and_a_keyless_deploy_is_refused_unless_asked() {
    let mock = do_mock();
    let cli = keyed(cli_for(&mock));
    let refused = run(&cli, &do_deploy_args("nokey", &[]), 2);
    assert!(
        refused.stderr.contains("no SSH key") && refused.stderr.contains("--no-ssh-key"),
        "{}",
        refused.stderr
    );
    mock.assert_not_called(Op::Create);
    run(&cli, &do_deploy_args("nokey", &["--no-ssh-key"]), 0);
    assert_eq!(
        mock.requests_for(Op::Create)[0].json()["ssh_keys"],
        serde_json::json!([])
    );

    // ~/.ssh/id_ed25519.pub is the default.
    let ssh = cli.home().join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::write(ssh.join("id_ed25519.pub"), PUB_KEY).unwrap();
    run(&cli, &do_deploy_args("dflt", &[]), 0);
    assert_eq!(mock.keys().len(), 1);
    assert_eq!(mock.keys()[0]["public_key"], PUB_KEY);
}

#[test]
fn a_missing_key_file_is_bad_input_and_never_sent_as_an_id() {
    let mock = do_mock();
    let cli = keyed(cli_for(&mock));
    for missing in ["~/.ssh/nope.pub", "./nope.pub", "/no/such/key.pub"] {
        let out = run(&cli, &do_deploy_args("m", &["--ssh-key", missing]), 2);
        assert!(
            out.stderr
                .contains(&format!("--ssh-key {missing}: no such file")),
            "{}",
            out.stderr
        );
    }
    assert!(mock.requests().is_empty(), "{}", mock.log_summary());
    // Scaleway takes its project's keys: an explicit key is refused, clearly.
    let out = run(
        &cli,
        &[
            "deploy",
            "--provider",
            "scaleway",
            "--template",
            "scw-dev1-s",
            "--region",
            "par1",
            "--name",
            "s",
            "--yes",
            "--ssh-key",
            "my-key",
        ],
        2,
    );
    assert!(
        out.stderr.contains("takes none per server"),
        "{}",
        out.stderr
    );
}

#[test]
fn ssh_runs_the_system_ssh_with_address_user_and_key() {
    let mock = do_mock();
    let cli = cli_for(&mock);
    do_single(&cli, "box");
    mock.settle();
    run(&cli, &["status", "box"], 0);
    let ip = mock.node_named("box").unwrap().ip.unwrap();
    // A fake `ssh` first on PATH records its arguments.
    let bin = tempfile::tempdir().unwrap();
    let log = bin.path().join("argv");
    let fake = bin.path().join("ssh");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > '{}'\nexit 7\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ssh_dir = cli.home().join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    std::fs::write(ssh_dir.join("id_ed25519.pub"), PUB_KEY).unwrap();
    std::fs::write(ssh_dir.join("id_ed25519"), "private").unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let cli = cli.env("PATH", &path);
    let out = cli.run_args(&om(&["ssh", "box", "--", "uptime", "-p"]));
    assert_eq!(out.code, 7, "ssh's exit status: {out:?}");
    let argv = std::fs::read_to_string(&log).unwrap();
    let argv: Vec<&str> = argv.lines().collect();
    let key = ssh_dir.join("id_ed25519");
    assert_eq!(
        argv,
        [
            "-i",
            key.to_str().unwrap(),
            "-o",
            "StrictHostKeyChecking=accept-new",
            &format!("root@{ip}"),
            "--",
            "uptime",
            "-p"
        ]
    );
    // AWS's Ubuntu images log in as `ubuntu` (catalog): an unknown node is bad input.
    let out = cli.run_args(&om(&["ssh", "nosuchnode"]));
    assert_eq!(out.code, 2, "{out:?}");
}

#[test]
fn ssh_to_an_xnode_says_there_is_no_ssh_instead_of_trying() {
    let mock = do_mock();
    let cli = cli_for(&mock);
    do_single(&cli, "xn");
    let d = record(&inventory(&cli), "xn")["deploy_id"]
        .as_str()
        .unwrap()
        .to_string();
    let store = capsule::state::open(cli.home()).expect("store");
    store
        .record_action(
            Some(&d),
            capsule::state::Action::Xnode,
            capsule::state::Outcome::Ok,
            "stage 3 installing: the installer runs",
        )
        .unwrap();
    let out = run(&cli, &["ssh", "xn"], 2);
    assert!(out.stderr.contains("is an xNode"), "{}", out.stderr);
}
