//! The SQLite implementation of [`Store`]: `$CAPSULE_HOME/state.db`.
//!
//! WAL mode, so readers never block the writer; a 10 s busy timeout, so a second process waits
//! for the write lock instead of failing; every write is one IMMEDIATE transaction (the lock is
//! taken up front, so a read-then-write can never fail half-way with `SQLITE_BUSY`). A `kill -9`
//! at any moment leaves either the whole transaction or none of it.

use super::columns::{self, node_from_values, node_values, Value, NODE_COLUMNS, NODE_COLUMN_COUNT};
use super::lifecycle;
use super::model::*;
use super::schema;
use super::time;
use super::Store;
use crate::error::{bad_input, state_error};
use anyhow::{anyhow, Context as _};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{
    params, params_from_iter, Connection, OptionalExtension, Row, Transaction, TransactionBehavior,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a process waits for another one's write transaction.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A node from a row whose columns from `first` on are [`NODE_COLUMNS`].
pub(crate) fn node_from_row(r: &Row, first: usize) -> rusqlite::Result<NodeRecord> {
    let mut values = (first..first + NODE_COLUMN_COUNT)
        .map(|i| r.get::<_, Value>(i))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    node_from_values(&mut values).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(first, rusqlite::types::Type::Text, e.into())
    })
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Value::Real(v) => ToSqlOutput::Borrowed(ValueRef::Real(*v)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

impl rusqlite::types::FromSql for Value {
    fn column_result(v: ValueRef<'_>) -> rusqlite::types::FromSqlResult<Value> {
        Ok(match v {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Int(i),
            ValueRef::Real(f) => Value::Real(f),
            ValueRef::Text(t) | ValueRef::Blob(t) => {
                Value::Text(String::from_utf8_lossy(t).into_owned())
            }
        })
    }
}

/// The SQLite store.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

impl SqliteStore {
    /// Open (creating it and its directory, 0700, when missing) and migrate to the latest schema.
    pub fn open(path: &Path) -> anyhow::Result<SqliteStore> {
        Self::open_at(path, schema::LATEST)
    }

    /// Open and migrate only up to `version` (tests of migrations build older stores with it).
    #[doc(hidden)]
    pub fn open_at(path: &Path, version: u32) -> anyhow::Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)?;
        }
        let shown = path.display().to_string();
        let fresh = !path.exists();
        let conn = Connection::open(path).map_err(|e| {
            state_error(format!("cannot open the state store {shown}: {e} — check that CAPSULE_HOME is a writable directory"))
        })?;
        if fresh {
            restrict_file(path);
        }
        let store = SqliteStore {
            conn,
            path: path.to_path_buf(),
        };
        store.configure()?;
        schema::migrate(&store.conn, version, &shown)?;
        Ok(store)
    }

    /// Open an existing store for reading only, as it is (no migration, no WAL switch): for a
    /// read-only command when `CAPSULE_HOME` cannot be written. Any write fails.
    pub fn open_read_only(path: &Path) -> anyhow::Result<SqliteStore> {
        use rusqlite::OpenFlags;
        let shown = path.display().to_string();
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| state_error(format!("cannot read the state store {shown}: {e}")))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let version = schema::version(&conn)
            .map_err(|e| state_error(format!("cannot read the state store {shown}: {e}")))?;
        if version != schema::LATEST {
            return Err(state_error(format!(
                "the state store {shown} is at schema version {version} and needs upgrading, but CAPSULE_HOME cannot be written — make it writable and run the command again"
            )));
        }
        Ok(SqliteStore {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// A private in-memory store (unit tests).
    pub fn open_in_memory() -> anyhow::Result<SqliteStore> {
        let store = SqliteStore {
            conn: Connection::open_in_memory()?,
            path: PathBuf::from(":memory:"),
        };
        store.configure()?;
        schema::migrate(&store.conn, schema::LATEST, ":memory:")?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The raw connection, for tests and the benchmark seeder.
    #[doc(hidden)]
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn configure(&self) -> anyhow::Result<()> {
        let shown = self.path.display();
        self.conn.busy_timeout(BUSY_TIMEOUT)?;
        // Switching to WAL needs a moment's exclusive access; a fresh store opened by several
        // processes at once can see SQLITE_BUSY here even with the busy timeout, so retry.
        let mut tries = 0;
        loop {
            match self
                .conn
                .query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
            {
                Ok(_) => break,
                Err(e) if is_busy(&e) && tries < 200 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(anyhow!(
                        "cannot open the state store {shown}: {e} — is another program holding it?"
                    ))
                }
            }
        }
        self.conn.pragma_update(None, "foreign_keys", true)?;
        // FULL: a committed transaction survives a power loss, not only a killed process.
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(())
    }

    /// Run `f` in one IMMEDIATE transaction; an error rolls everything back.
    fn write<T>(&self, f: impl FnOnce(&Transaction) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| self.lock_error(e))?;
        let out = f(&tx)?;
        tx.commit().map_err(|e| self.lock_error(e))?;
        Ok(out)
    }

    fn lock_error(&self, e: rusqlite::Error) -> anyhow::Error {
        if is_busy(&e) {
            state_error(format!(
                "the state store {} stayed locked by another capsule for {} s — wait for it to finish and try again",
                self.path.display(),
                BUSY_TIMEOUT.as_secs()
            ))
        } else {
            state_error(format!(
                "cannot write the state store {}: {e}",
                self.path.display()
            ))
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).with_context(|| {
        format!(
            "cannot create {} — check that CAPSULE_HOME is writable",
            dir.display()
        )
    })
}

fn restrict_file(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    #[cfg(not(unix))]
    let _ = path;
}

// ---------------------------------------------------------------- helpers inside a transaction

fn node_row(tx: &Connection, deploy_id: &str) -> anyhow::Result<Option<(i64, NodeRecord)>> {
    Ok(tx
        .query_row(
            &format!("SELECT id, {NODE_COLUMNS} FROM nodes WHERE deploy_id = ?1"),
            [deploy_id],
            |r| Ok((r.get(0)?, node_from_row(r, 1)?)),
        )
        .optional()?)
}

fn require_node(tx: &Connection, deploy_id: &str) -> anyhow::Result<(i64, NodeRecord)> {
    node_row(tx, deploy_id)?.ok_or_else(|| {
        crate::error::bad_input_hint(
            format!("no node with deploy id '{deploy_id}' is recorded"),
            crate::error::Hint::SeeAll("inventory --all"),
        )
    })
}

/// The deploy id of another live node holding `name`.
fn live_name_holder(
    tx: &Connection,
    name: &str,
    except_deploy_id: &str,
) -> anyhow::Result<Option<String>> {
    Ok(tx
        .query_row(
            "SELECT deploy_id FROM nodes WHERE name = ?1 AND deleted_at IS NULL AND deploy_id != ?2",
            params![name, except_deploy_id],
            |r| r.get(0),
        )
        .optional()?)
}

fn name_taken(name: &str, holder: &str) -> anyhow::Error {
    bad_input(format!(
        "a live node is already named '{name}' (deploy id {holder}) — choose another name, or delete or forget that node first"
    ))
}

fn add_state(tx: &Connection, node_id: i64, state: NodeStatus, since: &str) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO node_states(node_id, state, since) VALUES (?1, ?2, ?3)",
        params![node_id, state.as_str(), since],
    )?;
    Ok(())
}

