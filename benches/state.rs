//! State store benchmarks: with 100k nodes and 1M events, the store functions behind
//! `inventory stats`, `cost --by provider` and `inventory export` (goal: each ≤ 1 s, export in
//! flat memory).
//!
//! `cargo bench --bench state`; `CAPSULE_BENCH_NODES` / `CAPSULE_BENCH_EVENTS` change the size.
//! With `CAPSULE_BENCH_PG=postgres://…` (an empty database) the same store is copied there
//! (`state migrate`'s code) and every benchmark runs again on PostgreSQL, in the same run.
//!
//! With `CAPSULE_BENCH_DIR=/some/dir` the seeded SQLite store is kept there (named by its size)
//! and reused by later runs, and so is the PostgreSQL copy: each seeding gets a random key,
//! written next to the SQLite file and, after a complete copy, into a `capsule_bench_seed`
//! table of the PostgreSQL database, so a copy is reused only when it is of that very file.
//! A database holding anything else is refused rather than overwritten.

use capsule::state::columns::{node_from_values, NODE_COLUMNS, NODE_COLUMN_COUNT};
use capsule::state::cost::{self, Billing, BillingRule, GroupBy};
use capsule::state::postgres::{PgStore, PgUrl};
use capsule::state::sql::{merge_by_key, query, row_values, Db};
use capsule::state::transfer::{self, Format};
use capsule::state::{copy, seed, stats, time, NodeFilter, NodeStatus, SqliteStore, Store};
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

/// The seeded SQLite store and its seeding's key: a fresh one in `scratch`, or the one kept in
/// `CAPSULE_BENCH_DIR` when a complete seeding of this size is there.
fn sqlite_store(scratch: &std::path::Path, nodes: usize, events: usize) -> (SqliteStore, String) {
    let kept = std::env::var_os("CAPSULE_BENCH_DIR").map(std::path::PathBuf::from);
    let dir = kept.clone().unwrap_or_else(|| scratch.to_path_buf());
    std::fs::create_dir_all(&dir).expect("bench dir");
    let path = dir.join(format!("state-{nodes}n-{events}e.db"));
    let key_file = path.with_extension("key");
    if kept.is_some() {
        // The key file is written only after a seeding finished.
        if let Ok(key) = std::fs::read_to_string(&key_file) {
            let store = SqliteStore::open(&path).expect("open the kept store");
            eprintln!("reusing the seeded store {} (key {key})", path.display());
            return (store, key);
        }
    }
    let _ = std::fs::remove_file(&key_file);
    for ext in ["db", "db-wal", "db-shm"] {
        let _ = std::fs::remove_file(path.with_extension(ext));
    }
    let store = SqliteStore::open(&path).expect("open store");
    let t = Instant::now();
    seed::seed(&store, &PROVIDERS, nodes, events).expect("seed");
    eprintln!(
        "seeded {nodes} nodes and {events} events in {:.2?} (peak RSS {:.0} MiB)",
        t.elapsed(),
        mem_mib("VmHWM:")
    );
    let key = uuid::Uuid::new_v4().to_string();
    std::fs::write(&key_file, &key).expect("write the seeding key");
    (store, key)
}

/// The key of the seeding a PostgreSQL database holds a complete copy of, if any.
fn pg_seed_key(db: &dyn Db) -> Option<String> {
    let rows = query(db, "SELECT key FROM capsule_bench_seed", &[]).ok()?;
    let mut row = rows.into_iter().next()?;
    row.first_mut()?.take_text("key").ok()
}

fn bench_state(c: &mut Criterion) {
    let nodes = size("CAPSULE_BENCH_NODES", 100_000);
    let events = size("CAPSULE_BENCH_EVENTS", 1_000_000);
    let scratch = tempfile::tempdir().expect("temp dir");
    let (store, key) = sqlite_store(scratch.path(), nodes, events);
    run(c, "sqlite", &store, nodes);
    let now = time::now_unix();
    let reports = cost_reports(&store, now);
    if let Ok(url) = std::env::var("CAPSULE_BENCH_PG") {
        let url = PgUrl::parse(&url).expect("CAPSULE_BENCH_PG is a postgres:// URL");
        let pg = PgStore::open(&url).expect("open the PostgreSQL store");
        if pg_seed_key(pg.db()).as_deref() == Some(key.as_str()) {
            eprintln!("reusing the copy in {}", url.redacted());
        } else {
            // Only a database that is empty, or holds a bench copy of another seeding, is
            // (re)filled.
            if pg_seed_key(pg.db()).is_some() {
                pg.db()
                    .exec(
                        "TRUNCATE nodes, node_states, events, cleanups, expiries, capsule_bench_seed",
                        &[],
                    )
                    .expect("empty the old bench copy");
            }
            let t = Instant::now();
            copy::copy(store.db(), pg.db()).expect("copy to PostgreSQL (an empty database)");
            eprintln!("copied to {} in {:.2?}", url.redacted(), t.elapsed());
            let db = pg.db();
            db.exec(
                "CREATE TABLE IF NOT EXISTS capsule_bench_seed (key TEXT NOT NULL)",
                &[],
            )
            .expect("key table");
            db.exec(
                "INSERT INTO capsule_bench_seed(key) VALUES ($1)",
                &[key.as_str().into()],
            )
            .expect("record the key");
            // Fresh planner statistics, as autovacuum would give a long-lived database.
            db.exec("ANALYZE", &[]).expect("analyze");
        }
        // Both backends answer the very same reports, to the last bit.
        assert!(
            cost_reports(&pg, now) == reports,
            "the cost reports of SQLite and PostgreSQL differ"
        );
        run(c, "postgresql", &pg, nodes);
    }
}

