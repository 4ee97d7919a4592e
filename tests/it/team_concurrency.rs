//! Many machines at once on one PostgreSQL (`support::pg`): two "machines" (two
//! `CAPSULE_HOME`s, two machine names, two users) run four capsule processes each, all deploying
//! into one database against one provider mock that fails creates after acting (500, a reset
//! connection, an answer after the client's timeout) and throttles or fails lookups. Afterwards
//! exactly the requested nodes exist, at the provider and in the record, none twice; every
//! node's events are all there, each naming the machine and user that caused it; a name raced
//! for by both machines went to one; and `sync` on one machine settles a node the other left in
//! doubt.

use crate::support::mock::{Fault, MockConfig, MockServer, Op, Provider};
use crate::support::{against, capsule, pg, Capsule, Output};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Fleets per machine, and nodes per fleet.
const FLEETS: usize = 3;
const FLEET_SIZE: usize = 3;

/// A machine: its own home and identity, the shared database, the mock's endpoint.
fn machine(url: &str, name: &str, user: &str, mock: &MockServer) -> Capsule {
    against(
        capsule()
            .env("CAPSULE_STATE", url)
            .env("CAPSULE_MACHINE", name)
            .env("USER", user),
        &[mock],
    )
}

fn deploy(c: &Capsule, naming: &[&str]) -> Output {
    let mut args = vec![
        "openmesh",
        "deploy",
        "--provider",
        "digitalocean",
        "--template",
        "do-small",
        "--request-timeout",
        "1",
        "--yes",
        "-o",
        "json",
    ];
    args.extend_from_slice(naming);
    c.run_args(&args)
}

fn json_of(c: &Capsule, args: &[&str]) -> Value {
    let out = c.run_args(args);
    assert_eq!(out.code, 0, "{args:?}: {}", out.stderr);
    out.json()
}

