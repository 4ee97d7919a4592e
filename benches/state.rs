//! State store benchmarks: with 100k nodes and 1M events, the store functions behind
//! `inventory stats`, `cost --by provider` and `inventory export` (goal: each ≤ 1 s, export in
//! flat memory).
//!
//! `cargo bench --bench state`; `CAPSULE_BENCH_NODES` / `CAPSULE_BENCH_EVENTS` change the size.
//! With `CAPSULE_BENCH_PG=postgres://…` (an empty database) the same store is copied there
//! (`state migrate`'s code) and every benchmark runs again on PostgreSQL, in the same run.

use capsule::state::cost::{self, Billing, BillingRule, GroupBy};
use capsule::state::postgres::{PgStore, PgUrl};
use capsule::state::transfer::{self, Format};
use capsule::state::{copy, seed, stats, time, NodeFilter, SqliteStore, Store};
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::{Duration, Instant};

const PROVIDERS: [(&str, &str); 7] = [
    ("digitalocean", "USD"),
    ("vultr", "USD"),
    ("linode", "USD"),
    ("aws", "USD"),
    ("equinix-metal", "USD"),
    ("hivelocity", "USD"),
    ("scaleway", "EUR"),
];

fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn billing() -> Billing {
    let mut b = Billing::new();
    for (p, _) in PROVIDERS {
        b.set_rule(
            p,
            BillingRule {
                billed_when_stopped: p != "aws",
                monthly_cap_hours: 672.0,
            },
        );
    }
    b.set_rate("EUR", 1.04);
    b
}

/// A memory figure of this process from `/proc/self/status` (`VmRSS`, `VmHWM`), in MiB
/// (Linux; 0 elsewhere).
fn mem_mib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(key)).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn bench_state(c: &mut Criterion) {
    let nodes = size("CAPSULE_BENCH_NODES", 100_000);
    let events = size("CAPSULE_BENCH_EVENTS", 1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("state.db")).expect("open store");
    let t = Instant::now();
    seed::seed(&store, &PROVIDERS, nodes, events).expect("seed");
    eprintln!(
        "seeded {nodes} nodes and {events} events in {:.2?} (peak RSS {:.0} MiB)",
        t.elapsed(),
        mem_mib("VmHWM:")
    );
    run(c, "sqlite", &store, nodes);
    if let Ok(url) = std::env::var("CAPSULE_BENCH_PG") {
        let url = PgUrl::parse(&url).expect("CAPSULE_BENCH_PG is a postgres:// URL");
        let pg = PgStore::open(&url).expect("open the PostgreSQL store");
        let t = Instant::now();
        copy::copy(store.db(), pg.db()).expect("copy to PostgreSQL");
        eprintln!("copied to {} in {:.2?}", url.redacted(), t.elapsed());
        run(c, "postgresql", &pg, nodes);
    }
}

/// The benchmarks on one store.
fn run(c: &mut Criterion, backend: &str, store: &dyn Store, nodes: usize) {
    let billing = billing();
    let live = NodeFilter::default();
    let all = NodeFilter {
        include_deleted: true,
        ..NodeFilter::default()
    };

    let mut g = c.benchmark_group(format!("state_100k_nodes_1m_events_{backend}"));
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    g.bench_function("inventory_stats", |b| {
        b.iter(|| stats::compute(store, &billing, &live).expect("stats"));
    });
    g.bench_function("cost_by_provider", |b| {
        let now = time::now_unix();
        b.iter(|| {
            cost::report(
                store,
                &billing,
                &NodeFilter::default(),
                GroupBy::Provider,
                0,
                now,
                now,
            )
            .expect("cost")
        });
    });
    let before = mem_mib("VmRSS:");
    g.bench_function("inventory_export_csv", |b| {
        b.iter(|| {
            transfer::export(store, &all, Format::Csv, &mut std::io::sink()).expect("export")
        });
    });
    g.bench_function("inventory_export_json", |b| {
        b.iter(|| {
            transfer::export(store, &all, Format::Json, &mut std::io::sink()).expect("export")
        });
    });
    g.finish();
    // Streaming: exporting every node leaves the resident size where it was.
    eprintln!(
        "{backend}: RSS before the exports {before:.0} MiB, after {:.0} MiB",
        mem_mib("VmRSS:")
    );
    // A sanity check that the figures cover what was seeded.
    let mut n = 0u64;
    store
        .for_each_node(&all, &mut |_| {
            n += 1;
            Ok(())
        })
        .expect("count");
    assert_eq!(n as usize, nodes);
}

criterion_group!(benches, bench_state);
criterion_main!(benches);
