//! `start`, `stop` and `delete` on one node or many: named nodes, a fleet (`--group`), a name
//! glob (`--name`) or every node recorded at a provider (`--provider P --all`).
//!
//! The run: select (inventory and `PROVIDER:ID`s; bad input fails before anything is sent) →
//! confirm (the nodes, what happens, the hourly spend that stops) → record each intent → ask the
//! providers through the bounded fan-out → record each outcome → one result table. Without
//! `--wait` a request returns once the provider accepted it; work that can only happen after a
//! node is gone is recorded as a pending cleanup (see `cleanup.rs`). A partial failure exits 1
//! and prints the command that retries the rest.

use super::{cleanup, nodes, stdout};
use crate::cli::{BulkArgs, InventoryFilter, OutputFormat};
use crate::context::Ctx;
use crate::driver::{Cleanup, Driver, DriverError, ErrorKind, Lifecycle, Node, NodeRef, NodeState};
use crate::engine;
use crate::error::bad_input;
use crate::messages;
use crate::render::{self, col, Column, Kind};
use crate::state::{Action, NodeRecord, NodeStatus, Outcome, Store};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

const RESULT_COLUMNS: &[Column] = &[
    col("provider", "provider", Kind::Text),
    col("id", "id", Kind::Text),
    col("name", "name", Kind::Text),
    col("result", "result", Kind::Text),
    col("status", "status", Kind::Status),
];

/// A node to act on.
#[derive(Debug, Clone)]
pub(super) struct Target {
    /// How the retry command names it: the recorded name, else what the user wrote.
    label: String,
    node_ref: NodeRef,
    record: Option<NodeRecord>,
    /// The credentials account: the record's, else the command's.
    account: String,
    /// Why, for the node's history (`expired at …`); empty when the user just asked.
    note: String,
}

impl Target {
    /// A recorded node that exists at its provider.
    pub(super) fn recorded(r: NodeRecord, provider_id: String, note: String) -> Target {
        Target {
            label: r.name.clone(),
            node_ref: NodeRef {
                provider: r.provider.clone(),
                id: provider_id,
                region: Some(r.region.clone()).filter(|s| !s.is_empty()),
                variant: r.api_variant.clone(),
            },
            account: r.account.clone(),
            record: Some(r),
            note,
        }
    }
}

impl Target {
    /// The provider and account whose credentials act on the node.
    fn key(&self) -> cleanup::Account {
        (self.node_ref.provider.clone(), self.account.clone())
    }

    /// The recorded name; empty for a node capsule has no record of.
    fn name(&self) -> String {
        self.record
            .as_ref()
            .map_or_else(String::new, |r| r.name.clone())
    }
}

/// One node's result (`golden/schema/stop.json`; a line of the result table).
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Row {
    provider: String,
    id: String,
    name: String,
    result: String,
    status: Option<String>,
    #[serde(skip)]
    ok: bool,
    /// Failed in a way a second try may fix: it goes into the retry command.
    #[serde(skip)]
    retry: Option<String>,
}

impl Row {
    fn of(t: &Target, result: impl Into<String>, status: Option<&str>, ok: bool) -> Row {
        Row {
            provider: t.node_ref.provider.clone(),
            id: t.node_ref.id.clone(),
            name: t.name(),
            result: result.into(),
            status: status.map(str::to_string),
            ok,
            retry: None,
        }
    }
}

impl Row {
    /// A recorded node whose create never answered: nothing to call; `sync` settles it.
    pub(super) fn never_created(r: &NodeRecord) -> Row {
        Row {
            provider: r.provider.clone(),
            id: String::new(),
            name: r.name.clone(),
            result: format!(
                "never created at {} — `capsule openmesh sync --provider {}` settles it",
                r.provider, r.provider
            ),
            status: Some(r.status.as_str().to_string()),
            ok: false,
            retry: None,
        }
    }
}

