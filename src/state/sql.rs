//! The [`Store`] over any SQL database: every lifecycle write and every read, written once.
//!
//! A backend implements [`Db`]: run a statement, run a query (whole or streamed), and open,
//! commit or roll back a write transaction on its one connection. Everything else, which rows a
//! deploy writes, how a status change is recorded, what a taken name says, lives here, so the
//! SQLite and PostgreSQL adapters stay thin and cannot drift apart.
//!
//! The SQL is the common subset of both dialects, with numbered `$N` placeholders (the SQLite
//! adapter rewrites them to its `?N`). Two rules make concurrent writers safe on a server that
//! does not serialise whole transactions: rows read in order to be rewritten are read with
//! [`Db::row_lock`] (`FOR UPDATE`), and a live name is unique by the database's own partial
//! index, so two machines racing for a name get one node and one clear refusal.

use super::columns::{node_from_values, node_values, placeholders, unexpected, Value};
use super::columns::{NODE_COLUMNS, NODE_COLUMN_COUNT};
use super::lifecycle;
use super::model::*;
use super::time;
use super::{Store, WithTimeline};
use crate::error::bad_input;
use anyhow::anyhow;
use std::borrow::Cow;

/// One connection to a SQL database, as the shared store logic needs it.
pub trait Db {
    /// Where the store lives, for messages (a path, or a URL without its password).
    fn describe(&self) -> String;

    /// The backend's name for people (`sqlite`, `postgresql`).
    fn backend(&self) -> &'static str;

    /// The schema version the store is at.
    fn schema_version(&self) -> anyhow::Result<i64>;

    /// After rows were copied in with their ids: make new rows' ids follow them (a server's
    /// identity sequences do not move by themselves).
    fn reset_ids(&self) -> anyhow::Result<()> {
        Ok(())
    }

    /// Run one statement; the number of rows it changed.
    fn exec(&self, sql: &str, args: &[Value]) -> anyhow::Result<u64>;

    /// Run a query and call `f` with each row in turn (memory stays flat where the driver
    /// streams).
    fn query_each(
        &self,
        sql: &str,
        args: &[Value],
        f: &mut dyn FnMut(Vec<Value>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.read(&[sql], args, &mut |cursors| {
            while let Some(row) = cursors.next(0)? {
                f(row_values(row)?)?;
            }
            Ok(())
        })
    }

    /// Open each of `queries` (all with the same arguments) as a cursor and hand them to `f`,
    /// cursor `i` answering `queries[i]`. Several cursors read one snapshot. Each reads a batch
    /// at a time while the others are open, so memory stays flat; [`Db::query_each`] and
    /// [`merge_by_key`] build on it.
    fn read(&self, queries: &[&str], args: &[Value], f: &mut WithCursors<'_>)
        -> anyhow::Result<()>;

    /// Start a write transaction (taking whatever lock the backend needs up front).
    fn begin(&self) -> anyhow::Result<()>;
    fn commit(&self) -> anyhow::Result<()>;
    fn rollback(&self) -> anyhow::Result<()>;

    /// What to append to a `SELECT` whose rows a write transaction will rewrite: `FOR UPDATE`
    /// on a server with row locks, nothing where one writer holds the whole database.
    fn row_lock(&self) -> &'static str;

    /// Whether `e` is the database refusing a row that breaks a unique index.
    fn is_unique_violation(&self, e: &anyhow::Error) -> bool;

    /// See [`Store::lock_group`]; a backend only one machine uses has nothing to lock.
    fn try_lock_group(&self, group_id: &str) -> anyhow::Result<bool> {
        let _ = group_id;
        Ok(true)
    }
}

/// All rows of a query.
pub fn query(db: &dyn Db, sql: &str, args: &[Value]) -> anyhow::Result<Vec<Vec<Value>>> {
    let mut out = Vec::new();
    db.query_each(sql, args, &mut |row| {
        out.push(row);
        Ok(())
    })?;
    Ok(out)
}

/// The first row of a query, if any.
pub fn query_row(db: &dyn Db, sql: &str, args: &[Value]) -> anyhow::Result<Option<Vec<Value>>> {
    Ok(query(db, sql, args)?.into_iter().next())
}

/// The single integer a query answers (`COUNT(*)`, `RETURNING id`).
pub fn query_int(db: &dyn Db, sql: &str, args: &[Value]) -> anyhow::Result<i64> {
    let row =
        query_row(db, sql, args)?.ok_or_else(|| anyhow!("the state store answered no row"))?;
    row.first()
        .ok_or_else(|| anyhow!("the state store answered an empty row"))?
        .int("count")
}

/// One result row, read in place: the backend's own row, so a narrow typed read takes the
/// columns it needs without first copying every one into a [`Value`].
pub trait Row {
    /// How many columns the row has.
    fn width(&self) -> usize;

    /// Column `i` as a [`Value`].
    fn value(&self, i: usize) -> anyhow::Result<Value>;

    /// Column `i` as text, borrowed from the row where the backend can (NULL is `None`); a
    /// number is an error naming `what`.
    fn opt_text(&self, i: usize, what: &str) -> anyhow::Result<Option<Cow<'_, str>>>;

    /// Column `i` as text; NULL too is an error naming `what`.
    fn text(&self, i: usize, what: &str) -> anyhow::Result<Cow<'_, str>> {
        self.opt_text(i, what)?
            .ok_or_else(|| unexpected(what, "text", &Value::Null))
    }

    /// Column `i` as an integer.
    fn int(&self, i: usize, what: &str) -> anyhow::Result<i64> {
        self.value(i)?.int(what)
    }

    /// Column `i` as a number (an integer column read as a float is fine).
    fn real(&self, i: usize, what: &str) -> anyhow::Result<f64> {
        self.value(i)?.real(what)
    }
}

/// Rows held as values (tests, and rows a backend already converted).
impl Row for Vec<Value> {
    fn width(&self) -> usize {
        self.len()
    }

