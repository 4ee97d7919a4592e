//! Existing nodes: `list` and `status`, and the node resolution and confirmation that
//! `start`, `stop` and `delete` (`bulk.rs`) share. Creating nodes is `deploy/`.
//!
//! Every lifecycle command writes its intent to the state store before calling the provider and
//! its outcome after.

use super::stdout;
use crate::catalog::ProviderEntry;
use crate::cli::{ListArgs, NodeArgs, OutputFormat};
use crate::context::Ctx;
use crate::driver::{DriverError, Node, NodeRef, NodeState};
use crate::error::bad_input;
use crate::messages;
use crate::render::{self, col, Column, Kind};
use crate::state::{self, Action, NodeRecord, NodeStatus, Observation, Store};
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;

pub const NODE_COLUMNS: &[Column] = &[
    col("provider", "provider", Kind::Text).prio(0),
    col("id", "id", Kind::Text).prio(0),
    col("name", "name", Kind::Text).prio(0),
    col("template", "template", Kind::Text).prio(3),
    col("region", "region", Kind::Text).prio(2),
    col("status", "status", Kind::Status).prio(0),
    col("ipv4", "ipv4", Kind::Text).prio(1),
    col("created", "created_at", Kind::Age).prio(4),
];

pub const NODE_CSV: &[Column] = &[
    col("provider", "provider", Kind::Text),
    col("id", "id", Kind::Text),
    col("name", "name", Kind::Text),
    col("template", "template", Kind::Text),
    col("plan", "plan", Kind::Text),
    col("region", "region", Kind::Text),
    col("status", "status", Kind::Text),
    col("raw_status", "raw_status", Kind::Text),
    col("ipv4", "ipv4", Kind::Text),
    col("created_at", "created_at", Kind::Text),
];

/// The columns of a node listing; an `expires` column when a row has an expiry (`--ttl`).
fn node_columns(ctx: &Ctx, rows: &[NodeRow]) -> Vec<Column> {
    let mut cols = if ctx.format() == OutputFormat::Csv {
        NODE_CSV.to_vec()
    } else {
        NODE_COLUMNS.to_vec()
    };
    if rows
        .iter()
        .any(|r| r.account != crate::state::DEFAULT_ACCOUNT)
    {
        cols.insert(1, ACCOUNT_COLUMN);
    }
    if rows.iter().any(|r| r.expires_at.is_some()) {
        cols.push(super::expiry::EXPIRES_COLUMN);
    }
    cols
}

/// The `account` column, shown when a row belongs to an account other than `default`.
pub const ACCOUNT_COLUMN: Column = col("account", "account", Kind::Text).prio(1);

/// One live node, as `list` and `status` show it (the documented JSON).
#[derive(Debug, Serialize)]
struct NodeRow {
    provider: String,
    /// `ID`, or `REGION/ID` for a regional API.
    id: String,
    name: String,
    template: Option<String>,
    plan: String,
    region: String,
    status: &'static str,
    raw_status: String,
    ipv4: Option<String>,
    created_at: Option<String>,
    deploy_id: Option<String>,
    /// The credentials account the node belongs to.
    account: String,
    expires_at: Option<String>,
    /// The provider's id alone (without a region).
    #[serde(skip)]
    node_id: String,
}

impl NodeRow {
    /// The listing row; `--quiet` prints `PROVIDER:ID`, which the other commands take.
    fn row(&self) -> render::Row {
        render::Row::of(self).with_id(format!("{}:{}", self.provider, self.id))
    }
}

/// Render node rows with the node columns.
fn show_nodes(ctx: &Ctx, nodes: &[NodeRow]) -> anyhow::Result<()> {
    let rows: Vec<render::Row> = nodes.iter().map(NodeRow::row).collect();
    render::listing(&mut stdout(), ctx.style, &node_columns(ctx, nodes), &rows)?;
    Ok(())
}

