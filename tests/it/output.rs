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
    // Catalog prices age every day: no stale-price notice in the goldens.
    cmd.env("CAPSULE_STALE_AFTER", "36500d");
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
        .filter(|l| !l.starts_with("capsule:") && !l.starts_with("note:") && !l.is_empty())
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

/// A few recorded nodes, created 3½ hours ago (their age reads `3h ago` whatever the time).
fn seeded_home() -> crate::support::Capsule {
    seeded_home_at(true)
}

/// The same nodes, at their prices or free. Free nodes cost nothing, so their cost figures do not
/// tick with the clock between two runs that are compared.
fn seeded_home_at(priced: bool) -> crate::support::Capsule {
    let c = capsule();
    let t = capsule::state::time::format(capsule::state::time::now_unix() - 3 * 3600 - 1800);
    let csv = format!(
        "deploy_id,name,provider,provider_id,template,plan,region,status,ipv4,price_hourly,price_monthly,currency,created_at\n\
         a1,web-1,digitalocean,1001,do-small,s-1vcpu-1gb,nyc1,running,203.0.113.7,0.00893,6,USD,{t}\n\
         a2,web-2,vultr,ab-22,vultr-vc2-1,vc2-1c-1gb,ewr,stopped,,0.007,5,USD,{t}\n\
         a3,db-1,scaleway,fr-par-1/9f2c,scw-dev1-m,DEV1-M,par1,error,,0.0198,14.45,EUR,{t}\n\
         a4,old-1,linode,4711,linode-2gb,g6-standard-1,us-east,deleted,,0.018,12,USD,2024-05-01T00:00:00Z\n"
    );
    let csv = if priced {
        csv
    } else {
        csv.replace(",0.00893,6,", ",0,0,")
            .replace(",0.007,5,", ",0,0,")
            .replace(",0.0198,14.45,", ",0,0,")
            .replace(",0.018,12,", ",0,0,")
    };
    let file = c.home().join("in.csv");
    std::fs::write(&file, csv).unwrap();
    let out = c.run_args(&["openmesh", "inventory", "import", file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The import's events happened then too (their age reads `3h ago`, not seconds that tick).
    let db = rusqlite::Connection::open(c.home().join("state.db")).unwrap();
    db.execute("UPDATE events SET time = ?1", [&t]).unwrap();
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
fn every_other_listing_fits_80_columns_too() {
    let c = seeded_home();
    for args in [
        vec!["openmesh", "regions"],
        vec!["openmesh", "inventory", "stats"],
        vec!["openmesh", "inventory", "--all"],
        vec!["openmesh", "history"],
        vec!["openmesh", "cost", "--by", "node"],
        vec![
            "openmesh",
            "templates",
            "--include-retired",
            "--sort",
            "price-per-cpu",
        ],
    ] {
        for cols in [60u16, 80] {
            let out = in_pty(c.home(), cols, &args);
            check_table(&out, cols as usize);
        }
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

/// Every listing, as arguments after `openmesh`, with a home that has something to list. The
/// cost window ends at a fixed instant, and its home's nodes are free (see the test): its figures
/// would otherwise tick between the runs that are compared.
fn listings() -> Vec<Vec<String>> {
    let until = capsule::state::time::format(capsule::state::time::now_unix() - 1800);
    let lists: [&[&str]; 7] = [
        &["providers"],
        &["templates"],
        &["regions"],
        &["inventory"],
        &["inventory", "stats"],
        &["history"],
        &["cost", "--until", &until],
    ];
    lists
        .iter()
        .map(|l| l.iter().map(|a| a.to_string()).collect())
        .collect()
}

#[test]
fn every_listing_speaks_yaml_quiet_no_header_and_columns() {
    let (priced, free) = (seeded_home(), seeded_home_at(false));
    for args in listings() {
        // Month-to-date follows the clock, whatever the window: only free nodes keep it still.
        let c = if args[0] == "cost" { &free } else { &priced };
        let run = |extra: &[&str]| {
            let mut a = vec!["openmesh"];
            a.extend(args.iter().map(String::as_str));
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
fn typed_options_are_checked_where_they_are_read() {
    // Enums: the accepted values are listed, aliases and any case are accepted.
    capsule()
        .args(["openmesh", "templates", "--arch", "sparc"])
        .code(2)
        .stderr_has("invalid value 'sparc' for '--arch <ARCH>'")
        .stderr_has("x86_64, arm64");
    let arm = capsule()
        .args(["openmesh", "templates", "--arch", "AARCH64", "-o", "json"])
        .ok()
        .json();
    let arm = arm.as_array().unwrap();
    assert!(
        !arm.is_empty() && arm.iter().all(|t| t["arch"] == "arm64"),
        "{arm:?}"
    );
    capsule()
        .args(["openmesh", "regions", "--continent", "atlantis"])
        .code(2)
        .stderr_has("invalid value 'atlantis' for '--continent <CONTINENT>'")
        .stderr_has("europe");
    capsule()
        .args(["openmesh", "regions", "--continent", "Europe"])
        .ok();
    // Durations and amounts: one sentence saying what to write instead, exit 2.
    for (args, says) in [
        (
            vec!["openmesh", "providers", "--stale-after", "30"],
            "'30' has no unit",
        ),
        (
            vec!["openmesh", "templates", "--max-price=-1"],
            "must be a positive number",
        ),
        (
            vec!["openmesh", "templates", "--min-memory", "lots"],
            "'lots' is not a number",
        ),
        (
            vec![
                "openmesh",
                "deploy",
                "--min-cpu",
                "2",
                "--budget",
                "0",
                "--dry-run",
            ],
            "must be a positive number",
        ),
        (
            vec![
                "openmesh",
                "deploy",
                "-t",
                "do-small",
                "--timeout",
                "5y",
                "--dry-run",
            ],
            "months or years",
        ),
        (
            vec![
                "openmesh",
                "deploy",
                "-t",
                "do-small",
                "--ttl",
                "soon",
                "--dry-run",
            ],
            "'soon' is not a duration",
        ),
        (
            vec![
                "openmesh",
                "history",
                "clean",
                "--older-than",
                "3 fortnights",
            ],
            "unknown unit",
        ),
    ] {
        let out = capsule().args(&args).code(2);
        out.stderr_has(says);
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
    }
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
    assert!(
        ids.iter().all(|id| id.starts_with("digitalocean:")),
        "{ids:?}"
    );
    // As `capsule openmesh list -q | xargs capsule openmesh delete --yes` would.
    let mut args = vec!["openmesh", "delete", "--yes"];
    args.extend(&ids);
    let out = c.run_args(&args);
    assert_eq!(out.code, 0, "delete {ids:?}: {}", out.stderr);
    assert_eq!(mock.count(Op::Delete), 2);
}

// ------------------------------------------------------------------------------ help

/// Every command (hidden ones and clap's own `help` aside), with its path.
fn commands(cmd: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        let p = format!("{path} {}", sub.get_name());
        out.push((p.clone(), sub.clone()));
        commands(sub, p, out);
    }
}

#[test]
fn every_command_teaches_by_example_and_every_flag_says_what_it_does() {
    use clap::CommandFactory;
    let mut root = capsule::cli::Cli::command();
    root.build();
    let mut all = vec![("capsule".to_string(), root.clone())];
    commands(&root, "capsule".into(), &mut all);
    assert!(all.len() > 25, "{} commands", all.len());
    let mut problems = Vec::new();
    for (path, cmd) in &all {
        let after = cmd
            .get_after_help()
            .map(|s| s.to_string())
            .unwrap_or_default();
        let examples = after
            .split_once("Examples:")
            .map(|(_, ex)| {
                ex.lines()
                    .filter(|l| l.trim_start().starts_with("capsule "))
                    .count()
            })
            .unwrap_or(0);
        if !(2..=4).contains(&examples) {
            problems.push(format!("{path}: {examples} examples (want 2–4)"));
        }
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if arg.is_hide_set() || id == "help" || id == "version" {
                continue;
            }
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            if help.trim().is_empty() {
                problems.push(format!("{path}: argument '{id}' has no description"));
            }
            for v in arg.get_possible_values() {
                if !v.is_hide_set()
                    && v.get_help().is_none()
                    && arg.get_value_parser().type_id()
                        != clap::builder::ValueParser::bool().type_id()
                {
                    problems.push(format!(
                        "{path}: value '{}' of '{id}' has no description",
                        v.get_name()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Global options stand apart in every command's help.
    let help = capsule().args(["openmesh", "deploy", "--help"]).ok().stdout;
    assert!(
        help.contains("Global options:") && help.contains("Output options:"),
        "{help}"
    );
    assert!(help.contains("Examples:"), "{help}");
}

#[test]
fn openmesh_alone_gets_you_started_and_man_pages_are_written() {
    let out = capsule().args(["openmesh"]).ok();
    out.stdout_has("Getting started")
        .stdout_has("capsule openmesh templates");
    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("man");
    capsule().args(["man", man.to_str().unwrap()]).ok();
    let page = std::fs::read_to_string(man.join("capsule-openmesh-deploy.1")).unwrap();
    assert!(page.contains(".TH"), "{page}");
    assert!(page.contains("min\\-cpu"), "{page}");
    assert!(man.join("capsule.1").exists());
}

// ------------------------------------------------------------------------------ completions

/// What a shell would get back for `capsule WORDS…` with the cursor on the last word.
fn complete(shell: &str, words: &[&str], home: &Path) -> String {
    let mut c = capsule()
        .env("COMPLETE", shell)
        .env("CAPSULE_HOME", home.to_str().unwrap());
    let index = words.len(); // the binary is word 0
    c = c
        .env("_CLAP_COMPLETE_INDEX", index.to_string())
        .env("_CLAP_COMPLETE_COMP_TYPE", "9")
        .env("_CLAP_COMPLETE_SPACE", "true")
        .env("_CLAP_IFS", "\n");
    let mut args = vec!["--", "capsule"];
    args.extend(words);
    let out = c.args(&args).ok();
    out.stdout
}

#[test]
fn completions_offer_template_provider_region_and_node_names_in_every_shell() {
    let c = seeded_home();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = capsule().args(["completions", shell]).ok().stdout;
        assert!(
            script.contains("COMPLETE"),
            "{shell} registration:\n{script}"
        );
        let t = complete(shell, &["openmesh", "template", "show", "do-"], c.home());
        for id in ["do-small", "do-large"] {
            assert!(t.contains(id), "{shell}: {t}");
        }
        assert!(!t.contains("vultr-vc2-1"), "{shell} filters by prefix: {t}");
        let p = complete(
            shell,
            &["openmesh", "templates", "--provider", "sc"],
            c.home(),
        );
        assert!(p.contains("scaleway"), "{shell}: {p}");
        let r = complete(shell, &["openmesh", "deploy", "--region", "atl"], c.home());
        assert!(r.contains("atlanta"), "{shell}: {r}");
        let n = complete(shell, &["openmesh", "status", "web"], c.home());
        assert!(n.contains("web-1") && n.contains("web-2"), "{shell}: {n}");
    }
}

// ------------------------------------------------------------------------------ footguns

#[test]
fn conflicting_flags_are_usage_errors() {
    for args in [
        vec![
            "openmesh",
            "deploy",
            "--template",
            "do-small",
            "--min-cpu",
            "4",
            "--dry-run",
        ],
        vec![
            "openmesh",
            "deploy",
            "--template",
            "do-small",
            "--budget",
            "0.1",
            "--dry-run",
        ],
        vec![
            "openmesh",
            "deploy",
            "--name",
            "a",
            "--name-prefix",
            "b",
            "--min-cpu",
            "1",
            "--dry-run",
        ],
    ] {
        let out = capsule().args(&args).code(2);
        out.stderr_has("cannot be used with");
    }
}

#[test]
fn a_duration_without_a_unit_is_refused_and_cleaning_asks_first() {
    let c = seeded_home();
    let out = c.run_args(&["openmesh", "history", "clean", "--older-than", "30"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    out.stderr_has("'30' has no unit").stderr_has("30d");
    // Age the recorded events by a year, so that some are old enough to clean.
    let db = rusqlite::Connection::open(c.home().join("state.db")).unwrap();
    db.execute("UPDATE events SET time = '2025-01-01T00:00:00Z'", [])
        .unwrap();
    drop(db);
    let events = c.run_args(&["openmesh", "history", "-o", "json"]).json();
    let n = events.as_array().unwrap().len();
    assert!(n >= 4, "{events}");
    // Off a terminal without --yes: refused with the count, nothing removed.
    let refused = c.run_args(&["openmesh", "history", "clean", "--older-than", "30d"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    refused
        .stderr_has("Remove 1 event older than")
        .stderr_has("--yes");
    let kept = c.run_args(&["openmesh", "history", "-o", "json"]).json();
    assert_eq!(kept.as_array().unwrap().len(), n);
    let done = c.run_args(&[
        "openmesh",
        "history",
        "clean",
        "--older-than",
        "30d",
        "--yes",
        "-o",
        "json",
    ]);
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(
        done.json()["removed"],
        1,
        "only the deleted node's event goes"
    );
}

#[test]
fn retired_providers_are_left_out_unless_asked_for() {
    let all = capsule()
        .args(["openmesh", "templates", "-o", "json"])
        .ok()
        .json();
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["provider"] != "equinix-metal"));
    let with = capsule()
        .args(["openmesh", "templates", "--include-retired"])
        .ok();
    with.stdout_has("equinix-metal (retired)");
    capsule()
        .args(["openmesh", "compare", "do-small", "equinix-c3-small"])
        .code(2)
        .stderr_has("--include-retired");
    capsule()
        .args([
            "openmesh",
            "compare",
            "do-small",
            "equinix-c3-small",
            "--include-retired",
        ])
        .ok()
        .stdout_has("(retired)");
}

#[test]
fn money_carries_its_currency_and_bandwidth_says_unmetered() {
    let t = capsule()
        .args(["openmesh", "templates", "-p", "scaleway"])
        .ok();
    t.stdout_has("€")
        .stdout_has("unmetered")
        .stdout_has("(CONV.)");
    let p = capsule().args(["openmesh", "providers"]).ok();
    p.stdout_has("1 EUR = ").stderr_has("convert at 1 EUR");
    let show = capsule()
        .args(["openmesh", "template", "show", "scw-dev1-m", "-o", "json"])
        .ok()
        .json();
    assert_eq!(show["bandwidth_unmetered"], true);
    assert!(show["usd_rate"].as_f64().unwrap() > 1.0);
    assert!(show["usd_rate_as_of"].as_str().unwrap().starts_with("20"));
    let text = capsule()
        .args(["openmesh", "template", "show", "scw-dev1-m"])
        .ok();
    text.stdout_has("exchange rate").stdout_has("€");
    let aws = capsule()
        .args(["openmesh", "template", "show", "aws-t3-micro"])
        .ok();
    aws.stdout_has("$");
    assert!(!aws.stdout.contains("exchange rate"));
}

// ------------------------------------------------------------------------------ time

#[test]
fn cost_by_day_splits_at_midnight_across_a_month_boundary() {
    let c = capsule();
    // One node at $1/h from 2024-05-31 12:00 to 2024-06-01 12:00 (deleted), and one at €0.5/h
    // for 6 hours on 2024-06-01.
    let csv = "deploy_id,name,provider,template,plan,region,status,price_hourly,price_monthly,currency,created_at,started_at,stopped_at,deleted_at\n\
        b1,n1,digitalocean,do-small,s-1vcpu-1gb,nyc1,deleted,1,1000,USD,2024-05-31T12:00:00Z,2024-05-31T12:00:00Z,,2024-06-01T12:00:00Z\n";
    let file = c.home().join("in.csv");
    std::fs::write(&file, csv).unwrap();
    let imp = c.run_args(&["openmesh", "inventory", "import", file.to_str().unwrap()]);
    assert_eq!(imp.code, 0, "{}", imp.stderr);
    let out = c.run_args(&[
        "openmesh",
        "cost",
        "--by",
        "day",
        "--since",
        "2024-05-30",
        "--until",
        "2024-06-03",
        "-o",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let rows = out.json();
    let by: Vec<(String, f64)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["period"].as_str().unwrap().to_string(),
                r["cost_usd"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by,
        vec![
            ("2024-05-31".to_string(), 12.0),
            ("2024-06-01".to_string(), 12.0),
            ("2024-06-02".to_string(), 0.0),
            ("total".to_string(), 24.0),
        ]
    );
    let months = c.run_args(&[
        "openmesh",
        "cost",
        "--by",
        "month",
        "--since",
        "2024-05-01",
        "--until",
        "2024-07-01",
        "-o",
        "json",
    ]);
    let m = months.json();
    assert_eq!(m[0]["period"], "2024-05");
    assert_eq!(m[0]["hours"], 12.0);
    assert_eq!(m[1]["period"], "2024-06");
    assert_eq!(m[1]["hours"], 12.0);
    // Scripts get the periods alone.
    let q = c.run_args(&[
        "openmesh",
        "cost",
        "--by",
        "week",
        "--since",
        "2024-05-30",
        "--until",
        "2024-06-03",
        "-q",
    ]);
    assert_eq!(q.stdout, "2024-05-27\ntotal\n");
}

#[test]
fn sync_exit_code_says_whether_the_record_and_the_providers_differ() {
    let mock = MockServer::start(Provider::DigitalOcean, MockConfig::default());
    let mut c = capsule();
    for (k, v) in mock.env() {
        c = c.env(&k, v);
    }
    // Nothing recorded, nothing at the provider: in sync, exit 0.
    let same = c.run_args(&["openmesh", "sync", "-p", "digitalocean", "--exit-code"]);
    assert_eq!(same.code, 0, "{}", same.stderr);
    // A capsule-tagged server capsule has no record of: an orphan, exit 2.
    mock.add_node(
        NodeSpec::named("stray")
            .tag("capsule")
            .tag("capsule-o1")
            .plan("s-1vcpu-1gb"),
    );
    let differs = c.run_args(&[
        "openmesh",
        "sync",
        "-p",
        "digitalocean",
        "--exit-code",
        "-o",
        "json",
    ]);
    assert_eq!(differs.code, 2, "{}", differs.stderr);
    assert_eq!(differs.json()[0]["finding"], "orphan");
    // Without --exit-code a finding is not a failure.
    let plain = c.run_args(&["openmesh", "sync", "-p", "digitalocean"]);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    // Adopted: in sync again.
    c.run_args(&["openmesh", "sync", "-p", "digitalocean", "--adopt"]);
    let after = c.run_args(&["openmesh", "sync", "-p", "digitalocean", "--exit-code"]);
    assert_eq!(after.code, 0, "{}", after.stderr);
}

#[track_caller]
fn golden(name: &str, actual: &str) {
    crate::support::golden("output", name, actual);
}