fn add_event(
    tx: &Connection,
    time: &str,
    deploy_id: Option<&str>,
    action: Action,
    outcome: Outcome,
    state: Option<NodeStatus>,
    message: &str,
) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO events(time, deploy_id, action, outcome, state, message) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![time, deploy_id, action.as_str(), outcome.as_str(), state.map(NodeStatus::as_str), message],
    )?;
    Ok(())
}

fn insert_node(tx: &Connection, n: &NodeRecord) -> anyhow::Result<i64> {
    let sql = format!(
        "INSERT INTO nodes({NODE_COLUMNS}) VALUES ({})",
        sqlite_placeholders(1, NODE_COLUMN_COUNT)
    );
    tx.execute(&sql, params_from_iter(node_values(n)))?;
    Ok(tx.last_insert_rowid())
}

fn update_node(tx: &Connection, id: i64, n: &NodeRecord) -> anyhow::Result<()> {
    let sets = NODE_COLUMNS
        .split(", ")
        .enumerate()
        .map(|(i, c)| format!("{c} = ?{}", i + 1))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "UPDATE nodes SET {sets} WHERE id = ?{}",
        NODE_COLUMN_COUNT + 1
    );
    let mut values = node_values(n);
    values.push(Value::Int(id));
    tx.execute(&sql, params_from_iter(values))?;
    Ok(())
}

/// `?from, …` for `n` values.
pub(crate) fn sqlite_placeholders(from: usize, n: usize) -> String {
    columns::placeholders(from, n).replace('$', "?")
}

/// Move `node` to `status` at `now`, keeping the lifecycle timestamps in step.
fn set_status(node: &mut NodeRecord, status: NodeStatus, now: &str) {
    match status {
        NodeStatus::Running => node.started_at = Some(now.to_string()),
        NodeStatus::Stopped => node.stopped_at = Some(now.to_string()),
        NodeStatus::Deleted if node.deleted_at.is_none() => node.deleted_at = Some(now.to_string()),
        _ => {}
    }
    // Seen alive after it left the live set (a forgotten node, a create thought rejected): it
    // is live after all.
    if !matches!(status, NodeStatus::Deleted | NodeStatus::Error) {
        node.deleted_at = None;
    }
    node.status = status;
}

/// The intent of one deploy, inside a transaction: the node in `creating` and a `deploy started`
/// event.
fn intent_in(tx: &Transaction, n: &NewNode) -> anyhow::Result<NodeRecord> {
    if let Some(holder) = live_name_holder(tx, &n.name, &n.deploy_id)? {
        return Err(name_taken(&n.name, &holder));
    }
    if node_row(tx, &n.deploy_id)?.is_some() {
        return Err(bad_input(format!(
            "deploy id '{}' is already recorded — resume that deploy with `deploy --resume`, or use a new id",
            n.deploy_id
        )));
    }
    let now = time::now();
    let node = new_record(n, &now);
    let id = insert_node(tx, &node)?;
    add_state(tx, id, NodeStatus::Creating, &now)?;
    add_event(
        tx,
        &now,
        Some(&n.deploy_id),
        Action::Deploy,
        Outcome::Started,
        Some(NodeStatus::Creating),
        &intent_message(n),
    )?;
    Ok(node)
}

/// The `deploy started` event's text.
fn intent_message(n: &NewNode) -> String {
    format!(
        "create {} ({}) in {} as '{}'",
        n.template, n.plan, n.region, n.name
    )
}

fn validate_new(n: &NewNode) -> anyhow::Result<()> {
    for (what, v) in [
        ("deploy id", &n.deploy_id),
        ("name", &n.name),
        ("provider", &n.provider),
    ] {
        if v.trim().is_empty() {
            return Err(bad_input(format!(
                "a node's {what} cannot be empty — give the node a {what}"
            )));
        }
    }
    if !(n.price_hourly.is_finite()
        && n.price_hourly >= 0.0
        && n.price_monthly.is_finite()
        && n.price_monthly >= 0.0)
    {
        return Err(bad_input(format!(
            "node '{}' has an invalid price ({} per hour, {} per month) — prices must be zero or positive numbers",
            n.name, n.price_hourly, n.price_monthly
        )));
    }
    Ok(())
}

fn new_record(n: &NewNode, now: &str) -> NodeRecord {
    NodeRecord {
        deploy_id: n.deploy_id.clone(),
        group_id: if n.group_id.is_empty() {
            n.deploy_id.clone()
        } else {
            n.group_id.clone()
        },
        name: n.name.clone(),
        provider: n.provider.clone(),
        account: n.account.clone(),
        provider_id: None,
        template: n.template.clone(),
        plan: n.plan.clone(),
        region: n.region.clone(),
        api_variant: n.api_variant.clone(),
        status: NodeStatus::Creating,
        raw_status: String::new(),
        ipv4: None,
        price_hourly: n.price_hourly,
        price_monthly: n.price_monthly,
        currency: n.currency.clone(),
        prices_as_of: n.prices_as_of.clone(),
        recorded_at: now.to_string(),
        created_at: None,
        started_at: None,
        stopped_at: None,
        deleted_at: None,
        updated_at: now.to_string(),
    }
}

