//! Hostile and broken input from the user's side (issue 9): node names that try to reach a
//! shell, catalogs that spin or loop, files that never end, CSVs that try to run formulas or
//! slip past the checks a deploy makes.

use crate::support::capsule;
use crate::support::mock::{MockServer, NodeSpec, Provider};
use serde_json::Value;
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const HEADER: &str =
    "deploy_id,name,provider,template,plan,region,status,price_hourly,price_monthly,currency";
const GOOD: &str = "g1,good,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,running,0.007,5,USD";

/// Import `text`; require exit 2, a stderr holding every `needles`, and an empty inventory.
#[track_caller]
fn import_refused(text: &str, needles: &[&str]) -> String {
    let files = tempfile::tempdir().unwrap();
    let path = write(files.path(), "nodes.csv", text);
    let c = capsule();
    let r = c.run_args(&["openmesh", "inventory", "import", &path]);
    assert_eq!(r.code, 2, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    for n in needles {
        assert!(r.stderr.contains(n), "stderr lacks {n:?}:\n{}", r.stderr);
    }
    let all = c
        .run_args(&["openmesh", "inventory", "--all", "-o", "json"])
        .json();
    assert_eq!(
        all,
        Value::Array(vec![]),
        "a refused file imported something"
    );
    r.stderr
}

// ---- defect 5: names reach a shell -------------------------------------------------------------

#[test]
fn deploy_refuses_a_name_outside_the_hostname_alphabet() {
    for name in ["$(touch x)", "a b", "`id`", "it's", "a\nb", "x-", "x..y"] {
        let r = capsule()
            .args([
                "openmesh",
                "deploy",
                "--template",
                "do-small",
                "--name",
                name,
                "--dry-run",
                "--yes",
            ])
            .code(2);
        r.stderr_has("is not a valid hostname");
    }
    // A fleet prefix that is valid alone but too long once numbered.
    let long = "a".repeat(62);
    capsule()
        .args([
            "openmesh",
            "deploy",
            "--template",
            "do-small",
            "--name",
            &long,
            "--count",
            "2",
            "--dry-run",
            "--yes",
        ])
        .code(2)
        .stderr_has("is not a valid hostname");
}

#[test]
fn import_refuses_names_that_could_not_be_deployed() {
    let big = "a".repeat(1_000_000);
    for (name, shown) in [
        ("\"$(touch x)\"", "'$(touch x)'"),
        ("\"a\nb\"", "'a\\nb'"),
        ("\"a\0b\"", "'a\\u{0}b'"),
        (big.as_str(), "(1000000 characters)"),
    ] {
        let err = import_refused(
            &format!("{HEADER}\n{GOOD}\nb1,{name},vultr,vultr-vc2-1,vc2-1c-1gb,ewr,creating,0.007,5,USD\n"),
            &["name: node name", shown, "is not a valid hostname"],
        );
        // The diagnostic quotes a bounded part of a long value.
        assert!(err.len() < 1000, "{} bytes of stderr", err.len());
    }
}

#[test]
fn sync_adopts_a_hostile_server_name_under_a_safe_one() {
    let mock = MockServer::new(Provider::DigitalOcean);
    mock.add_node(
        NodeSpec::named("$(touch x)")
            .tag("capsule")
            .tag("capsule-o1")
            .plan("s-1vcpu-1gb"),
    );
    let mut c = capsule();
    for (k, v) in mock.env() {
        c = c.env(&k, v);
    }
    let r = c.run_args(&[
        "openmesh",
        "sync",
        "-p",
        "digitalocean",
        "--adopt",
        "-o",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let nodes = c.run_args(&["openmesh", "inventory", "-o", "json"]).json();
    assert_eq!(nodes[0]["name"], "touch-x", "{nodes}");
}

/// The embedded bootstrap, rendered for a name no check would let through, writes an
/// `/etc/capsule-node` that `sh` sources without running anything.
#[test]
fn sourcing_the_bootstrap_node_file_runs_nothing() {
    let catalog = capsule::catalog::embedded().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "$(touch pwned)",
        "`touch pwned`",
        "x'; touch pwned; '",
        "a\ntouch pwned",
        "\"$(touch pwned)\"",
    ] {
        let out = capsule::catalog::validate::render_bootstrap(
            &catalog.bootstrap.user_data,
            name,
            "digitalocean",
            "nyc1",
            "do-small",
        )
        .unwrap();
        // write_files: the entry for /etc/capsule-node, whose content is one JSON string.
        let at = out
            .find("path: /etc/capsule-node")
            .expect("the node file entry");
        let line = out[at..]
            .lines()
            .find_map(|l| l.trim().strip_prefix("content: "))
            .expect("its content");
        let content: String = serde_json::from_str(line).expect("a JSON string");
        let file = dir.path().join("capsule-node");
        std::fs::write(&file, &content).unwrap();
        let sh = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(". \"$1\" && printf '%s|%s' \"$CAPSULE_NODE_NAME\" \"$CAPSULE_REGION\"")
            .arg("sh")
            .arg(&file)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(sh.status.success(), "{name:?}: {sh:?}\n{content}");
        assert_eq!(String::from_utf8_lossy(&sh.stdout), format!("{name}|nyc1"));
        assert!(
            !dir.path().join("pwned").exists(),
            "sourcing ran a command for {name:?}:\n{content}"
        );
    }
}

// ---- defect 11: catalogs that spin, blow up or loop --------------------------------------------

#[test]
fn a_bootstrap_that_never_ends_is_a_catalog_error() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bootstrap.toml",
        "[bootstrap]\nuser_data = '''{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}'''\n",
    );
    let d = dir.path().to_str().unwrap();
    capsule()
        .args(["openmesh", "catalog", "validate", d])
        .code(2)
        .stderr_has("bootstrap.toml:2:")
        .stderr_has("ran out of fuel");
    capsule()
        .args([
            "openmesh",
            "--catalog",
            d,
            "deploy",
            "--template",
            "do-small",
            "--dry-run",
            "--yes",
        ])
        .code(2)
        .stderr_has("ran out of fuel");
}

