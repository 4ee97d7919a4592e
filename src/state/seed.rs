//! Synthetic stores for benchmarks: many nodes and events written fast (one transaction,
//! prepared statements). Not used by any command.

use super::columns::{NODE_COLUMNS, NODE_COLUMN_COUNT};
use super::sqlite::{sqlite_placeholders, SqliteStore};
use super::time;
use rusqlite::params;

/// Fill `store` with `nodes` nodes spread over `providers` (with their currency), and `events`
/// events spread over them. About 60 % run, 10 % are stopped, 30 % deleted; each has a
/// timeline of two to four transitions over the last 200 days. Deterministic.
#[doc(hidden)]
pub fn seed(
    store: &SqliteStore,
    providers: &[(&str, &str)],
    nodes: usize,
    events: usize,
) -> anyhow::Result<()> {
    let conn = store.connection();
    // A big page cache for the load: the event indexes are written in scattered order.
    conn.pragma_update(None, "cache_size", -512 * 1024)?;
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let regions = [
        "r-east",
        "r-west",
        "r-north",
        "r-south",
        "r-central",
        "r-asia",
        "r-eu",
    ];
    let now = time::now_unix();
    let mut ids: Vec<(String, i64)> = Vec::with_capacity(nodes);
    {
        let placeholders = sqlite_placeholders(1, NODE_COLUMN_COUNT);
        let mut node = tx.prepare(&format!(
            "INSERT INTO nodes({NODE_COLUMNS}) VALUES ({placeholders})"
        ))?;
        let mut state =
            tx.prepare("INSERT INTO node_states(node_id, state, since) VALUES (?1, ?2, ?3)")?;
        let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for i in 0..nodes {
            let (provider, currency) = providers[i % providers.len()];
            let region = regions[(next() % regions.len() as u64) as usize];
            let size = 1 + next() % 8;
            let hourly = 0.005 * size as f64;
            let monthly = (hourly * 672.0 * 100.0).round() / 100.0;
            let created = now - 200 * 86400 + (next() % (195 * 86400)) as i64;
            let started = created + 60;
            let kind = next() % 10;
            let stopped = (kind == 6 || kind >= 7).then(|| started + (next() % (5 * 86400)) as i64);
            let deleted =
                (kind >= 7).then(|| stopped.unwrap_or(started) + (next() % (5 * 86400)) as i64);
            let status = if deleted.is_some() {
                "deleted"
            } else if stopped.is_some() {
                "stopped"
            } else {
                "running"
            };
            let deploy_id = format!("{i:012x}");
            let fmt = |t: Option<i64>| t.map(time::format);
            node.execute(params![
                deploy_id,
                format!("g{:06}", i / 10),
                format!("node-{i:06}"),
                provider,
                super::DEFAULT_ACCOUNT,
                format!("{}", 10_000_000 + i),
                format!("{provider}-size-{size}"),
                format!("plan-{size}"),
                region,
                "",
                status,
                status,
                (status != "deleted").then(|| format!(
                    "10.{}.{}.{}",
                    (i >> 16) & 255,
                    (i >> 8) & 255,
                    i & 255
                )),
                hourly,
                monthly,
                currency,
                "2024-05-01",
                time::format(created - 5),
                time::format(created),
                fmt(Some(started)),
                fmt(stopped),
                fmt(deleted),
                time::format(deleted.or(stopped).unwrap_or(started)),
            ])?;
            let id = tx.last_insert_rowid();
            state.execute(params![id, "creating", time::format(created - 5)])?;
            state.execute(params![id, "pending", time::format(created)])?;
            state.execute(params![id, "running", time::format(started)])?;
            if let Some(s) = stopped {
                state.execute(params![id, "stopped", time::format(s)])?;
            }
            if let Some(d) = deleted {
                state.execute(params![id, "deleted", time::format(d)])?;
            }
            ids.push((deploy_id, created));
        }
        let mut event = tx.prepare(
            "INSERT INTO events(time, deploy_id, action, outcome, state, message, machine, username) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        // A team of three on four machines.
        let machines = ["laptop-ann", "laptop-bo", "ci-runner", "laptop-cy"];
        let users = ["ann", "bo", "ci", "cy"];
        let actions = ["deploy", "status", "stop", "start", "status", "sync"];
        for e in 0..events {
            if ids.is_empty() {
                break;
            }
            let (deploy_id, created) = &ids[e % ids.len()];
            let t = created + (e / ids.len()) as i64 * 3600;
            let action = actions[(e / ids.len()) % actions.len()];
            event.execute(params![
                time::format(t),
                deploy_id,
                action,
                "ok",
                "running",
                "seeded",
                machines[e % machines.len()],
                users[e % users.len()]
            ])?;
        }
    }
    tx.commit()?;
    conn.pragma_update(None, "cache_size", -2000)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::state::{EventFilter, NodeFilter, SqliteStore, Store};

    #[test]
    fn a_small_seed_fills_every_column() {
        let store = SqliteStore::open_in_memory().unwrap();
        super::seed(&store, &[("acme", "USD"), ("beta", "EUR")], 10, 40).unwrap();
        let all = NodeFilter {
            include_deleted: true,
            ..NodeFilter::default()
        };
        assert_eq!(store.list_nodes(&all).unwrap().len(), 10);
        let events = store.events(&EventFilter::default()).unwrap();
        assert_eq!(events.len(), 40);
        assert!(events
            .iter()
            .all(|e| e.machine.is_some() && e.user.is_some()));
    }
}