/// The one lifecycle state machine behind `start`, `stop` and `delete` (and `reap`): the
/// transition each asks the provider for, the state it ends in, and how its outcome is
/// recorded and said. Every difference between the three lives here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Transition {
    pub(super) what: Lifecycle,
    /// The command word: `start`, `stop`, `delete`.
    pub(super) verb: &'static str,
    /// The event it records.
    pub(super) action: Action,
    /// The provider state the node is in once the transition finished (what `--wait` waits for).
    pub(super) target: NodeState,
    /// The recorded status while the provider is still at it (without `--wait`), when the
    /// transition has one.
    pub(super) pending: Option<NodeStatus>,
    /// The result once finished, and once only asked for.
    pub(super) done: &'static str,
    pub(super) asked: &'static str,
    /// What happens to the node's billing: "stops" or "resumes".
    pub(super) billing: &'static str,
    /// Whether the node ends: its disks go, a stopped node's billing stops too, an earlier
    /// transition that is already through counts as done, and a deleted node is a no-op.
    pub(super) ends: bool,
}

impl Transition {
    pub(super) const fn of(what: Lifecycle) -> Transition {
        match what {
            Lifecycle::Start => Transition {
                what,
                verb: "start",
                action: Action::Start,
                target: NodeState::Running,
                pending: None,
                done: "started",
                asked: "asked to be started",
                billing: "resumes",
                ends: false,
            },
            Lifecycle::Stop => Transition {
                what,
                verb: "stop",
                action: Action::Stop,
                target: NodeState::Stopped,
                pending: None,
                done: "stopped",
                asked: "asked to be stopped",
                billing: "stops",
                ends: false,
            },
            Lifecycle::Delete => Transition {
                what,
                verb: "delete",
                action: Action::Delete,
                target: NodeState::Deleted,
                pending: Some(NodeStatus::Deleting),
                done: "deleted",
                asked: "deletion started",
                billing: "stops",
                ends: true,
            },
        }
    }

    /// The row's result once the provider accepted the transition.
    fn result(&self, waited: bool, cleanups: usize) -> String {
        match (waited, cleanups) {
            (true, _) => self.done.to_string(),
            (false, 0) => self.asked.to_string(),
            (false, n) => format!("{}; {n} cleanup(s) pending", self.asked),
        }
    }
}

fn verb(what: Lifecycle) -> &'static str {
    Transition::of(what).verb
}

pub fn run(ctx: &Ctx, args: &BulkArgs, what: Lifecycle) -> anyhow::Result<ExitCode> {
    let store = nodes::open_store(ctx)?;
    let filtered = args.group.is_some() || args.name.is_some() || args.all;
    let (targets, rows) = select(ctx, store.as_ref(), args, what)?;
    if targets.is_empty() && rows.is_empty() {
        messages::info(format!(
            "no live recorded node matches; nothing to {}",
            verb(what)
        ));
    }
    let confirm = Transition::of(what).ends || filtered || targets.len() > 1;
    execute(ctx, store.as_ref(), targets, rows, what, args, confirm, "")
}

