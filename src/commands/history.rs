//! `history`: the events the lifecycle commands, imports and syncs recorded, and
//! `history clean`, which drops old events but never those of live nodes.

use super::inventory::find;
use super::stdout;
use crate::cli::{HistoryArgs, HistoryCommand};
use crate::context::Ctx;
use crate::messages;
use crate::render::{self, col, Column, Kind};
use crate::state::{self, time, Event, EventFilter};
use std::process::ExitCode;
use std::time::Duration;

const COLUMNS: &[Column] = &[
    col("time", "time", Kind::Age).prio(0),
    col("node", "node", Kind::Text).prio(0),
    col("provider", "provider", Kind::Text).prio(2),
    col("action", "action", Kind::Text).prio(0),
    col("outcome", "outcome", Kind::Status).prio(1),
    col("state", "state", Kind::Status).prio(3),
    col("message", "message", Kind::Text).prio(4),
];

/// Who caused an event: shown in tables when it tells something (see [`columns`]).
pub(crate) const ACTOR_COLUMNS: [Column; 2] = [
    col("machine", "machine", Kind::Text).prio(2),
    col("user", "user", Kind::Text).prio(2),
];

/// Whether any event came from another machine or user than the one running the command (a
/// store a team shares). Events that do not know (recorded before capsule kept it) do not count.
pub(crate) fn others_in(events: &[Event]) -> bool {
    let me = state::actor::current();
    events.iter().any(|e| {
        let differs = |field: &Option<String>, mine: &str| {
            field.as_deref().is_some_and(|v| !v.is_empty() && v != mine)
        };
        differs(&e.machine, &me.machine) || differs(&e.user, &me.user)
    })
}

/// History's columns: `machine` and `user` after `node` in a table once another machine or
/// user appears (as `account` appears once another account is in use), always in CSV (JSON
/// always has the keys).
fn columns(ctx: &Ctx, events: &[Event]) -> Vec<Column> {
    let mut cols = COLUMNS.to_vec();
    if ctx.format() == crate::cli::OutputFormat::Csv || others_in(events) {
        let at = cols.len() - 1;
        cols.splice(at..at, ACTOR_COLUMNS);
    }
    cols
}

pub fn run(ctx: &Ctx, args: HistoryArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(HistoryCommand::Clean {
            older_than,
            dry_run,
        }) => clean(ctx, older_than, dry_run),
        None => list(ctx, &args),
    }
}

fn list(ctx: &Ctx, args: &HistoryArgs) -> anyhow::Result<ExitCode> {
    let store = state::open_read(&ctx.home)?;
    let deploy_id = match &args.node {
        Some(n) => Some(find(store.as_ref(), n)?.deploy_id),
        None => None,
    };
    let since = match &args.since {
        Some(s) => Some(time::format(time::parse_when(
            s,
            "--since",
            time::now_unix(),
        )?)),
        None => None,
    };
    let events = store.events(&EventFilter {
        deploy_id,
        since,
        limit: args.limit,
        ..EventFilter::default()
    })?;
    let rows: Vec<render::Row> = events.iter().map(render::Row::of).collect();
    let columns = columns(ctx, &events);
    render::listing(&mut stdout(), ctx.style, &columns, &rows)?;
    if rows.is_empty() && ctx.format() == crate::cli::OutputFormat::Table {
        messages::info("no events match");
    }
    Ok(ExitCode::SUCCESS)
}

fn clean(ctx: &Ctx, age: Duration, dry_run: bool) -> anyhow::Result<ExitCode> {
    let before = time::format(time::now_unix() - age.as_secs() as i64);
    let store = state::open(&ctx.home)?;
    if !dry_run {
        let count = store.clean_events(&before, true)?.removed;
        if count > 0
            && !super::nodes::confirm(
                ctx,
                &format!(
                    "Remove {count} event{} older than {before} from the history?",
                    if count == 1 { "" } else { "s" }
                ),
                "--yes (or see them first with --dry-run)",
            )?
        {
            messages::info("nothing removed");
            return Ok(ExitCode::from(1));
        }
    }
    let report = store.clean_events(&before, dry_run)?;
    let removed_key = if dry_run { "would remove" } else { "removed" };
    let pairs = vec![
        ("older than".to_string(), before.clone()),
        (removed_key.to_string(), report.removed.to_string()),
        (
            "kept (live nodes)".to_string(),
            report.kept_live.to_string(),
        ),
    ];
    let doc = Cleaned {
        before: &before,
        dry_run,
        removed: report.removed,
        kept_live: report.kept_live,
    };
    render::detail(&mut stdout(), ctx.style, &pairs, &doc)?;
    Ok(ExitCode::SUCCESS)
}

/// `history clean -o json` (`golden/schema/history-clean.json`).
#[derive(Debug, serde::Serialize)]
struct Cleaned<'a> {
    before: &'a str,
    dry_run: bool,
    /// Removed, or would be with `--dry-run`.
    removed: u64,
    /// Old events kept because their node is live.
    kept_live: u64,
}