/// Apply the provider's create answer to a record; returns whether the status changed.
fn apply_created(node: &mut NodeRecord, c: &Created, now: &str) -> bool {
    node.provider_id = Some(c.provider_id.clone());
    node.raw_status = c.raw_status.clone();
    node.ipv4 = c.ipv4.clone().filter(|ip| !ip.is_empty());
    node.created_at = Some(
        c.created_at
            .as_deref()
            .and_then(time::normalize)
            .unwrap_or_else(|| now.to_string()),
    );
    node.updated_at = now.to_string();
    let changed = node.status != c.status;
    set_status(node, c.status, now);
    changed
}

fn describe_change(field: &str, before: Option<&str>, after: Option<&str>) -> String {
    format!(
        "{field} {} → {}",
        before.filter(|s| !s.is_empty()).unwrap_or("-"),
        after.filter(|s| !s.is_empty()).unwrap_or("-")
    )
}

fn in_list(
    column: &str,
    n: usize,
    args: &mut Vec<String>,
    values: impl Iterator<Item = String>,
) -> String {
    args.extend(values);
    let marks = vec!["?"; n].join(", ");
    format!("{column} IN ({marks})")
}

/// `WHERE …` for a node filter, and its arguments.
fn node_where(filter: &NodeFilter) -> (String, Vec<String>) {
    let mut clauses = Vec::new();
    let mut args = Vec::new();
    if !filter.providers.is_empty() {
        clauses.push(in_list(
            "provider",
            filter.providers.len(),
            &mut args,
            filter.providers.iter().cloned(),
        ));
    }
    if !filter.accounts.is_empty() {
        clauses.push(in_list(
            "account",
            filter.accounts.len(),
            &mut args,
            filter.accounts.iter().cloned(),
        ));
    }
    if !filter.regions.is_empty() {
        clauses.push(in_list(
            "region",
            filter.regions.len(),
            &mut args,
            filter.regions.iter().cloned(),
        ));
    }
    if !filter.statuses.is_empty() {
        clauses.push(in_list(
            "status",
            filter.statuses.len(),
            &mut args,
            filter.statuses.iter().map(|s| s.as_str().to_string()),
        ));
    }
    if !filter.include_deleted {
        clauses.push("deleted_at IS NULL".to_string());
    }
    if clauses.is_empty() {
        (String::new(), args)
    } else {
        (format!("WHERE {}", clauses.join(" AND ")), args)
    }
}

impl Store for SqliteStore {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn record_intent(&self, n: &NewNode) -> anyhow::Result<NodeRecord> {
        validate_new(n)?;
        self.write(|tx| intent_in(tx, n))
    }

    fn record_intents(&self, nodes: &[NewNode]) -> anyhow::Result<Vec<NodeRecord>> {
        for n in nodes {
            validate_new(n)?;
        }
        // One transaction for a whole fleet: all recorded, or none.
        self.write(|tx| nodes.iter().map(|n| intent_in(tx, n)).collect())
    }

    fn record_created(&self, deploy_id: &str, c: &Created) -> anyhow::Result<NodeRecord> {
        self.write(|tx| {
            let (id, mut node) = require_node(tx, deploy_id)?;
            let now = time::now();
            if apply_created(&mut node, c, &now) {
                add_state(tx, id, node.status, &now)?;
            }
            update_node(tx, id, &node)?;
            let msg = format!("created {}:{}", node.provider, c.provider_id);
            add_event(
                tx,
                &now,
                Some(deploy_id),
                Action::Deploy,
                Outcome::Ok,
                Some(node.status),
                &msg,
            )?;
            Ok(node)
        })
    }

    fn record_failed(
        &self,
        deploy_id: &str,
        message: &str,
        failure: Failure,
    ) -> anyhow::Result<NodeRecord> {
        self.write(|tx| {
            let (id, mut node) = require_node(tx, deploy_id)?;
            let now = time::now();
            let was_live = node.is_live();
            if let Some(status) = lifecycle::fail_create(&mut node, failure, &now) {
                add_state(tx, id, status, &now)?;
            }
            if !was_live && node.is_live() {
                if let Some(holder) = live_name_holder(tx, &node.name, deploy_id)? {
                    return Err(name_taken(&node.name, &holder));
                }
            }
            update_node(tx, id, &node)?;
            add_event(
                tx,
                &now,
                Some(deploy_id),
                Action::Deploy,
                Outcome::Failed,
                Some(node.status),
                message,
            )?;
            Ok(node)
        })
    }

    fn record_moved(&self, from: &str, to: &NewNode, message: &str) -> anyhow::Result<NodeRecord> {
        validate_new(to)?;
        self.write(|tx| {
            let (id, mut node) = require_node(tx, from)?;
            let now = time::now();
            lifecycle::move_to(&mut node, to, &now).map_err(|m| anyhow!(m))?;
            if node_row(tx, &to.deploy_id)?.is_some() {
                return Err(anyhow!("deploy id '{}' is already recorded", to.deploy_id));
            }
            add_event(
                tx,
                &now,
                Some(from),
                Action::Deploy,
                Outcome::Failed,
                Some(NodeStatus::Creating),
                message,
            )?;
            for table in ["events", "expiries"] {
                tx.execute(
                    &format!("UPDATE {table} SET deploy_id = ?1 WHERE deploy_id = ?2"),
                    params![to.deploy_id, from],
                )?;
            }
            update_node(tx, id, &node)?;
            add_event(
                tx,
                &now,
                Some(&to.deploy_id),
                Action::Deploy,
                Outcome::Started,
                Some(NodeStatus::Creating),
                &intent_message(to),
            )?;
            Ok(node)
        })
    }

