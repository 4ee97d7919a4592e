//! The state store through the CLI: inventory import/export round trips, malformed files,
//! concurrent writers, migrations, cost figures, history cleaning.

use crate::support::{capsule, Backend};
use capsule::state::{SqliteStore, Store};
use serde_json::Value;
use std::process::{Command, Stdio};

const HEADER: &str = "deploy_id,name,provider,template,plan,region,status,price_hourly,price_monthly,currency,created_at,started_at,stopped_at,deleted_at";

/// Values that CSV has to quote: commas, quotes, newlines, non-ASCII (in `raw_status`, the
/// free-text column; node names keep to the hostname alphabet).
const AWKWARD: &str = "deploy_id,name,provider,template,plan,region,status,raw_status,price_hourly,price_monthly,currency,ipv4,created_at,started_at,stopped_at,deleted_at
a1,web-one,digitalocean,do-small,s-1vcpu-1gb,nyc1,running,\"web, one\",0.00893,6,USD,203.0.113.7,2024-05-01T00:00:00Z,2024-05-01T00:01:00Z,,
a2,say-hi,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,stopped,\"say \"\"hi\"\"\",0.007,5,USD,,2024-05-02T10:00:00+02:00,2024-05-02T08:01:00Z,2024-05-03T00:00:00Z,
a3,two-lines,linode,linode-nanode-1gb,g6-nanode-1,us-east,deleted,\"two
lines\",0.0075,5,USD,,2024-05-03T00:00:00Z,2024-05-03T00:00:00Z,,2024-05-04T00:00:00Z
a4,nodo-tokyo,scaleway,scw-dev1-m,DEV1-M,par1,running,ñodo-東京-🚀,0.0198,14.45,EUR,,2024-05-04T00:00:00Z,2024-05-04T00:00:00Z,,
";

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn csv_round_trip_is_byte_identical(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let input = write(files.path(), "in.csv", AWKWARD);
    let a = backend.capsule();
    a.run_args(&["openmesh", "inventory", "import", &input]);
    let first = a.run_args(&["openmesh", "inventory", "export"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stdout.contains("\"two\nlines\""), "{}", first.stdout);
    assert!(first.stdout.contains("ñodo-東京-🚀"), "{}", first.stdout);
    assert!(
        first.stdout.contains("2024-05-02T08:00:00Z"),
        "offsets are normalised to UTC:\n{}",
        first.stdout
    );
    // Import the export into a fresh home: the second export is the same bytes.
    let exported = write(files.path(), "export.csv", &first.stdout);
    let b = backend.capsule();
    let imp = b.run_args(&["openmesh", "inventory", "import", &exported, "-o", "json"]);
    assert_eq!(imp.code, 0, "{}", imp.stderr);
    assert_eq!(imp.json()["added"], 4);
    let second = b.run_args(&["openmesh", "inventory", "export", "-"]);
    assert_eq!(second.stdout, first.stdout);
    // Importing it again updates nothing and duplicates nothing.
    let again = b.run_args(&["openmesh", "inventory", "import", &exported, "-o", "json"]);
    assert_eq!(
        (
            again.json()["added"].clone(),
            again.json()["unchanged"].clone()
        ),
        (Value::from(0), Value::from(4))
    );
    let all = b
        .run_args(&["openmesh", "inventory", "--all", "-o", "json"])
        .json();
    assert_eq!(all.as_array().unwrap().len(), 4);
}

fn json_round_trip_is_byte_identical(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let input = write(files.path(), "in.csv", AWKWARD);
    let a = backend.capsule();
    a.run_args(&["openmesh", "inventory", "import", &input]);
    let out = files.path().join("nodes.json");
    let r = a.run_args(&[
        "openmesh",
        "inventory",
        "export",
        out.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let first = std::fs::read_to_string(&out).unwrap();
    let parsed: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(parsed[2]["name"], "two-lines");
    assert_eq!(parsed[2]["raw_status"], "two\nlines");
    let b = backend.capsule();
    let r = b.run_args(&["openmesh", "inventory", "import", out.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let second = b.run_args(&["openmesh", "inventory", "export", "--format", "json"]);
    assert_eq!(second.stdout, first);
}

fn import_updates_a_node_by_deploy_id(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let c = backend.capsule();
    let one = write(files.path(), "1.csv", &format!("{HEADER}\nx1,web,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,running,0.007,5,USD,2024-05-01T00:00:00Z,2024-05-01T00:00:00Z,,\n"));
    let two = write(files.path(), "2.csv", &format!("{HEADER}\nx1,web-renamed,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,stopped,0.007,5,USD,2024-05-01T00:00:00Z,2024-05-01T00:00:00Z,2024-05-02T00:00:00Z,\n"));
    c.run_args(&["openmesh", "inventory", "import", &one]);
    let r = c.run_args(&["openmesh", "inventory", "import", &two, "-o", "json"]);
    assert_eq!(r.json()["updated"], 1, "{}", r.stdout);
    let nodes = c.run_args(&["openmesh", "inventory", "-o", "json"]).json();
    assert_eq!(nodes.as_array().unwrap().len(), 1);
    assert_eq!(nodes[0]["name"], "web-renamed");
    assert_eq!(nodes[0]["status"], "stopped");
    let h = c
        .run_args(&["openmesh", "history", "--node", "web-renamed", "-o", "json"])
        .json();
    assert_eq!(h.as_array().unwrap().len(), 2);
    assert_eq!(
        h[1]["message"],
        "updated from an import: status running → stopped"
    );
}

fn dry_run_import_writes_nothing(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let input = write(files.path(), "in.csv", AWKWARD);
    let c = backend.capsule();
    let r = c.run_args(&[
        "openmesh",
        "inventory",
        "import",
        &input,
        "--dry-run",
        "-o",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.json()["added"], 4);
    assert_eq!(r.json()["dry_run"], true);
    let all = c
        .run_args(&["openmesh", "inventory", "--all", "-o", "json"])
        .json();
    assert_eq!(all, Value::Array(vec![]));
}

/// Import `text`; it must fail with exit 2, print exactly `expected` (after `capsule: `), and
/// leave the inventory empty.
#[track_caller]
fn rejects(backend: Backend, text: &str, expected: &str) {
    let files = tempfile::tempdir().unwrap();
    let path = write(files.path(), "nodes.csv", text);
    let c = backend.capsule();
    let r = c.run_args(&["openmesh", "inventory", "import", &path]);
    assert_eq!(r.code, 2, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let want = format!(
        "capsule: {}\nnothing was imported — fix the rows above and import again\n",
        expected.replace("FILE", &path)
    );
    assert_eq!(r.stderr, want);
    let all = c
        .run_args(&["openmesh", "inventory", "--all", "-o", "json"])
        .json();
    assert_eq!(
        all,
        Value::Array(vec![]),
        "a rejected file imported something"
    );
}

const GOOD_ROW: &str =
    "g1,good,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,running,0.007,5,USD,2024-05-01T00:00:00Z,,,";

fn malformed_csv_missing_column(backend: Backend) {
    rejects(
        backend,
        "deploy_id,name,provider,template,plan,region,status,price_hourly,currency\ng1,good,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,running,0.007,USD\n",
        "FILE:1:price_monthly: missing column — add it to the header; `capsule openmesh inventory export` writes every column",
    );
}

fn malformed_csv_bad_number(backend: Backend) {
    rejects(
        backend,
        &format!("{HEADER}\n{GOOD_ROW}\nb1,bad,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,running,cheap,5,USD,,,,\n"),
        "FILE:3:price_hourly: 'cheap' is not a number — write the price as a decimal like 0.0125",
    );
}

fn malformed_csv_bad_date(backend: Backend) {
    rejects(
        backend,
        &format!("{HEADER}\n{GOOD_ROW}\nb1,bad,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,running,0.007,5,USD,2024-13-01,,,\n"),
        "FILE:3:created_at: '2024-13-01' is not a date and time — write RFC 3339 like 2024-05-01T12:00:00Z",
    );
}

fn malformed_csv_unknown_provider(backend: Backend) {
    rejects(
        backend,
        &format!("{HEADER}\n{GOOD_ROW}\nb1,bad,vultur,vultr-vc2-1,vc2-1c-1gb,ewr,running,0.007,5,USD,,,,\n"),
        "FILE:3:provider: unknown provider 'vultur' — did you mean 'vultr'?",
    );
}

fn malformed_csv_reports_every_bad_row_by_its_line(backend: Backend) {
    // The quoted newline makes the second record span lines 3–4, so the third starts on line 5.
    rejects(
        backend,
        &format!("{HEADER}\n{GOOD_ROW}\nb1,\"two\nlines\",vultr,vultr-vc2-1,vc2-1c-1gb,ewr,runing,0.007,5,USD,,,,\nb2,short,vultr\n"),
        "FILE:3:name: node name 'two\\nlines' is not a valid hostname — use 1 to 63 letters, digits, '-' or '.', starting and ending with a letter or digit\n\
         FILE:3:status: unknown status 'runing' — did you mean 'running'?\n\
         FILE:5:template: missing value — the row has 3 fields, the header 14",
    );
}

fn malformed_csv_duplicate_live_name(backend: Backend) {
    rejects(
        backend,
        &format!("{HEADER}\n{GOOD_ROW}\ng2,good,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,running,0.007,5,USD,,,,\n"),
        "FILE:3:name: a live node is already named 'good' (deploy id g1) — rename one of them",
    );
}

fn eight_processes_write_at_once_and_lose_nothing(backend: Backend) {
    const PROCS: usize = 8;
    const ROWS: usize = 40;
    let files = tempfile::tempdir().unwrap();
    let c = backend.capsule();
    let mut paths = Vec::new();
    for p in 0..PROCS {
        let mut text = format!("{HEADER}\n");
        for r in 0..ROWS {
            text.push_str(&format!(
                "p{p}r{r},node-{p}-{r},digitalocean,do-small,s-1vcpu-1gb,nyc1,running,0.00893,6,USD,2024-05-01T00:00:00Z,,,\n"
            ));
        }
        paths.push(write(files.path(), &format!("{p}.csv"), &text));
    }
    // All eight start together on a home with no store yet: they race to create and migrate it too.
    let children: Vec<_> = paths
        .iter()
        .map(|path| {
            Command::new(env!("CARGO_BIN_EXE_capsule"))
                .args(["openmesh", "inventory", "import", path])
                .env_clear()
                .env("CAPSULE_HOME", c.home())
                .env("HOME", c.home())
                .env("NO_COLOR", "1")
                .envs(c.env_vars())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "an import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let nodes = c.run_args(&["openmesh", "inventory", "-o", "json"]).json();
    assert_eq!(nodes.as_array().unwrap().len(), PROCS * ROWS);
    let history = c
        .run_args(&["openmesh", "history", "--limit", "0", "-o", "json"])
        .json();
    assert_eq!(history.as_array().unwrap().len(), PROCS * ROWS);
}

#[test]
fn a_v1_store_is_migrated_on_open() {
    let c = capsule();
    let path = c.home().join("state.db");
    {
        let v1 = SqliteStore::open_at(&path, 1).unwrap();
        v1.connection()
            .execute_batch(
                "INSERT INTO nodes(deploy_id, name, provider, provider_id, template, plan, region, status, price_hourly, \
                 price_monthly, currency, recorded_at, created_at, started_at, deleted_at, updated_at) VALUES \
                 ('old', 'legacy', 'vultr', '77', 'vc2-1c-1gb', 'vc2-1c-1gb', 'ewr', 'deleted', 0.01, 5.0, 'USD', \
                  '2024-01-20T00:00:00Z', '2024-01-20T00:00:00Z', '2024-01-20T00:00:00Z', '2024-03-05T00:00:00Z', \
                  '2024-03-05T00:00:00Z');",
            )
            .unwrap();
    }
    let nodes = c
        .run_args(&["openmesh", "inventory", "--all", "-o", "json"])
        .json();
    assert_eq!(nodes[0]["group_id"], "old");
    assert_eq!(nodes[0]["provider_id"], "77");
    // The rebuilt timeline feeds cost: see `cost_uses_the_price_paid_and_the_monthly_cap`.
    let cost = c
        .run_args(&[
            "openmesh",
            "cost",
            "--since",
            "2024-01-01",
            "--until",
            "2024-04-01",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(cost[0]["cost"], 8.84);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        capsule::state::schema::version(store.connection()).unwrap(),
        capsule::state::schema::LATEST
    );
    assert_eq!(store.timeline("old").unwrap().len(), 2);
}

fn cost_uses_the_price_paid_and_the_monthly_cap(backend: Backend) {
    // Running 2024-01-20 → 2024-03-05 at 0.01/h, 5.00/month; vultr caps at 672 h (6.72 > 5.00):
    //   January 288 h → 2.88; February 696 h → 6.96 capped at 5.00; March 96 h → 0.96 = 8.84.
    // A second node (EUR) running a day, then stopped a day, on a provider that bills no
    //   compute while stopped: 2024-02-10 00:00 → 2024-02-11 00:00 = 24 h at 0.02 = 0.48 EUR.
    let files = tempfile::tempdir().unwrap();
    let input = write(
        files.path(),
        "n.csv",
        &format!(
            "{HEADER}\n\
             c1,capped,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,deleted,0.01,5,USD,2024-01-20T00:00:00Z,2024-01-20T00:00:00Z,,2024-03-05T00:00:00Z\n\
             c2,euro,scaleway,scw-dev1-m,DEV1-M,par1,deleted,0.02,14,EUR,2024-02-10T00:00:00Z,2024-02-10T00:00:00Z,2024-02-11T00:00:00Z,2024-02-12T00:00:00Z\n"
        ),
    );
    let c = backend.capsule();
    c.run_args(&["openmesh", "inventory", "import", &input]);
    let cost = c
        .run_args(&[
            "openmesh",
            "cost",
            "--since",
            "2024-01-01",
            "--until",
            "2024-04-01",
            "-o",
            "json",
        ])
        .json();
    let rows = cost.as_array().unwrap();
    assert_eq!(rows[0]["group"], "scaleway");
    assert_eq!(rows[0]["currency"], "EUR");
    assert_eq!(rows[0]["hours"], 24.0);
    assert_eq!(rows[0]["cost"], 0.48);
    assert!(
        rows[0]["cost_usd"].as_f64().unwrap() > 0.48,
        "EUR is converted at the catalog rate"
    );
    assert_eq!(rows[1]["group"], "vultr");
    assert_eq!(rows[1]["hours"], 1080.0);
    assert_eq!(rows[1]["cost"], 8.84);
    assert_eq!(rows[1]["cost_usd"], 8.84);
    assert_eq!(rows[2]["group"], "total");
    // Only February: the capped month alone.
    let feb = c
        .run_args(&[
            "openmesh",
            "cost",
            "--since",
            "2024-02-01",
            "--until",
            "2024-03-01",
            "--by",
            "node",
            "-o",
            "json",
        ])
        .json();
    let capped = feb
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["group"] == "capped")
        .unwrap()
        .clone();
    assert_eq!(capped["cost"], 5.0);
    assert_eq!(capped["deploy_id"], "c1");
    // CSV and table work too.
    let csv = c.run_args(&["openmesh", "cost", "--by", "template", "-o", "csv"]);
    assert!(
        csv.stdout
            .starts_with("group,provider,nodes,hours,cost,currency,cost_usd"),
        "{}",
        csv.stdout
    );
    let bad = c.run_args(&[
        "openmesh",
        "cost",
        "--since",
        "2024-03-01",
        "--until",
        "2024-02-01",
    ]);
    assert_eq!(bad.code, 2);
}

fn history_clean_keeps_events_of_live_nodes(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let input = write(files.path(), "in.csv", AWKWARD);
    let c = backend.capsule();
    c.run_args(&["openmesh", "inventory", "import", &input]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let dry = c
        .run_args(&[
            "openmesh",
            "history",
            "clean",
            "--older-than",
            "0s",
            "--dry-run",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(
        (dry["removed"].clone(), dry["kept_live"].clone()),
        (Value::from(1), Value::from(3))
    );
    assert_eq!(
        c.run_args(&["openmesh", "history", "-o", "json"])
            .json()
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let done = c
        .run_args(&[
            "openmesh",
            "history",
            "clean",
            "--older-than",
            "0s",
            "--yes", // issue 14: cleaning asks first
            "-o",
            "json",
        ])
        .json();
    assert_eq!(done["removed"], 1);
    let left = c.run_args(&["openmesh", "history", "-o", "json"]).json();
    let nodes: Vec<&str> = left
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["deploy_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        nodes,
        ["a1", "a2", "a4"],
        "only the deleted node's event goes"
    );
    let bad = c.run_args(&["openmesh", "history", "clean", "--older-than", "soon"]);
    assert_eq!(bad.code, 2);
}

/// The state this invocation uses, for another "machine" to share it: its `CAPSULE_STATE`,
/// else its home's SQLite file.
fn state_of(c: &crate::support::Capsule) -> String {
    c.envs()
        .find(|(k, _)| *k == "CAPSULE_STATE")
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| c.home().join("state.db").display().to_string())
}

fn header(c: &crate::support::Capsule, args: &[&str]) -> Vec<String> {
    let out = c.run_args(args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_lowercase)
        .collect()
}

fn history_records_the_machine_and_the_user(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let a = backend
        .capsule()
        .env("CAPSULE_MACHINE", "laptop-ann")
        .env("USER", "ann");
    let input = write(files.path(), "a.csv", &format!("{HEADER}\n{GOOD_ROW}\n"));
    assert_eq!(
        a.run_args(&["openmesh", "inventory", "import", &input])
            .code,
        0
    );
    // One machine, one user: JSON has the keys, the table stays as it was.
    let events = a.run_args(&["openmesh", "history", "-o", "json"]).json();
    assert_eq!(events[0]["machine"], "laptop-ann");
    assert_eq!(events[0]["user"], "ann");
    let wide = ["openmesh", "--wide", "history"];
    let cols = header(&a, &wide);
    assert_eq!(
        cols,
        ["time", "node", "provider", "action", "outcome", "state", "message"]
    );
    // A second machine, another user, the same store.
    let b = capsule()
        .env("CAPSULE_STATE", state_of(&a))
        .env("CAPSULE_MACHINE", "ci-runner-7")
        .env("USER", "")
        .env("LOGNAME", "ci");
    let input = write(
        files.path(),
        "b.csv",
        &format!("{HEADER}\nb1,from-ci,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,running,0.007,5,USD,2024-05-01T00:00:00Z,,,\n"),
    );
    assert_eq!(
        b.run_args(&["openmesh", "inventory", "import", &input])
            .code,
        0
    );
    for who in [&a, &b] {
        let events = who.run_args(&["openmesh", "history", "-o", "json"]).json();
        let seen: Vec<(&str, &str, &str)> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["node"].as_str().unwrap(),
                    e["machine"].as_str().unwrap(),
                    e["user"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("good", "laptop-ann", "ann"),
                ("from-ci", "ci-runner-7", "ci")
            ]
        );
        // Now the table says who did what, on both machines.
        let cols = header(who, &wide);
        assert_eq!(
            cols,
            [
                "time", "node", "provider", "action", "outcome", "state", "machine", "user",
                "message"
            ]
        );
        let text = who.run_args(&["openmesh", "--wide", "history"]).stdout;
        assert!(
            text.contains("ci-runner-7") && text.contains("laptop-ann"),
            "{text}"
        );
        // `inventory show` lists the node's events the same way.
        let shown = who.run_args(&["openmesh", "inventory", "show", "from-ci", "-o", "json"]);
        assert_eq!(shown.json()["events"][0]["machine"], "ci-runner-7");
    }
    // CSV always has the columns.
    let csv = a.run_args(&["openmesh", "history", "-o", "csv"]).stdout;
    assert_eq!(
        csv.lines().next().unwrap(),
        "time,node,provider,action,outcome,state,machine,user,message"
    );
}

fn inventory_filters_show_and_stats(backend: Backend) {
    let files = tempfile::tempdir().unwrap();
    let input = write(files.path(), "in.csv", AWKWARD);
    let c = backend.capsule();
    c.run_args(&["openmesh", "inventory", "import", &input]);
    let names = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["openmesh", "inventory"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", "json"]);
        let out = c.run_args(&a);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&[]), ["web-one", "say-hi", "nodo-tokyo"]);
    assert_eq!(names(&["--all"]).len(), 4);
    assert_eq!(names(&["list", "--provider", "vultr"]), ["say-hi"]);
    assert_eq!(
        names(&["list", "--status", "running", "--region", "par1"]),
        ["nodo-tokyo"]
    );
    assert_eq!(names(&["--name", "web*"]), ["web-one"]);
    assert_eq!(names(&["--status", "deleted"]), ["two-lines"]);
    let bad = c.run_args(&["openmesh", "inventory", "--status", "runing"]);
    assert_eq!(bad.code, 2);
    assert_eq!(
        bad.stderr,
        "capsule: unknown status 'runing' — did you mean 'running'?\n"
    );
    let csv = c.run_args(&["openmesh", "inventory", "-o", "csv"]);
    assert!(
        csv.stdout
            .starts_with("name,provider,region,template,status,ipv4,hourly_usd"),
        "{}",
        csv.stdout
    );

    let show = c
        .run_args(&["openmesh", "inventory", "show", "web-one", "-o", "json"])
        .json();
    assert_eq!(show["deploy_id"], "a1");
    assert_eq!(show["tag"], "capsule-a1");
    assert_eq!(show["events"][0]["action"], "import");
    assert_eq!(show["timeline"][1]["state"], "running");
    let table = c.run_args(&["openmesh", "inventory", "show", "a1"]);
    assert!(table.stdout.contains("203.0.113.7"), "{}", table.stdout);
    let missing = c.run_args(&["openmesh", "inventory", "show", "web-onе"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("unknown node"),
        "{}",
        missing.stderr
    );

    let stats = c
        .run_args(&["openmesh", "inventory", "stats", "-o", "json"])
        .json();
    let all = &stats[0];
    assert_eq!(
        (
            all["by"].as_str(),
            all["nodes"].as_u64(),
            all["running"].as_u64()
        ),
        (Some("all"), Some(3), Some(2))
    );
    assert_eq!(all["oldest"], "web-one");
    assert_eq!(all["newest"], "nodo-tokyo");
    let vultr = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["by"] == "provider" && r["value"] == "vultr")
        .unwrap();
    // Stopped, but billed when stopped: 0.007/h and its month capped at 5.00 (672 h × 0.007 = 4.704).
    assert_eq!(vultr["hourly_usd"], 0.007);
    assert_eq!(vultr["monthly_usd"], 4.704);
    let table = c.run_args(&["openmesh", "inventory", "stats"]);
    assert!(
        table.stdout.contains("BY") && table.stdout.contains("template"),
        "{}",
        table.stdout
    );
}

crate::both_backends!(
    csv_round_trip_is_byte_identical,
    json_round_trip_is_byte_identical,
    import_updates_a_node_by_deploy_id,
    dry_run_import_writes_nothing,
    malformed_csv_missing_column,
    malformed_csv_bad_number,
    malformed_csv_bad_date,
    malformed_csv_unknown_provider,
    malformed_csv_reports_every_bad_row_by_its_line,
    malformed_csv_duplicate_live_name,
    eight_processes_write_at_once_and_lose_nothing,
    cost_uses_the_price_paid_and_the_monthly_cap,
    history_clean_keeps_events_of_live_nodes,
    inventory_filters_show_and_stats,
    history_records_the_machine_and_the_user,
);

mod sync {
    //! `sync` against a local provider server: orphans, ghosts, drift; adopt and forget.

    use super::write;
    use crate::support::mock::{MockConfig, MockServer, NodeSpec, Op, Provider};
    use crate::support::Backend;
    use serde_json::Value;
    use std::time::{Duration, Instant};

    fn findings(out: &Value) -> Vec<(String, String, String)> {
        let mut v: Vec<(String, String, String)> = out
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["finding"].as_str().unwrap_or("").to_string(),
                    r["name"].as_str().unwrap_or("").to_string(),
                    r["action"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        v.sort();
        v
    }

    fn finds_orphans_ghosts_and_drift_then_adopts_and_forgets(backend: Backend) {
        let mock = MockServer::new(Provider::DigitalOcean);
        let kept = mock.add_node(
            NodeSpec::named("kept")
                .tag("capsule")
                .tag("capsule-k1")
                .status("off"),
        );
        mock.add_node(
            NodeSpec::named("stray")
                .tag("capsule")
                .tag("capsule-o1")
                .plan("s-1vcpu-1gb"),
        );
        mock.add_node(NodeSpec::named("not-ours"));
        let files = tempfile::tempdir().unwrap();
        let header = "deploy_id,name,provider,provider_id,template,plan,region,status,price_hourly,price_monthly,currency,created_at";
        let csv = write(
            files.path(),
            "n.csv",
            &format!(
                "{header}\n\
                 k1,kept,digitalocean,{kept},do-small,s-1vcpu-1gb,nyc1,running,0.00893,6,USD,2024-05-01T00:00:00Z\n\
                 g1,ghost,digitalocean,99999999,do-small,s-1vcpu-1gb,nyc1,running,0.00893,6,USD,2024-05-01T00:00:00Z\n"
            ),
        );
        let mut c = backend.capsule();
        for (k, v) in mock.env() {
            c = c.env(&k, v);
        }
        c.run_args(&["openmesh", "inventory", "import", &csv]);

        let report = c.run_args(&[
            "openmesh",
            "sync",
            "--provider",
            "digitalocean",
            "-o",
            "json",
        ]);
        assert_eq!(report.code, 0, "{}", report.stderr);
        let f = findings(&report.json());
        assert_eq!(
            f,
            [
                ("drift".into(), "kept".into(), "updated".into()),
                ("ghost".into(), "ghost".into(), "reported".into()),
                ("orphan".into(), "stray".into(), "reported".into()),
            ],
            "{}",
            report.stdout
        );
        let kept_now = c
            .run_args(&["openmesh", "inventory", "show", "kept", "-o", "json"])
            .json();
        assert_eq!(kept_now["status"], "stopped");
        assert!(
            report.stderr.contains("--adopt records orphans"),
            "{}",
            report.stderr
        );

        let fix = c.run_args(&[
            "openmesh",
            "sync",
            "-p",
            "digitalocean",
            "--adopt",
            "--forget",
            "-o",
            "json",
        ]);
        assert_eq!(fix.code, 0, "{}", fix.stderr);
        assert_eq!(
            findings(&fix.json()),
            [
                (
                    "ghost".to_string(),
                    "ghost".to_string(),
                    "forgotten".to_string()
                ),
                (
                    "orphan".to_string(),
                    "stray".to_string(),
                    "adopted".to_string()
                ),
            ]
        );
        let live: Vec<String> = c
            .run_args(&["openmesh", "inventory", "-o", "json"])
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(live, ["kept", "stray"]);
        let stray = c
            .run_args(&["openmesh", "inventory", "show", "stray", "-o", "json"])
            .json();
        assert_eq!(stray["deploy_id"], "o1");
        assert_eq!(stray["status"], "running");

        // Settled: nothing left to report, and nothing doubled.
        let again = c.run_args(&[
            "openmesh",
            "sync",
            "-p",
            "digitalocean",
            "--adopt",
            "--forget",
            "-o",
            "json",
        ]);
        assert_eq!(again.json(), Value::Array(vec![]), "{}", again.stderr);
        let all = c
            .run_args(&["openmesh", "inventory", "--all", "-o", "json"])
            .json();
        assert_eq!(all.as_array().unwrap().len(), 3);
    }

    fn skips_providers_without_credentials_and_reports_a_failing_one(backend: Backend) {
        let mock = MockServer::new(Provider::DigitalOcean);
        let mut c = backend.capsule();
        for (k, v) in mock.env() {
            c = c.env(&k, v);
        }
        let quiet = c.run_args(&["openmesh", "sync", "-o", "json"]);
        assert_eq!(quiet.code, 0, "{}", quiet.stderr);
        // (issue 14: the providers without credentials are listed on one line)
        assert!(
            quiet
                .stderr
                .lines()
                .any(|l| l.starts_with("note: skipped, no credentials: ") && l.contains("vultr")),
            "{}",
            quiet.stderr
        );
        assert!(
            quiet.stderr.contains("note: digitalocean: 0 in sync"),
            "{}",
            quiet.stderr
        );
        // Vultr configured but unreachable: reported, exit 1, the other provider still synced.
        let broken = c
            .env("VULTR_API_KEY", "test-key-123456")
            .env("CAPSULE_ENDPOINT_VULTR", "http://127.0.0.1:9")
            .run_args(&[
                "openmesh",
                "sync",
                "-p",
                "vultr",
                "-p",
                "digitalocean",
                "-o",
                "json",
            ]);
        assert_eq!(broken.code, 1, "{}", broken.stderr);
        let rows = broken.json();
        assert_eq!(rows[0]["provider"], "vultr");
        assert_eq!(rows[0]["finding"], "failed");
        assert!(
            broken.stderr.contains("note: digitalocean: 0 in sync"),
            "{}",
            broken.stderr
        );
    }

    fn a_deploy_killed_after_the_create_is_settled_by_sync(backend: Backend) {
        // The provider takes its time answering the create; capsule is killed while it waits.
        let mock = MockServer::start(
            Provider::DigitalOcean,
            MockConfig::default().with_latency(Duration::from_millis(700)),
        );
        let mut c = backend.capsule();
        for (k, v) in mock.env() {
            c = c.env(&k, v);
        }
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_capsule"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CAPSULE_HOME", c.home())
            .env("HOME", c.home())
            .env("NO_COLOR", "1")
            .env("CAPSULE_BACKOFF_MS", "5")
            .env("CAPSULE_NO_SSH_KEY", "1")
            .envs(c.env_vars());
        for (k, v) in mock.env() {
            cmd.env(k, v);
        }
        cmd.args([
            "openmesh",
            "deploy",
            "--provider",
            "digitalocean",
            "--template",
            "do-small",
            "--name",
            "k9",
            "--yes",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().expect("spawn capsule");
        let started = Instant::now();
        while mock.count(Op::Create) == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no create after 20 s"
            );
            if let Some(status) = child.try_wait().unwrap() {
                panic!("capsule ended ({status}) before it could be killed");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().expect("kill -9");
        child.wait().unwrap();
        // The intent was recorded before the create call.
        let before = c
            .run_args(&["openmesh", "inventory", "show", "k9", "-o", "json"])
            .json();
        assert_eq!(before["status"], "creating");
        assert_eq!(before["provider_id"], Value::Null);
        while mock.count_creates() == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the provider never created the node"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let sync = c.run_args(&[
            "openmesh",
            "sync",
            "-p",
            "digitalocean",
            "--adopt",
            "-o",
            "json",
        ]);
        assert_eq!(sync.code, 0, "{}", sync.stderr);
        let rows = sync.json();
        assert_eq!(rows.as_array().unwrap().len(), 1, "{}", sync.stdout);
        assert_eq!(
            (rows[0]["finding"].as_str(), rows[0]["action"].as_str()),
            (Some("drift"), Some("updated"))
        );
        let after = c
            .run_args(&["openmesh", "inventory", "--all", "-o", "json"])
            .json();
        let after = after.as_array().unwrap();
        assert_eq!(after.len(), 1, "nothing doubled");
        assert_eq!(after[0]["deploy_id"], before["deploy_id"]);
        assert_eq!(
            after[0]["provider_id"].as_str(),
            Some(mock.nodes()[0].id.as_str())
        );
        assert_ne!(after[0]["status"], "creating");
        assert_eq!(mock.nodes().len(), 1, "nothing lost, nothing created twice");
    }

    crate::both_backends!(
        finds_orphans_ghosts_and_drift_then_adopts_and_forgets,
        skips_providers_without_credentials_and_reports_a_failing_one,
        a_deploy_killed_after_the_create_is_settled_by_sync,
    );
}

/// A date that names no day is bad input with the month's length, for every date option.
#[test]
fn impossible_days_are_refused_with_the_month_length() {
    for (flag, args) in [
        ("--since", &["openmesh", "history"][..]),
        ("--until", &["openmesh", "cost"][..]),
    ] {
        let mut argv = args.to_vec();
        argv.extend([flag, "2026-02-31"]);
        capsule().args(&argv).code(2).stderr_has(&format!(
            "{flag} '2026-02-31' is not a day of the calendar: February 2026 has 28 days"
        ));
    }
}