/// The documented row of a live node.
fn node_json(ctx: &Ctx, n: &Node, record: Option<&NodeRecord>, expires: &ExpiryMap) -> NodeRow {
    let template = record.map(|r| r.template.clone()).or_else(|| {
        ctx.catalog
            .templates_of(&n.provider)
            .find(|t| t.plan == n.plan)
            .map(|t| t.id.clone())
    });
    let id = match ctx.catalog.provider(&n.provider) {
        Some(p) if p.api.regional && !n.region.is_empty() => format!("{}/{}", n.region, n.id),
        _ => n.id.clone(),
    };
    // The record knows the name capsule gave (an API may return a hostname) and when the
    // node was created (an API may not say).
    let name = record.map_or(n.name.clone(), |r| r.name.clone());
    let created_at = n
        .created_at
        .clone()
        .or_else(|| record.and_then(|r| r.created_at.clone()));
    NodeRow {
        provider: n.provider.clone(),
        id,
        name,
        template,
        plan: n.plan.clone(),
        region: n.region.clone(),
        status: n.state.as_str(),
        raw_status: n.raw_status.clone(),
        ipv4: n.ipv4.clone(),
        created_at,
        deploy_id: record.map(|r| r.deploy_id.clone()),
        account: record.map_or(ctx.account.clone(), |r| r.account.clone()),
        expires_at: record.and_then(|r| expires.get(&r.deploy_id)).cloned(),
        node_id: n.id.clone(),
    }
}

type ExpiryMap = std::collections::HashMap<String, String>;

pub(super) fn status_of(s: NodeState) -> NodeStatus {
    match s {
        NodeState::Pending | NodeState::Unknown => NodeStatus::Pending,
        NodeState::Running => NodeStatus::Running,
        NodeState::Stopped => NodeStatus::Stopped,
        NodeState::Deleting => NodeStatus::Deleting,
        NodeState::Deleted => NodeStatus::Deleted,
        NodeState::Error => NodeStatus::Error,
    }
}

pub(super) fn observe(n: &Node) -> Observation {
    Observation {
        status: Some(status_of(n.state)),
        raw_status: Some(n.raw_status.clone()),
        ipv4: n.ipv4.clone().map(Some),
        provider_id: None,
        plan: if n.plan.is_empty() {
            None
        } else {
            Some(n.plan.clone())
        },
    }
}

pub(super) fn open_store(ctx: &Ctx) -> anyhow::Result<Box<dyn Store>> {
    state::open(&ctx.home)
}

/// `PROVIDER:ID`, `PROVIDER:REGION/ID` or a recorded name → the node and its record.
pub(super) fn resolve_node(
    ctx: &Ctx,
    store: &dyn Store,
    text: &str,
) -> anyhow::Result<(NodeRef, Option<NodeRecord>)> {
    let record = store.resolve(text)?;
    if let Some((prov, rest)) = text.split_once(':') {
        if let Some(p) = ctx.catalog.provider(prov) {
            let (region, id) = match rest.rsplit_once('/') {
                // A region part is checked, never ignored: `mars/1000` must not reach node 1000.
                Some((r, _)) if !r.is_empty() && !p.api.regional => {
                    return Err(bad_input(format!(
                        "{} addresses a node by its id alone, without a region — write {}:ID",
                        p.id(),
                        p.id()
                    )));
                }
                Some((r, _))
                    if !r.is_empty()
                        && !p.regions.iter().any(|x| {
                            x.id.eq_ignore_ascii_case(r) || x.api_id.eq_ignore_ascii_case(r)
                        }) =>
                {
                    return Err(crate::error::unknown(
                        &format!("{} region", p.id()),
                        r,
                        p.regions.iter().map(|x| x.id.as_str()),
                        "regions",
                    ));
                }
                Some((r, id)) if !r.is_empty() => (
                    Some(p.region_slug_for_api_id(r).to_string()),
                    id.to_string(),
                ),
                _ => (
                    record
                        .as_ref()
                        .map(|r| r.region.clone())
                        .filter(|r| !r.is_empty()),
                    rest.to_string(),
                ),
            };
            if id.is_empty() {
                return Err(bad_input(format!(
                    "'{text}' names no node id — write PROVIDER:ID, e.g. {prov}:12345"
                )));
            }
            let variant = record
                .as_ref()
                .map(|r| r.api_variant.clone())
                .unwrap_or_default();
            return Ok((
                NodeRef {
                    provider: p.id().to_string(),
                    id,
                    region,
                    variant,
                },
                record,
            ));
        }
        if record.is_none() {
            ctx.provider(prov)?;
        }
    }
    let Some(rec) = record else {
        return Err(bad_input(format!(
            "no node '{text}' in the inventory — name a recorded node, or write PROVIDER:ID (see `capsule openmesh list`)"
        )));
    };
    let Some(id) = rec.provider_id.clone() else {
        return Err(bad_input(format!(
            "node '{text}' was never created at {} — run `capsule openmesh sync --provider {}` or `deploy --resume {}`",
            rec.provider, rec.provider, rec.group_id
        )));
    };
    let region = Some(rec.region.clone()).filter(|r| !r.is_empty());
    Ok((
        NodeRef {
            provider: rec.provider.clone(),
            id,
            region,
            variant: rec.api_variant.clone(),
        },
        Some(rec),
    ))
}