    fn record_observation(
        &self,
        deploy_id: &str,
        obs: &Observation,
        action: Action,
        message: &str,
    ) -> anyhow::Result<StatusChange> {
        self.write(|tx| {
            let (id, mut node) = require_node(tx, deploy_id)?;
            let now = time::now();
            let before = node.clone();
            let mut changed: Vec<&'static str> = Vec::new();
            let mut notes: Vec<String> = Vec::new();
            let mut previous = None;
            if let Some(status) = obs.status.filter(|s| *s != node.status) {
                previous = Some(node.status);
                set_status(&mut node, status, &now);
                if before.deleted_at.is_some() && node.deleted_at.is_none() {
                    if let Some(holder) = live_name_holder(tx, &node.name, deploy_id)? {
                        return Err(name_taken(&node.name, &holder));
                    }
                }
                add_state(tx, id, status, &now)?;
                changed.push("status");
                notes.push(describe_change(
                    "status",
                    Some(before.status.as_str()),
                    Some(status.as_str()),
                ));
            }
            if let Some(ip) = &obs.ipv4 {
                let ip = ip.clone().filter(|s| !s.is_empty());
                if ip != node.ipv4 {
                    notes.push(describe_change("ipv4", node.ipv4.as_deref(), ip.as_deref()));
                    node.ipv4 = ip;
                    changed.push("ipv4");
                }
            }
            if let Some(plan) = obs
                .plan
                .as_ref()
                .filter(|p| !p.is_empty() && **p != node.plan)
            {
                notes.push(describe_change("plan", Some(&node.plan), Some(plan)));
                node.plan = plan.clone();
                changed.push("plan");
            }
            if let Some(pid) = obs
                .provider_id
                .as_ref()
                .filter(|p| !p.is_empty() && node.provider_id.as_ref() != Some(*p))
            {
                notes.push(describe_change(
                    "provider id",
                    node.provider_id.as_deref(),
                    Some(pid),
                ));
                node.provider_id = Some(pid.clone());
                if node.created_at.is_none() {
                    node.created_at = Some(now.clone());
                }
                changed.push("provider_id");
            }
            let raw_changed = obs
                .raw_status
                .as_ref()
                .is_some_and(|r| *r != node.raw_status);
            if raw_changed {
                node.raw_status = obs.raw_status.clone().unwrap_or_default();
            }
            if !changed.is_empty() || raw_changed {
                node.updated_at = now.clone();
                update_node(tx, id, &node)?;
            }
            if !changed.is_empty() {
                let mut msg = notes.join("; ");
                if !message.is_empty() {
                    msg = format!("{message}: {msg}");
                }
                add_event(
                    tx,
                    &now,
                    Some(deploy_id),
                    action,
                    Outcome::Ok,
                    Some(node.status),
                    &msg,
                )?;
            }
            if raw_changed {
                changed.push("raw_status");
            }
            Ok(StatusChange {
                node,
                previous,
                changed,
            })
        })
    }

    fn record_action(
        &self,
        deploy_id: Option<&str>,
        action: Action,
        outcome: Outcome,
        message: &str,
    ) -> anyhow::Result<()> {
        self.write(|tx| {
            let state = match deploy_id {
                Some(d) => Some(require_node(tx, d)?.1.status),
                None => None,
            };
            add_event(tx, &time::now(), deploy_id, action, outcome, state, message)
        })
    }

    fn adopt(&self, n: &NewNode, c: &Created) -> anyhow::Result<NodeRecord> {
        validate_new(n)?;
        self.write(|tx| {
            if let Some(holder) = live_name_holder(tx, &n.name, &n.deploy_id)? {
                return Err(name_taken(&n.name, &holder));
            }
            if node_row(tx, &n.deploy_id)?.is_some() {
                return Err(bad_input(format!(
                    "deploy id '{}' is already recorded — nothing to adopt",
                    n.deploy_id
                )));
            }
            let now = time::now();
            let mut node = new_record(n, &now);
            apply_created(&mut node, c, &now);
            if node.status == NodeStatus::Running && node.started_at.is_some() {
                node.started_at = node.created_at.clone();
            }
            let id = insert_node(tx, &node)?;
            // Billed from the provider's creation time: that is when the provider started counting.
            let since = node.created_at.clone().unwrap_or_else(|| now.clone());
            add_state(tx, id, node.status, &since)?;
            let msg = format!(
                "adopted {}:{} found at the provider",
                node.provider, c.provider_id
            );
            add_event(
                tx,
                &now,
                Some(&n.deploy_id),
                Action::Adopt,
                Outcome::Ok,
                Some(node.status),
                &msg,
            )?;
            Ok(node)
        })
    }

    fn node_by_deploy_id(&self, deploy_id: &str) -> anyhow::Result<Option<NodeRecord>> {
        Ok(node_row(&self.conn, deploy_id)?.map(|(_, n)| n))
    }

