//! `inventory`: the local record of nodes — `list`, `show`, `stats`, `export`, `import`.
//!
//! Reads the store and hands rows to `render`; export and import stream through
//! `state::transfer`, which owns the file format.

use super::cost::billing;
use super::stdout;
use crate::cli::{FileFormat, InventoryArgs, InventoryCommand, InventoryFilter};
use crate::context::Ctx;
use crate::error::{bad_input, unknown};
use crate::messages;
use crate::render::{self, col, Column, Kind};
use crate::state::cost::Billing;
use crate::state::transfer::{self, Format, RowError};
use crate::state::{self, EventFilter, NodeFilter, NodeRecord, NodeStatus, Store};
use serde::Serialize;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

pub fn run(ctx: &Ctx, args: InventoryArgs) -> anyhow::Result<ExitCode> {
    let outer = args.filter;
    match args.command {
        None => list(ctx, &outer),
        Some(InventoryCommand::List(f)) => list(ctx, &merge(&outer, &f)),
        Some(InventoryCommand::Show { node }) => show(ctx, &node),
        Some(InventoryCommand::Stats(f)) => stats(ctx, &merge(&outer, &f)),
        Some(InventoryCommand::Cleanups) => cleanups(ctx),
        Some(InventoryCommand::Export { file, format }) => export(ctx, &outer, &file, format),
        Some(InventoryCommand::Import {
            file,
            format,
            dry_run,
        }) => import(ctx, &file, format, dry_run),
    }
}

/// Filters given before and after the subcommand (`inventory --provider a list --status running`).
fn merge(a: &InventoryFilter, b: &InventoryFilter) -> InventoryFilter {
    InventoryFilter {
        providers: a.providers.iter().chain(&b.providers).cloned().collect(),
        region: b.region.clone().or_else(|| a.region.clone()),
        statuses: a.statuses.iter().chain(&b.statuses).cloned().collect(),
        name: b.name.clone().or_else(|| a.name.clone()),
        all: a.all || b.all,
    }
}

/// The store filter for the command-line filter: statuses and the name glob are checked here.
pub(crate) fn node_filter(ctx: &Ctx, f: &InventoryFilter) -> anyhow::Result<NodeFilter> {
    let mut statuses = Vec::new();
    for s in f
        .statuses
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        match NodeStatus::parse(s) {
            Some(st) => statuses.push(st),
            None => {
                return Err(unknown(
                    "status",
                    s,
                    NodeStatus::ALL.map(NodeStatus::as_str),
                    "inventory --help",
                ))
            }
        }
    }
    let name_glob = match &f.name {
        None => None,
        Some(pattern) => Some(
            globset::Glob::new(pattern)
                .map_err(|e| {
                    bad_input(format!(
                        "--name '{pattern}' is not a valid glob ({}) — write it like 'web-*'",
                        e.kind()
                    ))
                })?
                .compile_matcher(),
        ),
    };
    // Providers keep the catalog's spelling when the catalog knows them; others (a provider the
    // catalog dropped) are matched as written.
    let providers = f
        .providers
        .iter()
        .flat_map(|p| p.split(','))
        .map(|p| {
            ctx.catalog
                .provider(p.trim())
                .map_or_else(|| p.trim().to_string(), |e| e.id().to_string())
        })
        .collect();
    // Asking for deleted nodes by status implies looking past the live set.
    let include_deleted = f.all
        || statuses
            .iter()
            .any(|s| matches!(s, NodeStatus::Deleted | NodeStatus::Error));
    Ok(NodeFilter {
        providers,
        // `--account` (or CAPSULE_ACCOUNT) narrows the inventory to that account.
        accounts: if ctx.account_named {
            vec![ctx.account.clone()]
        } else {
            Vec::new()
        },
        regions: f.region.iter().cloned().collect(),
        statuses,
        include_deleted,
        name_glob,
    })
}

fn open(ctx: &Ctx) -> anyhow::Result<Box<dyn Store>> {
    state::open(&ctx.home)
}

/// For the commands that only read: a read-only or empty home still answers.
fn open_read(ctx: &Ctx) -> anyhow::Result<Box<dyn Store>> {
    state::open_read(&ctx.home)
}

// ------------------------------------------------------------------------------------ list

