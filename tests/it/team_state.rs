//! Team state on a real PostgreSQL (`support::pg`): two machines (two `CAPSULE_HOME`s) sharing
//! one database see one inventory and cannot take the same name; bad URLs, a down server and a
//! newer schema are refused clearly and never show the password; `state migrate` moves a store
//! SQLite → PostgreSQL → SQLite without losing a row; `deploy --resume` of a fleet another
//! machine holds is refused.

use crate::support::mock::{MockServer, Provider};
use crate::support::{against, capsule, pg, Capsule};
use serde_json::Value;

const CSV: &str = "deploy_id,name,provider,template,plan,region,status,raw_status,price_hourly,price_monthly,currency,ipv4,created_at,started_at,stopped_at,deleted_at
a1,web-one,digitalocean,do-small,s-1vcpu-1gb,nyc1,running,\"web, one\",0.00893,6,USD,203.0.113.7,2024-05-01T00:00:00Z,2024-05-01T00:01:00Z,,
a2,say-hi,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,stopped,\"say \"\"hi\"\"\",0.007,5,USD,,2024-05-02T10:00:00+02:00,2024-05-02T08:01:00Z,2024-05-03T00:00:00Z,
a3,two-lines,linode,linode-nanode-1gb,g6-nanode-1,us-east,deleted,\"two
lines\",0.0075,5,USD,,2024-05-03T00:00:00Z,2024-05-03T00:00:00Z,,2024-05-04T00:00:00Z
a4,nodo-tokyo,scaleway,scw-dev1-m,DEV1-M,par1,running,ñodo-東京-🚀,0.0198,14.45,EUR,,2024-05-04T00:00:00Z,2024-05-04T00:00:00Z,,
";

/// A machine: its own home, the shared database.
fn machine(url: &str) -> Capsule {
    capsule().env("CAPSULE_STATE", url)
}

fn import(c: &Capsule, text: &str) -> crate::support::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nodes.csv");
    std::fs::write(&path, text).unwrap();
    c.run_args(&["openmesh", "inventory", "import", path.to_str().unwrap()])
}

