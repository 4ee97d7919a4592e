//! Smart deploy's failover against the provider mocks: a full region, a fleet spreading around
//! one, `--no-failover`, an in-doubt create that must not move, and a quota that skips the
//! provider. The mocks refuse as the providers document (EC2 `InsufficientInstanceCapacity` /
//! `VcpuLimitExceeded`, Scaleway `out_of_stock` / `quotas_exceeded`).

use crate::in_doubt::{exit, records, text};
use crate::support::mock::{MockConfig, MockServer, Op, Provider};
use crate::support::{against, capsule, Capsule, Output};
use serde_json::Value;
use std::collections::BTreeSet;

/// A smart deploy of the cheapest 2-vCPU Scaleway server (scw-dev1-s, cheapest in par1).
fn scaleway_deploy(c: Capsule, extra: &[&str]) -> Capsule {
    let mut args = vec![
        "openmesh",
        "deploy",
        "--provider",
        "scaleway",
        "--min-cpu",
        "2",
        "--yes",
    ];
    args.extend_from_slice(extra);
    c.args(args)
}

/// A Scaleway whose zone fr-par-1 (catalog region par1) has no capacity.
fn full_par1() -> MockServer {
    MockServer::start(
        Provider::Scaleway,
        MockConfig::default().with_full_region("fr-par-1"),
    )
}