/// Cost by provider over everything, and by node for one provider over the last 30 days
/// (a filtered read), as of `now`.
fn cost_reports(store: &dyn Store, now: i64) -> Vec<cost::CostReport> {
    let one = NodeFilter {
        providers: vec![PROVIDERS[6].0.to_string()],
        ..NodeFilter::default()
    };
    vec![
        cost::report(
            store,
            &billing(),
            &NodeFilter::default(),
            GroupBy::Provider,
            cost::Window {
                since: 0,
                until: now,
                now,
            },
        )
        .expect("cost"),
        cost::report(
            store,
            &billing(),
            &one,
            GroupBy::Node,
            cost::Window {
                since: now - 30 * 86_400,
                until: now,
                now,
            },
        )
        .expect("cost"),
    ]
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
                cost::Window {
                    since: 0,
                    until: now,
                    now,
                },
            )
            .expect("cost")
        });
    });
    // The read under `cost`, without the arithmetic: the nodes' cost columns with their
    // timelines as `for_each_cost_timeline` answers them, and, for a before/after in the same
    // run, the read it replaced (the same two merged scans, but every node column, each row
    // converted to values, whole `NodeRecord`s and text timestamps) and the one before that
    // (one row a node, the timeline folded by a correlated subquery).
    g.bench_function("timeline_read", |b| {
        b.iter(|| {
            let mut n = 0usize;
            store
                .for_each_cost_timeline(&NodeFilter::default(), &mut |_, t| {
                    n += t.len();
                    Ok(())
                })
                .expect("read");
            n
        });
    });
    g.bench_function("timeline_read_full_records", |b| {
        let nodes = format!("SELECT id, {NODE_COLUMNS} FROM nodes WHERE deleted_at IS NULL ORDER BY id");
        let states = "SELECT node_id, state, since FROM node_states \
             WHERE node_id IN (SELECT id FROM nodes WHERE deleted_at IS NULL) ORDER BY node_id, since, id";
        b.iter(|| {
            let mut n = 0usize;
            merge_by_key(
                store.db(),
                &nodes,
                states,
                &[],
                &mut |r| {
                    let mut values = row_values(r)?;
                    Ok(Some(node_from_values(&mut values[1..])?))
                },
                &mut |r| {
                    let mut values = row_values(r)?;
                    let state = values[1].take_text("state")?;
                    let state = NodeStatus::parse(&state).expect("a known status");
                    Ok(Some((state, values[2].take_text("since")?)))
                },
                &mut |node, timeline| {
                    std::hint::black_box(&node);
                    n += timeline.len();
                    Ok(())
                },
            )
            .expect("read");
            n
        });
    });
    g.bench_function("timeline_read_folded_subquery", |b| {
        let sql = format!(
            "SELECT {NODE_COLUMNS}, (SELECT string_agg(s.state || ' ' || s.since, ',' ORDER BY s.since, s.id) \
             FROM node_states s WHERE s.node_id = n.id) FROM nodes n ORDER BY n.id"
        );
        b.iter(|| {
            let mut n = 0usize;
            store
                .db()
                .query_each(&sql, &[], &mut |mut r| {
                    let node = node_from_values(&mut r[..NODE_COLUMN_COUNT])?;
                    std::hint::black_box(&node);
                    if let Some(folded) = r[NODE_COLUMN_COUNT].take_opt_text("timeline")? {
                        for entry in folded.split(',') {
                            let (state, since) = entry.split_once(' ').expect("state since");
                            n += usize::from(NodeStatus::parse(state).is_some());
                            std::hint::black_box(since.to_string());
                        }
                    }
                    Ok(())
                })
                .expect("read");
            n
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
