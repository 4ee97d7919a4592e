//! The state store: the local record of every node capsule deployed, its status history and
//! the events of every lifecycle action. It knows nothing of HTTP, providers' APIs or the
//! catalog; callers hand it plain data (prices, billing rules, live node lists).
//!
//! [`Store`] is the interface the commands use. [`sql`] implements it once for any SQL database;
//! [`SqliteStore`] (`$CAPSULE_HOME/state.db`, the zero-setup default) and [`postgres::PgStore`]
//! (a server a whole team shares) are thin adapters under it, and [`open`] picks one from
//! [`location`]: the `--state` flag, else `CAPSULE_STATE`, else the `state` key of
//! `$CAPSULE_HOME/config.toml`, else the SQLite file. No command knows which it got.
//!
//! # Recording a lifecycle (for `deploy`, `start`, `stop`, `delete`, `status`)
//!
//! ```text
//! deploy:  store.record_intent(&NewNode { deploy_id, group_id, name, … prices })   // BEFORE create
//!          match driver.create(…) {
//!              Created(node)             => store.record_created(&deploy_id, &Created { … }),
//!              InDoubt { node: Some(n), .. } => record_created, then record_failed(…, InDoubt),
//!              InDoubt { node: None, .. }    => store.record_failed(&deploy_id, &msg, Failure::InDoubt),
//!              Rejected(_)               => store.record_failed(&deploy_id, &msg, Failure::Rejected),
//!              Rejected(_) with a documented refusal and a next candidate (smart deploy)
//!                                        => store.record_moved(&deploy_id, &next, &msg), create again
//!          }
//! stop:    store.record_action(Some(&deploy_id), Action::Stop, Outcome::Started, "")   // before
//!          … driver.stop(…) …
//!          store.record_status(&deploy_id, Action::Stop, NodeStatus::Stopped, raw, None) // after
//!          (or record_action(…, Outcome::Failed, &msg) when the call failed)
//! delete:  as stop, ending in NodeStatus::Deleted (which also frees the name).
//! status:  store.record_status(&deploy_id, Action::Status, status, raw, ipv4)
//!          — writes a transition and an event only when something changed.
//! ```
//!
//! A `kill -9` between intent and outcome leaves the node in `creating` (or the action's
//! `started` event) and `sync` settles it from the provider's list by the deploy tag.
//!
//! Nodes are found with [`Store::resolve`] (`PROVIDER:ID`, a name, or a deploy id). No method
//! takes a secret and none may ever be given one: messages are the provider's scrubbed text.

pub mod actor;
pub mod columns;
pub mod copy;
pub mod cost;
pub mod daily;
pub mod lease;
pub mod lifecycle;
pub mod model;
pub mod names;
pub mod postgres;
pub mod reconcile;
pub mod schema;
#[cfg(feature = "dev")]
pub mod seed;
pub mod sql;
pub mod sqlite;
pub mod stats;
pub mod time;
pub mod transfer;

pub use model::*;
pub use sqlite::SqliteStore;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The file name of the SQLite store inside `CAPSULE_HOME`.
pub const DB_FILE: &str = "state.db";

/// What [`Store::for_each_cost_timeline`] calls: a node and its timeline as `(status, Unix
/// seconds)`, oldest first.
pub type WithTimeline<'a> = dyn FnMut(CostNode, &[(NodeStatus, i64)]) -> anyhow::Result<()> + 'a;

/// The storage interface. Every write is one transaction; two processes writing at once both
/// succeed (the later waits for the earlier) and lose nothing.
pub trait Store {
    /// Where the store lives, for messages (`/home/me/.capsule/state.db`, or a server's URL
    /// without its password).
    fn describe(&self) -> String;

    /// Take the team-wide lock of a fleet (`deploy --resume GROUP`) for as long as this store
    /// is open; `false` when another client holds it. A local store has nothing to share it
    /// with (the fleet's file lease covers one machine), so it always gets it.
    fn lock_group(&self, group_id: &str) -> anyhow::Result<bool> {
        let _ = group_id;
        Ok(true)
    }

    /// The database under the store (`state info`, `state migrate`).
    fn db(&self) -> &dyn sql::Db;

    // ------------------------------------------------------------------ lifecycle writes