    fn value(&self, i: usize) -> anyhow::Result<Value> {
        self.get(i)
            .cloned()
            .ok_or_else(|| anyhow!("the state store answered no column {i}"))
    }

    fn opt_text(&self, i: usize, what: &str) -> anyhow::Result<Option<Cow<'_, str>>> {
        match self.get(i) {
            Some(Value::Null) => Ok(None),
            Some(Value::Text(s)) => Ok(Some(Cow::Borrowed(s))),
            _ => Err(unexpected(what, "text", &self.value(i)?)),
        }
    }
}

/// Every column of a row as values, in order.
pub fn row_values(row: &dyn Row) -> anyhow::Result<Vec<Value>> {
    (0..row.width()).map(|i| row.value(i)).collect()
}

/// The open cursors of [`Db::read`].
pub trait Cursors {
    /// The next row of cursor `i`; `None` at its end.
    fn next(&mut self, i: usize) -> anyhow::Result<Option<&dyn Row>>;
}

/// What [`Db::read`] calls with its open cursors.
pub type WithCursors<'a> = dyn FnMut(&mut dyn Cursors) -> anyhow::Result<()> + 'a;

/// Run two queries in one snapshot and merge them: `parents` and `children` both answer rows
/// whose first column is an integer key, parents in ascending key order with each key once,
/// children in ascending key order (then in whatever order the caller wants them). `parent`
/// decodes each parent row (`None` skips it with its children), `child` each child row (`None`
/// skips it), and `f` is called once a kept parent with its kept children in their order.
/// Children whose key has no parent are skipped (a child's decoding error too, unless the child
/// is used); a cursor out of key order is an error rather than a wrong grouping.
pub fn merge_by_key<P, C>(
    db: &dyn Db,
    parents: &str,
    children: &str,
    args: &[Value],
    parent: &mut dyn FnMut(&dyn Row) -> anyhow::Result<Option<P>>,
    child: &mut dyn FnMut(&dyn Row) -> anyhow::Result<Option<C>>,
    f: &mut dyn FnMut(P, &[C]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    db.read(&[parents, children], args, &mut |cursors| {
        merge_cursors(cursors, parent, child, f)
    })
}

/// The merge of [`merge_by_key`] over open cursors.
fn merge_cursors<P, C>(
    cursors: &mut dyn Cursors,
    parent: &mut dyn FnMut(&dyn Row) -> anyhow::Result<Option<P>>,
    child: &mut dyn FnMut(&dyn Row) -> anyhow::Result<Option<C>>,
    f: &mut dyn FnMut(P, &[C]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    const PARENTS: usize = 0;
    const CHILDREN: usize = 1;
    let out_of_order = || anyhow!("the state store answered rows out of order");
    // A child row is decoded as it is read (the row does not outlive the next read); its error
    // counts only if the child is used.
    type Read<C> = Option<(i64, anyhow::Result<Option<C>>)>;
    let mut next_child = |cursors: &mut dyn Cursors| -> anyhow::Result<Read<C>> {
        match cursors.next(CHILDREN)? {
            Some(r) => Ok(Some((r.int(0, "parent id")?, child(r)))),
            None => Ok(None),
        }
    };
    let mut kids: Vec<C> = Vec::new();
    let mut pending = next_child(cursors)?;
    let mut last_parent: Option<i64> = None;
    let mut last_child = i64::MIN;
    while let Some(row) = cursors.next(PARENTS)? {
        let id = row.int(0, "id")?;
        if last_parent.is_some_and(|last| last >= id) {
            return Err(out_of_order());
        }
        last_parent = Some(id);
        let kept = parent(row)?;
        kids.clear();
        while let Some((of, decoded)) = pending.take() {
            if of < last_child {
                return Err(out_of_order());
            }
            last_child = of;
            if of > id {
                pending = Some((of, decoded));
                break;
            }
            if of == id && kept.is_some() {
                kids.extend(decoded?);
            }
            pending = next_child(cursors)?;
        }
        if let Some(p) = kept {
            f(p, &kids)?;
        }
    }
    Ok(())
}

/// Run `f` in one write transaction: committed when it succeeds, rolled back when it fails.
pub fn write<T>(db: &dyn Db, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    db.begin()?;
    let out = f().and_then(|v| db.commit().map(|()| v));
    if out.is_err() {
        // The error is what the caller needs; a failed rollback adds nothing to it.
        let _ = db.rollback();
    }
    out
}

// ---------------------------------------------------------------- helpers inside a transaction

fn node_row(db: &dyn Db, deploy_id: &str, lock: bool) -> anyhow::Result<Option<(i64, NodeRecord)>> {
    let lock = if lock { db.row_lock() } else { "" };
    let row = query_row(
        db,
        &format!("SELECT id, {NODE_COLUMNS} FROM nodes WHERE deploy_id = $1{lock}"),
        &[deploy_id.into()],
    )?;
    row.map(|mut r| Ok((r[0].int("id")?, node_from_values(&mut r[1..])?)))
        .transpose()
}

fn require_node(db: &dyn Db, deploy_id: &str) -> anyhow::Result<(i64, NodeRecord)> {
    node_row(db, deploy_id, true)?.ok_or_else(|| {
        crate::error::bad_input_hint(
            format!("no node with deploy id '{deploy_id}' is recorded"),
            crate::error::Hint::SeeAll("inventory --all"),
        )
    })
}

/// The deploy id of another live node holding `name`.
fn live_name_holder(
    db: &dyn Db,
    name: &str,
    except_deploy_id: &str,
) -> anyhow::Result<Option<String>> {
    let row = query_row(
        db,
        "SELECT deploy_id FROM nodes WHERE name = $1 AND deleted_at IS NULL AND deploy_id != $2",
        &[name.into(), except_deploy_id.into()],
    )?;
    row.map(|mut r| r[0].take_text("deploy_id")).transpose()
}

fn name_taken(name: &str, holder: &str) -> anyhow::Error {
    bad_input(format!(
        "a live node is already named '{name}' (deploy id {holder}) — choose another name, or delete or forget that node first"
    ))
}

/// The refusal when another writer took the name between our check and our write.
fn name_just_taken(name: &str) -> anyhow::Error {
    bad_input(format!(
        "a live node is already named '{name}' (another capsule recorded it a moment ago) — choose another name, or delete or forget that node first"
    ))
}

/// Fail with [`name_taken`] when another live node holds `name`.
fn ensure_name_free(db: &dyn Db, name: &str, deploy_id: &str) -> anyhow::Result<()> {
    match live_name_holder(db, name, deploy_id)? {
        Some(holder) => Err(name_taken(name, &holder)),
        None => Ok(()),
    }
}

fn add_state(db: &dyn Db, node_id: i64, state: NodeStatus, since: &str) -> anyhow::Result<()> {
    db.exec(
        "INSERT INTO node_states(node_id, state, since) VALUES ($1, $2, $3)",
        &[node_id.into(), state.as_str().into(), since.into()],
    )?;
    Ok(())
}

fn add_event(
    db: &dyn Db,
    time: &str,
    deploy_id: Option<&str>,
    action: Action,
    outcome: Outcome,
    state: Option<NodeStatus>,
    message: &str,
) -> anyhow::Result<()> {
    let actor = super::actor::current();
    db.exec(
        "INSERT INTO events(time, deploy_id, action, outcome, state, message, machine, username) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            time.into(),
            deploy_id.into(),
            action.as_str().into(),
            outcome.as_str().into(),
            state.map(NodeStatus::as_str).into(),
            message.into(),
            super::actor::known(&actor.machine).into(),
            super::actor::known(&actor.user).into(),
        ],
    )?;
    Ok(())
}

/// Insert a node; its row id. A live name taken meanwhile by another writer is refused with
/// the name.
fn insert_node(db: &dyn Db, n: &NodeRecord) -> anyhow::Result<i64> {
    let sql = format!(
        "INSERT INTO nodes({NODE_COLUMNS}) VALUES ({}) RETURNING id",
        placeholders(1, NODE_COLUMN_COUNT)
    );
    query_int(db, &sql, &node_values(n)).map_err(|e| unique_refusal(db, e, n))
}

fn update_node(db: &dyn Db, id: i64, n: &NodeRecord) -> anyhow::Result<()> {
    let sets = NODE_COLUMNS
        .split(", ")
        .enumerate()
        .map(|(i, c)| format!("{c} = ${}", i + 1))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "UPDATE nodes SET {sets} WHERE id = ${}",
        NODE_COLUMN_COUNT + 1
    );
    let mut values = node_values(n);
    values.push(id.into());
    db.exec(&sql, &values)
        .map_err(|e| unique_refusal(db, e, n))?;
    Ok(())
}

