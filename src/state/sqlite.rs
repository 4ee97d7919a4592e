//! The SQLite adapter: `$CAPSULE_HOME/state.db`, the zero-setup default. It runs the statements
//! [`super::sql`] writes (which implements [`super::Store`] for every [`Db`]) and owns only what
//! is SQLite's own: the file, its pragmas, its schema and the write lock.
//!
//! WAL mode, so readers never block the writer; a 10 s busy timeout, so a second process waits
//! for the write lock instead of failing; every write is one IMMEDIATE transaction (the lock is
//! taken up front, so a read-then-write can never fail half-way with `SQLITE_BUSY`). A `kill -9`
//! at any moment leaves either the whole transaction or none of it.

use super::columns::{unexpected, Value};
use super::schema;
use super::sql::{self, Db};
use crate::error::state_error;
use anyhow::Context as _;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{params_from_iter, Connection};
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a process waits for another one's write transaction.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

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

impl sql::Row for rusqlite::Row<'_> {
    fn width(&self) -> usize {
        self.as_ref().column_count()
    }

    fn value(&self, i: usize) -> anyhow::Result<Value> {
        Ok(self.get::<_, Value>(i)?)
    }

    fn opt_text(&self, i: usize, what: &str) -> anyhow::Result<Option<Cow<'_, str>>> {
        match self.get_ref(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) | ValueRef::Blob(t) => Ok(Some(String::from_utf8_lossy(t))),
            _ => Err(unexpected(what, "text", &self.value(i)?)),
        }
    }
}

/// The cursors of [`Db::read`]: statements stepping side by side.
struct SqliteCursors<'s> {
    rows: Vec<rusqlite::Rows<'s>>,
}

impl sql::Cursors for SqliteCursors<'_> {
    fn next(&mut self, i: usize) -> anyhow::Result<Option<&dyn sql::Row>> {
        let rows = self
            .rows
            .get_mut(i)
            .ok_or_else(|| anyhow::anyhow!("no cursor {i} is open"))?;
        Ok(rows.next()?.map(|r| r as &dyn sql::Row))
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
                    return Err(state_error(format!(
                        "cannot open the state store {shown}: {e} — is another program holding it?"
                    )))
                }
            }
        }
        self.conn.pragma_update(None, "foreign_keys", true)?;
        // FULL: a committed transaction survives a power loss, not only a killed process.
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(())
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

/// `?from, …` for `n` values.
#[cfg(feature = "dev")]
pub(crate) fn sqlite_placeholders(from: usize, n: usize) -> String {
    super::columns::placeholders(from, n).replace('$', "?")
}

/// The shared SQL in SQLite's spelling: its numbered placeholders are `?N`, not `$N` (no
/// statement of the store has a `$` anywhere else).
fn dialect(sql: &str) -> String {
    sql.replace('$', "?")
}

impl Db for SqliteStore {
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn schema_version(&self) -> anyhow::Result<i64> {
        Ok(schema::version(&self.conn)?.into())
    }

    fn exec(&self, sql: &str, args: &[Value]) -> anyhow::Result<u64> {
        let mut st = self.conn.prepare_cached(&dialect(sql))?;
        Ok(st.execute(params_from_iter(args))? as u64)
    }

    fn read(
        &self,
        queries: &[&str],
        args: &[Value],
        f: &mut sql::WithCursors<'_>,
    ) -> anyhow::Result<()> {
        // Several statements read one snapshot inside one read transaction.
        let own_tx = queries.len() > 1 && self.conn.is_autocommit();
        if own_tx {
            self.conn.execute_batch("BEGIN DEFERRED")?;
        }
        let out = (|| {
            let mut statements = queries
                .iter()
                .map(|q| self.conn.prepare_cached(&dialect(q)))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let rows = statements
                .iter_mut()
                .map(|s| s.query(params_from_iter(args)))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut cursors = SqliteCursors { rows };
            f(&mut cursors)
        })();
        if own_tx {
            // A read transaction: ending it cannot lose anything.
            let end = self.conn.execute_batch("COMMIT");
            out?;
            end?;
            return Ok(());
        }
        out
    }

    /// IMMEDIATE: the write lock is taken up front, so a read-then-write can never fail half-way
    /// with `SQLITE_BUSY`.
    fn begin(&self) -> anyhow::Result<()> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.lock_error(e))
    }

    fn commit(&self) -> anyhow::Result<()> {
        self.conn
            .execute_batch("COMMIT")
            .map_err(|e| self.lock_error(e))
    }

    fn rollback(&self) -> anyhow::Result<()> {
        Ok(self.conn.execute_batch("ROLLBACK")?)
    }

    /// One writer holds the whole database: no row locks needed.
    fn row_lock(&self) -> &'static str {
        ""
    }

    fn is_unique_violation(&self, e: &anyhow::Error) -> bool {
        e.downcast_ref::<rusqlite::Error>().is_some_and(|e| {
            e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::model::*;
    use crate::state::{time, Store};

    fn new_node(deploy_id: &str, name: &str) -> NewNode {
        NewNode {
            group_id: "fleet-1".into(),
            prices_as_of: "2024-05-01".into(),
            ..NewNode::sample(deploy_id, name)
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
        let look = || {
            s.record_status(
                "d1",
                Action::Status,
                NodeStatus::Running,
                "active",
                Some("203.0.113.9"),
            )
            .unwrap()
        };
        let ch = look();
        assert_eq!(ch.previous, Some(NodeStatus::Pending));
        assert_eq!(ch.changed, ["status", "ipv4", "raw_status"]);
        // The same look again writes nothing.
        assert!(look().changed.is_empty());
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
        let old = &s.events(&EventFilter::default()).unwrap()[0];
        assert_eq!((old.state, &old.machine, &old.user), (None, &None, &None));
        // A new event records who caused it; the old one stays unknown.
        s.record_action(Some("old1"), Action::Status, Outcome::Ok, "")
            .unwrap();
        let events = s.events(&EventFilter::default()).unwrap();
        let me = super::super::actor::current();
        assert_eq!(events[0].machine, None);
        assert_eq!(
            (events[1].machine.as_deref(), events[1].user.as_deref()),
            (
                super::super::actor::known(&me.machine),
                super::super::actor::known(&me.user)
            )
        );
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