#[test]
fn a_bootstrap_that_blows_up_is_stopped_at_deploy_time() {
    // Depends on the node name, so validation's sample node passes and the deploy hits the cap.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bootstrap.toml",
        "[bootstrap]\nuser_data = '''{% if name == 'big' %}{% for a in range(200) %}{{ 'x' * 100000 }}{% endfor %}{% endif %}ok'''\n",
    );
    let d = dir.path().to_str().unwrap();
    capsule().args(["openmesh", "catalog", "validate", d]).ok();
    capsule()
        .args([
            "openmesh",
            "--catalog",
            d,
            "deploy",
            "--template",
            "do-small",
            "--name",
            "big",
            "--dry-run",
            "--yes",
        ])
        .code(2)
        .stderr_has("bootstrap template failed to render")
        .stderr_has("MB limit");
}

#[track_caller]
fn overlay_refused(api: &str, needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "digitalocean/api.toml", api);
    capsule()
        .args([
            "openmesh",
            "catalog",
            "validate",
            dir.path().to_str().unwrap(),
        ])
        .code(2)
        .stderr_has(needle);
}

#[test]
fn steps_may_not_name_their_own_operation_create_or_delete() {
    overlay_refused(
        "[api.operations.stop]\nbefore = [{ operation = \"stop\" }]\n",
        "step 'stop' of operation 'stop' names its own operation",
    );
    overlay_refused(
        "[api.operations.create]\nbefore = [{ operation = \"create\" }]\n",
        "step 'create' of operation 'create' names its own operation",
    );
    overlay_refused(
        "[api.operations.start]\nafter = [{ operation = \"delete\" }]\n",
        "step 'delete' of operation 'start' names an operation that creates or deletes servers",
    );
    overlay_refused(
        "[api.operations.stop]\naction = { id = \"/action/id\", operation = \"stop\", status = \"/action/status\", done = [\"completed\"] }\n",
        "action 'stop' of operation 'stop' names its own operation",
    );
    overlay_refused(
        "[api.operations.start]\nafter = [{ operation = \"stop\" }]\n[api.operations.stop]\nafter = [{ operation = \"start\" }]\n",
        "operation steps form a cycle: start → stop → start",
    );
}