fn names(c: &Capsule) -> Vec<String> {
    let out = c.run_args(&["openmesh", "inventory", "-o", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn two_machines_see_one_inventory_and_cannot_take_the_same_name() {
    let url = pg::fresh_database();
    let (a, b) = (machine(&url), machine(&url));
    let out = import(&a, CSV);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(names(&b), ["web-one", "say-hi", "nodo-tokyo"]);
    // Machine b deploys a name machine a holds: refused before any provider call.
    let mock = MockServer::new(Provider::DigitalOcean);
    let refused = against(machine(&url), &[&mock]).run_args(&[
        "openmesh",
        "deploy",
        "--provider",
        "digitalocean",
        "--template",
        "do-small",
        "--name",
        "web-one",
        "--yes",
    ]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("a live node is already named 'web-one' (deploy id a1)"),
        "{}",
        refused.stderr
    );
    assert_eq!(mock.count_creates(), 0, "nothing was created");
    // A name free on both: b deploys it, a sees it.
    let ok = against(b, &[&mock]).run_args(&[
        "openmesh",
        "deploy",
        "--provider",
        "digitalocean",
        "--template",
        "do-small",
        "--name",
        "from-b",
        "--yes",
    ]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(names(&a).contains(&"from-b".to_string()));
    // The history of one machine's deploy is the other's too.
    let history = a.run_args(&["openmesh", "history", "--limit", "0", "-o", "json"]);
    let events = history.json();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["node"] == "from-b" && e["action"] == "deploy"),
        "{}",
        history.stdout
    );
}

#[test]
fn a_bad_url_is_exit_2_and_a_down_server_exit_1_and_the_password_never_shows() {
    for bad in [
        "postgres://ann:hunter2@db.example/x?sslmode=sometimes",
        "postgres://ann:hunter2@/x",
        "postgres://ann:hunter2@db.example/x?colour=blue",
    ] {
        let out = machine(bad).run_args(&["openmesh", "inventory"]);
        assert_eq!(out.code, 2, "{bad}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = format!("postgres://ann:hunter2@127.0.0.1:{port}/team");
    let out = machine(&down).run_args(&["openmesh", "inventory"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with(&format!(
            "capsule: cannot connect to the team state postgres://ann@127.0.0.1:{port}/team?sslmode=prefer: "
        )),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    // The same through the flag.
    let flag = capsule().run_args(&["openmesh", "--state", &down, "state", "info"]);
    assert_eq!(flag.code, 1, "{}", flag.stderr);
    assert!(!flag.stderr.contains("hunter2"), "{}", flag.stderr);
}

#[test]
fn the_password_comes_from_pgpassword_or_pgpass_and_a_wrong_one_is_refused() {
    let url = pg::fresh_database();
    let bare = url.replacen(&format!(":{}@", pg::PASSWORD), "@", 1);
    assert_ne!(bare, url);
    let c = machine(&bare);
    let none = c.run_args(&["openmesh", "inventory"]);
    assert_eq!(none.code, 1, "{}", none.stderr);
    let env = machine(&bare).env("PGPASSWORD", pg::PASSWORD);
    let out = env.run_args(&["openmesh", "state", "info", "-o", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let info = out.json();
    assert_eq!(info["backend"], "postgresql");
    assert!(!out.stdout.contains(pg::PASSWORD), "{}", out.stdout);
    // ~/.pgpass (the test home is HOME), 0600 as libpq requires.
    let port = pg::server().port;
    let pgpass = c.home().join(".pgpass");
    std::fs::write(
        &pgpass,
        format!("127.0.0.1:{port}:*:postgres:{}\n", pg::PASSWORD),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = c.run_args(&["openmesh", "inventory"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let wrong = machine(&url.replacen(pg::PASSWORD, "not-the-password", 1));
    let out = wrong.run_args(&["openmesh", "inventory"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(!out.stderr.contains("not-the-password"), "{}", out.stderr);
}

#[test]
fn a_newer_schema_is_refused_naming_both_versions() {
    let url = pg::fresh_database();
    let c = machine(&url);
    assert_eq!(c.run_args(&["openmesh", "inventory"]).code, 0);
    let db = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    pg::server().psql(db, "UPDATE capsule_schema SET version = 99");
    let out = c.run_args(&["openmesh", "inventory"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "has schema version 99, newer than this capsule understands ({})",
            capsule::state::postgres::LATEST
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn a_v1_team_state_gains_machine_and_user_and_old_events_stay_unknown() {
    let url = pg::fresh_database();
    let c = machine(&url).env("CAPSULE_MACHINE", "laptop-ann");
    assert_eq!(import(&c, CSV).code, 0);
    // Back to the v1 layout, as a capsule from before machine and user left it.
    let db = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    pg::server().psql(
        db,
        "ALTER TABLE events DROP COLUMN machine, DROP COLUMN username; UPDATE capsule_schema SET version = 1",
    );
    let c = c.env("USER", "ann");
    let info = c.run_args(&["openmesh", "state", "info", "-o", "json"]);
    assert_eq!(info.code, 0, "{}", info.stderr);
    assert_eq!(
        info.json()["schema_version"],
        capsule::state::postgres::LATEST
    );
    let stop = import(
        &c,
        &CSV.replacen("running,\"web, one\"", "stopped,\"web, one\"", 1),
    );
    assert_eq!(stop.code, 0, "{}", stop.stderr);
    let events = c
        .run_args(&["openmesh", "history", "--limit", "0", "-o", "json"])
        .json();
    let who: Vec<(Value, Value)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["machine"].clone(), e["user"].clone()))
        .collect();
    assert_eq!(who.len(), 5, "{events:#}");
    assert!(
        who[..4].iter().all(|w| *w == (Value::Null, Value::Null)),
        "{who:?}"
    );
    assert_eq!(who[4], (Value::from("laptop-ann"), Value::from("ann")));
}

#[test]
fn migrate_sqlite_to_postgres_to_sqlite_is_lossless() {
    let local = capsule()
        .env("CAPSULE_MACHINE", "laptop-ann")
        .env("USER", "ann");
    assert_eq!(import(&local, CSV).code, 0);
    let before_export = local.run_args(&["openmesh", "inventory", "export", "--format", "json"]);
    let before_history = local.run_args(&["openmesh", "history", "--limit", "0", "-o", "json"]);
    let url = pg::fresh_database();
    let up = local.run_args(&["openmesh", "state", "migrate", "--to", &url, "-o", "json"]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    assert!(!up.stdout.contains(pg::PASSWORD) && !up.stderr.contains(pg::PASSWORD));
    let up = up.json();
    // Migrating again into the now-full database is refused, and changes nothing.
    let again = local.run_args(&["openmesh", "state", "migrate", "--to", &url]);
    assert_eq!(again.code, 2, "{}", again.stderr);

    let team = machine(&url);
    let info = team
        .run_args(&["openmesh", "state", "info", "-o", "json"])
        .json();
    assert_eq!(info["nodes"], 4);
    assert_eq!(info["live_nodes"], 3);
    assert_eq!(info["events"], 4);
    assert!(!info["location"].as_str().unwrap().contains(pg::PASSWORD));
    let team_export = team.run_args(&["openmesh", "inventory", "export", "--format", "json"]);
    assert_eq!(team_export.stdout, before_export.stdout);

    let back_dir = tempfile::tempdir().unwrap();
    let back = back_dir.path().join("back.db");
    let down = team.run_args(&[
        "openmesh",
        "state",
        "migrate",
        "--to",
        back.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert!(
        down.stderr.starts_with("capsule: copied postgres")
            && down.stderr.contains("counts and checksums match"),
        "{}",
        down.stderr
    );
    let down = down.json();
    assert_eq!(
        up["tables"], down["tables"],
        "the same rows and checksums on every hop"
    );
    let back_state = back.to_str().unwrap();
    let home = capsule();
    let export = home.run_args(&[
        "openmesh",
        "--state",
        back_state,
        "inventory",
        "export",
        "--format",
        "json",
    ]);
    assert_eq!(export.stdout, before_export.stdout);
    let history = home.run_args(&[
        "openmesh", "--state", back_state, "history", "--limit", "0", "-o", "json",
    ]);
    assert_eq!(history.stdout, before_history.stdout);
    // Who caused each event came along (the checksums above cover it too).
    let events: Value = history.json();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["machine"] == "laptop-ann" && e["user"] == "ann"),
        "{}",
        history.stdout
    );
    // The source is as it was.
    let after = local.run_args(&["openmesh", "history", "--limit", "0", "-o", "json"]);
    assert_eq!(after.stdout, before_history.stdout);
    let info = local
        .run_args(&["openmesh", "state", "info", "-o", "json"])
        .json();
    assert_eq!(info["backend"], "sqlite");
    assert_eq!(info["nodes"], 4);
    let tables: Vec<Value> = up["tables"].as_array().unwrap().clone();
    assert_eq!(tables.len(), 5);
}

#[test]
fn resuming_a_fleet_another_machine_holds_is_refused() {
    let url = pg::fresh_database();
    let mock = MockServer::new(Provider::DigitalOcean);
    let a = against(machine(&url), &[&mock]);
    let out = a.run_args(&[
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
        "--yes",
        "-o",
        "json",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let group = out.json()["group_id"].as_str().unwrap().to_string();
    // Another machine holds the fleet's team-wide lock.
    let db = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    let mut holder = postgres::Client::connect(
        &format!(
            "host=127.0.0.1 port={} user=postgres password={} dbname={db}",
            pg::server().port,
            pg::PASSWORD
        ),
        postgres::NoTls,
    )
    .unwrap();
    holder
        .execute(
            "SELECT pg_advisory_lock(25441, hashtext($1))",
            &[&group.as_str()],
        )
        .unwrap();
    let b = against(machine(&url), &[&mock]);
    let refused = b.run_args(&["openmesh", "deploy", "--resume", &group, "--yes"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!(
            "fleet {group} is being deployed by a capsule on another machine"
        )),
        "{}",
        refused.stderr
    );
    drop(holder);
    let resumed = b.run_args(&["openmesh", "deploy", "--resume", &group, "--yes"]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(mock.count_creates(), 2, "nothing created twice");
}

#[test]
fn cost_reads_the_same_on_both_backends() {
    // Deleted nodes only, so no figure depends on the moment each command runs.
    let csv = "deploy_id,name,provider,template,plan,region,status,price_hourly,price_monthly,currency,created_at,started_at,stopped_at,deleted_at
c1,capped,vultr,vultr-vc2-1,vc2-1c-1gb,ewr,deleted,0.01,5,USD,2024-01-20T00:00:00Z,2024-01-20T00:00:00Z,,2024-03-05T00:00:00Z
c2,euro,scaleway,scw-dev1-m,DEV1-M,par1,deleted,0.02,14,EUR,2024-02-10T00:00:00Z,2024-02-10T00:00:00Z,2024-02-11T00:00:00Z,2024-02-12T00:00:00Z
c3,web,digitalocean,do-small,s-1vcpu-1gb,nyc1,deleted,0.00893,6,USD,2024-02-01T00:00:00Z,2024-02-01T00:01:00Z,2024-02-20T00:00:00Z,2024-02-21T00:00:00Z
";
    let local = capsule();
    assert_eq!(import(&local, csv).code, 0);
    let url = pg::fresh_database();
    let up = local.run_args(&["openmesh", "state", "migrate", "--to", &url]);
    assert_eq!(up.code, 0, "{}", up.stderr);
    let team = machine(&url);
    let window = [
        "--since",
        "2024-01-01",
        "--until",
        "2024-04-01",
        "-o",
        "json",
    ];
    for extra in [
        &["--by", "provider"][..],
        &["--by", "node"],
        &["--by", "template"],
        &["--by", "region"],
    ] {
        let args: Vec<&str> = ["openmesh", "cost"]
            .iter()
            .chain(extra)
            .chain(&window)
            .copied()
            .collect();
        let here = local.run_args(&args);
        let there = team.run_args(&args);
        assert_eq!(here.code, 0, "{}", here.stderr);
        assert_eq!(there.code, 0, "{}", there.stderr);
        assert!(here.stdout.contains("\"cost\""), "{}", here.stdout);
        assert_eq!(here.stdout, there.stdout, "{extra:?}");
    }
}