    /// Record a deploy BEFORE its create call: the node in `creating` and a `deploy started`
    /// event, in one transaction. Fails (exit 2) when a live node already has the name or the
    /// deploy id is already recorded.
    fn record_intent(&self, node: &NewNode) -> anyhow::Result<NodeRecord>;

    /// Record the intents of a whole fleet in one transaction: all of them, or none (a taken
    /// name fails the lot before anything is created).
    fn record_intents(&self, nodes: &[NewNode]) -> anyhow::Result<Vec<NodeRecord>> {
        nodes.iter().map(|n| self.record_intent(n)).collect()
    }

    /// Record the provider's answer to the create call: provider id, status, IP, creation time;
    /// a `deploy ok` event.
    fn record_created(&self, deploy_id: &str, created: &Created) -> anyhow::Result<NodeRecord>;

    /// Record a failed create: status `error` and a `deploy failed` event with `message`.
    /// [`Failure::Rejected`] (the provider provably created nothing) also takes the node out of
    /// the live set so its name is free; [`Failure::InDoubt`] leaves it live for `sync`.
    fn record_failed(
        &self,
        deploy_id: &str,
        message: &str,
        failure: Failure,
    ) -> anyhow::Result<NodeRecord>;

    /// Move a node whose create the provider definitely refused to its next placement (smart
    /// deploy's failover), in one transaction: a `deploy failed` event with `message` under the
    /// old deploy id, then the same record re-keyed to `to.deploy_id` (its events and expiry
    /// follow) with `to`'s provider, template, plan, region and prices, still `creating`, and a
    /// `deploy started` event. The name and fleet stay; one record stands for the node.
    fn record_moved(&self, from: &str, to: &NewNode, message: &str) -> anyhow::Result<NodeRecord>;

    /// Record a fresh look at a node. Changes to status (a new timeline entry; `deleted` takes it
    /// out of the live set), IP, plan or provider id are written with one `action ok` event
    /// naming them, prefixed by `message` when not empty; nothing changed, nothing written
    /// (a changed raw status alone is updated silently).
    fn record_observation(
        &self,
        deploy_id: &str,
        obs: &Observation,
        action: Action,
        message: &str,
    ) -> anyhow::Result<StatusChange>;

    /// Shorthand for [`Store::record_observation`] with a status, raw status and optional IPv4
    /// (`None` leaves the recorded address as is).
    fn record_status(
        &self,
        deploy_id: &str,
        action: Action,
        status: NodeStatus,
        raw_status: &str,
        ipv4: Option<&str>,
    ) -> anyhow::Result<StatusChange> {
        let obs = Observation {
            status: Some(status),
            raw_status: Some(raw_status.to_string()),
            ipv4: ipv4.map(|ip| Some(ip.to_string())),
            ..Observation::default()
        };
        self.record_observation(deploy_id, &obs, action, "")
    }

    /// Add an event (`stop started`, `delete failed: …`). `deploy_id` must be recorded when
    /// given; `None` is for events about no recorded node.
    fn record_action(
        &self,
        deploy_id: Option<&str>,
        action: Action,
        outcome: Outcome,
        message: &str,
    ) -> anyhow::Result<()>;

    /// Record a node found at the provider (tagged by capsule) that the store lacks
    /// (`sync --adopt`): intent and creation in one transaction, billed from its creation time.
    fn adopt(&self, node: &NewNode, created: &Created) -> anyhow::Result<NodeRecord>;

    /// Mark a node the provider no longer has as deleted (`sync --forget`).
    fn forget(&self, deploy_id: &str, message: &str) -> anyhow::Result<StatusChange> {
        let obs = Observation {
            status: Some(NodeStatus::Deleted),
            ..Observation::default()
        };
        self.record_observation(deploy_id, &obs, Action::Forget, message)
    }

    /// Insert or update (by deploy id) many nodes in ONE transaction. Rows that would give two
    /// live nodes one name are returned in `conflicts`, and then nothing is written; nothing is
    /// written either with `dry_run`. New nodes get a timeline from their timestamps.
    fn import_nodes(&self, rows: &[NodeRecord], dry_run: bool) -> anyhow::Result<ImportReport>;

    /// Record work to run once a node is gone, in one transaction.
    fn add_cleanups(&self, items: &[NewCleanup]) -> anyhow::Result<()>;

    /// Cleanups not done yet, oldest first (`None`: every provider's).
    fn pending_cleanups(&self, provider: Option<&str>) -> anyhow::Result<Vec<PendingCleanup>>;