const LIST_COLUMNS: &[Column] = &[
    col("name", "name", Kind::Text).prio(0),
    col("provider", "provider", Kind::Text).prio(0),
    col("region", "region", Kind::Text).prio(2),
    col("template", "template", Kind::Text).prio(3),
    col("status", "status", Kind::Status).prio(0),
    col("ipv4", "ipv4", Kind::Text).prio(1),
    col("$/h", "hourly_usd", Kind::Usd).prio(3),
    col("$/mo", "monthly_usd", Kind::Usd).prio(2),
    col("created", "created_at", Kind::Age).prio(4),
    col("deploy id", "deploy_id", Kind::Text).prio(5),
    col("price_hourly", "price_hourly", Kind::Money("currency")).extra(),
    col("price_monthly", "price_monthly", Kind::Money("currency")).extra(),
];

/// One node of `inventory` (its documented JSON): every record field, its run rate in USD, and
/// the xNode stage and expiry when the listing has any.
#[derive(Debug, Serialize)]
pub(crate) struct InventoryRow<'a> {
    #[serde(flatten)]
    pub node: &'a NodeRecord,
    pub hourly_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub xnode: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Option<&'a str>>,
}

impl<'a> InventoryRow<'a> {
    pub(crate) fn new(node: &'a NodeRecord, billing: &Billing) -> InventoryRow<'a> {
        let rate = billing.run_rate_usd(node);
        InventoryRow {
            node,
            hourly_usd: rate.map(|r| round(r.0, 6)),
            monthly_usd: rate.map(|r| round(r.1, 4)),
            xnode: None,
            expires_at: None,
        }
    }

    /// The listing row; `--quiet` prints a reference `delete`, `status` and the others take.
    fn row(&self) -> render::Row {
        render::Row::of(self).with_id(match &self.node.provider_id {
            Some(id) => format!("{}:{id}", self.node.provider),
            None => self.node.deploy_id.clone(),
        })
    }
}

impl InventoryRow<'_> {
    /// The row's fields as lines of text, in the order of its JSON keys: money as USD, a
    /// missing value as `-`.
    fn pairs(&self) -> Vec<(String, String)> {
        let n = self.node;
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let usd = |v: Option<f64>| v.map(render::usd).unwrap_or_default();
        let mut pairs = vec![
            ("deploy_id", n.deploy_id.clone()),
            ("group_id", n.group_id.clone()),
            ("name", n.name.clone()),
            ("provider", n.provider.clone()),
            ("account", n.account.clone()),
            ("provider_id", opt(&n.provider_id)),
            ("template", n.template.clone()),
            ("plan", n.plan.clone()),
            ("region", n.region.clone()),
            ("api_variant", n.api_variant.clone()),
            ("status", n.status.as_str().to_string()),
            ("raw_status", n.raw_status.clone()),
            ("ipv4", opt(&n.ipv4)),
            ("price_hourly", json_number(n.price_hourly)),
            ("price_monthly", json_number(n.price_monthly)),
            ("currency", n.currency.clone()),
            ("prices_as_of", n.prices_as_of.clone()),
            ("recorded_at", n.recorded_at.clone()),
            ("created_at", opt(&n.created_at)),
            ("started_at", opt(&n.started_at)),
            ("stopped_at", opt(&n.stopped_at)),
            ("deleted_at", opt(&n.deleted_at)),
            ("updated_at", n.updated_at.clone()),
            ("hourly_usd", usd(self.hourly_usd)),
            ("monthly_usd", usd(self.monthly_usd)),
        ];
        if let Some(stage) = self.xnode {
            pairs.push(("xnode", stage.to_string()));
        }
        if let Some(at) = self.expires_at {
            pairs.push(("expires_at", at.unwrap_or_default().to_string()));
        }
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), if v.is_empty() { "-".into() } else { v }))
            .collect()
    }
}

/// A number as JSON writes it (`6.0`, `0.0198`); empty when it has no JSON form.
fn json_number(v: f64) -> String {
    serde_json::Number::from_f64(v).map_or_else(String::new, |n| n.to_string())
}

/// `inventory show NODE` (`golden/schema/inventory-show.json`): the inventory row, the tag it
/// carries at the provider, its timeline and its events.
#[derive(Debug, Serialize)]
struct NodeDetail<'a> {
    #[serde(flatten)]
    row: InventoryRow<'a>,
    tag: String,
    timeline: &'a [state::Transition],
    events: &'a [state::Event],
}