/// The creates a mock was sent, as the zone or region each went to.
fn create_zones(mock: &MockServer) -> Vec<String> {
    mock.requests_for(Op::Create)
        .iter()
        .map(|r| {
            r.path
                .split('/')
                .skip_while(|s| *s != "zones")
                .nth(1)
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

fn attempts(out: &Output) -> Vec<Value> {
    out.json()["plan"]["attempts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_full_region_fails_over_to_another_region_of_the_same_offer() {
    let mock = full_par1();
    let c = scaleway_deploy(against(capsule(), &[&mock]), &["-o", "json"]);
    let out = c.run();
    exit(&out, 0);
    // Region 1 answered "out of stock" and created nothing; region 2 created the node.
    let zones = create_zones(&mock);
    assert_eq!(zones.len(), 2, "{}", mock.log_summary());
    assert_eq!(zones[0], "fr-par-1");
    assert_ne!(zones[1], "fr-par-1");
    let nodes = mock.nodes();
    assert_eq!(nodes.len(), 1, "{}", mock.log_summary());
    assert_eq!(nodes[0].region, zones[1]);
    assert_eq!(nodes[0].plan, "DEV1-S", "the same offer, another region");
    // The explanation lists both attempts and why the first moved on.
    let a = attempts(&out);
    assert_eq!(a.len(), 2, "{a:#?}");
    assert_eq!(text(&a[0], "outcome"), "refused");
    assert_eq!(text(&a[0], "reason"), "capacity");
    assert_eq!(text(&a[0], "region"), "par1");
    assert!(text(&a[0], "error").contains("out_of_stock"), "{a:#?}");
    assert!(text(&a[0], "next").starts_with("moved to scw-dev1-s (scaleway) in "));
    assert_eq!(text(&a[1], "outcome"), "created");
    assert_eq!(text(&a[1], "template"), "scw-dev1-s");
    assert_ne!(text(&a[1], "region"), "par1");
    // One record for the node, live, where it was created; the refused attempt is an event.
    let all = records(&c, true);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(text(&all[0], "region"), text(&a[1], "region"));
    assert_eq!(text(&all[0], "provider_id"), nodes[0].id);
    let history = c.run_args(&["openmesh", "history"]);
    exit(&history, 0);
    assert!(
        history.stdout.contains("refused, no capacity"),
        "{}",
        history.stdout
    );
}

#[test]
fn the_text_explanation_shows_both_attempts() {
    let mock = full_par1();
    let out = scaleway_deploy(against(capsule(), &[&mock]), &[]).run();
    exit(&out, 0);
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| *l != "Attempts:")
        .collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(
        lines[1].contains("scw-dev1-s (scaleway) in par1: refused, no capacity")
            && lines[1].contains("; moved to scw-dev1-s (scaleway) in "),
        "{}",
        out.stdout
    );
    assert!(lines[2].ends_with(": created"), "{}", out.stdout);
    // The move is said as it happens, too.
    assert!(
        out.stderr.contains("refused, no capacity") && out.stderr.contains("moved to"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_fleet_of_5_spreads_around_a_full_region() {
    let mock = full_par1();
    let c = scaleway_deploy(
        against(capsule(), &[&mock]),
        &[
            "--count",
            "5",
            "--name-prefix",
            "fl",
            "--parallel",
            "2",
            "-o",
            "json",
        ],
    );
    let out = c.run();
    exit(&out, 0);
    let nodes = mock.nodes();
    assert_eq!(nodes.len(), 5, "{}", mock.log_summary());
    assert!(
        nodes.iter().all(|n| n.region != "fr-par-1"),
        "{:?}",
        nodes.iter().map(|n| &n.region).collect::<Vec<_>>()
    );
    let names: BTreeSet<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    // Exactly one record per node, every one live at its provider id: no orphan intent left
    // by a refused attempt.
    let all = records(&c, true);
    assert_eq!(all.len(), 5, "{all:#?}");
    let ids: BTreeSet<&str> = all.iter().map(|r| text(r, "provider_id")).collect();
    let server_ids: BTreeSet<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, server_ids);
    // Every refused attempt is explained, and each says where its node went.
    let refused: Vec<Value> = attempts(&out)
        .into_iter()
        .filter(|a| text(a, "outcome") == "refused")
        .collect();
    assert!(!refused.is_empty());
    assert!(refused
        .iter()
        .all(|a| text(a, "region") == "par1" && text(a, "next").starts_with("moved to ")));
    let json_nodes = out.json()["nodes"].as_array().cloned().unwrap_or_default();
    assert_eq!(json_nodes.len(), 5);
    assert!(
        json_nodes.iter().all(|n| n["error"].is_null()),
        "{json_nodes:#?}"
    );
}

#[test]
fn no_failover_stops_at_the_first_refusal() {
    let mock = full_par1();
    let c = scaleway_deploy(
        against(capsule(), &[&mock]),
        &["--no-failover", "-o", "json"],
    );
    let out = c.run();
    exit(&out, 1);
    assert_eq!(
        create_zones(&mock),
        vec!["fr-par-1"],
        "{}",
        mock.log_summary()
    );
    assert!(mock.nodes().is_empty());
    let a = attempts(&out);
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(text(&a[0], "next"), "stopped: --no-failover");
    // The refused node left the live set: nothing was created.
    assert!(records(&c, false).is_empty());
    assert_eq!(records(&c, true).len(), 1);
}

#[test]
fn an_in_doubt_create_is_not_failed_over() {
    // The provider may not list a new server for an hour: a 5xx "out of stock" cannot be proven
    // a refusal by the lookup, so the create stays in doubt where it was sent.
    let mock = full_par1();
    let overlay = tempfile::tempdir().expect("overlay");
    std::fs::create_dir_all(overlay.path().join("scaleway")).expect("mkdir");
    std::fs::write(
        overlay.path().join("scaleway/api.toml"),
        "[api.limits]\nhidden_after_create_seconds = 3600\n",
    )
    .expect("overlay");
    let c = scaleway_deploy(
        against(capsule(), &[&mock]).env("CAPSULE_CATALOG", overlay.path().to_string_lossy()),
        &["-o", "json"],
    );
    let out = c.run();
    exit(&out, 1);
    assert_eq!(
        create_zones(&mock),
        vec!["fr-par-1"],
        "{}",
        mock.log_summary()
    );
    assert!(out.stderr.contains("in doubt"), "{}", out.stderr);
    assert!(attempts(&out).is_empty(), "{:#?}", attempts(&out));
    let live = records(&c, false);
    assert_eq!(live.len(), 1, "{live:#?}");
    assert_eq!(text(&live[0], "status"), "in_doubt");
    assert_eq!(text(&live[0], "region"), "par1");
}

#[test]
fn a_quota_refusal_moves_to_the_next_offer_and_skips_the_providers_other_regions() {
    let scw = MockServer::start(
        Provider::Scaleway,
        MockConfig::default().with_quota_exhausted(),
    );
    let aws = MockServer::new(Provider::Aws);
    let c = against(capsule(), &[&scw, &aws]).args([
        "openmesh",
        "deploy",
        "--provider",
        "scaleway",
        "--provider",
        "aws",
        "--min-cpu",
        "2",
        "--min-memory",
        "2",
        "--image",
        "ami-0abcdef1234567890",
        "--yes",
        "-o",
        "json",
    ]);
    let out = c.run();
    exit(&out, 0);
    // One refused create at Scaleway (403 quotas_exceeded), none in its other zones.
    assert_eq!(
        create_zones(&scw),
        vec!["fr-par-1"],
        "{}",
        scw.log_summary()
    );
    assert!(scw.nodes().is_empty());
    assert_eq!(aws.nodes().len(), 1, "{}", aws.log_summary());
    let a = attempts(&out);
    assert_eq!(a.len(), 2, "{a:#?}");
    assert_eq!(text(&a[0], "reason"), "quota");
    assert!(text(&a[0], "next").starts_with("moved to aws-"), "{a:#?}");
    assert_eq!(text(&a[1], "provider"), "aws");
    assert_eq!(text(&a[1], "outcome"), "created");
    // A quota answer is not a credentials problem.
    assert!(!text(&a[0], "error").contains("provider verify"), "{a:#?}");
    let all = records(&c, true);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(text(&all[0], "provider"), "aws");
}