    /// Record a cleanup's run: `Ok` marks it done; `Err(message)` counts a failed attempt and
    /// keeps it pending with the message.
    fn finish_cleanup(&self, id: i64, result: Result<(), &str>) -> anyhow::Result<()>;

    /// Record when nodes expire (`deploy --ttl`): `(deploy id, RFC 3339 UTC)` pairs, in one
    /// transaction; a later call for the same node replaces its expiry.
    fn set_expiries(&self, items: &[(String, String)]) -> anyhow::Result<()>;

    /// Every recorded expiry, by deploy id.
    fn expiries(&self) -> anyhow::Result<std::collections::HashMap<String, String>>;

    /// When capsule deleted a node it has no record of (`PROVIDER:ID`), if it did.
    fn deleted_unrecorded(&self, node_ref: &str) -> anyhow::Result<Option<String>>;

    /// Remove events older than `before` (RFC 3339 UTC), except those of live nodes.
    fn clean_events(&self, before: &str, dry_run: bool) -> anyhow::Result<CleanReport>;

    // ------------------------------------------------------------------ reads

    fn node_by_deploy_id(&self, deploy_id: &str) -> anyhow::Result<Option<NodeRecord>>;

    /// The live node with this name, else the most recently deleted one.
    fn node_by_name(&self, name: &str) -> anyhow::Result<Option<NodeRecord>>;

    /// The node with this provider id (live first).
    fn node_by_provider_id(
        &self,
        provider: &str,
        provider_id: &str,
    ) -> anyhow::Result<Option<NodeRecord>>;

    /// The nodes of a fleet (`deploy --resume GROUP`), in deploy order.
    fn nodes_in_group(&self, group_id: &str) -> anyhow::Result<Vec<NodeRecord>>;

    /// Stream nodes in export order (recorded time, then deploy id); memory stays flat.
    fn for_each_node(
        &self,
        filter: &NodeFilter,
        f: &mut dyn FnMut(NodeRecord) -> anyhow::Result<()>,
    ) -> anyhow::Result<()>;

    /// Stream the nodes a cost report reads, by node, each with its status timeline as
    /// `(status, Unix seconds)`, oldest transition first (a transition whose time is not a
    /// timestamp is left out).
    fn for_each_cost_timeline(
        &self,
        filter: &NodeFilter,
        f: &mut WithTimeline<'_>,
    ) -> anyhow::Result<()>;

    /// One node's status timeline.
    fn timeline(&self, deploy_id: &str) -> anyhow::Result<Vec<Transition>>;

    /// History, oldest first (the newest `limit` of the matching events).
    fn events(&self, filter: &EventFilter) -> anyhow::Result<Vec<Event>>;

    /// The accounts nodes are recorded under (deleted nodes included), sorted.
    fn accounts(&self) -> anyhow::Result<Vec<String>> {
        let mut out = std::collections::BTreeSet::new();
        let all = NodeFilter {
            include_deleted: true,
            ..NodeFilter::default()
        };
        self.for_each_node(&all, &mut |n| {
            out.insert(n.account);
            Ok(())
        })?;
        Ok(out.into_iter().collect())
    }

    /// Nodes matching a filter, in export order.
    fn list_nodes(&self, filter: &NodeFilter) -> anyhow::Result<Vec<NodeRecord>> {
        let mut out = Vec::new();
        self.for_each_node(filter, &mut |n| {
            out.push(n);
            Ok(())
        })?;
        Ok(out)
    }

    /// The node a user means: `PROVIDER:ID` (or `PROVIDER:REGION/ID`), a name (live first), or a
    /// deploy id.
    fn resolve(&self, text: &str) -> anyhow::Result<Option<NodeRecord>> {
        let text = text.trim();
        if let Some((provider, id)) = text.split_once(':') {
            if let Some(n) = self.node_by_provider_id(provider, id)? {
                return Ok(Some(n));
            }
            if let Some((_, bare)) = id.rsplit_once('/') {
                if let Some(n) = self.node_by_provider_id(provider, bare)? {
                    return Ok(Some(n));
                }
            }
        }
        if let Some(n) = self.node_by_name(text)? {
            return Ok(Some(n));
        }
        self.node_by_deploy_id(text)
    }
}