impl NodeDetail<'_> {
    /// The table's lines: the row's, then the tag and the timeline in one line.
    fn pairs(&self) -> Vec<(String, String)> {
        let mut pairs = self.row.pairs();
        pairs.push(("tag".into(), self.tag.clone()));
        let transitions: Vec<String> = self
            .timeline
            .iter()
            .map(|t| format!("{} {}", t.since, t.state))
            .collect();
        pairs.push(("timeline".into(), transitions.join(", ")));
        pairs
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

fn list(ctx: &Ctx, f: &InventoryFilter) -> anyhow::Result<ExitCode> {
    let store = open_read(ctx)?;
    let filter = node_filter(ctx, f)?;
    let billing = billing(&ctx.catalog);
    // xNodes show the last readiness stage recorded (a column only when there are any).
    let stages = super::xnode::recorded_stages(store.as_ref())?;
    let mut columns: Vec<Column> = LIST_COLUMNS.to_vec();
    if !stages.is_empty() {
        columns.insert(5, col("xnode", "xnode", Kind::Text));
    }
    if store
        .accounts()?
        .iter()
        .any(|a| a != state::DEFAULT_ACCOUNT)
    {
        columns.insert(2, super::nodes::ACCOUNT_COLUMN);
    }
    // Rows go out as they are read: JSON and CSV listings of any size use flat memory.
    let mut out = stdout();
    // An `expires` column (time left) when some node was deployed with `--ttl`.
    let expires = store.expiries()?;
    if !expires.is_empty() {
        let at = columns
            .iter()
            .position(|c| c.key == "created_at")
            .unwrap_or(columns.len());
        columns.insert(at, super::expiry::EXPIRES_COLUMN);
    }
    let mut rows = render::RowStream::new(&mut out, ctx.style, &columns)?;
    let table = ctx.format() == crate::cli::OutputFormat::Table;
    store.for_each_node(&filter, &mut |n| {
        let mut item = InventoryRow::new(&n, &billing);
        item.xnode = stages.get(&n.deploy_id).map(String::as_str);
        if !expires.is_empty() {
            item.expires_at = Some(expires.get(&n.deploy_id).map(String::as_str));
        }
        let mut row = item.row();
        if table {
            // People read `in doubt`; JSON and CSV keep the status word.
            row.data["status"] = n.status.label().into();
        }
        Ok(rows.push(row)?)
    })?;
    let count = rows.finish()?;
    if count == 0 && ctx.format() == crate::cli::OutputFormat::Table {
        messages::info(
            "no recorded node matches — `capsule openmesh inventory --all` includes deleted ones",
        );
    }
    let pending = store.pending_cleanups(None)?.len();
    if pending > 0 {
        messages::note(format!("{pending} pending cleanup(s) left by deletes — `capsule openmesh inventory cleanups` lists them; `--wait`, the next command on that provider or `sync` finishes them"));
    }
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------------------------------ cleanups

const CLEANUP_COLUMNS: &[Column] = &[
    col("provider", "provider", Kind::Text),
    col("node", "node_ref", Kind::Text),
    col("deploy id", "deploy_id", Kind::Text),
    col("what", "what", Kind::Text),
    col("recorded", "recorded_at", Kind::Text),
    col("attempts", "attempts", Kind::Text),
    col("last error", "last_error", Kind::Text),
];

/// Pending cleanups, oldest first.
fn cleanups(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let store = open_read(ctx)?;
    let rows: Vec<render::Row> = store
        .pending_cleanups(None)?
        .iter()
        .map(render::Row::of)
        .collect();
    let mut columns = CLEANUP_COLUMNS.to_vec();
    if super::accounts_in_use(&rows) {
        columns.insert(1, super::nodes::ACCOUNT_COLUMN);
    }
    render::listing(&mut stdout(), ctx.style, &columns, &rows)?;
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------------------------------ show

const EVENT_COLUMNS: &[Column] = &[
    col("time", "time", Kind::Age),
    col("action", "action", Kind::Text),
    col("outcome", "outcome", Kind::Status),
    col("state", "state", Kind::Status),
    col("message", "message", Kind::Text),
];

/// The recorded node a user names (`PROVIDER:ID`, a name, or a deploy id), or an error with a
/// suggestion.
pub(crate) fn find(store: &dyn Store, text: &str) -> anyhow::Result<NodeRecord> {
    if let Some(n) = store.resolve(text)? {
        return Ok(n);
    }
    let names: Vec<String> = store
        .list_nodes(&NodeFilter {
            include_deleted: true,
            ..NodeFilter::default()
        })?
        .into_iter()
        .map(|n| n.name)
        .collect();
    Err(unknown(
        "node",
        text,
        names.iter().map(String::as_str),
        "inventory --all",
    ))
}

fn show(ctx: &Ctx, text: &str) -> anyhow::Result<ExitCode> {
    let store = open_read(ctx)?;
    let node = find(store.as_ref(), text)?;
    let events = store.events(&EventFilter {
        deploy_id: Some(node.deploy_id.clone()),
        ..EventFilter::default()
    })?;
    let timeline = store.timeline(&node.deploy_id)?;
    let billing = billing(&ctx.catalog);
    let doc = NodeDetail {
        row: InventoryRow::new(&node, &billing),
        // The provider's one tag format (the default format for a provider the catalog lost).
        tag: ctx.catalog.provider(&node.provider).map_or_else(
            || crate::catalog::schema::Tagging::default().tag_for(&node.deploy_id),
            |p| p.api.tagging.tag_for(&node.deploy_id),
        ),
        timeline: &timeline,
        events: &events,
    };
    let mut out = stdout();
    render::detail(&mut out, ctx.style, &doc.pairs(), &doc)?;
    if ctx.format() == crate::cli::OutputFormat::Table && !events.is_empty() {
        writeln!(out)?;
        let rows: Vec<render::Row> = events.iter().map(render::Row::of).collect();
        let mut columns = EVENT_COLUMNS.to_vec();
        if super::history::others_in(&events) {
            let at = columns.len() - 1;
            columns.splice(at..at, super::history::ACTOR_COLUMNS);
        }
        render::listing(&mut out, ctx.style, &columns, &rows)?;
    }
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------------------------------ stats

const STATS_COLUMNS: &[Column] = &[
    col("by", "by", Kind::Text).prio(0),
    col("value", "value", Kind::Text).ident(),
    col("nodes", "nodes", Kind::Num).prio(0),
    col("running", "running", Kind::Num).prio(1),
    col("stopped", "stopped", Kind::Num).prio(2),
    col("billable", "billable", Kind::Num).prio(2),
    col("$/h", "hourly_usd", Kind::Usd).prio(1),
    col("$/mo", "monthly_usd", Kind::Usd).prio(0),
    col("oldest", "oldest", Kind::Text).prio(4),
    col("oldest at", "oldest_at", Kind::Age).prio(3),
    col("newest", "newest", Kind::Text).prio(4),
    col("newest at", "newest_at", Kind::Age).prio(3),
];

fn stats(ctx: &Ctx, f: &InventoryFilter) -> anyhow::Result<ExitCode> {
    let store = open_read(ctx)?;
    let filter = node_filter(ctx, f)?;
    let (rows, missing) = state::stats::compute(store.as_ref(), &billing(&ctx.catalog), &filter)?;
    let rows: Vec<render::Row> = rows.iter().map(render::Row::of).collect();
    render::listing(&mut stdout(), ctx.style, STATS_COLUMNS, &rows)?;
    for c in missing {
        messages::note(format!(
            "no USD rate for {c} in the catalog — its nodes are left out of the run rate"
        ));
    }
    Ok(ExitCode::SUCCESS)
}

// ------------------------------------------------------------------------------------ export / import

fn format_of(f: FileFormat) -> Format {
    match f {
        FileFormat::Csv => Format::Csv,
        FileFormat::Json => Format::Json,
    }
}

fn export(
    ctx: &Ctx,
    f: &InventoryFilter,
    file: &str,
    format: Option<FileFormat>,
) -> anyhow::Result<ExitCode> {
    // --format, else the file's extension, else -o, else CSV.
    let lower = file.to_ascii_lowercase();
    let format = match format {
        Some(f) => f,
        None if lower.ends_with(".json") => FileFormat::Json,
        None if lower.ends_with(".csv") => FileFormat::Csv,
        None => match ctx.format() {
            crate::cli::OutputFormat::Json => FileFormat::Json,
            crate::cli::OutputFormat::Csv | crate::cli::OutputFormat::Table => FileFormat::Csv,
            crate::cli::OutputFormat::Yaml => {
                return Err(bad_input(
                    "inventory export writes CSV or JSON, not YAML — use -o json or -o csv",
                ))
            }
        },
    };
    let store = open_read(ctx)?;
    let mut filter = node_filter(ctx, f)?;
    // An export is a backup: deleted nodes are part of it.
    filter.include_deleted = true;
    if file == "-" {
        let mut out = std::io::BufWriter::new(stdout());
        transfer::export(store.as_ref(), &filter, format_of(format), &mut out)?;
        out.flush()?;
    } else {
        // Written whole or not at all: a failed export never leaves half a file.
        let written = crate::atomic_file::replace(Path::new(file), |out| {
            transfer::export(store.as_ref(), &filter, format_of(format), out)
        });
        match written {
            Ok(n) => messages::info(format!("exported {n} nodes to {file}")),
            Err(e) => {
                return Err(e.context(crate::error::Error::Io {
                    message: format!(
                        "cannot write {file} — check the directory exists and is writable"
                    ),
                }));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every bad cell, one per line, each `FILE:ROW:COLUMN: message`.
fn row_errors(errors: &[RowError]) -> anyhow::Error {
    const SHOWN: usize = 20;
    let mut lines: Vec<String> = errors.iter().take(SHOWN).map(ToString::to_string).collect();
    if errors.len() > SHOWN {
        lines.push(format!("… and {} more", errors.len() - SHOWN));
    }
    lines.push("nothing was imported — fix the rows above and import again".into());
    bad_input(lines.join("\n"))
}

fn import(
    ctx: &Ctx,
    file: &Path,
    format: Option<FileFormat>,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let label = file.display().to_string();
    let format = match format {
        Some(f) => format_of(f),
        None if file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json")) =>
        {
            Format::Json
        }
        None => Format::Csv,
    };
    let max = crate::input_file::MAX_CSV;
    let mut input: Box<dyn Read> = if label == "-" {
        Box::new(std::io::stdin().lock().take(max))
    } else {
        // Regular files only, size-capped: a FIFO or /dev/zero is refused, not read forever.
        Box::new(std::io::Cursor::new(crate::input_file::read_bytes(
            file,
            "import file",
            max,
        )?))
    };
    let known = transfer::Known {
        providers: ctx
            .catalog
            .providers
            .iter()
            .map(|p| {
                let slugs = p.regions.iter().map(|r| r.id.clone()).collect();
                (p.id().to_string(), slugs)
            })
            .collect(),
        templates: ctx
            .catalog
            .templates
            .iter()
            .map(|t| (t.id.clone(), t.provider.clone()))
            .collect(),
        currencies: std::iter::once("USD".to_string())
            .chain(ctx.catalog.rates.iter().map(|r| r.currency.to_uppercase()))
            .collect(),
    };
    let parsed = transfer::parse(&mut input, &label, format, &known).map_err(|e| row_errors(&e))?;
    let rows: Vec<NodeRecord> = parsed.iter().map(|(_, n)| n.clone()).collect();
    let store = open(ctx)?;
    let report = store.import_nodes(&rows, dry_run)?;
    if !report.conflicts.is_empty() {
        let errors: Vec<RowError> = report
            .conflicts
            .iter()
            .map(|(i, column, message)| RowError {
                file: label.clone(),
                row: parsed[*i].0,
                column: column.to_string(),
                message: message.clone(),
            })
            .collect();
        return Err(row_errors(&errors));
    }
    let pairs = vec![
        ("file".to_string(), label.clone()),
        ("rows".to_string(), report.rows.to_string()),
        ("added".to_string(), report.added.to_string()),
        ("updated".to_string(), report.updated.to_string()),
        ("unchanged".to_string(), report.unchanged.to_string()),
        (
            "dry run".to_string(),
            if dry_run {
                "yes — nothing was written"
            } else {
                "no"
            }
            .to_string(),
        ),
    ];
    let doc = Imported {
        file: &label,
        rows: report.rows,
        added: report.added,
        updated: report.updated,
        unchanged: report.unchanged,
        dry_run,
    };
    render::detail(&mut stdout(), ctx.style, &pairs, &doc)?;
    Ok(ExitCode::SUCCESS)
}

/// `inventory import -o json` (`golden/schema/inventory-import.json`).
#[derive(Debug, Serialize)]
struct Imported<'a> {
    file: &'a str,
    rows: usize,
    added: usize,
    updated: usize,
    unchanged: usize,
    dry_run: bool,
}