/// Confirm (when asked to), act on every target through the fan-out, record and report.
/// `why` is added to the confirmation's first line.
#[allow(clippy::too_many_arguments)]
pub(super) fn execute(
    ctx: &Ctx,
    store: &dyn Store,
    targets: Vec<Target>,
    mut rows: Vec<Row>,
    what: Lifecycle,
    args: &BulkArgs,
    confirm: bool,
    why: &str,
) -> anyhow::Result<ExitCode> {
    let timeout = args.batch.timeout;
    if targets.is_empty() {
        return finish(ctx, what, args, &rows, 0);
    }
    if confirm {
        if !ctx.yes {
            eprint!("{}", plan_text(ctx, &targets, what, why));
        }
        let n = targets.len();
        let question = if n == 1 {
            format!("{} this node?", capitalized(verb(what)))
        } else {
            format!("{} these {n} nodes?", capitalized(verb(what)))
        };
        if !nodes::confirm(ctx, &question, "--yes")? {
            messages::info("nothing was done");
            return Ok(ExitCode::from(1));
        }
    }

    // One driver per provider account; one without usable credentials fails its nodes only.
    let mut drivers: BTreeMap<cleanup::Account, Result<Driver, String>> = BTreeMap::new();
    for t in &targets {
        drivers.entry(t.key()).or_insert_with(|| {
            ctx.driver_for(&t.node_ref.provider, &t.account)
                .map_err(|e| e.to_string())
        });
    }
    let rt = ctx.runtime()?;
    let usable: Vec<cleanup::Account> = drivers
        .iter()
        .filter(|(_, d)| d.is_ok())
        .map(|(p, _)| p.clone())
        .collect();
    cleanup::settle(ctx, store, &rt, Some(&usable))?;

    let act = Transition::of(what).action;
    let mut jobs = Vec::new();
    for t in &targets {
        match &drivers[&t.key()] {
            Ok(d) => {
                store.record_action(
                    t.record.as_ref().map(|r| r.deploy_id.as_str()),
                    act,
                    Outcome::Started,
                    &t.note,
                )?;
                jobs.push((t.clone(), d.clone()));
            }
            Err(msg) => {
                let mut row = Row::of(t, format!("failed: {msg}"), None, false);
                row.retry = Some(t.label.clone());
                rows.push(row);
            }
        }
    }
    let wait = args.batch.wait;
    let progress = super::progress(ctx, jobs.len(), "nodes");
    let results = rt.block_on(engine::fan_out(
        jobs,
        args.batch.parallel,
        &progress,
        move |(t, d): (Target, Driver)| async move {
            act_on(&d, &t.node_ref, what, wait, timeout).await
        },
    ));
    let mut cleanup_providers = BTreeSet::new();
    for ((t, _), r) in results {
        // A job that stopped without a result (a bug) fails its node only.
        let r = r.unwrap_or_else(|lost| {
            Err(DriverError::new(
                &t.node_ref.provider,
                ErrorKind::Refused,
                lost.to_string(),
            ))
        });
        let row = record_outcome(store, &t, what, wait, r, &mut cleanup_providers)?;
        rows.push(row);
    }
    if wait && !cleanup_providers.is_empty() {
        let list: Vec<cleanup::Account> = cleanup_providers.into_iter().collect();
        cleanup::settle(ctx, store, &rt, Some(&list))?;
    }
    finish(ctx, what, args, &rows, targets.len())
}

/// The provider calls for one node.
async fn act_on(
    d: &Driver,
    node: &NodeRef,
    what: Lifecycle,
    wait: bool,
    timeout: Duration,
) -> Result<(Vec<Cleanup>, Option<Node>), DriverError> {
    let work = d.request(node, what, wait).await?;
    if !wait {
        return Ok((work, None));
    }
    let n = d
        .wait_for(node, Transition::of(what).target, false, timeout)
        .await?;
    Ok((work, Some(n)))
}