#[test]
fn base_url_keeps_to_https_unless_loopback() {
    overlay_refused(
        "[api]\nbase_url = \"http://api.example.com\"\n",
        "uses plain http to a non-loopback host",
    );
    overlay_refused(
        "[api]\nbase_url = \"ftp://api.example.com\"\n",
        "does not start with https://",
    );
    overlay_refused(
        "[api]\nbase_url = \"http://127.0.0.1.example.com\"\n",
        "uses plain http to a non-loopback host",
    );
    for ok in [
        "http://127.0.0.1:4010",
        "http://localhost",
        "http://[::1]:80",
    ] {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "digitalocean/api.toml",
            &format!("[api]\nbase_url = \"{ok}\"\n"),
        );
        capsule()
            .args([
                "openmesh",
                "catalog",
                "validate",
                dir.path().to_str().unwrap(),
            ])
            .ok();
    }
}

// ---- defect 14: import checks what deploy checks ----------------------------------------------

#[test]
fn import_checks_templates_regions_currencies_and_ids() {
    import_refused(
        &format!("{HEADER}\n{GOOD}\nb1,web,vultr,vultr-nope,vc2-1c-1gb,ewr,running,0.007,5,USD\n"),
        &[":3:template: unknown template 'vultr-nope'"],
    );
    import_refused(
        &format!("{HEADER}\n{GOOD}\nb1,web,vultr,do-small,s-1vcpu-1gb,ewr,running,0.007,5,USD\n"),
        &[":3:template: template 'do-small' belongs to digitalocean, not vultr"],
    );
    import_refused(
        &format!(
            "{HEADER}\n{GOOD}\nb1,web,vultr,vultr-vc2-1,vc2-1c-1gb,mars,running,0.007,5,USD\n"
        ),
        &[":3:region: unknown vultr region 'mars'"],
    );
    import_refused(
        &format!("{HEADER}\n{GOOD}\nb1,web,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,running,0.007,5,XYZ\n"),
        &[":3:currency: the catalog has no exchange rate for 'XYZ'"],
    );
    let long = "d".repeat(1_000_000);
    let err = import_refused(
        &format!(
            "{HEADER}\n{GOOD}\n{long},web,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,running,0.007,5,USD\n"
        ),
        &[
            ":3:deploy_id: deploy id 'dddd",
            "(1000000 characters)' is not valid",
        ],
    );
    assert!(err.len() < 1000, "{} bytes of stderr", err.len());
    import_refused(
        &format!("{HEADER},provider_id\n{GOOD},\nb1,web,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,running,0.007,5,USD,\"1 2\"\n"),
        &[":3:provider_id: provider id '1 2' is not valid"],
    );
}

#[test]
fn import_without_a_plan_column_is_refused() {
    import_refused(
        "deploy_id,name,provider,template,region,status,price_hourly,price_monthly,currency\n\
         g1,good,digitalocean,do-small,nyc1,creating,0.009,6,USD\n",
        &[":1:plan: missing column"],
    );
}

// ---- defect 15: CSV formula injection -----------------------------------------------------------