#[test]
fn two_machines_times_four_processes_deploy_into_one_database_under_faults() {
    let url = pg::fresh_database();
    let mock = MockServer::start(
        Provider::DigitalOcean,
        MockConfig::default().with_pending_polls(0),
    );
    // Creates the server carries out but whose answer the client never gets right...
    for fault in [
        Fault::Status500AfterCreate,
        Fault::ResetAfterCreate,
        Fault::DelayAfterCreate(Duration::from_millis(1500)),
        Fault::Status500AfterCreate,
        Fault::ResetAfterCreate,
        Fault::DelayAfterCreate(Duration::from_millis(1500)),
    ] {
        mock.set_fault(fault);
    }
    // ...and lookups that are throttled or fail now and then (fewer than a read's retries).
    for fault in [Fault::Status429, Fault::Status500, Fault::ConnectionReset] {
        mock.set_fault_on(Op::List, fault);
    }
    let machines = [("machine-a", "ann"), ("machine-b", "bo")];
    let homes: Vec<Capsule> = machines
        .iter()
        .map(|(m, u)| machine(&url, m, u, &mock))
        .collect();

    // Four processes per machine at once: three fleets each, and one racing the other machine
    // for the name `contested`.
    let outputs: Vec<(usize, String, Output)> = std::thread::scope(|s| {
        let mut running = Vec::new();
        for (m, home) in homes.iter().enumerate() {
            for f in 0..FLEETS {
                let prefix = format!("m{m}f{f}");
                running.push(s.spawn(move || {
                    let count = FLEET_SIZE.to_string();
                    let out = deploy(home, &["--name-prefix", &prefix, "--count", &count]);
                    (m, prefix, out)
                }));
            }
            running.push(s.spawn(move || {
                let out = deploy(home, &["--name", "contested"]);
                (m, "contested".to_string(), out)
            }));
        }
        running.into_iter().map(|t| t.join().unwrap()).collect()
    });

    // Every fleet completed: each create the server acted on was found by its tag.
    let mut deployed_by: BTreeMap<String, usize> = BTreeMap::new();
    let mut contest = Vec::new();
    for (m, what, out) in &outputs {
        if what == "contested" {
            contest.push((*m, out));
            continue;
        }
        assert_eq!(out.code, 0, "{what}: {}", out.stderr);
        let v = out.json();
        let nodes = v["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), FLEET_SIZE, "{what}: {v:#}");
        for n in nodes {
            deployed_by.insert(n["name"].as_str().unwrap().to_string(), *m);
        }
    }
    // The name both machines wanted went to one of them; the other was refused before any
    // create, with the name.
    let winners: Vec<usize> = contest
        .iter()
        .filter(|(_, o)| o.code == 0)
        .map(|(m, _)| *m)
        .collect();
    assert_eq!(winners.len(), 1, "{contest:?}");
    let (_, loser) = contest.iter().find(|(_, o)| o.code != 0).unwrap();
    assert_eq!(loser.code, 2, "{}", loser.stderr);
    assert!(
        loser
            .stderr
            .contains("a live node is already named 'contested'"),
        "{}",
        loser.stderr
    );
    deployed_by.insert("contested".into(), winners[0]);
    // The faults were really met.
    let faulted = mock.requests().iter().filter(|r| r.fault.is_some()).count();
    assert_eq!(faulted, 9, "{}", mock.log_summary());

    // Sequentially now: machine b asks for a name machine a holds, and is refused.
    let (a, b) = (&homes[0], &homes[1]);
    let taken = deploy(b, &["--name", "m0f0-01"]);
    assert_eq!(taken.code, 2, "{}", taken.stderr);
    assert!(
        taken
            .stderr
            .contains("a live node is already named 'm0f0-01'"),
        "{}",
        taken.stderr
    );
    // Machine a leaves a node in doubt (created, then every lookup fails) ...
    mock.set_fault(Fault::Status500AfterCreate);
    for _ in 0..5 {
        mock.set_fault_on(Op::List, Fault::Status500);
    }
    let doubt = deploy(a, &["--name", "left-in-doubt"]);
    assert_eq!(doubt.code, 1, "{}", doubt.stderr);
    let recorded = json_of(
        b,
        &[
            "openmesh",
            "inventory",
            "show",
            "left-in-doubt",
            "-o",
            "json",
        ],
    );
    assert_eq!(recorded["status"], "in_doubt");
    // ... and machine b's sync settles it by its tag, creating nothing.
    let creates_before = mock.count(Op::Create);
    let sync = b.run_args(&["openmesh", "sync", "-o", "json"]);
    assert_eq!(sync.code, 0, "{}", sync.stderr);
    assert_eq!(mock.count(Op::Create), creates_before);
    deployed_by.insert("left-in-doubt".into(), 0);

    // Exactly the requested nodes exist at the provider: each name once, each create once.
    let wanted = 2 * FLEETS * FLEET_SIZE + 2;
    let server = mock.nodes();
    let server_names: BTreeSet<&str> = server.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(server.len(), wanted, "{}", mock.log_summary());
    assert_eq!(server_names.len(), wanted, "a name twice at the provider");
    assert_eq!(mock.count_creates(), wanted);
    let expected: BTreeSet<&str> = deployed_by.keys().map(String::as_str).collect();
    assert_eq!(server_names, expected);

    // Both machines see the same record: every node once, with the provider's id, settled.
    let mut seen_by = Vec::new();
    for home in &homes {
        let inv = json_of(home, &["openmesh", "inventory", "--all", "-o", "json"]);
        let inv = inv.as_array().unwrap().clone();
        assert_eq!(inv.len(), wanted, "{inv:#?}");
        let recorded: BTreeMap<&str, &str> = inv
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap(),
                    r["provider_id"].as_str().unwrap_or("-"),
                )
            })
            .collect();
        let at_server: BTreeMap<&str, &str> = server
            .iter()
            .map(|n| (n.name.as_str(), n.id.as_str()))
            .collect();
        assert_eq!(recorded, at_server, "the record and the provider differ");
        for r in &inv {
            let status = r["status"].as_str().unwrap();
            assert!(matches!(status, "pending" | "running"), "{r:#}");
        }
        seen_by.push(serde_json::to_string(&inv).unwrap());
    }
    assert_eq!(seen_by[0], seen_by[1], "the two machines see one inventory");

    // No event lost: every node has one `deploy started` and one `deploy ok`, caused by the
    // machine and user that deployed it; the in-doubt one also its failure and b's settling.
    let events = json_of(b, &["openmesh", "history", "--limit", "0", "-o", "json"]);
    let events = events.as_array().unwrap();
    let mut per_node: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for e in events {
        if let Some(node) = e["node"].as_str() {
            per_node.entry(node).or_default().push(e);
        }
    }
    assert_eq!(
        per_node.keys().copied().collect::<BTreeSet<_>>(),
        expected,
        "events of nodes that do not exist, or nodes without events"
    );
    for (node, evs) in &per_node {
        let m = deployed_by[*node];
        let (who, user) = machines[m];
        let deploys: Vec<(&str, &str, &str)> = evs
            .iter()
            .filter(|e| e["action"] == "deploy")
            .map(|e| {
                (
                    e["outcome"].as_str().unwrap(),
                    e["machine"].as_str().unwrap(),
                    e["user"].as_str().unwrap(),
                )
            })
            .collect();
        if *node == "left-in-doubt" {
            assert_eq!(
                deploys,
                [("started", who, user), ("failed", who, user)],
                "{node}"
            );
            let settled: Vec<&&Value> = evs.iter().filter(|e| e["action"] == "sync").collect();
            assert_eq!(settled.len(), 1, "{node}: {evs:#?}");
            assert_eq!(
                (&settled[0]["machine"], &settled[0]["user"]),
                (&Value::from("machine-b"), &Value::from("bo"))
            );
            assert_ne!(settled[0]["state"], "in_doubt");
        } else {
            assert_eq!(
                deploys,
                [("started", who, user), ("ok", who, user)],
                "{node}: {evs:#?}"
            );
        }
    }
    let info = json_of(a, &["openmesh", "state", "info", "-o", "json"]);
    assert_eq!(info["events"], events.len(), "history and the store agree");
    assert_eq!(info["nodes"], wanted);
}
