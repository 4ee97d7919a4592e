//! The SQLite schema and its migrations.
//!
//! `PRAGMA user_version` holds the schema version. [`migrate`] applies each missing step in its
//! own IMMEDIATE transaction and re-reads the version inside it, so several processes opening a
//! fresh store at once apply every step exactly once. A store newer than this binary is refused
//! rather than guessed at.
//!
//! Version history:
//! - v1: `nodes` and `events` (the first release's layout).
//! - v2: fleets (`nodes.group_id`), API variants, `events.state`, and the `node_states` timeline
//!   cost reports integrate; v1 nodes get a timeline rebuilt from their timestamps.
//! - v3: `cleanups`, the work a delete leaves for after the node is gone (volumes that would
//!   keep billing), kept until it ran.
//! - v4: `expiries`, when a node deployed with `--ttl` is due for `reap`.
//! - v5: accounts: `nodes.account` and `cleanups.account`, the credentials account a node was
//!   deployed with and its leftover work runs with; rows from before are the `default` account.
//! - v6: `events.machine` and `events.username`, the machine and the user that caused each
//!   event (a store a team shares says who did what); events from before are NULL (unknown).

use super::model::{NodeRecord, NodeStatus};
use anyhow::Context as _;
use rusqlite::{Connection, Transaction, TransactionBehavior};

/// The schema version this binary writes.
pub const LATEST: u32 = 6;

const V1: &str = "
CREATE TABLE nodes (
    id            INTEGER PRIMARY KEY,
    deploy_id     TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    provider      TEXT NOT NULL,
    provider_id   TEXT,
    template      TEXT NOT NULL,
    plan          TEXT NOT NULL,
    region        TEXT NOT NULL,
    status        TEXT NOT NULL,
    raw_status    TEXT NOT NULL DEFAULT '',
    ipv4          TEXT,
    price_hourly  REAL NOT NULL,
    price_monthly REAL NOT NULL,
    currency      TEXT NOT NULL,
    prices_as_of  TEXT NOT NULL DEFAULT '',
    recorded_at   TEXT NOT NULL,
    created_at    TEXT,
    started_at    TEXT,
    stopped_at    TEXT,
    deleted_at    TEXT,
    updated_at    TEXT NOT NULL
);
-- A name is unique among live nodes only: a deleted node's name may be used again.
CREATE UNIQUE INDEX nodes_live_name ON nodes(name) WHERE deleted_at IS NULL;
CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    time      TEXT NOT NULL,
    deploy_id TEXT,
    action    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    message   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_time ON events(time);
CREATE INDEX events_node ON events(deploy_id, id);
";

const V2: &str = "
ALTER TABLE nodes ADD COLUMN group_id TEXT NOT NULL DEFAULT '';
UPDATE nodes SET group_id = deploy_id WHERE group_id = '';
ALTER TABLE nodes ADD COLUMN api_variant TEXT NOT NULL DEFAULT '';
CREATE INDEX nodes_group ON nodes(group_id);
CREATE INDEX nodes_provider_id ON nodes(provider, provider_id);
CREATE INDEX nodes_order ON nodes(recorded_at, deploy_id);
ALTER TABLE events ADD COLUMN state TEXT;
-- Every status a node went through, and since when: what cost reports integrate.
CREATE TABLE node_states (
    id      INTEGER PRIMARY KEY,
    node_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    state   TEXT NOT NULL,
    since   TEXT NOT NULL
);
CREATE INDEX node_states_node ON node_states(node_id, since, id);
";

const V3: &str = "
CREATE TABLE cleanups (
    id          INTEGER PRIMARY KEY,
    provider    TEXT NOT NULL,
    node_ref    TEXT NOT NULL,
    deploy_id   TEXT,
    what        TEXT NOT NULL,
    work        TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT NOT NULL DEFAULT '',
    done_at     TEXT
);
CREATE INDEX cleanups_pending ON cleanups(provider, id) WHERE done_at IS NULL;
";

const V4: &str = "
CREATE TABLE expiries (
    deploy_id  TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
);
";