#[test]
fn export_neutralizes_formulas_and_import_restores_them() {
    let files = tempfile::tempdir().unwrap();
    let input = write(
        files.path(),
        "in.csv",
        "deploy_id,name,provider,template,plan,region,status,raw_status,price_hourly,price_monthly,currency\n\
         f1,web,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,running,\"=HYPERLINK(\"\"http://x\"\")\",0.007,5,USD\n\
         f2,web2,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,running,+1,0.007,5,USD\n\
         f3,web3,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,running,-2,0.007,5,USD\n\
         f4,web4,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,running,@SUM(A1),0.007,5,USD\n\
         f5,web5,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,running,\"\tx\",0.007,5,USD\n\
         f6,web6,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,running,\"\rx\",0.007,5,USD\n\
         f7,web7,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,running,''=quoted,0.007,5,USD\n\
         f8,web8,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,running,'plain,0.007,5,USD\n",
    );
    let a = capsule();
    let imp = a.run_args(&["openmesh", "inventory", "import", &input]);
    assert_eq!(imp.code, 0, "{}", imp.stderr);
    let raw = |c: &crate::support::Capsule| -> Vec<String> {
        let mut v: Vec<(String, String)> = c
            .run_args(&["openmesh", "inventory", "export", "--format", "json"])
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["deploy_id"].as_str().unwrap().to_string(),
                    n["raw_status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.sort();
        v.into_iter().map(|(_, r)| r).collect()
    };
    // The import took the guard off: the record holds the value as the provider would send it.
    let stored = raw(&a);
    assert_eq!(
        stored,
        [
            "=HYPERLINK(\"http://x\")",
            "+1",
            "-2",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "'=quoted",
            "'plain"
        ]
    );
    let export = a.run_args(&["openmesh", "inventory", "export"]);
    assert_eq!(export.code, 0, "{}", export.stderr);
    let mut reader = csv::ReaderBuilder::new().from_reader(export.stdout.as_bytes());
    let col = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "raw_status")
        .unwrap();
    for rec in reader.records() {
        let cell = rec.unwrap()[col].to_string();
        let first = cell.chars().next().unwrap();
        assert!(
            !matches!(first, '=' | '+' | '-' | '@' | '\t' | '\r'),
            "a formula reached the CSV: {cell:?}"
        );
    }
    assert!(export.stdout.contains("'=HYPERLINK"), "{}", export.stdout);
    assert!(export.stdout.contains("''=quoted"), "{}", export.stdout);
    // Export → import → export gives the same bytes and the same values.
    let exported = write(files.path(), "out.csv", &export.stdout);
    let b = capsule();
    let r = b.run_args(&["openmesh", "inventory", "import", &exported]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(raw(&b), stored);
    assert_eq!(
        b.run_args(&["openmesh", "inventory", "export"]).stdout,
        export.stdout
    );
}

// ---- defect 12: files that never end, block or loop ---------------------------------------------

fn mkfifo(path: &Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(st.success());
}

#[test]
fn a_fifo_in_a_catalog_directory_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("x.toml"));
    capsule()
        .args([
            "openmesh",
            "catalog",
            "validate",
            dir.path().to_str().unwrap(),
        ])
        .code(2)
        .stderr_has("x.toml is a named pipe (FIFO) — pass a regular file");
}

#[test]
fn a_symlink_loop_in_a_catalog_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("a").join("b");
    std::fs::create_dir_all(&sub).unwrap();
    std::os::unix::fs::symlink(dir.path(), sub.join("up")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("a"), sub.join("up2")).unwrap();
    write(dir.path(), "a/rates.toml", "");
    capsule()
        .args([
            "openmesh",
            "catalog",
            "validate",
            dir.path().to_str().unwrap(),
        ])
        .code(2)
        .stderr_has("symbolic link loop");
}

#[test]
fn a_directory_linked_twice_is_read_once() {
    // Two links to one directory of templates: read once, so no "defined twice" error.
    let dir = tempfile::tempdir().unwrap();
    let real = tempfile::tempdir().unwrap();
    write(
        real.path(),
        "prices.toml",
        "[[templates]]\nid = \"do-small\"\nprice_hourly = 0.009\nprice_monthly = 6\n",
    );
    std::os::unix::fs::symlink(real.path(), dir.path().join("one")).unwrap();
    std::os::unix::fs::symlink(real.path(), dir.path().join("two")).unwrap();
    capsule()
        .args([
            "openmesh",
            "catalog",
            "validate",
            dir.path().to_str().unwrap(),
        ])
        .ok();
}

#[test]
fn user_data_must_be_a_bounded_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("ud");
    mkfifo(&fifo);
    let big = write(dir.path(), "big.yaml", &"#".repeat(2 * 1024 * 1024));
    for (path, needle) in [
        (
            "/dev/zero",
            "--user-data /dev/zero is a device — pass a regular file",
        ),
        (fifo.to_str().unwrap(), "is a named pipe (FIFO)"),
        (big.as_str(), "is larger than 1 MB"),
    ] {
        capsule()
            .args([
                "openmesh",
                "deploy",
                "--template",
                "do-small",
                "--user-data",
                path,
                "--dry-run",
                "--yes",
            ])
            .code(2)
            .stderr_has(needle);
    }
}

