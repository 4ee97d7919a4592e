//! Output for people and for scripts: tables in a real pseudo-terminal (aligned whatever the
//! colours, never wider than the terminal), `-q`, `--no-header`, `-o yaml`, `--columns`,
//! `CAPSULE_OUTPUT`, global flags anywhere, help, completions, footguns, cost over time.

use crate::support::capsule;
use crate::support::mock::{MockConfig, MockServer, NodeSpec, Op, Provider};
use serde_json::Value;
use std::io::Read;
use std::path::Path;

// ------------------------------------------------------------------------------ pseudo-terminal

/// Run capsule in a pseudo-terminal `cols` wide, in `home`; everything it wrote (stdout and
/// stderr share the terminal), with `\r\n` turned back into `\n`.
fn in_pty(home: &Path, cols: u16, args: &[&str]) -> String {
    use portable_pty::{native_pty_system, CommandBuilder, PtySize};
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 60,
            cols,
            pixel_width: 0,
            pixel_height: 0,
        })
        .expect("open a pty");
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_capsule"));
    cmd.args(args);
    cmd.env_clear();
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.env("CAPSULE_HOME", home);
    cmd.env("HOME", home);
    cmd.env("TERM", "xterm-256color");
    let mut child = pair.slave.spawn_command(cmd).expect("spawn in pty");
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().expect("pty reader");
    let mut bytes = Vec::new();
    // Linux answers EIO once the child has gone and the slave is closed: that is the end.
    let mut buf = [0u8; 8192];
    loop {
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
    }
    let status = child.wait().expect("wait");
    assert!(status.success(), "capsule {args:?} failed in a pty");
    String::from_utf8(bytes)
        .expect("utf-8")
        .replace("\r\n", "\n")
}

fn visible(s: &str) -> String {
    String::from_utf8(strip_ansi_escapes::strip(s)).unwrap()
}

fn width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(visible(s).as_str())
}

/// The table lines of a terminal run (notes on stderr start with `capsule:`).
fn table_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| !l.starts_with("capsule:") && !l.is_empty())
        .collect()
}

#[track_caller]
fn check_table(out: &str, cols: usize) {
    let lines = table_lines(out);
    assert!(lines.len() >= 2, "no table:\n{out}");
    assert!(out.contains("\u{1b}["), "no colour on a terminal:\n{out}");
    let head = width(lines[0]);
    for l in &lines {
        assert_eq!(
            width(l),
            head,
            "row and header differ in width:\n{}\n{}",
            visible(lines[0]),
            visible(l)
        );
        assert!(width(l) <= cols, "wider than {cols}: {}", visible(l));
    }
}

/// Compare with `tests/it/golden/output/NAME` (the visible text); `UPDATE_GOLDEN=1` rewrites it.
#[track_caller]
fn golden(name: &str, text: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/golden/output")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing golden {name}; run with UPDATE_GOLDEN=1"));
    assert_eq!(text, want, "golden {name} differs");
}