/// Where the state lives.
#[derive(Debug, Clone)]
pub enum Location {
    /// A SQLite file (by default `$CAPSULE_HOME/state.db`).
    File(PathBuf),
    /// A PostgreSQL server.
    Server(postgres::PgUrl),
}

impl Location {
    /// Read a location as the user writes it: a `postgres://` URL, else a file path. A malformed
    /// URL is bad input.
    pub fn parse(text: &str) -> anyhow::Result<Location> {
        if postgres::is_url(text) {
            postgres::PgUrl::parse(text).map(Location::Server)
        } else {
            Ok(Location::File(PathBuf::from(text.trim())))
        }
    }

    /// How to show it: a path, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Location::File(p) => p.display().to_string(),
            Location::Server(u) => u.redacted(),
        }
    }
}

/// The `--state` flag of this process, set once when the command starts.
static STATE_FLAG: OnceLock<String> = OnceLock::new();

/// Record the `--state` flag (it wins over `CAPSULE_STATE` and the config file).
pub fn set_state_flag(text: &str) {
    let _ = STATE_FLAG.set(text.to_string());
}

/// The name of the config file inside `CAPSULE_HOME` whose `state` key names the store.
pub const CONFIG_FILE: &str = "config.toml";

/// Where this home's state lives: `--state`, else `CAPSULE_STATE`, else the `state` key of
/// `$CAPSULE_HOME/config.toml`, else `$CAPSULE_HOME/state.db`.
pub fn location(home: &Path) -> anyhow::Result<Location> {
    if let Some(flag) = STATE_FLAG.get().filter(|f| !f.trim().is_empty()) {
        return Location::parse(flag);
    }
    if let Some(env) = std::env::var("CAPSULE_STATE")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        return Location::parse(&env);
    }
    if let Some(configured) = configured_state(home)? {
        return Location::parse(&configured);
    }
    Ok(Location::File(home.join(DB_FILE)))
}

/// The `state` key of `$CAPSULE_HOME/config.toml`, when the file sets one.
fn configured_state(home: &Path) -> anyhow::Result<Option<String>> {
    let path = home.join(CONFIG_FILE);
    // No file (or a home that is not a directory, which other commands report): no setting.
    if !path.is_file() {
        return Ok(None);
    }
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(crate::error::bad_input(format!(
                "cannot read {}: {e} — fix its permissions or remove it",
                path.display()
            )))
        }
    };
    let doc: toml::Table = toml::from_str(&text).map_err(|e| {
        crate::error::bad_input(format!(
            "{} is not valid TOML: {} — fix the file (e.g. state = \"postgres://user@host/db\")",
            path.display(),
            e.message()
        ))
    })?;
    match doc.get("state") {
        None => Ok(None),
        Some(toml::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(crate::error::bad_input(format!(
            "the state key of {} must be a string: a postgres:// URL or a file path",
            path.display()
        ))),
    }
}

/// Open a store at a location, creating and migrating it.
pub fn open_at(location: &Location) -> anyhow::Result<Box<dyn Store>> {
    Ok(match location {
        Location::File(path) => Box::new(SqliteStore::open(path)?),
        Location::Server(url) => Box::new(postgres::PgStore::open(url)?),
    })
}

/// Open the store of a capsule home (by default `$CAPSULE_HOME/state.db`), creating and
/// migrating it.
pub fn open(home: &Path) -> anyhow::Result<Box<dyn Store>> {
    open_at(&location(home)?)
}

/// The store for a command that only reads (inventory, history, cost): a home without a store
/// reads as empty and nothing is created, and a store in a home that cannot be written is
/// opened read-only, so a read-only `CAPSULE_HOME` still answers.
pub fn open_read(home: &Path) -> anyhow::Result<Box<dyn Store>> {
    let path = match location(home)? {
        Location::File(path) => path,
        server => return open_at(&server),
    };
    if !path.is_file() {
        return Ok(Box::new(SqliteStore::open_in_memory()?));
    }
    match SqliteStore::open(&path) {
        Ok(s) => Ok(Box::new(s)),
        Err(e) => SqliteStore::open_read_only(&path)
            .map(|s| Box::new(s) as Box<dyn Store>)
            .map_err(|_| e),
    }
}

/// A fresh deploy id: 12 lowercase hex digits (random), short enough for provider tag limits.
pub fn new_deploy_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}