fn record_outcome(
    store: &dyn Store,
    t: &Target,
    what: Lifecycle,
    wait: bool,
    r: Result<(Vec<Cleanup>, Option<Node>), DriverError>,
    cleanup_providers: &mut BTreeSet<cleanup::Account>,
) -> anyhow::Result<Row> {
    let tr = Transition::of(what);
    let act = tr.action;
    let deploy_id = t.record.as_ref().map(|r| r.deploy_id.clone());
    let d = deploy_id.as_deref();
    let provider = &t.node_ref.provider;
    match r {
        Ok((work, node)) => {
            // An unrecorded node's events name it, so `status` can tell "deleted by capsule"
            // from "never existed".
            let message = if d.is_none() && tr.ends {
                format!("{provider}:{}", t.node_ref.id)
            } else {
                t.note.clone()
            };
            store.record_action(d, act, Outcome::Ok, &message)?;
            if let (Some(d), Some(n)) = (d, &node) {
                store.record_observation(d, &nodes::observe(n), act, "")?;
            }
            let status = node.as_ref().map(|n| n.state.as_str());
            if let (Some(d), Some(pending)) = (d, tr.pending) {
                let st = node.as_ref().map_or(pending, |n| nodes::status_of(n.state));
                store.record_status(d, act, st, "", None)?;
            }
            if !work.is_empty() {
                cleanup::record(store, &t.account, d, &work)?;
                cleanup_providers.insert(t.key());
            }
            let result = tr.result(wait, work.len());
            let status = status.or(tr.pending.map(NodeStatus::as_str));
            Ok(Row::of(t, result, status, true))
        }
        Err(e)
            if e.kind == ErrorKind::NotFound
                && tr.pending.is_some()
                && t.record
                    .as_ref()
                    .is_some_and(|r| Some(r.status) == tr.pending) =>
        {
            // A transition asked for earlier (a delete) has finished.
            let d = d.expect("a record");
            store.record_action(Some(d), act, Outcome::Ok, "already gone")?;
            let gone = nodes::status_of(tr.target);
            store.record_status(d, act, gone, "", None)?;
            Ok(Row::of(t, "already gone", Some(gone.as_str()), true))
        }
        Err(e) if e.kind == ErrorKind::NotFound => {
            let msg = format!("not found at {provider}");
            store.record_action(d, act, Outcome::Failed, &msg)?;
            let hint = if t.record.is_some() {
                format!(
                    " (`capsule openmesh sync --provider {provider} --forget` updates the record)"
                )
            } else {
                String::new()
            };
            Ok(Row::of(t, format!("{msg}{hint}"), None, false))
        }
        Err(e) => {
            let msg = e.to_string();
            store.record_action(d, act, Outcome::Failed, &msg)?;
            let shown = msg
                .strip_prefix(&format!("{provider}: "))
                .unwrap_or(&msg)
                .to_string();
            let mut row = Row::of(t, format!("failed: {shown}"), None, false);
            row.retry = Some(t.label.clone());
            Ok(row)
        }
    }
}

/// Print the results; exit 1 when any node failed (with the retry command for those a second
/// try may fix).
fn finish(
    ctx: &Ctx,
    what: Lifecycle,
    args: &BulkArgs,
    rows: &[Row],
    targets: usize,
) -> anyhow::Result<ExitCode> {
    let mut out = stdout();
    if ctx.format() == OutputFormat::Table && rows.len() == 1 {
        let r = &rows[0];
        writeln!(out, "{} {}", who(r), r.result)?;
    } else if !rows.is_empty() {
        let listed: Vec<render::Row> = rows.iter().map(render::Row::of).collect();
        render::listing(&mut out, ctx.style, RESULT_COLUMNS, &listed)?;
    }
    drop(out);
    let failed: Vec<&Row> = rows.iter().filter(|r| !r.ok).collect();
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for r in &failed {
        messages::info(format!("{}: {}", who(r), r.result));
    }
    let retry: Vec<&str> = failed.iter().filter_map(|r| r.retry.as_deref()).collect();
    if targets > 1 && !retry.is_empty() {
        let mut cmd = format!("capsule openmesh {}", verb(what));
        for r in &retry {
            cmd.push(' ');
            cmd.push_str(&shell_word(r));
        }
        cmd.push_str(" --yes");
        if args.batch.wait {
            cmd.push_str(" --wait");
        }
        messages::info(format!(
            "{} of {} nodes failed; retry them with:\n  {cmd}",
            failed.len(),
            rows.len()
        ));
    }
    Ok(ExitCode::from(1))
}

/// `web-01 (digitalocean:123)`, or `digitalocean:123` for a node with no record.
fn who(r: &Row) -> String {
    if r.name.is_empty() {
        format!("{}:{}", r.provider, r.id)
    } else {
        format!("{} ({}:{})", r.name, r.provider, r.id)
    }
}