// The literal is `model::DEFAULT_ACCOUNT`; a migration's SQL never changes once released.
const V5: &str = "
ALTER TABLE nodes ADD COLUMN account TEXT NOT NULL DEFAULT 'default';
ALTER TABLE cleanups ADD COLUMN account TEXT NOT NULL DEFAULT 'default';
CREATE INDEX nodes_account ON nodes(provider, account);
";

const V6: &str = "
ALTER TABLE events ADD COLUMN machine TEXT;
ALTER TABLE events ADD COLUMN username TEXT;
";

/// The columns the v2 timeline rebuild reads, as v1 wrote them: frozen here, so this step keeps
/// its meaning whatever later versions add to `nodes`.
const V1_TIMELINE_COLUMNS: &str =
    "id, status, provider_id, recorded_at, created_at, started_at, stopped_at, deleted_at, updated_at";

/// A v1 row as far as its timeline goes (the other fields play no part in it).
fn v1_timeline_node(r: &rusqlite::Row) -> rusqlite::Result<(i64, NodeRecord)> {
    let status: String = r.get(1)?;
    let status = NodeStatus::parse(&status).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            1,
            rusqlite::types::Type::Text,
            format!("unknown status '{status}'").into(),
        )
    })?;
    let node = NodeRecord {
        provider_id: r.get(2)?,
        recorded_at: r.get(3)?,
        created_at: r.get(4)?,
        started_at: r.get(5)?,
        stopped_at: r.get(6)?,
        deleted_at: r.get(7)?,
        updated_at: r.get(8)?,
        ..NodeRecord::blank(status)
    };
    Ok((r.get(0)?, node))
}

/// Rebuild a timeline for nodes a v1 store recorded (it kept only their timestamps).
fn backfill_v2(tx: &Transaction) -> anyhow::Result<()> {
    let mut nodes = tx.prepare(&format!(
        "SELECT {V1_TIMELINE_COLUMNS} FROM nodes ORDER BY id"
    ))?;
    let rows: Vec<(i64, NodeRecord)> = nodes
        .query_map([], v1_timeline_node)?
        .collect::<Result<_, _>>()?;
    let mut insert =
        tx.prepare("INSERT INTO node_states(node_id, state, since) VALUES (?1, ?2, ?3)")?;
    for (id, node) in rows {
        for t in node.synthesized_timeline() {
            insert.execute(rusqlite::params![id, t.state.as_str(), t.since])?;
        }
    }
    Ok(())
}

/// One migration step.
struct Step {
    sql: &'static str,
    after: Option<fn(&Transaction) -> anyhow::Result<()>>,
}

const STEPS: [Step; LATEST as usize] = [
    Step {
        sql: V1,
        after: None,
    },
    Step {
        sql: V2,
        after: Some(backfill_v2),
    },
    Step {
        sql: V3,
        after: None,
    },
    Step {
        sql: V4,
        after: None,
    },
    Step {
        sql: V5,
        after: None,
    },
    Step {
        sql: V6,
        after: None,
    },
];

/// The schema version of an open store.
pub fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Bring the schema to `target` (≤ [`LATEST`]), one transaction per step.
pub fn migrate(conn: &Connection, target: u32, path: &str) -> anyhow::Result<()> {
    let current = version(conn).with_context(|| format!("cannot read the state store {path}"))?;
    if current > LATEST {
        return Err(crate::error::bad_input(format!(
            "the state store {path} has schema version {current}, newer than this capsule understands ({LATEST}) — upgrade capsule"
        )));
    }
    for step in (current + 1)..=target.min(LATEST) {
        let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            .with_context(|| format!("cannot lock the state store {path} to migrate it"))?;
        // Another process may have applied it while this one waited for the lock.
        if version(&tx)? >= step {
            continue;
        }
        let s = &STEPS[step as usize - 1];
        tx.execute_batch(s.sql)
            .with_context(|| format!("cannot migrate the state store {path} to version {step}"))?;
        if let Some(after) = s.after {
            after(&tx).with_context(|| {
                format!("cannot migrate the state store {path} to version {step}")
            })?;
        }
        tx.pragma_update(None, "user_version", step)?;
        tx.commit()
            .with_context(|| format!("cannot migrate the state store {path} to version {step}"))?;
    }
    Ok(())
}
