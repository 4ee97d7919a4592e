//! `cost`: what the recorded nodes cost at the prices paid, by provider, region, template or
//! node, with the current month's projection. The arithmetic is `state::cost`; this file turns
//! the catalog into billing rules and the report into rows.

use super::stdout;
use crate::catalog::Catalog;
use crate::cli::{CostArgs, CostGroup};
use crate::context::Ctx;
use crate::error::bad_input;
use crate::messages;
use crate::render::{self, col, Column, Kind};
use crate::state::cost::{self, Billing, BillingRule, GroupBy};
use crate::state::{self, time, NodeFilter};
use serde::Serialize;
use std::process::ExitCode;

/// The total row of `cost` by provider, region, template or node: the group rows' schema, in
/// USD (`golden/schema/cost.json`).
#[derive(Debug, Serialize)]
struct GroupTotal {
    group: &'static str,
    currency: &'static str,
    nodes: u64,
    running_now: u64,
    hours: f64,
    cost: f64,
    cost_usd: f64,
    month_to_date_usd: f64,
    projected_month_usd: f64,
}

/// The total row of `cost --by day|week|month`: the bucket rows' schema, without a node count
/// (`golden/schema/cost-by-month.json`).
#[derive(Debug, Serialize)]
struct PeriodTotal {
    period: &'static str,
    start: Option<String>,
    end: Option<String>,
    nodes: Option<u64>,
    hours: f64,
    cost_usd: f64,
}

/// Billing rules and USD rates from the catalog.
pub(crate) fn billing(catalog: &Catalog) -> Billing {
    let mut b = Billing::new();
    for p in &catalog.providers {
        b.set_rule(
            p.id(),
            BillingRule {
                billed_when_stopped: p.meta.billed_when_stopped,
                monthly_cap_hours: p.meta.monthly_cap_hours,
            },
        );
    }
    for t in &catalog.templates {
        if let Some(cap) = t.monthly_cap_hours {
            b.set_template_cap(&t.provider, &t.id, cap);
        }
    }
    for r in &catalog.rates {
        if r.usd > 0.0 {
            b.set_rate(&r.currency, r.usd);
        }
    }
    b
}

const BUCKET_COLUMNS: &[Column] = &[
    col("period", "period", Kind::Text).ident(),
    col("from", "start", Kind::Text).prio(2),
    col("until", "end", Kind::Text).prio(2),
    col("nodes", "nodes", Kind::Num).prio(1),
    col("hours", "hours", Kind::Num).prio(1),
    col("cost $", "cost_usd", Kind::Usd).prio(0),
];

fn columns(by: CostGroup) -> Vec<Column> {
    let group = match by {
        CostGroup::Provider => col("provider", "group", Kind::Text),
        CostGroup::Region => col("region", "group", Kind::Text),
        CostGroup::Template => col("template", "group", Kind::Text),
        CostGroup::Node => col("node", "group", Kind::Text),
        CostGroup::Day | CostGroup::Week | CostGroup::Month => return BUCKET_COLUMNS.to_vec(),
    };
    let second = match by {
        CostGroup::Provider => None,
        CostGroup::Node => Some(col("deploy id", "deploy_id", Kind::Text)),
        _ => Some(col("provider", "provider", Kind::Text)),
    };
    let mut cols = vec![group];
    cols.extend(second);
    cols.extend([
        col("nodes", "nodes", Kind::Num),
        col("hours", "hours", Kind::Num),
        col("cost", "cost", Kind::Num),
        col("cur", "currency", Kind::Text),
        col("cost $", "cost_usd", Kind::Usd),
        col("month so far $", "month_to_date_usd", Kind::Usd),
        col("month projected $", "projected_month_usd", Kind::Usd),
    ]);
    cols
}

/// The `--since`/`--until` window in Unix seconds: `--since` defaults to `default_since`,
/// `--until` to now; an empty window is bad input.
pub(super) fn window(
    since: Option<&str>,
    until: Option<&str>,
    now: i64,
    default_since: i64,
) -> anyhow::Result<cost::Window> {
    let since = match since {
        Some(s) => time::parse_when(s, "--since", now)?,
        None => default_since,
    };
    let until = match until {
        Some(u) => time::parse_when(u, "--until", now)?,
        None => now,
    };
    if until <= since {
        return Err(bad_input(format!(
            "--until {} is not after --since {} — give a later --until or an earlier --since",
            time::format(until),
            time::format(since)
        )));
    }
    Ok(cost::Window { since, until, now })
}