/// The account whose credentials act on a node: its recorded one, else the command's.
pub(super) fn account_of<'a>(ctx: &'a Ctx, record: Option<&'a NodeRecord>) -> &'a str {
    record.map_or(ctx.account.as_str(), |r| r.account.as_str())
}

pub(super) fn driver_error(e: DriverError) -> anyhow::Error {
    anyhow::Error::new(e)
}

// ---------------------------------------------------------------------------------------------
// status, start, stop, delete

pub fn status(ctx: &Ctx, args: &NodeArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(ctx)?;
    let (node_ref, record) = resolve_node(ctx, store.as_ref(), &args.node)?;
    let account = account_of(ctx, record.as_ref()).to_string();
    let driver = ctx.driver_for(&node_ref.provider, &account)?;
    let rt = ctx.runtime()?;
    super::cleanup::settle(
        ctx,
        store.as_ref(),
        &rt,
        Some(&[(node_ref.provider.clone(), account)]),
    )?;
    let mut node = rt.block_on(driver.get(&node_ref)).map_err(driver_error)?;
    if node.state == NodeState::Deleted {
        if record.as_ref().is_some_and(|r| still_hidden(ctx, r)) {
            // Some APIs hide a node until it is provisioned: not found yet is not deleted.
            node.state = NodeState::Pending;
            node.raw_status = "provisioning (not listed yet)".into();
        } else if !deleted_by_capsule(store.as_ref(), &node_ref, record.as_ref())? {
            // Gone without capsule deleting it, or never there: say so, not "deleted".
            let hint = if record.is_some() {
                format!(
                    " — `capsule openmesh sync --provider {} --forget` updates the record",
                    node_ref.provider
                )
            } else {
                String::new()
            };
            return Err(anyhow::anyhow!(
                "node {} not found at {}{hint}",
                node_ref.id,
                node_ref.provider
            ));
        }
    }
    if let Some(r) = &record {
        store.record_observation(&r.deploy_id, &observe(&node), Action::Status, "")?;
    }
    let row = node_json(ctx, &node, record.as_ref(), &store.expiries()?);
    show_nodes(ctx, &[row])?;
    Ok(ExitCode::SUCCESS)
}

/// Whether capsule asked for this node's deletion (its record says so, or an event of a delete
/// of the unrecorded node does).
fn deleted_by_capsule(
    store: &dyn Store,
    node_ref: &NodeRef,
    record: Option<&NodeRecord>,
) -> anyhow::Result<bool> {
    Ok(match record {
        Some(r) => matches!(r.status, NodeStatus::Deleting | NodeStatus::Deleted),
        None => store
            .deleted_unrecorded(&format!("{}:{}", node_ref.provider, node_ref.id))?
            .is_some(),
    })
}

/// A live node created within the provider's hiding window (it may not be listed yet).
fn still_hidden(ctx: &Ctx, r: &NodeRecord) -> bool {
    let window = ctx
        .catalog
        .provider(&r.provider)
        .map_or(0.0, |p| p.api.limits.hidden_after_create_seconds);
    let gone = matches!(
        r.status,
        NodeStatus::Deleting | NodeStatus::Deleted | NodeStatus::Error
    );
    if window <= 0.0 || !r.is_live() || gone {
        return false;
    }
    let since = r.created_at.as_deref().unwrap_or(&r.recorded_at);
    state::time::unix(since).is_some_and(|t| (state::time::now_unix() - t) as f64 <= window)
}