#[test]
fn import_reads_regular_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("n.csv");
    mkfifo(&fifo);
    capsule()
        .args(["openmesh", "inventory", "import", "/dev/zero"])
        .code(2)
        .stderr_has("import file /dev/zero is a device");
    capsule()
        .args(["openmesh", "inventory", "import", fifo.to_str().unwrap()])
        .code(2)
        .stderr_has("is a named pipe (FIFO)");
}

// ---- defect 19: errors and exit codes ----------------------------------------------------------

#[test]
fn a_long_catalog_line_is_quoted_in_part() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(10 * 1024 * 1024);
    write(
        dir.path(),
        "digitalocean/templates.toml",
        &format!("[[templates]]\nid = \"do-small\"\nregions = [\"{long}\"]\n"),
    );
    let r = capsule()
        .args([
            "openmesh",
            "catalog",
            "validate",
            dir.path().to_str().unwrap(),
        ])
        .code(2);
    r.stderr_has("templates.toml:3:");
    assert!(r.stderr.len() < 4096, "{} bytes of stderr", r.stderr.len());
}

#[test]
fn a_utf16_file_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{HEADER}\n{GOOD}\n");
    let mut le = vec![0xFF, 0xFE];
    le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let mut be = vec![0xFE, 0xFF];
    be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
    for (bytes, enc) in [(le, "UTF-16 (little-endian)"), (be, "UTF-16 (big-endian)")] {
        let path = dir.path().join("nodes.csv");
        std::fs::write(&path, &bytes).unwrap();
        capsule()
            .args(["openmesh", "inventory", "import", path.to_str().unwrap()])
            .code(2)
            .stderr_has(&format!("the file is {enc} text — save it as UTF-8"));
        let cat = dir.path().join("cat");
        std::fs::create_dir_all(&cat).unwrap();
        std::fs::write(cat.join("rates.toml"), &bytes).unwrap();
        capsule()
            .args(["openmesh", "catalog", "validate", cat.to_str().unwrap()])
            .code(2)
            .stderr_has(&format!("is {enc} text"));
    }
}