/// A unique-index refusal of node `n` as the user's error; other errors as they are.
fn unique_refusal(db: &dyn Db, e: anyhow::Error, n: &NodeRecord) -> anyhow::Error {
    if !db.is_unique_violation(&e) {
        return e;
    }
    if e.to_string().contains("deploy_id") {
        return already_recorded(&n.deploy_id);
    }
    name_just_taken(&n.name)
}

fn already_recorded(deploy_id: &str) -> anyhow::Error {
    bad_input(format!(
        "deploy id '{deploy_id}' is already recorded — resume that deploy with `deploy --resume`, or use a new id"
    ))
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
fn intent_in(db: &dyn Db, n: &NewNode) -> anyhow::Result<NodeRecord> {
    ensure_name_free(db, &n.name, &n.deploy_id)?;
    if node_row(db, &n.deploy_id, false)?.is_some() {
        return Err(already_recorded(&n.deploy_id));
    }
    let now = time::now();
    let node = new_record(n, &now);
    let id = insert_node(db, &node)?;
    add_state(db, id, NodeStatus::Creating, &now)?;
    add_intent_event(db, &now, n)?;
    Ok(node)
}

/// The `deploy started` event of an intent.
fn add_intent_event(db: &dyn Db, now: &str, n: &NewNode) -> anyhow::Result<()> {
    add_event(
        db,
        now,
        Some(&n.deploy_id),
        Action::Deploy,
        Outcome::Started,
        Some(NodeStatus::Creating),
        &intent_message(n),
    )
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

/// `column IN ($k, …)` for `values`, appended to `args`.
fn in_list(column: &str, args: &mut Vec<Value>, values: impl Iterator<Item = String>) -> String {
    let first = args.len() + 1;
    args.extend(values.map(Value::Text));
    format!(
        "{column} IN ({})",
        placeholders(first, args.len() + 1 - first)
    )
}

/// `WHERE …` for a node filter, and its arguments.
fn node_where(filter: &NodeFilter) -> (String, Vec<Value>) {
    let mut clauses = Vec::new();
    let mut args = Vec::new();
    let statuses: Vec<String> = filter
        .statuses
        .iter()
        .map(|s| s.as_str().to_string())
        .collect();
    for (column, values) in [
        ("provider", &filter.providers),
        ("region", &filter.regions),
        ("account", &filter.accounts),
        ("status", &statuses),
    ] {
        if !values.is_empty() {
            clauses.push(in_list(column, &mut args, values.iter().cloned()));
        }
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

/// The columns [`cost_node`] reads, after the row id.
const COST_COLUMNS: &str =
    "deploy_id, name, provider, region, template, price_hourly, price_monthly, currency, deleted_at";

/// A [`CostNode`] from a row of `id, COST_COLUMNS`.
fn cost_node(r: &dyn Row) -> anyhow::Result<CostNode> {
    Ok(CostNode {
        deploy_id: r.text(1, "deploy_id")?.into_owned(),
        name: r.text(2, "name")?.into_owned(),
        provider: r.text(3, "provider")?.into_owned(),
        region: r.text(4, "region")?.into_owned(),
        template: r.text(5, "template")?.into_owned(),
        price_hourly: r.real(6, "price_hourly")?,
        price_monthly: r.real(7, "price_monthly")?,
        currency: r.text(8, "currency")?.into_owned(),
        live: r.opt_text(9, "deleted_at")?.is_none(),
    })
}

/// A stored status; an unknown one is an error.
fn status(text: &str) -> anyhow::Result<NodeStatus> {
    NodeStatus::parse(text)
        .ok_or_else(|| anyhow!("the state store holds an unknown status '{text}'"))
}

fn transition(state: &mut Value, since: &mut Value) -> anyhow::Result<Transition> {
    let state = status(&state.take_text("state")?)?;
    Ok(Transition {
        state,
        since: since.take_text("since")?,
    })
}

fn event_from(mut r: Vec<Value>) -> anyhow::Result<Event> {
    let action = r[5].take_text("action")?;
    let outcome = r[6].take_text("outcome")?;
    let state = r[7].take_opt_text("state")?;
    Ok(Event {
        id: r[0].int("id")?,
        time: r[1].take_text("time")?,
        deploy_id: r[2].take_opt_text("deploy_id")?,
        node: r[3].take_opt_text("name")?,
        provider: r[4].take_opt_text("provider")?,
        action: Action::parse(&action)
            .ok_or_else(|| anyhow!("the state store holds an unknown action '{action}'"))?,
        outcome: Outcome::parse(&outcome)
            .ok_or_else(|| anyhow!("the state store holds an unknown outcome '{outcome}'"))?,
        state: state.as_deref().and_then(NodeStatus::parse),
        message: r[8].take_text("message")?,
        machine: r[9].take_opt_text("machine")?,
        user: r[10].take_opt_text("username")?,
    })
}

fn nodes(db: &dyn Db, sql: &str, args: &[Value]) -> anyhow::Result<Vec<NodeRecord>> {
    let mut out = Vec::new();
    db.query_each(sql, args, &mut |mut r| {
        out.push(node_from_values(&mut r)?);
        Ok(())
    })?;
    Ok(out)
}

fn first_node(db: &dyn Db, sql: &str, args: &[Value]) -> anyhow::Result<Option<NodeRecord>> {
    Ok(nodes(db, sql, args)?.into_iter().next())
}

/// The changes an observation makes to `node`, applied to it: the changed fields, the notes
/// for the event, and the previous status when it changed. Checks the name is free when the
/// node comes back into the live set.
fn observe(
    db: &dyn Db,
    node: &mut NodeRecord,
    obs: &Observation,
    now: &str,
) -> anyhow::Result<(Vec<&'static str>, Vec<String>, Option<NodeStatus>)> {
    let before = node.clone();
    let mut changed: Vec<&'static str> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut previous = None;
    if let Some(status) = obs.status.filter(|s| *s != node.status) {
        previous = Some(node.status);
        set_status(node, status, now);
        if before.deleted_at.is_some() && node.deleted_at.is_none() {
            ensure_name_free(db, &node.name, &node.deploy_id)?;
        }
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
            node.created_at = Some(now.to_string());
        }
        changed.push("provider_id");
    }
    Ok((changed, notes, previous))
}

/// One import row inside the import's transaction.
fn import_row(
    db: &dyn Db,
    report: &mut ImportReport,
    i: usize,
    row: &NodeRecord,
    now: &str,
) -> anyhow::Result<()> {
    if row.is_live() {
        if let Some(holder) = live_name_holder(db, &row.name, &row.deploy_id)? {
            report.conflicts.push((
                i,
                "name",
                format!(
                    "a live node is already named '{}' (deploy id {holder}) — rename one of them",
                    row.name
                ),
            ));
            return Ok(());
        }
    }
    match node_row(db, &row.deploy_id, true)? {
        None => {
            let id = insert_node(db, row)?;
            for t in row.synthesized_timeline() {
                add_state(db, id, t.state, &t.since)?;
            }
            let deploy_id = Some(row.deploy_id.as_str());
            let state = Some(row.status);
            add_event(
                db,
                now,
                deploy_id,
                Action::Import,
                Outcome::Ok,
                state,
                "imported",
            )?;
            report.added += 1;
        }
        Some((_, existing)) if existing == *row => report.unchanged += 1,
        Some((id, existing)) => {
            update_node(db, id, row)?;
            let mut msg = "updated from an import".to_string();
            if existing.status != row.status {
                add_state(db, id, row.status, now)?;
                let change = describe_change(
                    "status",
                    Some(existing.status.as_str()),
                    Some(row.status.as_str()),
                );
                msg = format!("{msg}: {change}");
            }
            let deploy_id = Some(row.deploy_id.as_str());
            add_event(
                db,
                now,
                deploy_id,
                Action::Import,
                Outcome::Ok,
                Some(row.status),
                &msg,
            )?;
            report.updated += 1;
        }
    }
    Ok(())
}

impl<D: Db> Store for D {
    fn describe(&self) -> String {
        Db::describe(self)
    }

    fn lock_group(&self, group_id: &str) -> anyhow::Result<bool> {
        self.try_lock_group(group_id)
    }

    fn db(&self) -> &dyn Db {
        self
    }

    fn accounts(&self) -> anyhow::Result<Vec<String>> {
        query(
            self,
            "SELECT DISTINCT account FROM nodes ORDER BY account",
            &[],
        )?
        .into_iter()
        .map(|mut r| r[0].take_text("account"))
        .collect()
    }

    fn record_intent(&self, n: &NewNode) -> anyhow::Result<NodeRecord> {
        validate_new(n)?;
        write(self, || intent_in(self, n))
    }

    fn record_moved(&self, from: &str, to: &NewNode, message: &str) -> anyhow::Result<NodeRecord> {
        validate_new(to)?;
        write(self, || {
            let (id, mut node) = require_node(self, from)?;
            let now = time::now();
            lifecycle::move_to(&mut node, to, &now).map_err(|m| anyhow!(m))?;
            if node_row(self, &to.deploy_id, false)?.is_some() {
                return Err(already_recorded(&to.deploy_id));
            }
            add_event(
                self,
                &now,
                Some(from),
                Action::Deploy,
                Outcome::Failed,
                Some(NodeStatus::Creating),
                message,
            )?;
            for table in ["events", "expiries"] {
                self.exec(
                    &format!("UPDATE {table} SET deploy_id = $1 WHERE deploy_id = $2"),
                    &[(&to.deploy_id).into(), from.into()],
                )?;
            }
            update_node(self, id, &node)?;
            add_intent_event(self, &now, to)?;
            Ok(node)
        })
    }

    fn record_intents(&self, nodes: &[NewNode]) -> anyhow::Result<Vec<NodeRecord>> {
        for n in nodes {
            validate_new(n)?;
        }
        // One transaction for a whole fleet: all recorded, or none.
        write(self, || nodes.iter().map(|n| intent_in(self, n)).collect())
    }

    fn record_created(&self, deploy_id: &str, c: &Created) -> anyhow::Result<NodeRecord> {
        write(self, || {
            let (id, mut node) = require_node(self, deploy_id)?;
            let now = time::now();
            if apply_created(&mut node, c, &now) {
                add_state(self, id, node.status, &now)?;
            }
            update_node(self, id, &node)?;
            let msg = format!("created {}:{}", node.provider, c.provider_id);
            let state = Some(node.status);
            add_event(
                self,
                &now,
                Some(deploy_id),
                Action::Deploy,
                Outcome::Ok,
                state,
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
        write(self, || {
            let (id, mut node) = require_node(self, deploy_id)?;
            let now = time::now();
            let was_live = node.is_live();
            if let Some(status) = lifecycle::fail_create(&mut node, failure, &now) {
                add_state(self, id, status, &now)?;
            }
            if !was_live && node.is_live() {
                ensure_name_free(self, &node.name, deploy_id)?;
            }
            update_node(self, id, &node)?;
            let state = Some(node.status);
            add_event(
                self,
                &now,
                Some(deploy_id),
                Action::Deploy,
                Outcome::Failed,
                state,
                message,
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
        write(self, || {
            let (id, mut node) = require_node(self, deploy_id)?;
            let now = time::now();
            let (mut changed, notes, previous) = observe(self, &mut node, obs, &now)?;
            if let Some(status) = previous.map(|_| node.status) {
                add_state(self, id, status, &now)?;
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
                update_node(self, id, &node)?;
            }
            if !changed.is_empty() {
                let mut msg = notes.join("; ");
                if !message.is_empty() {
                    msg = format!("{message}: {msg}");
                }
                let state = Some(node.status);
                add_event(
                    self,
                    &now,
                    Some(deploy_id),
                    action,
                    Outcome::Ok,
                    state,
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
        write(self, || {
            let state = match deploy_id {
                Some(d) => Some(require_node(self, d)?.1.status),
                None => None,
            };
            add_event(
                self,
                &time::now(),
                deploy_id,
                action,
                outcome,
                state,
                message,
            )
        })
    }

    fn adopt(&self, n: &NewNode, c: &Created) -> anyhow::Result<NodeRecord> {
        validate_new(n)?;
        write(self, || {
            ensure_name_free(self, &n.name, &n.deploy_id)?;
            if node_row(self, &n.deploy_id, false)?.is_some() {
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
            let id = insert_node(self, &node)?;
            // Billed from the provider's creation time: that is when the provider started counting.
            let since = node.created_at.clone().unwrap_or_else(|| now.clone());
            add_state(self, id, node.status, &since)?;
            let msg = format!(
                "adopted {}:{} found at the provider",
                node.provider, c.provider_id
            );
            let state = Some(node.status);
            add_event(
                self,
                &now,
                Some(&n.deploy_id),
                Action::Adopt,
                Outcome::Ok,
                state,
                &msg,
            )?;
            Ok(node)
        })
    }

    fn node_by_deploy_id(&self, deploy_id: &str) -> anyhow::Result<Option<NodeRecord>> {
        Ok(node_row(self, deploy_id, false)?.map(|(_, n)| n))
    }

    fn node_by_name(&self, name: &str) -> anyhow::Result<Option<NodeRecord>> {
        let live = first_node(
            self,
            &format!("SELECT {NODE_COLUMNS} FROM nodes WHERE name = $1 AND deleted_at IS NULL"),
            &[name.into()],
        )?;
        if live.is_some() {
            return Ok(live);
        }
        first_node(
            self,
            &format!("SELECT {NODE_COLUMNS} FROM nodes WHERE name = $1 ORDER BY deleted_at DESC, id DESC LIMIT 1"),
            &[name.into()],
        )
    }

    fn node_by_provider_id(
        &self,
        provider: &str,
        provider_id: &str,
    ) -> anyhow::Result<Option<NodeRecord>> {
        first_node(
            self,
            &format!(
                "SELECT {NODE_COLUMNS} FROM nodes WHERE provider = $1 AND provider_id = $2 \
                 ORDER BY deleted_at IS NOT NULL, id DESC LIMIT 1"
            ),
            &[provider.into(), provider_id.into()],
        )
    }

    fn nodes_in_group(&self, group_id: &str) -> anyhow::Result<Vec<NodeRecord>> {
        nodes(
            self,
            &format!("SELECT {NODE_COLUMNS} FROM nodes WHERE group_id = $1 ORDER BY id"),
            &[group_id.into()],
        )
    }

    fn for_each_node(
        &self,
        filter: &NodeFilter,
        f: &mut dyn FnMut(NodeRecord) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let (clause, args) = node_where(filter);
        let sql =
            format!("SELECT {NODE_COLUMNS} FROM nodes {clause} ORDER BY recorded_at, deploy_id");
        self.query_each(&sql, &args, &mut |mut r| {
            let node = node_from_values(&mut r)?;
            if filter.matches_name(&node.name) {
                f(node)?;
            }
            Ok(())
        })
    }

    fn for_each_cost_timeline(
        &self,
        filter: &NodeFilter,
        f: &mut WithTimeline<'_>,
    ) -> anyhow::Result<()> {
        // Two ordered streams merged here: the nodes by id, and their states by node id (then
        // in timeline order), in one snapshot. Each side is a plain index-ordered scan, where a
        // timeline folded per node by a correlated subquery cost one index probe a node (and,
        // on PostgreSQL, a JIT compilation its cost estimate triggered). Only the columns cost
        // uses are read, straight from the backend's rows.
        let (clause, args) = node_where(filter);
        let nodes_sql = format!("SELECT id, {COST_COLUMNS} FROM nodes {clause} ORDER BY id");
        let states_sql = if clause.is_empty() {
            "SELECT node_id, state, since FROM node_states ORDER BY node_id, since, id".to_string()
        } else {
            format!(
                "SELECT node_id, state, since FROM node_states \
                 WHERE node_id IN (SELECT id FROM nodes {clause}) ORDER BY node_id, since, id"
            )
        };
        merge_by_key(
            self,
            &nodes_sql,
            &states_sql,
            &args,
            &mut |r| {
                let node = cost_node(r)?;
                Ok(filter.matches_name(&node.name).then_some(node))
            },
            &mut |r| {
                let state = status(&r.text(1, "state")?)?;
                Ok(time::unix(&r.text(2, "since")?).map(|since| (state, since)))
            },
            f,
        )
    }

    fn timeline(&self, deploy_id: &str) -> anyhow::Result<Vec<Transition>> {
        let rows = query(
            self,
            "SELECT s.state, s.since FROM node_states s JOIN nodes n ON n.id = s.node_id WHERE n.deploy_id = $1 \
             ORDER BY s.since, s.id",
            &[deploy_id.into()],
        )?;
        rows.into_iter()
            .map(|mut r| {
                let (a, b) = r.split_at_mut(1);
                transition(&mut a[0], &mut b[0])
            })
            .collect()
    }

    fn events(&self, filter: &EventFilter) -> anyhow::Result<Vec<Event>> {
        let mut clauses = Vec::new();
        let mut args: Vec<Value> = Vec::new();
        let wanted = [
            ("e.deploy_id =", filter.deploy_id.clone()),
            ("e.time >=", filter.since.clone()),
            ("e.action =", filter.action.map(|a| a.as_str().to_string())),
        ];
        for (test, value) in wanted {
            if let Some(v) = value {
                args.push(v.into());
                clauses.push(format!("{test} ${}", args.len()));
            }
        }
        let clause = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let limit = if filter.limit == 0 {
            String::new()
        } else {
            format!("LIMIT {}", filter.limit)
        };
        let sql = format!(
            "SELECT e.id, e.time, e.deploy_id, n.name, n.provider, e.action, e.outcome, e.state, e.message, \
             e.machine, e.username \
             FROM events e LEFT JOIN nodes n ON n.deploy_id = e.deploy_id {clause} ORDER BY e.id DESC {limit}"
        );
        let mut out: Vec<Event> = Vec::new();
        self.query_each(&sql, &args, &mut |r| {
            out.push(event_from(r)?);
            Ok(())
        })?;
        out.reverse();
        Ok(out)
    }

    fn clean_events(&self, before: &str, dry_run: bool) -> anyhow::Result<CleanReport> {
        write(self, || {
            let live = "SELECT deploy_id FROM nodes WHERE deleted_at IS NULL";
            let old = "time < $1 AND (deploy_id IS NULL OR deploy_id NOT IN";
            let removed = query_int(
                self,
                &format!("SELECT COUNT(*) FROM events WHERE {old} ({live}))"),
                &[before.into()],
            )?;
            let kept_live = query_int(
                self,
                &format!("SELECT COUNT(*) FROM events WHERE time < $1 AND deploy_id IN ({live})"),
                &[before.into()],
            )?;
            if !dry_run {
                self.exec(
                    &format!("DELETE FROM events WHERE {old} ({live}))"),
                    &[before.into()],
                )?;
            }
            Ok(CleanReport {
                removed: removed as u64,
                kept_live: kept_live as u64,
            })
        })
    }

    fn add_cleanups(&self, items: &[NewCleanup]) -> anyhow::Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        write(self, || {
            let now = time::now();
            for c in items {
                self.exec(
                    "INSERT INTO cleanups(provider, account, node_ref, deploy_id, what, work, recorded_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        (&c.provider).into(),
                        (&c.account).into(),
                        (&c.node_ref).into(),
                        c.deploy_id.as_ref().into(),
                        (&c.what).into(),
                        (&c.work).into(),
                        (&now).into(),
                    ],
                )?;
            }
            Ok(())
        })
    }

    fn pending_cleanups(&self, provider: Option<&str>) -> anyhow::Result<Vec<PendingCleanup>> {
        let (clause, args) = match provider {
            Some(p) => ("AND provider = $1", vec![p.into()]),
            None => ("", vec![]),
        };
        let rows = query(
            self,
            &format!(
                "SELECT id, provider, node_ref, deploy_id, what, work, recorded_at, attempts, last_error, \
                 account FROM cleanups WHERE done_at IS NULL {clause} ORDER BY id"
            ),
            &args,
        )?;
        rows.into_iter()
            .map(|mut r| {
                Ok(PendingCleanup {
                    id: r[0].int("id")?,
                    provider: r[1].take_text("provider")?,
                    node_ref: r[2].take_text("node_ref")?,
                    deploy_id: r[3].take_opt_text("deploy_id")?,
                    what: r[4].take_text("what")?,
                    work: r[5].take_text("work")?,
                    recorded_at: r[6].take_text("recorded_at")?,
                    attempts: r[7].int("attempts")?,
                    last_error: r[8].take_text("last_error")?,
                    account: r[9].take_text("account")?,
                })
            })
            .collect()
    }

    fn finish_cleanup(&self, id: i64, result: Result<(), &str>) -> anyhow::Result<()> {
        write(self, || {
            match result {
                Ok(()) => self.exec(
                    "UPDATE cleanups SET done_at = $2, attempts = attempts + 1, last_error = '' \
                     WHERE id = $1",
                    &[id.into(), time::now().into()],
                )?,
                Err(msg) => self.exec(
                    "UPDATE cleanups SET attempts = attempts + 1, last_error = $2 WHERE id = $1",
                    &[id.into(), msg.into()],
                )?,
            };
            Ok(())
        })
    }

    fn set_expiries(&self, items: &[(String, String)]) -> anyhow::Result<()> {
        write(self, || {
            for (d, at) in items {
                require_node(self, d)?;
                self.exec(
                    "INSERT INTO expiries(deploy_id, expires_at) VALUES ($1, $2) \
                     ON CONFLICT(deploy_id) DO UPDATE SET expires_at = excluded.expires_at",
                    &[d.into(), at.into()],
                )?;
            }
            Ok(())
        })
    }

    fn expiries(&self) -> anyhow::Result<std::collections::HashMap<String, String>> {
        query(self, "SELECT deploy_id, expires_at FROM expiries", &[])?
            .into_iter()
            .map(|mut r| Ok((r[0].take_text("deploy_id")?, r[1].take_text("expires_at")?)))
            .collect()
    }

    fn deleted_unrecorded(&self, node_ref: &str) -> anyhow::Result<Option<String>> {
        let row = query_row(
            self,
            "SELECT time FROM events WHERE deploy_id IS NULL AND action = 'delete' \
             AND outcome = 'ok' AND message = $1 ORDER BY id DESC LIMIT 1",
            &[node_ref.into()],
        )?;
        row.map(|mut r| r[0].take_text("time")).transpose()
    }

    fn import_nodes(&self, rows: &[NodeRecord], dry_run: bool) -> anyhow::Result<ImportReport> {
        let mut report = ImportReport {
            rows: rows.len(),
            ..ImportReport::default()
        };
        let now = time::now();
        self.begin()?;
        let written = rows
            .iter()
            .enumerate()
            .try_for_each(|(i, row)| import_row(self, &mut report, i, row, &now));
        let keep = written.is_ok() && !dry_run && report.conflicts.is_empty();
        if keep {
            self.commit()?;
        } else {
            self.rollback()?;
        }
        written.map(|()| report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two cursors over rows held as values.
    struct Held {
        rows: [std::vec::IntoIter<Vec<Value>>; 2],
        current: Option<Vec<Value>>,
    }

    impl Cursors for Held {
        fn next(&mut self, i: usize) -> anyhow::Result<Option<&dyn Row>> {
            self.current = self.rows[i].next();
            Ok(self.current.as_ref().map(|r| r as &dyn Row))
        }
    }

    fn merged(
        parents: &[i64],
        children: &[(i64, &str)],
    ) -> anyhow::Result<Vec<(i64, Vec<String>)>> {
        let p: Vec<Vec<Value>> = parents.iter().map(|&id| vec![Value::Int(id)]).collect();
        let c: Vec<Vec<Value>> = children
            .iter()
            .map(|&(id, v)| vec![Value::Int(id), Value::from(v)])
            .collect();
        let mut held = Held {
            rows: [p.into_iter(), c.into_iter()],
            current: None,
        };
        let mut out = Vec::new();
        merge_cursors(
            &mut held,
            // Parent 7 is left out, with its children.
            &mut |r| Ok(Some(r.int(0, "id")?).filter(|&id| id != 7)),
            // A child named "bad" fails to decode; "skip" is left out.
            &mut |r| match r.text(1, "v")?.as_ref() {
                "bad" => Err(anyhow!("bad child")),
                "skip" => Ok(None),
                v => Ok(Some(v.to_string())),
            },
            &mut |id, kids| {
                out.push((id, kids.to_vec()));
                Ok(())
            },
        )?;
        Ok(out)
    }

    #[test]
    fn merging_groups_children_under_their_parent_in_order() {
        let got = merged(
            &[1, 2, 4, 7],
            &[
                (1, "a"),
                (1, "skip"),
                (1, "b"),
                (3, "orphan"),
                (3, "bad"),
                (4, "c"),
                (7, "bad"),
                (9, "late"),
            ],
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                (1, vec!["a".to_string(), "b".to_string()]),
                (2, vec![]),
                (4, vec!["c".to_string()]),
            ]
        );
        // A failure to decode a child that is used is the read's failure.
        let e = merged(&[1, 2], &[(2, "bad")]).unwrap_err().to_string();
        assert_eq!(e, "bad child");
        assert_eq!(merged(&[], &[(1, "a")]).unwrap(), vec![]);
        assert_eq!(merged(&[5], &[]).unwrap(), vec![(5, vec![])]);
    }

    #[test]
    fn merging_refuses_rows_out_of_order() {
        let e = merged(&[2, 1], &[]).unwrap_err().to_string();
        assert!(e.contains("out of order"), "{e}");
        let e = merged(&[1, 5], &[(3, "x"), (2, "y")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("out of order"), "{e}");
    }
}