/// Ask on a terminal; off one, `--yes` is required.
pub(super) fn confirm(ctx: &Ctx, question: &str, flag_hint: &str) -> anyhow::Result<bool> {
    if ctx.yes {
        return Ok(true);
    }
    if !ctx.interactive {
        return Err(bad_input(format!(
            "{question} — refusing without confirmation off a terminal; pass {flag_hint}"
        )));
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

// ---------------------------------------------------------------------------------------------
// list

/// The accounts of a provider a command that lists everything asks: with `--account`, that
/// one; otherwise the default account, each account stored in the credentials file, and each
/// account `recorded` (live nodes) names. Not all of them need have credentials.
pub(super) fn accounts_of(
    ctx: &Ctx,
    p: &ProviderEntry,
    recorded: &[NodeRecord],
) -> anyhow::Result<Vec<String>> {
    let mut accounts = vec![ctx.account.clone()];
    if ctx.account_named {
        return Ok(accounts);
    }
    let stored = crate::credentials::stored_accounts(&ctx.home, p.id())?;
    let in_use = recorded.iter().filter(|n| n.provider == p.id());
    for a in stored.into_iter().chain(in_use.map(|n| n.account.clone())) {
        if !accounts.contains(&a) {
            accounts.push(a);
        }
    }
    Ok(accounts)
}

/// Live recorded nodes, for [`accounts_of`] (none needed with `--account`).
pub(super) fn recorded_for_accounts(
    ctx: &Ctx,
    store: &dyn Store,
) -> anyhow::Result<Vec<NodeRecord>> {
    if ctx.account_named {
        return Ok(Vec::new());
    }
    store.list_nodes(&state::NodeFilter::default())
}

/// The provider accounts `list` asks ([`accounts_of`]) that have credentials. A provider named
/// with `--provider` is asked even unconfigured (its error is the answer); a broken
/// credentials file is an error, never "nothing configured".
fn list_accounts<'a>(
    ctx: &'a Ctx,
    store: &dyn Store,
    args: &ListArgs,
) -> anyhow::Result<Vec<(&'a ProviderEntry, String)>> {
    let named = !args.providers.is_empty();
    let providers: Vec<&ProviderEntry> = if named {
        args.providers
            .iter()
            .map(|p| ctx.provider(p))
            .collect::<anyhow::Result<_>>()?
    } else {
        ctx.catalog.providers.iter().collect()
    };
    let recorded = recorded_for_accounts(ctx, store)?;
    let mut out = Vec::new();
    for p in providers {
        let mut usable = Vec::new();
        for a in accounts_of(ctx, p, &recorded)? {
            if ctx.configured(p, &a)? {
                usable.push(a);
            }
        }
        if usable.is_empty() && named {
            usable.push(ctx.account.clone());
        }
        out.extend(usable.into_iter().map(|a| (p, a)));
    }
    Ok(out)
}

pub fn list(ctx: &Ctx, args: &ListArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(ctx)?;
    let pairs = list_accounts(ctx, store.as_ref(), args)?;
    if pairs.is_empty() {
        return Err(bad_input(
            "no provider is configured — run `capsule openmesh provider configure NAME --api-key KEY` or name one with --provider",
        ));
    }
    let mut drivers = Vec::new();
    let mut failed = Vec::new();
    for (p, account) in &pairs {
        let at = super::cleanup::at_account(p.id(), account);
        match ctx.driver_for(p.id(), account) {
            Ok(d) => drivers.push((account.clone(), d)),
            Err(e) if !args.providers.is_empty() => return Err(e),
            Err(e) => failed.push((at, e.to_string())),
        }
    }
    let rt = ctx.runtime()?;
    let all = args.all;
    // Every provider account is listed at once (bounded); results come back in order.
    let results = rt.block_on(crate::engine::fan_out(
        drivers,
        crate::engine::DEFAULT_LIMIT,
        &crate::engine::Progress::hidden(),
        move |(_, d)| async move { d.list(all).await },
    ));
    let results: Vec<_> = results
        .into_iter()
        .map(|((account, d), r)| ((d.provider_id().to_string(), account), r))
        .collect();
    let listed: Vec<super::cleanup::Account> = results
        .iter()
        .filter(|(_, r)| matches!(r, Ok(Ok(_))))
        .map(|(key, _)| key.clone())
        .collect();
    super::cleanup::settle(ctx, store.as_ref(), &rt, Some(&listed))?;
    let expires = store.expiries()?;
    let mut rows: Vec<NodeRow> = Vec::new();
    for ((id, account), r) in results {
        match r {
            Ok(Ok(nodes)) => {
                for n in nodes {
                    // Two accounts holding the same keys list the same node once.
                    if rows
                        .iter()
                        .any(|r| r.provider == n.provider && r.node_id == n.id)
                    {
                        continue;
                    }
                    let rec = store.node_by_provider_id(&n.provider, &n.id)?;
                    let mut row = node_json(ctx, &n, rec.as_ref(), &expires);
                    row.account = account.clone();
                    rows.push(row);
                }
            }
            Ok(Err(e)) => failed.push((super::cleanup::at_account(&id, &account), e.to_string())),
            Err(e) => failed.push((super::cleanup::at_account(&id, &account), e.to_string())),
        }
    }
    rows.sort_by(|a, b| (&a.provider, &a.name, &a.id).cmp(&(&b.provider, &b.name, &b.id)));
    show_nodes(ctx, &rows)?;
    for (id, msg) in &failed {
        messages::info(super::provider_failure(id, "listing failed", msg));
    }
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
