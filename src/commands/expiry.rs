//! Node expiry: `deploy --ttl` records when a node is due, `list` and `inventory` show the time
//! left, and `reap` deletes the nodes whose time ran out (through the bulk delete, so it asks
//! first, needs `--yes` off a terminal, and records why in each node's history).

use super::bulk::{self, Row, Target};
use super::nodes;
use crate::cli::{BulkArgs, ReapArgs};
use crate::context::Ctx;
use crate::driver::Lifecycle;
use crate::error::bad_input;
use crate::messages;
use crate::render::{self, col, Column, Kind};
use crate::state::{self, NodeFilter, NodeStatus, Store};
use std::process::ExitCode;
use std::time::Duration;

/// The column that shows an expiry in tables: `in 7h`, or `2h ago` once it ran out.
pub const EXPIRES_COLUMN: Column = col("expires", "expires_at", Kind::Age);

/// `--ttl` as seconds, checked before anything is recorded.
pub fn parse_ttl(ttl: Option<Duration>) -> anyhow::Result<Option<i64>> {
    let Some(d) = ttl else {
        return Ok(None);
    };
    if d.as_secs() < 60 {
        return Err(bad_input(format!(
            "--ttl {} is shorter than a minute — give the node time to boot, e.g. --ttl 8h",
            crate::duration::format(d)
        )));
    }
    Ok(Some(d.as_secs() as i64))
}

/// Record the expiry of freshly deployed nodes, `secs` from now.
pub fn record(store: &dyn Store, deploy_ids: &[String], secs: Option<i64>) -> anyhow::Result<()> {
    let Some(secs) = secs else {
        return Ok(());
    };
    let at = state::time::format(state::time::now_unix() + secs);
    let items: Vec<(String, String)> = deploy_ids.iter().map(|d| (d.clone(), at.clone())).collect();
    store.set_expiries(&items)
}

/// `reap`: delete the live nodes whose expiry has passed.
pub fn reap(ctx: &Ctx, args: &ReapArgs) -> anyhow::Result<ExitCode> {
    let store = nodes::open_store(ctx)?;
    let now = state::time::now_unix();
    let expiries = store.expiries()?;
    let mut targets = Vec::new();
    let mut rows: Vec<Row> = Vec::new();
    let mut due = Vec::new();
    for r in store.list_nodes(&NodeFilter::default())? {
        let Some(at) = expiries.get(&r.deploy_id) else {
            continue;
        };
        // A node whose deletion the provider already accepted is not reaped twice.
        if state::time::unix(at).is_none_or(|t| t > now) || r.status == NodeStatus::Deleting {
            continue;
        }
        due.push(render::Row::of(&Due {
            name: &r.name,
            provider: &r.provider,
            id: r.provider_id.as_deref(),
            region: &r.region,
            expires_at: at,
        }));
        let note = format!("reaped: expired at {at} (deploy --ttl)");
        match r.provider_id.clone() {
            Some(id) => targets.push(Target::recorded(r, id, note)),
            None => rows.push(Row::never_created(&r)),
        }
    }
    if args.dry_run {
        let cols = [
            col("name", "name", Kind::Text),
            col("provider", "provider", Kind::Text),
            col("id", "id", Kind::Text),
            col("region", "region", Kind::Text),
            EXPIRES_COLUMN,
        ];
        render::listing(&mut super::stdout(), ctx.style, &cols, &due)?;
        return Ok(ExitCode::SUCCESS);
    }
    if targets.is_empty() && rows.is_empty() {
        messages::info("no node has expired; nothing to reap");
        return Ok(ExitCode::SUCCESS);
    }
    let opts = BulkArgs {
        batch: args.batch.clone(),
        ..BulkArgs::default()
    };
    bulk::execute(
        ctx,
        store.as_ref(),
        targets,
        rows,
        Lifecycle::Delete,
        &opts,
        true,
        " (their --ttl ran out)",
    )
}

/// A node `reap --dry-run` would delete (`golden/schema/reap-dry-run.json`).
#[derive(Debug, serde::Serialize)]
struct Due<'a> {
    name: &'a str,
    provider: &'a str,
    id: Option<&'a str>,
    region: &'a str,
    expires_at: &'a str,
}