/// A few recorded nodes, created 3½ hours ago (their age reads `3h ago` whatever the time).
fn seeded_home() -> crate::support::Capsule {
    let c = capsule();
    let t = capsule::state::time::format(capsule::state::time::now_unix() - 3 * 3600 - 1800);
    let csv = format!(
        "deploy_id,name,provider,provider_id,template,plan,region,status,ipv4,price_hourly,price_monthly,currency,created_at\n\
         a1,web-1,digitalocean,1001,do-small,s-1vcpu-1gb,nyc1,running,203.0.113.7,0.00893,6,USD,{t}\n\
         a2,web-2,vultr,ab-22,vultr-vc2-1,vc2-1c-1gb,ewr,stopped,,0.007,5,USD,{t}\n\
         a3,db-1,scaleway,fr-par-1/9f2c,scw-dev1-m,DEV1-M,par1,error,,0.0198,14.45,EUR,{t}\n"
    );
    let file = c.home().join("in.csv");
    std::fs::write(&file, csv).unwrap();
    let out = c.run_args(&["openmesh", "inventory", "import", file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    c
}

#[test]
fn tables_fit_and_align_in_a_terminal() {
    let c = seeded_home();
    for (name, args) in [
        ("providers", vec!["openmesh", "providers"]),
        ("templates", vec!["openmesh", "templates"]),
        ("inventory", vec!["openmesh", "inventory"]),
    ] {
        for cols in [80u16, 120] {
            let out = in_pty(c.home(), cols, &args);
            check_table(&out, cols as usize);
            golden(&format!("{name}-{cols}.txt"), &visible(&out));
        }
        // --wide shows every column, whatever the terminal.
        let wide = in_pty(c.home(), 80, &[args.as_slice(), &["--wide"]].concat());
        let piped = c.run_args(&args);
        let wide_head = visible(table_lines(&wide)[0]);
        assert_eq!(
            wide_head.split_whitespace().count(),
            piped
                .stdout
                .lines()
                .next()
                .unwrap()
                .split_whitespace()
                .count(),
            "{name} --wide keeps every column"
        );
    }
}

#[test]
fn status_is_coloured_on_a_terminal() {
    let c = seeded_home();
    let out = in_pty(c.home(), 200, &["openmesh", "inventory"]);
    // running green (32), stopped yellow (33), error red (31).
    for code in ["\u{1b}[32mrunning", "\u{1b}[33mstopped", "\u{1b}[31merror"] {
        assert!(out.contains(code), "{code:?} missing:\n{out}");
    }
    assert!(visible(&out).contains("3h ago"), "{out}");
}

#[test]
fn piped_tables_keep_every_column_without_colour() {
    let out = capsule()
        .args(["openmesh", "providers", "--color", "never"])
        .ok();
    let head = out.stdout.lines().next().unwrap();
    for h in ["ID", "NAME", "KIND", "GPUS", "PRICES AS OF", "CONFIGURED"] {
        assert!(head.contains(h), "{head}");
    }
    assert!(!out.stdout.contains('\u{1b}'));
    // Forced colour off a terminal still aligns: every line is as wide as the header.
    let coloured = capsule()
        .args(["openmesh", "providers", "--color", "always"])
        .ok();
    let lines: Vec<&str> = coloured.stdout.lines().collect();
    assert!(coloured.stdout.contains("\u{1b}[1m"));
    for l in &lines {
        assert_eq!(width(l), width(lines[0]), "{}", visible(l));
    }
}

// ------------------------------------------------------------------------------ scripting

/// Every listing, as arguments after `openmesh`, with a home that has something to list.
fn listings() -> Vec<Vec<&'static str>> {
    vec![
        vec!["providers"],
        vec!["templates"],
        vec!["regions"],
        vec!["inventory"],
        vec!["inventory", "stats"],
        vec!["history"],
        vec!["cost"],
    ]
}

#[test]
fn every_listing_speaks_yaml_quiet_no_header_and_columns() {
    let c = seeded_home();
    for args in listings() {
        let run = |extra: &[&str]| {
            let mut a = vec!["openmesh"];
            a.extend(&args);
            a.extend(extra);
            let out = c.run_args(&a);
            assert_eq!(out.code, 0, "{a:?}: {}", out.stderr);
            out.stdout
        };
        let json: Value = serde_json::from_str(&run(&["-o", "json"])).unwrap();
        let rows = json.as_array().unwrap();
        assert!(!rows.is_empty(), "{args:?} lists nothing");
        // YAML is the same data.
        let yaml: Value = serde_norway::from_str(&run(&["-o", "yaml"])).unwrap();
        assert_eq!(yaml, json, "{args:?} yaml");
        // Quiet: one line per row, no header.
        let quiet = run(&["-q"]);
        assert_eq!(quiet.lines().count(), rows.len(), "{args:?} -q:\n{quiet}");
        assert!(quiet.lines().all(|l| !l.is_empty() && !l.contains(' ')));
        // No header: one line less than the table, the same rows.
        let table = run(&[]);
        let bare = run(&["--no-header"]);
        assert_eq!(bare.lines().count() + 1, table.lines().count(), "{args:?}");
        assert_eq!(
            bare,
            table
                .lines()
                .skip(1)
                .map(|l| format!("{l}\n"))
                .collect::<String>()
        );
        let csv = run(&["-o", "csv", "--no-header"]);
        assert_eq!(csv.lines().count(), rows.len(), "{args:?} csv --no-header");
        // Columns: the JSON keys asked for, in that order, in every format.
        let keys: Vec<String> = rows[0]
            .as_object()
            .unwrap()
            .keys()
            .rev()
            .take(2)
            .cloned()
            .collect();
        let list = keys.join(",");
        let picked: Value =
            serde_json::from_str(&run(&["-o", "json", "--columns", &list])).unwrap();
        let got: Vec<&String> = picked[0].as_object().unwrap().keys().collect();
        assert_eq!(got, keys.iter().collect::<Vec<_>>(), "{args:?} --columns");
        let csv = run(&["-o", "csv", "--columns", &list]);
        assert_eq!(csv.lines().next().unwrap(), list, "{args:?} csv header");
        let table = run(&["--columns", &list]);
        let head = table.lines().next().unwrap().to_lowercase();
        assert!(
            head.contains(&keys[0].to_lowercase()) || head.split_whitespace().count() >= 2,
            "{head}"
        );
    }
}

#[test]
fn an_unknown_column_is_a_usage_error_with_a_suggestion() {
    let out = capsule()
        .args(["openmesh", "templates", "--columns", "id,prvider"])
        .code(2);
    out.stderr_has("unknown column 'prvider'")
        .stderr_has("did you mean 'provider'?");
}

#[test]
fn the_output_format_comes_from_the_environment_and_flags_go_anywhere() {
    let out = capsule()
        .args(["openmesh", "providers"])
        .env("CAPSULE_OUTPUT", "json")
        .ok();
    assert_eq!(out.json().as_array().unwrap().len(), 7);
    // -o before `openmesh`, between, and after the subcommand.
    for args in [
        vec!["-o", "json", "openmesh", "providers"],
        vec!["openmesh", "-o", "json", "providers"],
        vec!["openmesh", "providers", "-o", "json"],
        vec!["--color", "never", "-q", "om", "providers"],
    ] {
        let out = capsule().args(&args).ok();
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
    let yaml = capsule()
        .args(["-o", "yaml", "openmesh", "template", "show", "do-small"])
        .ok();
    let doc: Value = serde_norway::from_str(&yaml.stdout).unwrap();
    assert_eq!(doc["id"], "do-small");
}

#[test]
fn inventory_export_follows_the_output_flag() {
    let c = seeded_home();
    let json = c.run_args(&["openmesh", "inventory", "export", "-o", "json"]);
    assert_eq!(json.code, 0, "{}", json.stderr);
    let v: Value = serde_json::from_str(&json.stdout).expect("JSON export");
    assert!(v.is_array() || v.is_object());
    let csv = c.run_args(&["openmesh", "inventory", "export"]);
    assert!(csv.stdout.starts_with("deploy_id,"), "{}", csv.stdout);
    let yaml = c.run_args(&["openmesh", "inventory", "export", "-o", "yaml"]);
    assert_eq!(yaml.code, 2, "{}", yaml.stderr);
}

#[test]
fn quiet_ids_feed_delete() {
    let mock = MockServer::start(Provider::DigitalOcean, MockConfig::default());
    mock.add_node(NodeSpec::named("a-1").status("active"));
    mock.add_node(NodeSpec::named("a-2").status("active"));
    let mut c = capsule();
    for (k, v) in mock.env() {
        c = c.env(&k, v);
    }
    let ids = c.run_args(&["openmesh", "list", "--all", "-p", "digitalocean", "-q"]);
    assert_eq!(ids.code, 0, "{}", ids.stderr);
    let ids: Vec<&str> = ids.stdout.lines().collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    for id in &ids {
        assert!(id.starts_with("digitalocean:"), "{id}");
        let out = c.run_args(&["openmesh", "delete", id, "--yes"]);
        assert_eq!(out.code, 0, "delete {id}: {}", out.stderr);
    }
    assert_eq!(mock.count(Op::Delete), 2);
}