/// A word safe to paste into a POSIX shell.
fn shell_word(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@%+=,".contains(c))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

fn capitalized(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// The nodes the arguments name, and rows for those that need no provider call (a node already
/// deleted, one never created). Bad input fails here, before anything is sent.
fn select(
    ctx: &Ctx,
    store: &dyn Store,
    args: &BulkArgs,
    what: Lifecycle,
) -> anyhow::Result<(Vec<Target>, Vec<Row>)> {
    let filtered = args.group.is_some() || args.name.is_some() || args.all;
    if args.nodes.is_empty() && !filtered {
        return Err(bad_input(match &args.provider {
            Some(p) => format!(
                "--provider {p} alone selects nothing — add --all for every node capsule recorded there, or --name GLOB"
            ),
            None => format!(
                "name the nodes to {}: NODE…, --group GROUP_ID, --name GLOB, or --provider P --all",
                verb(what)
            ),
        }));
    }
    let mut targets = Vec::new();
    let mut rows = Vec::new();
    for text in &args.nodes {
        let (node_ref, record) = nodes::resolve_node(ctx, store, text)?;
        let t = Target {
            label: record
                .as_ref()
                .filter(|r| r.is_live())
                .map_or_else(|| text.clone(), |r| r.name.clone()),
            node_ref,
            account: nodes::account_of(ctx, record.as_ref()).to_string(),
            record,
            note: String::new(),
        };
        if let Some(row) = no_call_needed(store, &t, what)? {
            rows.push(row);
        } else {
            targets.push(t);
        }
    }
    if filtered {
        let filter = super::inventory::node_filter(
            ctx,
            &InventoryFilter {
                providers: args.provider.iter().cloned().collect(),
                name: args.name.clone(),
                ..InventoryFilter::default()
            },
        )?;
        let mut records = store.list_nodes(&filter)?;
        if let Some(g) = &args.group {
            if store.nodes_in_group(g)?.is_empty() {
                return Err(bad_input(format!(
                    "no fleet '{g}' in the inventory — the group id is the one `deploy` printed (see `capsule openmesh inventory`)"
                )));
            }
            records.retain(|r| &r.group_id == g);
        }
        records.sort_by(|a, b| (&a.name, &a.provider).cmp(&(&b.name, &b.provider)));
        for r in records.into_iter().filter(NodeRecord::is_live) {
            let Some(id) = r.provider_id.clone() else {
                rows.push(Row::never_created(&r));
                continue;
            };
            targets.push(Target::recorded(r, id, String::new()));
        }
    }
    let mut seen = HashSet::new();
    targets.retain(|t| seen.insert((t.node_ref.provider.clone(), t.node_ref.id.clone())));
    Ok((targets, rows))
}

/// A row instead of a call: deleting a node already deleted is a no-op that says so and leaves
/// the record alone; starting or stopping one is refused.
fn no_call_needed(store: &dyn Store, t: &Target, what: Lifecycle) -> anyhow::Result<Option<Row>> {
    let deleted_at = match &t.record {
        Some(r) if r.status == NodeStatus::Deleted => {
            Some(r.deleted_at.clone().unwrap_or_else(|| r.updated_at.clone()))
        }
        Some(_) => None,
        None => store.deleted_unrecorded(&format!("{}:{}", t.node_ref.provider, t.node_ref.id))?,
    };
    let Some(at) = deleted_at else {
        return Ok(None);
    };
    Ok(Some(if Transition::of(what).ends {
        Row::of(
            t,
            format!("already deleted ({at}); nothing to do"),
            Some("deleted"),
            true,
        )
    } else {
        Row::of(
            t,
            format!("was deleted ({at}); nothing to {}", verb(what)),
            Some("deleted"),
            false,
        )
    }))
}

/// What the confirmation shows: the nodes, what will happen, and the hourly spend that stops.
fn plan_text(ctx: &Ctx, targets: &[Target], what: Lifecycle, why: &str) -> String {
    let billing = super::cost::billing(&ctx.catalog);
    let n = targets.len();
    let nodes_word = if n == 1 { "node" } else { "nodes" };
    let tr = Transition::of(what);
    let mut s = format!("{} {n} {nodes_word}{why}", capitalized(tr.verb));
    if tr.ends {
        s.push_str(&format!(
            " — {} disks and data go with {}",
            if n == 1 { "its" } else { "their" },
            if n == 1 { "it" } else { "them" }
        ));
    }
    s.push_str(":\n");
    let mut stops = 0.0;
    let mut continues = 0.0;
    let mut unknown = 0usize;
    let mut keep_billing: BTreeSet<String> = BTreeSet::new();
    let shown = |t: &Target| {
        let n = t.name();
        if n.is_empty() {
            "(not in the inventory)".to_string()
        } else {
            n
        }
    };
    let width = targets.iter().map(|t| shown(t).len()).max().unwrap_or(0);
    for t in targets {
        let rate = t
            .record
            .as_ref()
            .and_then(|r| billing.run_rate_usd(r))
            .map(|(h, _)| h);
        let region = t
            .record
            .as_ref()
            .map(|r| r.region.clone())
            .or_else(|| t.node_ref.region.clone())
            .unwrap_or_default();
        let price = rate.map_or_else(|| "price unknown".to_string(), |h| format!("${h:.4}/h"));
        s.push_str(&format!(
            "  {:<width$}  {}:{}  {}  {}\n",
            shown(t),
            t.node_ref.provider,
            t.node_ref.id,
            region,
            price
        ));
        match rate {
            None => unknown += 1,
            Some(h) => {
                let billed_stopped = billing.rule(&t.node_ref.provider).billed_when_stopped;
                if tr.ends || !billed_stopped {
                    stops += h;
                } else {
                    continues += h;
                    keep_billing.insert(t.node_ref.provider.clone());
                }
            }
        }
    }
    let unknown_note = if unknown > 0 {
        format!(
            " ({unknown} {} not in the inventory, price unknown)",
            if unknown == 1 { "node" } else { "nodes" }
        )
    } else {
        String::new()
    };
    s.push_str(&format!(
        "Billing of ${stops:.4}/h {}{unknown_note}",
        tr.billing
    ));
    // Stopping a node at a provider that bills stopped nodes keeps its billing.
    if tr.what == Lifecycle::Stop && continues > 0.0 {
        let list: Vec<&str> = keep_billing.iter().map(String::as_str).collect();
        s.push_str(&format!(
            "; ${continues:.4}/h continues ({} bill stopped nodes)",
            list.join(", ")
        ));
    }
    s.push_str(".\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_transition_ends_in_its_own_state_and_says_so() {
        let all = [Lifecycle::Start, Lifecycle::Stop, Lifecycle::Delete].map(Transition::of);
        let [start, stop, delete] = all;
        assert_eq!(nodes::status_of(start.target), NodeStatus::Running);
        assert_eq!(nodes::status_of(stop.target), NodeStatus::Stopped);
        assert_eq!(nodes::status_of(delete.target), NodeStatus::Deleted);
        // Only a delete has a recorded in-between state, and only it ends the node.
        assert_eq!(delete.pending, Some(NodeStatus::Deleting));
        assert!(start.pending.is_none() && stop.pending.is_none());
        assert_eq!(all.map(|t| t.ends), [false, false, true]);
        assert_eq!(all.map(|t| t.verb), ["start", "stop", "delete"]);
        assert_eq!(
            all.map(|t| t.action),
            [Action::Start, Action::Stop, Action::Delete]
        );
        assert_eq!(stop.result(true, 0), "stopped");
        assert_eq!(stop.result(false, 0), "asked to be stopped");
        assert_eq!(delete.result(false, 0), "deletion started");
        assert_eq!(
            delete.result(false, 2),
            "deletion started; 2 cleanup(s) pending"
        );
        assert_eq!(delete.result(true, 2), "deleted");
    }
}