#[test]
fn read_only_commands_answer_when_the_home_cannot_be_written() {
    // A home under a regular file can be neither created nor written (root ignores modes, so
    // this is the unwritable home a test can build anywhere).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    let home = dir.path().join("file").join("home");
    let c = capsule().env("CAPSULE_HOME", home.to_str().unwrap());
    for args in [
        vec!["openmesh", "templates"],
        vec!["openmesh", "providers"],
        vec!["openmesh", "inventory"],
        vec!["openmesh", "inventory", "stats"],
        vec!["openmesh", "inventory", "export"],
        vec!["openmesh", "history"],
        vec!["openmesh", "cost"],
    ] {
        let out = c.run_args(&args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    }
    let csv = write(dir.path(), "n.csv", &format!("{HEADER}\n{GOOD}\n"));
    let out = c.run_args(&["openmesh", "inventory", "import", &csv]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains("check that CAPSULE_HOME is writable"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_broken_credentials_file_is_an_error_not_unconfigured() {
    for (what, bytes) in [
        ("garbage", b"\x00\x01[[[ not toml".to_vec()),
        (
            "not UTF-8",
            b"[digitalocean]\ntoken = \"\xff\xfe\"\n".to_vec(),
        ),
    ] {
        let c = capsule();
        let file = c.home().join("credentials.toml");
        std::fs::write(&file, &bytes).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        for args in [
            vec!["openmesh", "list"],
            vec!["openmesh", "providers"],
            vec!["openmesh", "provider", "verify"],
            vec!["openmesh", "deploy", "--min-cpu", "1", "--dry-run", "--yes"],
            vec![
                "openmesh",
                "deploy",
                "--template",
                "do-small",
                "--dry-run",
                "--yes",
            ],
        ] {
            let out = c.run_args(&args);
            assert_eq!(out.code, 2, "{what}: {args:?}: {}", out.stderr);
            assert!(
                out.stderr
                    .contains(&format!("credentials file {}", file.display())),
                "{what}: {args:?}: {}",
                out.stderr
            );
            assert!(!out.stderr.contains("not configured"), "{}", out.stderr);
        }
    }
}

#[test]
fn verify_with_a_bad_endpoint_is_bad_input() {
    let out = capsule()
        .env("DIGITALOCEAN_TOKEN", "dop_v1_x")
        .env("CAPSULE_ENDPOINT_DIGITALOCEAN", "http://10.1.2.3:80")
        .args(["openmesh", "provider", "verify", "digitalocean"])
        .code(2);
    out.stderr_has("plain http to a non-loopback host");
}

#[test]
fn a_bootstrap_that_fails_for_a_node_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bootstrap.toml",
        "[bootstrap]\nuser_data = '''{% if name == 'odd' %}{{ name | no_such_filter }}{% endif %}ok'''\n",
    );
    let d = dir.path().to_str().unwrap();
    capsule()
        .args([
            "openmesh",
            "--catalog",
            d,
            "deploy",
            "--template",
            "do-small",
            "--name",
            "odd",
            "--dry-run",
            "--yes",
        ])
        .code(2)
        .stderr_has("bootstrap template failed to render");
}

#[test]
fn a_region_part_is_checked_not_ignored() {
    let mock = MockServer::new(Provider::DigitalOcean);
    let mut c = capsule();
    for (k, v) in mock.env() {
        c = c.env(&k, v);
    }
    let out = c.run_args(&["openmesh", "delete", "digitalocean:mars/1000", "--yes"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("digitalocean addresses a node by its id alone, without a region"),
        "{}",
        out.stderr
    );
    assert!(mock.requests().is_empty(), "{}", mock.log_summary());
    let out = c.run_args(&["openmesh", "status", "aws:mars/i-0123"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("unknown aws region 'mars'"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_request_template_that_spins_on_a_value_fails_fast_in_a_dry_run() {
    // The loop depends on the name, so validation (with no values) passes; the dry run must
    // stop on fuel and call it bad input, not hang or report a provider failure.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "digitalocean/api.toml",
        "[api.operations.create]\nbody = '''{\"name\": {{ name }}{% for a in range(name | length * 3000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}}'''\n",
    );
    let d = dir.path().to_str().unwrap();
    capsule().args(["openmesh", "catalog", "validate", d]).ok();
    capsule()
        .args([
            "openmesh",
            "--catalog",
            d,
            "deploy",
            "--template",
            "do-small",
            "--name",
            "big",
            "--dry-run",
            "--yes",
        ])
        .code(2)
        .stderr_has("the catalog's `create` body does not render: the template ran out of fuel");
}

#[test]
fn an_api_key_on_stdin_is_bounded() {
    // From a file, so capsule may stop reading early without breaking the test's pipe.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, vec![b'k'; 2 * 1024 * 1024]).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_capsule"))
        .args([
            "openmesh",
            "provider",
            "configure",
            "digitalocean",
            "--api-key-stdin",
        ])
        .env_clear()
        .env("CAPSULE_HOME", dir.path().join("home"))
        .env("NO_COLOR", "1")
        .stdin(std::fs::File::open(&key).unwrap())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--api-key-stdin read more than 1024 KB"),
        "{stderr}"
    );
}

#[test]
fn a_store_opened_read_only_reads_and_refuses_writes() {
    use capsule::state::{SqliteStore, Store};
    let c = capsule();
    let csv = write(c.home(), "n.csv", &format!("{HEADER}\n{GOOD}\n"));
    c.run_args(&["openmesh", "inventory", "import", &csv]);
    let path = c.home().join("state.db");
    let store = SqliteStore::open_read_only(&path).unwrap();
    let nodes = store.list_nodes(&Default::default()).unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].name, "good");
    let err = store
        .connection()
        .execute("CREATE TABLE x(y)", [])
        .unwrap_err();
    assert!(err.to_string().contains("readonly"), "{err}");
}