pub fn run(ctx: &Ctx, args: &CostArgs) -> anyhow::Result<ExitCode> {
    if args.chart {
        return super::report::cost_chart(ctx, args);
    }
    let now = time::now_unix();
    let win = window(args.since.as_deref(), args.until.as_deref(), now, 0)?;
    let by = match args.by {
        CostGroup::Provider => GroupBy::Provider,
        CostGroup::Region => GroupBy::Region,
        CostGroup::Template => GroupBy::Template,
        CostGroup::Node => GroupBy::Node,
        CostGroup::Day => return over_time(ctx, args.by, cost::Period::Day, win),
        CostGroup::Week => return over_time(ctx, args.by, cost::Period::Week, win),
        CostGroup::Month => return over_time(ctx, args.by, cost::Period::Month, win),
    };
    let store = state::open_read(&ctx.home)?;
    let bill = billing(&ctx.catalog);
    let report = cost::report(store.as_ref(), &bill, &NodeFilter::default(), by, win)?;
    let mut rows: Vec<render::Row> = report.rows.iter().map(render::Row::of).collect();
    // The total row: USD only (native currencies may differ).
    rows.push(
        render::Row::of(&GroupTotal {
            group: "total",
            currency: "USD",
            nodes: report.rows.iter().map(|r| r.nodes).sum(),
            running_now: report.rows.iter().map(|r| r.running_now).sum(),
            hours: (report.rows.iter().map(|r| r.hours).sum::<f64>() * 1e4).round() / 1e4,
            cost: report.total_usd,
            cost_usd: report.total_usd,
            month_to_date_usd: report.month_to_date_usd,
            projected_month_usd: report.projected_month_usd,
        })
        .highlighted(true),
    );
    render::listing(&mut stdout(), ctx.style, &columns(args.by), &rows)?;
    for c in &report.missing_rates {
        messages::note(format!("no USD rate for {c} in the catalog — its cost is shown in {c} only and left out of the USD totals"));
    }
    if ctx.format() == crate::cli::OutputFormat::Table {
        let from = if args.since.is_some() {
            report.since.clone()
        } else {
            "the first record".to_string()
        };
        messages::note(format!(
            "cost from {from} to {}; the projection is for {} if every node stays as it is now",
            report.until, report.month
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `cost --by day|week|month`: one row per time bucket, in USD, and a total.
fn over_time(
    ctx: &Ctx,
    by: CostGroup,
    period: cost::Period,
    win: cost::Window,
) -> anyhow::Result<ExitCode> {
    let store = state::open(&ctx.home)?;
    let bill = billing(&ctx.catalog);
    let filter = NodeFilter::default();
    let (buckets, missing) = cost::buckets(store.as_ref(), &bill, &filter, period, win)?;
    let mut rows: Vec<render::Row> = buckets.iter().map(render::Row::of).collect();
    if !buckets.is_empty() {
        let total: f64 = buckets.iter().map(|b| b.cost_usd).sum();
        let hours: f64 = buckets.iter().map(|b| b.hours).sum();
        rows.push(
            render::Row::of(&PeriodTotal {
                period: "total",
                start: buckets.first().map(|b| b.start.clone()),
                end: buckets.last().map(|b| b.end.clone()),
                nodes: None,
                hours: (hours * 1e4).round() / 1e4,
                cost_usd: (total * 1e6).round() / 1e6,
            })
            .highlighted(true),
        );
    }
    render::listing(&mut stdout(), ctx.style, &columns(by), &rows)?;
    for c in &missing {
        messages::note(format!(
            "no USD rate for {c} in the catalog — its nodes are left out of the buckets"
        ));
    }
    if rows.is_empty() && ctx.format() == crate::cli::OutputFormat::Table {
        messages::info("no recorded node has billable time in this window");
    }
    Ok(ExitCode::SUCCESS)
}