    fn node_by_name(&self, name: &str) -> anyhow::Result<Option<NodeRecord>> {
        let live = self
            .conn
            .query_row(
                &format!("SELECT {NODE_COLUMNS} FROM nodes WHERE name = ?1 AND deleted_at IS NULL"),
                [name],
                |r| node_from_row(r, 0),
            )
            .optional()?;
        if live.is_some() {
            return Ok(live);
        }
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {NODE_COLUMNS} FROM nodes WHERE name = ?1 ORDER BY deleted_at DESC, id DESC LIMIT 1"),
                [name],
                |r| node_from_row(r, 0),
            )
            .optional()?)
    }

    fn node_by_provider_id(
        &self,
        provider: &str,
        provider_id: &str,
    ) -> anyhow::Result<Option<NodeRecord>> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {NODE_COLUMNS} FROM nodes WHERE provider = ?1 AND provider_id = ?2 \
                     ORDER BY deleted_at IS NOT NULL, id DESC LIMIT 1"
                ),
                [provider, provider_id],
                |r| node_from_row(r, 0),
            )
            .optional()?)
    }

    fn accounts(&self) -> anyhow::Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT DISTINCT account FROM nodes ORDER BY account")?;
        let rows = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn nodes_in_group(&self, group_id: &str) -> anyhow::Result<Vec<NodeRecord>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {NODE_COLUMNS} FROM nodes WHERE group_id = ?1 ORDER BY id"
        ))?;
        let rows = st
            .query_map([group_id], |r| node_from_row(r, 0))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn for_each_node(
        &self,
        filter: &NodeFilter,
        f: &mut dyn FnMut(NodeRecord) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let (clause, args) = node_where(filter);
        let mut st = self.conn.prepare(&format!(
            "SELECT {NODE_COLUMNS} FROM nodes {clause} ORDER BY recorded_at, deploy_id"
        ))?;
        let mut rows = st.query(params_from_iter(args.iter()))?;
        while let Some(r) = rows.next()? {
            let node = node_from_row(r, 0)?;
            if filter.matches_name(&node) {
                f(node)?;
            }
        }
        Ok(())
    }

    fn for_each_timeline(
        &self,
        filter: &NodeFilter,
        f: &mut dyn FnMut(&NodeRecord, &[Transition]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        // One read transaction, so nodes and states are the same snapshot; a merge join of two
        // ordered scans keeps memory to one node's timeline.
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred)?;
        let (clause, args) = node_where(filter);
        let mut nodes = tx.prepare(&format!(
            "SELECT id, {NODE_COLUMNS} FROM nodes {clause} ORDER BY id"
        ))?;
        let mut states = tx
            .prepare("SELECT node_id, state, since FROM node_states ORDER BY node_id, since, id")?;
        let mut node_rows = nodes.query(params_from_iter(args.iter()))?;
        let mut state_rows = states.query([])?;
        let mut pending: Option<(i64, Transition)> = None;
        let mut timeline: Vec<Transition> = Vec::new();
        let read_state = |r: &Row| -> anyhow::Result<(i64, Transition)> {
            let state: String = r.get(1)?;
            let state = NodeStatus::parse(&state)
                .ok_or_else(|| anyhow!("the state store holds an unknown status '{state}'"))?;
            Ok((
                r.get(0)?,
                Transition {
                    state,
                    since: r.get(2)?,
                },
            ))
        };
        while let Some(r) = node_rows.next()? {
            let id: i64 = r.get(0)?;
            let node = node_from_row(r, 1)?;
            timeline.clear();
            loop {
                if pending.is_none() {
                    match state_rows.next()? {
                        Some(sr) => pending = Some(read_state(sr)?),
                        None => break,
                    }
                }
                match pending.take() {
                    Some((nid, t)) if nid == id => timeline.push(t),
                    Some((nid, _)) if nid < id => {}
                    other => {
                        pending = other;
                        break;
                    }
                }
            }
            if filter.matches_name(&node) {
                f(&node, &timeline)?;
            }
        }
        drop(node_rows);
        drop(state_rows);
        drop(nodes);
        drop(states);
        tx.commit()?;
        Ok(())
    }

    fn timeline(&self, deploy_id: &str) -> anyhow::Result<Vec<Transition>> {
        let mut st = self.conn.prepare(
            "SELECT s.state, s.since FROM node_states s JOIN nodes n ON n.id = s.node_id WHERE n.deploy_id = ?1 \
             ORDER BY s.since, s.id",
        )?;
        let mut out = Vec::new();
        let mut rows = st.query([deploy_id])?;
        while let Some(r) = rows.next()? {
            let state: String = r.get(0)?;
            let state = NodeStatus::parse(&state)
                .ok_or_else(|| anyhow!("the state store holds an unknown status '{state}'"))?;
            out.push(Transition {
                state,
                since: r.get(1)?,
            });
        }
        Ok(out)
    }

    fn events(&self, filter: &EventFilter) -> anyhow::Result<Vec<Event>> {
        let limit: i64 = if filter.limit == 0 {
            -1
        } else {
            filter.limit as i64
        };
        let mut st = self.conn.prepare(
            "SELECT e.id, e.time, e.deploy_id, n.name, n.provider, e.action, e.outcome, e.state, e.message \
             FROM events e LEFT JOIN nodes n ON n.deploy_id = e.deploy_id \
             WHERE (?1 IS NULL OR e.deploy_id = ?1) AND (?2 IS NULL OR e.time >= ?2) \
             AND (?4 IS NULL OR e.action = ?4) \
             ORDER BY e.id DESC LIMIT ?3",
        )?;
        let mut out: Vec<Event> = Vec::new();
        let action = filter.action.map(Action::as_str);
        let mut rows = st.query(params![filter.deploy_id, filter.since, limit, action])?;
        while let Some(r) = rows.next()? {
            let action: String = r.get(5)?;
            let outcome: String = r.get(6)?;
            let state: Option<String> = r.get(7)?;
            out.push(Event {
                id: r.get(0)?,
                time: r.get(1)?,
                deploy_id: r.get(2)?,
                node: r.get(3)?,
                provider: r.get(4)?,
                action: Action::parse(&action)
                    .ok_or_else(|| anyhow!("the state store holds an unknown action '{action}'"))?,
                outcome: Outcome::parse(&outcome).ok_or_else(|| {
                    anyhow!("the state store holds an unknown outcome '{outcome}'")
                })?,
                state: state.as_deref().and_then(NodeStatus::parse),
                message: r.get(8)?,
            });
        }
        out.reverse();
        Ok(out)
    }

    fn clean_events(&self, before: &str, dry_run: bool) -> anyhow::Result<CleanReport> {
        self.write(|tx| {
            let live = "SELECT deploy_id FROM nodes WHERE deleted_at IS NULL";
            let removable: u64 = tx.query_row(
                &format!("SELECT COUNT(*) FROM events WHERE time < ?1 AND (deploy_id IS NULL OR deploy_id NOT IN ({live}))"),
                [before],
                |r| r.get(0),
            )?;
            let kept_live: u64 = tx.query_row(
                &format!("SELECT COUNT(*) FROM events WHERE time < ?1 AND deploy_id IN ({live})"),
                [before],
                |r| r.get(0),
            )?;
            if !dry_run {
                tx.execute(
                    &format!("DELETE FROM events WHERE time < ?1 AND (deploy_id IS NULL OR deploy_id NOT IN ({live}))"),
                    [before],
                )?;
            }
            Ok(CleanReport { removed: removable, kept_live })
        })
    }

    fn add_cleanups(&self, items: &[NewCleanup]) -> anyhow::Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            let now = time::now();
            let mut insert = tx.prepare(
                "INSERT INTO cleanups(provider, account, node_ref, deploy_id, what, work, recorded_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for c in items {
                insert.execute(params![
                    c.provider,
                    c.account,
                    c.node_ref,
                    c.deploy_id,
                    c.what,
                    c.work,
                    now
                ])?;
            }
            Ok(())
        })
    }

    fn pending_cleanups(&self, provider: Option<&str>) -> anyhow::Result<Vec<PendingCleanup>> {
        let mut q = self.conn.prepare(
            "SELECT id, provider, node_ref, deploy_id, what, work, recorded_at, attempts, last_error, \
             account FROM cleanups WHERE done_at IS NULL AND (?1 IS NULL OR provider = ?1) ORDER BY id",
        )?;
        let rows = q
            .query_map(params![provider], |r| {
                Ok(PendingCleanup {
                    id: r.get(0)?,
                    provider: r.get(1)?,
                    node_ref: r.get(2)?,
                    deploy_id: r.get(3)?,
                    what: r.get(4)?,
                    work: r.get(5)?,
                    recorded_at: r.get(6)?,
                    attempts: r.get(7)?,
                    last_error: r.get(8)?,
                    account: r.get(9)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn finish_cleanup(&self, id: i64, result: Result<(), &str>) -> anyhow::Result<()> {
        self.write(|tx| {
            match result {
                Ok(()) => tx.execute(
                    "UPDATE cleanups SET done_at = ?2, attempts = attempts + 1, last_error = '' \
                     WHERE id = ?1",
                    params![id, time::now()],
                )?,
                Err(msg) => tx.execute(
                    "UPDATE cleanups SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
                    params![id, msg],
                )?,
            };
            Ok(())
        })
    }

    fn set_expiries(&self, items: &[(String, String)]) -> anyhow::Result<()> {
        self.write(|tx| {
            let mut up = tx.prepare(
                "INSERT INTO expiries(deploy_id, expires_at) VALUES (?1, ?2) \
                 ON CONFLICT(deploy_id) DO UPDATE SET expires_at = excluded.expires_at",
            )?;
            for (d, at) in items {
                require_node(tx, d)?;
                up.execute(params![d, at])?;
            }
            Ok(())
        })
    }

    fn expiries(&self) -> anyhow::Result<std::collections::HashMap<String, String>> {
        let mut q = self
            .conn
            .prepare("SELECT deploy_id, expires_at FROM expiries")?;
        let rows = q
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn deleted_unrecorded(&self, node_ref: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT time FROM events WHERE deploy_id IS NULL AND action = 'delete' \
                 AND outcome = 'ok' AND message = ?1 ORDER BY id DESC LIMIT 1",
                params![node_ref],
                |r| r.get(0),
            )
            .optional()?)
    }

    fn import_nodes(&self, rows: &[NodeRecord], dry_run: bool) -> anyhow::Result<ImportReport> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| self.lock_error(e))?;
        let mut report = ImportReport {
            rows: rows.len(),
            ..ImportReport::default()
        };
        let now = time::now();
        for (i, row) in rows.iter().enumerate() {
            if row.is_live() {
                if let Some(holder) = live_name_holder(&tx, &row.name, &row.deploy_id)? {
                    report.conflicts.push((
                        i,
                        "name",
                        format!("a live node is already named '{}' (deploy id {holder}) — rename one of them", row.name),
                    ));
                    continue;
                }
            }
            match node_row(&tx, &row.deploy_id)? {
                None => {
                    let id = insert_node(&tx, row)?;
                    for t in row.synthesized_timeline() {
                        add_state(&tx, id, t.state, &t.since)?;
                    }
                    add_event(
                        &tx,
                        &now,
                        Some(&row.deploy_id),
                        Action::Import,
                        Outcome::Ok,
                        Some(row.status),
                        "imported",
                    )?;
                    report.added += 1;
                }
                Some((_, existing)) if existing == *row => report.unchanged += 1,
                Some((id, existing)) => {
                    update_node(&tx, id, row)?;
                    if existing.status != row.status {
                        add_state(&tx, id, row.status, &now)?;
                    }
                    let mut msg = "updated from an import".to_string();
                    if existing.status != row.status {
                        msg = format!(
                            "{msg}: {}",
                            describe_change(
                                "status",
                                Some(existing.status.as_str()),
                                Some(row.status.as_str())
                            )
                        );
                    }
                    add_event(
                        &tx,
                        &now,
                        Some(&row.deploy_id),
                        Action::Import,
                        Outcome::Ok,
                        Some(row.status),
                        &msg,
                    )?;
                    report.updated += 1;
                }
            }
        }
        if dry_run || !report.conflicts.is_empty() {
            tx.rollback()?;
        } else {
            tx.commit().map_err(|e| self.lock_error(e))?;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_node(deploy_id: &str, name: &str) -> NewNode {
        NewNode {
            deploy_id: deploy_id.into(),
            group_id: "fleet-1".into(),
            name: name.into(),
            provider: "acme".into(),
            account: DEFAULT_ACCOUNT.into(),
            template: "acme-small".into(),
            plan: "s-1".into(),
            region: "r1".into(),
            api_variant: String::new(),
            price_hourly: 0.01,
            price_monthly: 5.0,
            currency: "USD".into(),
            prices_as_of: "2024-05-01".into(),
        }
    }

    fn created(id: &str) -> Created {
        Created {
            provider_id: id.into(),
            status: NodeStatus::Pending,
            raw_status: "new".into(),
            ipv4: None,
            created_at: None,
        }
    }

    #[test]
    fn a_deploy_is_recorded_before_and_after_the_create() {
        let s = SqliteStore::open_in_memory().unwrap();
        let n = s.record_intent(&new_node("d1", "web-1")).unwrap();
        assert_eq!(n.status, NodeStatus::Creating);
        assert_eq!(s.node_by_name("web-1").unwrap().unwrap().deploy_id, "d1");
        let n = s.record_created("d1", &created("42")).unwrap();
        assert_eq!(
            (n.status, n.provider_id.as_deref()),
            (NodeStatus::Pending, Some("42"))
        );
        let ch = s
            .record_status(
                "d1",
                Action::Status,
                NodeStatus::Running,
                "active",
                Some("203.0.113.9"),
            )
            .unwrap();
        assert_eq!(ch.previous, Some(NodeStatus::Pending));
        assert_eq!(ch.changed, ["status", "ipv4", "raw_status"]);
        // The same look again writes nothing.
        let ch = s
            .record_status(
                "d1",
                Action::Status,
                NodeStatus::Running,
                "active",
                Some("203.0.113.9"),
            )
            .unwrap();
        assert!(ch.changed.is_empty());
        let states: Vec<NodeStatus> = s
            .timeline("d1")
            .unwrap()
            .into_iter()
            .map(|t| t.state)
            .collect();
        assert_eq!(
            states,
            [
                NodeStatus::Creating,
                NodeStatus::Pending,
                NodeStatus::Running
            ]
        );
        let ev = s
            .events(&EventFilter {
                deploy_id: Some("d1".into()),
                ..EventFilter::default()
            })
            .unwrap();
        let got: Vec<(Action, Outcome)> = ev.iter().map(|e| (e.action, e.outcome)).collect();
        assert_eq!(
            got,
            [
                (Action::Deploy, Outcome::Started),
                (Action::Deploy, Outcome::Ok),
                (Action::Status, Outcome::Ok)
            ]
        );
        assert_eq!(
            ev[2].message,
            "status pending → running; ipv4 - → 203.0.113.9"
        );
        assert_eq!(s.resolve("acme:42").unwrap().unwrap().deploy_id, "d1");
        assert_eq!(s.resolve("acme:r1/42").unwrap().unwrap().deploy_id, "d1");
        assert_eq!(s.resolve("d1").unwrap().unwrap().name, "web-1");
        assert_eq!(s.nodes_in_group("fleet-1").unwrap().len(), 1);
    }

    #[test]
    fn names_are_unique_among_live_nodes_only() {
        let s = SqliteStore::open_in_memory().unwrap();
        s.record_intent(&new_node("d1", "web")).unwrap();
        let e = s.record_intent(&new_node("d2", "web")).unwrap_err();
        assert_eq!(e.to_string(), "a live node is already named 'web' (deploy id d1) — choose another name, or delete or forget that node first");
        assert_eq!(crate::error::exit_code(&e), 2);
        s.record_created("d1", &created("1")).unwrap();
        s.record_status("d1", Action::Delete, NodeStatus::Deleted, "", None)
            .unwrap();
        s.record_intent(&new_node("d2", "web")).unwrap();
        assert_eq!(s.node_by_name("web").unwrap().unwrap().deploy_id, "d2");
        let e = s.record_intent(&new_node("d2", "web2")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("deploy id 'd2' is already recorded"),
            "{e}"
        );
    }

    #[test]
    fn a_moved_create_keeps_one_record_with_every_attempt_as_events() {
        let s = SqliteStore::open_in_memory().unwrap();
        s.record_intent(&new_node("d1", "web")).unwrap();
        s.set_expiries(&[("d1".into(), "2030-01-01T00:00:00Z".into())])
            .unwrap();
        let mut to = new_node("d2", "web");
        to.region = "r2".into();
        let n = s
            .record_moved("d1", &to, "refused, no capacity: sold out")
            .unwrap();
        assert_eq!((n.deploy_id.as_str(), n.region.as_str()), ("d2", "r2"));
        assert_eq!(n.status, NodeStatus::Creating);
        assert!(n.is_live());
        assert!(s.node_by_deploy_id("d1").unwrap().is_none());
        let all = s
            .list_nodes(&NodeFilter {
                include_deleted: true,
                ..NodeFilter::default()
            })
            .unwrap();
        assert_eq!(all.len(), 1, "one record, no orphan intent");
        let ev = s
            .events(&EventFilter {
                deploy_id: Some("d2".into()),
                ..EventFilter::default()
            })
            .unwrap();
        let msgs: Vec<&str> = ev.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert_eq!(msgs[1], "refused, no capacity: sold out");
        assert!(msgs[2].contains(" in r2 "), "{msgs:?}");
        assert!(s.expiries().unwrap().contains_key("d2"));
        // A node that exists, or a record already moved, is never moved.
        s.record_created("d2", &created("9")).unwrap();
        let e = s
            .record_moved("d2", &new_node("d3", "web"), "x")
            .unwrap_err();
        assert!(e.to_string().contains("was not moved"), "{e}");
        assert!(s.record_moved("d1", &new_node("d4", "web"), "x").is_err());
    }

    #[test]
    fn a_rejected_create_frees_the_name_an_in_doubt_one_stays_live() {
        let s = SqliteStore::open_in_memory().unwrap();
        s.record_intent(&new_node("d1", "web")).unwrap();
        let n = s
            .record_failed("d1", "acme: plan sold out (HTTP 422)", Failure::Rejected)
            .unwrap();
        assert_eq!(n.status, NodeStatus::Error);
        assert!(!n.is_live());
        s.record_intent(&new_node("d2", "web")).unwrap();
        let n = s
            .record_failed("d2", "acme: timed out", Failure::InDoubt)
            .unwrap();
        assert!(n.is_live());
        let ev = s
            .events(&EventFilter {
                deploy_id: Some("d1".into()),
                ..EventFilter::default()
            })
            .unwrap();
        assert_eq!(ev.last().unwrap().message, "acme: plan sold out (HTTP 422)");
    }

    #[test]
    fn clean_keeps_events_of_live_nodes() {
        let s = SqliteStore::open_in_memory().unwrap();
        s.record_intent(&new_node("live", "a")).unwrap();
        s.record_intent(&new_node("gone", "b")).unwrap();
        s.record_status("gone", Action::Delete, NodeStatus::Deleted, "", None)
            .unwrap();
        s.record_action(None, Action::Sync, Outcome::Ok, "sync run")
            .unwrap();
        let future = time::format(time::now_unix() + 10);
        let dry = s.clean_events(&future, true).unwrap();
        assert_eq!(
            dry,
            CleanReport {
                removed: 3,
                kept_live: 1
            }
        );
        assert_eq!(s.events(&EventFilter::default()).unwrap().len(), 4);
        s.clean_events(&future, false).unwrap();
        let left = s.events(&EventFilter::default()).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].deploy_id.as_deref(), Some("live"));
    }

    #[test]
    fn import_inserts_updates_and_refuses_name_clashes() {
        let s = SqliteStore::open_in_memory().unwrap();
        let mut n = s.record_intent(&new_node("d1", "web")).unwrap();
        n.status = NodeStatus::Running;
        n.provider_id = Some("9".into());
        let mut other = n.clone();
        other.deploy_id = "d2".into();
        other.name = "db".into();
        let r = s.import_nodes(&[n.clone(), other.clone()], false).unwrap();
        assert_eq!((r.added, r.updated, r.unchanged), (1, 1, 0));
        let r = s.import_nodes(&[n.clone(), other.clone()], false).unwrap();
        assert_eq!((r.added, r.updated, r.unchanged), (0, 0, 2));
        let mut clash = other.clone();
        clash.deploy_id = "d3".into();
        let r = s.import_nodes(&[clash], false).unwrap();
        assert_eq!(r.conflicts.len(), 1);
        assert!(s.node_by_deploy_id("d3").unwrap().is_none());
    }

    #[test]
    fn v5_puts_existing_nodes_and_cleanups_in_the_default_account() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let v4 = SqliteStore::open_at(&path, 4).unwrap();
            v4.connection()
                .execute_batch(
                    "INSERT INTO nodes(deploy_id, group_id, name, provider, template, plan, region, status, \
                     price_hourly, price_monthly, currency, recorded_at, updated_at) VALUES \
                     ('d4', 'd4', 'web', 'acme', 'acme-small', 's-1', 'r1', 'running', 0.01, 5.0, 'USD', \
                      '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z');
                     INSERT INTO cleanups(provider, node_ref, deploy_id, what, work, recorded_at) VALUES \
                      ('acme', 'acme:7', 'd4', 'delete_volume 9', '{}', '2024-01-01T00:00:00Z');",
                )
                .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(schema::version(s.connection()).unwrap(), 5);
        let n = s.node_by_deploy_id("d4").unwrap().unwrap();
        assert_eq!(n.account, DEFAULT_ACCOUNT);
        let c = s.pending_cleanups(Some("acme")).unwrap();
        assert_eq!(c[0].account, DEFAULT_ACCOUNT);
        // A second account's node is kept apart and filtered by account.
        let mut other = new_node("d5", "db");
        other.account = "team-b".into();
        s.record_intent(&other).unwrap();
        let only_b = s
            .list_nodes(&NodeFilter {
                accounts: vec!["team-b".into()],
                ..NodeFilter::default()
            })
            .unwrap();
        assert_eq!(only_b.len(), 1);
        assert_eq!(
            (only_b[0].deploy_id.as_str(), only_b[0].account.as_str()),
            ("d5", "team-b")
        );
        assert_eq!(s.accounts().unwrap(), ["default", "team-b"]);
    }

    #[test]
    fn migrates_a_v1_store_and_rebuilds_timelines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home").join("state.db");
        {
            let v1 = SqliteStore::open_at(&path, 1).unwrap();
            assert_eq!(schema::version(v1.connection()).unwrap(), 1);
            v1.connection()
                .execute_batch(
                    "INSERT INTO nodes(deploy_id, name, provider, provider_id, template, plan, region, status, price_hourly, \
                     price_monthly, currency, recorded_at, created_at, started_at, stopped_at, updated_at) VALUES \
                     ('old1', 'web', 'acme', '7', 'acme-small', 's-1', 'r1', 'stopped', 0.01, 5.0, 'USD', \
                      '2024-01-01T00:00:00Z', '2024-01-01T00:01:00Z', '2024-01-01T00:02:00Z', '2024-01-02T00:00:00Z', \
                      '2024-01-02T00:00:00Z');
                     INSERT INTO events(time, deploy_id, action, outcome, message) VALUES
                      ('2024-01-01T00:00:00Z', 'old1', 'deploy', 'ok', 'created');",
                )
                .unwrap();
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(schema::version(s.connection()).unwrap(), schema::LATEST);
        let n = s.node_by_deploy_id("old1").unwrap().unwrap();
        assert_eq!((n.group_id.as_str(), n.api_variant.as_str()), ("old1", ""));
        assert_eq!(n.account, DEFAULT_ACCOUNT);
        let tl: Vec<(NodeStatus, String)> = s
            .timeline("old1")
            .unwrap()
            .into_iter()
            .map(|t| (t.state, t.since))
            .collect();
        assert_eq!(
            tl,
            [
                (NodeStatus::Pending, "2024-01-01T00:01:00Z".to_string()),
                (NodeStatus::Running, "2024-01-01T00:02:00Z".to_string()),
                (NodeStatus::Stopped, "2024-01-02T00:00:00Z".to_string()),
            ]
        );
        assert_eq!(s.events(&EventFilter::default()).unwrap()[0].state, None);
        // Opening again is a no-op; a newer schema is refused.
        drop(s);
        let s = SqliteStore::open(&path).unwrap();
        s.connection()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        drop(s);
        let e = SqliteStore::open(&path).err().unwrap().to_string();
        assert!(
            e.contains(&format!(
                "has schema version 99, newer than this capsule understands ({}) — upgrade capsule",
                schema::LATEST
            )),
            "{e}"
        );
    }
}
