//! Pictures: `report --html FILE` (one self-contained HTML page) and the terminal bar charts of
//! `compare --chart` and `cost --chart`.
//!
//! Every figure comes from the code the listing commands run, so the numbers are theirs: the
//! templates from `templates`' filter and rows, the cheapest fit from `deploy`'s smart plan, the
//! cost figures from `state::cost::report` and the daily spend from `state::daily`, the fleet
//! from `inventory stats`. This file gathers them; `crate::report` draws the page and
//! `crate::chart` the terminal bars.

use super::catalog::{compare_offers, listed_templates, TemplateRow};
use super::cost::billing;
use super::stdout;
use crate::chart::{self, Bar, BarChart};
use crate::cli::{CostArgs, CostGroup, DeployArgs, OutputFormat, ReportArgs, TemplateFilter};
use crate::context::Ctx;
use crate::error::bad_input;
use crate::messages;
use crate::render::usd;
use crate::report::{
    self, Category, Figure, LegendItem, Page, Point, PointSeries, Section, Series, Table,
};
use crate::state::cost::{self, Billing, CostReport, GroupBy};
use crate::state::daily::{self, DailySpend};
use crate::state::stats::{self, StatsRow};
use crate::state::{self, time, NodeFilter};
use std::io::Write;
use std::process::ExitCode;

/// Ranked bars shown at most; the rest are counted in a note.
const MAX_BARS: usize = 40;
const DAY: i64 = 86_400;

fn chart_needs_table_output(ctx: &Ctx) -> anyhow::Result<()> {
    if ctx.format() != OutputFormat::Table {
        return Err(bad_input(
            "--chart draws a picture for the terminal and has no JSON or CSV form — drop --chart or -o",
        ));
    }
    Ok(())
}

/// The cost window: `--since` (default: midnight UTC 29 days before today, so 30 days with
/// today) to `--until` (default: now).
fn window(since: Option<&str>, until: Option<&str>, now: i64) -> anyhow::Result<cost::Window> {
    super::cost::window(since, until, now, daily::day_start(now) - 29 * DAY)
}

// ---------------------------------------------------------------------------------------------
// terminal charts

/// `compare --chart`: price per hour and per vCPU-hour as bars; the cheapest marked.
pub fn compare_chart(ctx: &Ctx, ids: &[String], include_retired: bool) -> anyhow::Result<ExitCode> {
    chart_needs_table_output(ctx)?;
    let (offers, cheapest) = compare_offers(ctx, ids, include_retired)?;
    ctx.note_stale(offers.iter().map(|o| o.provider.id()));
    let bars = |value: &dyn Fn(&crate::select::Offer) -> f64, unit: &str| -> Vec<Bar> {
        offers
            .iter()
            .map(|o| {
                let c = Some(&o.template.id) == cheapest.as_ref();
                Bar {
                    label: o.template.id.clone(),
                    values: vec![value(o)],
                    value_text: format!("{}{unit}", usd(value(o))),
                    note: if c {
                        "◀ cheapest".into()
                    } else {
                        String::new()
                    },
                    highlight: c,
                }
            })
            .collect()
    };
    let max_text = |bars: &[Bar], unit: &str| {
        let m = bars
            .iter()
            .filter_map(|b| b.values.first())
            .fold(0.0f64, |a, b| a.max(*b));
        format!("{}{unit}", usd(m))
    };
    let hourly = bars(&|o| o.hourly_usd, "/h");
    let per_cpu = bars(
        &|o| o.hourly_usd / f64::from(o.template.cpu.max(1)),
        "/vCPU-h",
    );
    let width = chart::terminal_width();
    let color = ctx.style.color;
    let mut text = chart::draw(
        &BarChart {
            title: "Price per hour (USD, cheapest region of each template)".into(),
            axis: "USD per hour".into(),
            max_text: max_text(&hourly, "/h"),
            series: vec![],
            bars: hourly,
        },
        width,
        color,
    );
    text.push('\n');
    text.push_str(&chart::draw(
        &BarChart {
            title: "Price per vCPU (USD per vCPU-hour)".into(),
            axis: "USD per vCPU per hour".into(),
            max_text: max_text(&per_cpu, "/vCPU-h"),
            series: vec![],
            bars: per_cpu,
        },
        width,
        color,
    ));
    stdout().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// Every node's spend in the window, by day and provider and as `cost --by provider` reports
/// it; with the store and the billing rules they were read with.
fn spend(ctx: &Ctx, win: cost::Window) -> anyhow::Result<Spend> {
    let store = state::open(&ctx.home)?;
    let bill = billing(&ctx.catalog);
    let filter = NodeFilter::default();
    let days = daily::daily(store.as_ref(), &bill, &filter, win)?;
    let costs = cost::report(store.as_ref(), &bill, &filter, GroupBy::Provider, win)?;
    Ok((store, bill, days, costs))
}

type Spend = (Box<dyn state::Store>, Billing, DailySpend, CostReport);

/// `cost --chart`: daily spend stacked by provider, with the month's figures `cost` prints.
pub fn cost_chart(ctx: &Ctx, args: &CostArgs) -> anyhow::Result<ExitCode> {
    chart_needs_table_output(ctx)?;
    if !matches!(args.by, CostGroup::Day | CostGroup::Provider) {
        return Err(bad_input(
            "--chart draws daily spend stacked by provider — use it with --by day, or drop --chart",
        ));
    }
    let now = time::now_unix();
    let win = window(args.since.as_deref(), args.until.as_deref(), now)?;
    let (_, _, days, report) = spend(ctx, win)?;
    let totals = &days.day_totals;
    let max = totals.iter().copied().fold(0.0, f64::max);
    let bars: Vec<Bar> = days
        .days
        .iter()
        .enumerate()
        .map(|(d, day)| Bar {
            label: day.clone(),
            values: days.usd.iter().map(|s| s[d]).collect(),
            value_text: usd(totals[d]),
            note: String::new(),
            highlight: false,
        })
        .collect();
    let mut text = chart::draw(
        &BarChart {
            title: format!(
                "Daily spend by provider, {} to {} (USD)",
                time::format(win.since),
                time::format(win.until.min(now))
            ),
            axis: "USD per day".into(),
            max_text: usd(max),
            series: if days.providers.len() == 1 {
                // One series still gets its legend: it names the provider.
                vec![days.providers[0].clone(), String::new()]
            } else {
                days.providers.clone()
            },
            bars,
        },
        chart::terminal_width(),
        ctx.style.color,
    );
    if days.providers.is_empty() {
        text.push_str("No spend recorded in this window.\n");
    }
    text.push_str(&format!(
        "Total in the window: {}\nMonth to date: {}; projected for {}: {}\n",
        usd(report.total_usd),
        usd(report.month_to_date_usd),
        report.month,
        usd(report.projected_month_usd)
    ));
    stdout().write_all(text.as_bytes())?;
    for c in &report.missing_rates {
        messages::note(format!("no USD rate for {c} in the catalog — its nodes are left out of the chart and the USD totals"));
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// the HTML report

/// `report --html FILE`.
pub fn html(ctx: &Ctx, args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let now = time::now_unix();
    let win = window(args.since.as_deref(), args.until.as_deref(), now)?;
    let page = build(ctx, args, win)?;
    let html = report::render(&page)?;
    if args.html == "-" {
        stdout().write_all(html.as_bytes())?;
    } else {
        std::fs::write(&args.html, html.as_bytes()).map_err(|e| {
            bad_input(format!(
                "cannot write the report to {}: {e} — give --html a writable file path, or - for stdout",
                args.html
            ))
        })?;
        messages::info(format!(
            "wrote {} ({} KB)",
            args.html,
            html.len().div_ceil(1024)
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Shortest exact text of a number (`0.02103`, `4`), as JSON has it.
fn num(v: f64) -> String {
    let v = if v == 0.0 { 0.0 } else { v };
    format!("{v}")
}

/// Palette index per provider: catalog order, so a provider has one colour on every chart.
struct Palette(Vec<String>);

impl Palette {
    fn of(&self, provider: &str) -> usize {
        self.0
            .iter()
            .position(|p| p == provider)
            .unwrap_or(self.0.len())
    }

    fn series(&self, providers: &[String]) -> Vec<Series> {
        providers
            .iter()
            .map(|p| Series {
                name: p.clone(),
                color: self.of(p),
            })
            .collect()
    }
}

/// `deploy` arguments that mean what a `templates` filter means.
fn deploy_args(f: &TemplateFilter) -> DeployArgs {
    DeployArgs {
        providers: f.providers.clone(),
        region: f.region.clone(),
        continent: f.continent,
        size: f.size,
        gpu: match (&f.gpu_model, f.gpu) {
            (Some(m), _) => Some(m.clone()),
            (None, true) => Some(String::new()),
            (None, false) => None,
        },
        budget: f.max_price,
        max_monthly: f.max_monthly,
        arch: f.arch,
        include_unconfigured: true,
        ..DeployArgs::default()
    }
}

fn build(ctx: &Ctx, args: &ReportArgs, win: cost::Window) -> anyhow::Result<Page> {
    let cost::Window { since, until, now } = win;
    let cat = &ctx.catalog;
    let palette = Palette(cat.providers.iter().map(|p| p.id().to_string()).collect());
    // The templates exactly as `templates -o json` lists them.
    let (found, _) = listed_templates(ctx, &args.filter)?;
    ctx.note_stale(found.iter().map(|o| o.provider.id()));
    let rows: Vec<TemplateRow> = found.iter().map(TemplateRow::of).collect();
    // The cheapest fit exactly as `deploy` would choose it (with --include-unconfigured).
    let (_, explanation) = crate::explain::smart_plan(ctx, &deploy_args(&args.filter))?;
    let choice_id = explanation
        .choice
        .as_ref()
        .map(|c| c.template().to_string());
    let callout = match &explanation.choice {
        Some(c) => format!(
            "Cheapest offer for {}: {} — the template `deploy` picks with these constraints (retired providers are skipped).",
            explanation.constraints,
            crate::explain::offer_line(c)
        ),
        None => format!("No offer fits {}.", explanation.constraints),
    };

    let (store, bill, days, costs) = spend(ctx, win)?;
    let (fleet, _) = stats::compute(store.as_ref(), &bill, &NodeFilter::default())?;

    let mut meta = vec![format!(
        "Generated {} by capsule {}. Prices in USD; {} of {} templates match.",
        time::format(now),
        env!("CARGO_PKG_VERSION"),
        rows.len(),
        cat.templates.len()
    )];
    meta.push(format!("Template filters: {}.", explanation.constraints));
    meta.push(format!(
        "Cost window: {} to {} (UTC).",
        time::format(since),
        time::format(until.min(now))
    ));
    Ok(Page {
        title: "Capsule: prices and cost".into(),
        meta,
        sections: vec![
            landscape(&rows, &palette, choice_id.as_deref()),
            value(&found, &rows, &palette, choice_id.as_deref(), callout),
            cost_section(&days, &costs, &palette),
            fleet_section(&fleet),
            trust(ctx, now),
        ],
    })
}

fn landscape(rows: &[TemplateRow], palette: &Palette, choice: Option<&str>) -> Section {
    let providers: Vec<String> = {
        let mut seen: Vec<String> = Vec::new();
        for r in rows {
            let p = r.provider.to_string();
            if !seen.contains(&p) {
                seen.push(p);
            }
        }
        seen.sort_by_key(|p| palette.of(p));
        seen
    };
    let series = |x_of: fn(&TemplateRow) -> f64, x_unit: &str| -> Vec<PointSeries> {
        providers
            .iter()
            .map(|p| PointSeries {
                name: p.clone(),
                color: palette.of(p),
                points: rows
                    .iter()
                    .filter(|r| r.provider == p.as_str())
                    .map(|r| {
                        let id = r.id;
                        let price = r.price_hourly_usd;
                        let gpu = r.gpu.is_some();
                        Point {
                            x: x_of(r),
                            y: price,
                            title: format!(
                                "{id}: {} {x_unit}, ${}/h{}",
                                num(x_of(r)),
                                num(price),
                                if gpu { ", GPU" } else { "" }
                            ),
                            ring: gpu,
                            highlight: Some(id) == choice,
                        }
                    })
                    .collect(),
            })
            .collect()
    };
    let mut extra = vec![LegendItem {
        label: "GPU template (ringed)".into(),
        class: String::new(),
        shape: "ring".into(),
    }];
    if let Some(c) = choice {
        extra.push(LegendItem {
            label: format!("cheapest fit: {c}"),
            class: String::new(),
            shape: "highlight".into(),
        });
    }
    let price_fmt = |v: f64| format!("${}", num(v));
    let int_fmt = |v: f64| num(v);
    let by_cpu = report::scatter(
        "Price per hour against vCPU",
        "vCPU (log scale, base 2)",
        "USD per hour (log scale)",
        &series(|r| f64::from(r.cpu), "vCPU"),
        true,
        true,
        &int_fmt,
        &price_fmt,
        extra.clone(),
    );
    let by_mem = report::scatter(
        "Price per hour against memory",
        "Memory, GB (log scale, base 2)",
        "USD per hour (log scale)",
        &series(|r| r.memory_gb, "GB"),
        true,
        true,
        &int_fmt,
        &price_fmt,
        extra,
    );
    let class_of = |r: &TemplateRow| {
        if Some(r.id) == choice {
            "highlight"
        } else {
            ""
        }
    };
    let gpu_text = |r: &TemplateRow| {
        r.gpu
            .as_ref()
            .map_or("-".to_string(), |g| format!("{}× {}", g.count, g.model))
    };
    let mut t1 = Table::new(
        "Templates by vCPU (the rows of templates -o json)",
        &[
            ("template", false),
            ("provider", false),
            ("vCPU", true),
            ("USD/hour", true),
            ("USD/month", true),
            ("GPU", false),
            ("arch", false),
        ],
    );
    let mut t2 = Table::new(
        "Templates by memory",
        &[
            ("template", false),
            ("provider", false),
            ("memory GB", true),
            ("USD/hour", true),
            ("GPU", false),
        ],
    );
    for r in rows {
        let id = r.id.to_string();
        let provider = r.provider.to_string();
        t1.push(
            vec![
                id.clone(),
                provider.clone(),
                num(f64::from(r.cpu)),
                num(r.price_hourly_usd),
                num(r.price_monthly_usd),
                gpu_text(r),
                r.arch.to_string(),
            ],
            class_of(r),
        );
        t2.push(
            vec![
                id,
                provider,
                num(r.memory_gb),
                num(r.price_hourly_usd),
                gpu_text(r),
            ],
            class_of(r),
        );
    }
    let empty = rows
        .is_empty()
        .then(|| "No template matches these filters.".to_string());
    Section {
        id: "landscape".into(),
        title: "Price landscape".into(),
        lead: vec![
            "Every template that matches the filters, priced in USD per hour at its cheapest matching region (as `templates` prices it). One colour and shape per provider; GPU templates are ringed.".into(),
        ],
        facts: vec![
            ("templates shown".into(), rows.len().to_string()),
            ("providers".into(), providers.len().to_string()),
            (
                "GPU templates".into(),
                rows.iter().filter(|r| r.gpu.is_some()).count().to_string(),
            ),
        ],
        callout: None,
        figures: vec![
            Figure {
                id: "landscape-cpu".into(),
                chart: (!rows.is_empty()).then_some(by_cpu),
                table: t1,
                empty: empty.clone(),
                note: None,
            },
            Figure {
                id: "landscape-memory".into(),
                chart: (!rows.is_empty()).then_some(by_mem),
                table: t2,
                empty,
                note: None,
            },
        ],
    }
}

fn value(
    found: &[crate::select::Offer<'_>],
    rows: &[TemplateRow],
    palette: &Palette,
    choice: Option<&str>,
    callout: String,
) -> Section {
    let ranked = |key: &str, unit: &str, caption: &str, per: &str| -> Figure {
        // The same figures as compare's price_per_cpu_usd / price_per_gb_usd (from the unrounded
        // hourly price, rounded to 5 decimals).
        let mut items: Vec<(String, String, f64, f64)> = found
            .iter()
            .zip(rows)
            .map(|(o, r)| {
                let t = o.template;
                let size = if key == "cpu" {
                    f64::from(t.cpu.max(1))
                } else {
                    t.memory_gb.max(0.001)
                };
                (
                    t.id.clone(),
                    t.provider.clone(),
                    (o.hourly_usd / size * 1e5).round() / 1e5,
                    r.price_hourly_usd,
                )
            })
            .collect();
        items.sort_by(|a, b| a.2.total_cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
        let total = items.len();
        let mut shown: Vec<&(String, String, f64, f64)> = items.iter().take(MAX_BARS).collect();
        if let Some(c) = choice {
            if !shown.iter().any(|i| i.0 == c) {
                if let Some(i) = items.iter().find(|i| i.0 == c) {
                    shown.push(i);
                }
            }
        }
        let providers: Vec<String> = {
            let mut v: Vec<String> = Vec::new();
            for i in &shown {
                if !v.contains(&i.1) {
                    v.push(i.1.clone());
                }
            }
            v.sort_by_key(|p| palette.of(p));
            v
        };
        let cats: Vec<Category> = shown
            .iter()
            .map(|i| {
                let mut values = vec![0.0; providers.len()];
                if let Some(k) = providers.iter().position(|p| *p == i.1) {
                    values[k] = i.2;
                }
                Category {
                    label: i.0.clone(),
                    values,
                    value_text: format!("${}", num(i.2)),
                    highlight: Some(i.0.as_str()) == choice,
                    class: String::new(),
                }
            })
            .collect();
        let chart = report::hbars(
            caption,
            unit,
            "template",
            &palette.series(&providers),
            &cats,
            &|v| format!("${}", num((v * 1e6).round() / 1e6)),
        );
        let mut table = Table::new(
            caption,
            &[
                ("rank", true),
                ("template", false),
                ("provider", false),
                (per, true),
                ("USD/hour", true),
            ],
        );
        for (rank, i) in items.iter().enumerate() {
            if rank >= MAX_BARS && Some(i.0.as_str()) != choice {
                continue;
            }
            table.push(
                vec![
                    (rank + 1).to_string(),
                    i.0.clone(),
                    i.1.clone(),
                    num(i.2),
                    num(i.3),
                ],
                if Some(i.0.as_str()) == choice {
                    "highlight"
                } else {
                    ""
                },
            );
        }
        Figure {
            id: format!("value-{key}"),
            chart: (!cats.is_empty()).then_some(chart),
            table,
            empty: cats
                .is_empty()
                .then(|| "No template matches these filters.".to_string()),
            note: (total > MAX_BARS)
                .then(|| format!("The {MAX_BARS} best of {total} templates are shown.")),
        }
    };
    Section {
        id: "value".into(),
        title: "Value".into(),
        lead: vec![
            "USD per vCPU-hour and per GB of memory per hour, best value first. The template `deploy` would choose for the same constraints is highlighted.".into(),
        ],
        facts: vec![],
        callout: Some(callout),
        figures: vec![
            ranked(
                "cpu",
                "USD per vCPU per hour",
                "USD per vCPU-hour, ranked",
                "USD/vCPU-hour",
            ),
            ranked(
                "memory_gb",
                "USD per GB of memory per hour",
                "USD per GB-hour, ranked",
                "USD/GB-hour",
            ),
        ],
    }
}

fn cost_section(days: &DailySpend, costs: &CostReport, palette: &Palette) -> Section {
    let totals = &days.day_totals;
    let cats: Vec<Category> = days
        .days
        .iter()
        .enumerate()
        .map(|(d, day)| Category {
            label: day.clone(),
            values: days.usd.iter().map(|s| s[d]).collect(),
            value_text: num(totals[d]),
            highlight: false,
            class: String::new(),
        })
        .collect();
    let money = |v: f64| format!("${}", num((v * 1e4).round() / 1e4));
    let daily_chart = report::columns(
        "Daily spend, stacked by provider",
        "USD per day",
        "Day (UTC)",
        &palette.series(&days.providers),
        &cats,
        &money,
    );
    let mut cols: Vec<(&str, bool)> = vec![("day", false)];
    cols.extend(days.providers.iter().map(|p| (p.as_str(), true)));
    cols.push(("total USD", true));
    let mut daily_table = Table::new("Daily spend in USD", &cols);
    for (d, day) in days.days.iter().enumerate() {
        let mut cells = vec![day.clone()];
        cells.extend(days.usd.iter().map(|s| num(s[d])));
        cells.push(num(totals[d]));
        daily_table.push(cells, "");
    }
    let mut total_cells = vec!["window".to_string()];
    total_cells.extend(days.provider_totals.iter().map(|v| num(*v)));
    total_cells.push(num(days.total_usd));
    daily_table.push(total_cells, "total");

    // `cost -o json` for the same window, its total row included.
    let month = &costs.month;
    let by_provider: Vec<Category> = costs
        .rows
        .iter()
        .filter(|r| r.projected_month_usd.is_some_and(|v| v > 0.0))
        .map(|r| {
            let mtd = r.month_to_date_usd.unwrap_or(0.0);
            let proj = r.projected_month_usd.unwrap_or(0.0);
            Category {
                label: r.group.clone(),
                values: vec![mtd, (proj - mtd).max(0.0)],
                value_text: usd(proj),
                highlight: false,
                class: String::new(),
            }
        })
        .collect();
    let month_chart = report::hbars(
        &format!("Month to date and projection for {month}, by provider"),
        "USD",
        "provider",
        &[
            Series {
                name: "month to date".into(),
                color: 0,
            },
            Series {
                name: "rest of the month (projected)".into(),
                color: 4,
            },
        ],
        &by_provider,
        &money,
    );
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), num);
    let mut cost_table = Table::new(
        "Cost by provider (the rows of cost -o json)",
        &[
            ("provider", false),
            ("currency", false),
            ("nodes", true),
            ("running now", true),
            ("hours", true),
            ("cost", true),
            ("cost USD", true),
            ("month to date USD", true),
            ("projected month USD", true),
        ],
    );
    for r in &costs.rows {
        cost_table.push(
            vec![
                r.group.clone(),
                r.currency.clone(),
                r.nodes.to_string(),
                r.running_now.to_string(),
                num(r.hours),
                num(r.cost),
                opt(r.cost_usd),
                opt(r.month_to_date_usd),
                opt(r.projected_month_usd),
            ],
            "",
        );
    }
    cost_table.push(
        vec![
            "total".into(),
            "USD".into(),
            costs.rows.iter().map(|r| r.nodes).sum::<u64>().to_string(),
            costs
                .rows
                .iter()
                .map(|r| r.running_now)
                .sum::<u64>()
                .to_string(),
            num((costs.rows.iter().map(|r| r.hours).sum::<f64>() * 1e4).round() / 1e4),
            num(costs.total_usd),
            num(costs.total_usd),
            num(costs.month_to_date_usd),
            num(costs.projected_month_usd),
        ],
        "total",
    );
    let mut lead = vec![format!(
        "What the recorded nodes cost at the prices paid, per UTC day from {} to {}, with the monthly caps applied — the figures `cost` prints.",
        costs.since, costs.until
    )];
    if !costs.missing_rates.is_empty() {
        lead.push(format!(
            "No USD rate for {}: those nodes are left out of the USD figures.",
            costs.missing_rates.join(", ")
        ));
    }
    let nothing = "No spend is recorded in this window.".to_string();
    Section {
        id: "cost".into(),
        title: "Cost over time".into(),
        lead,
        facts: vec![
            ("spend in the window".into(), usd(costs.total_usd)),
            (
                format!("month to date ({month})"),
                usd(costs.month_to_date_usd),
            ),
            (
                format!("projected for {month}"),
                usd(costs.projected_month_usd),
            ),
            (
                "billable now".into(),
                format!(
                    "{} nodes",
                    costs.rows.iter().map(|r| r.running_now).sum::<u64>()
                ),
            ),
        ],
        callout: None,
        figures: vec![
            Figure {
                id: "cost-daily".into(),
                chart: (!days.providers.is_empty()).then_some(daily_chart),
                table: daily_table,
                empty: days.providers.is_empty().then(|| nothing.clone()),
                note: None,
            },
            Figure {
                id: "cost-month".into(),
                chart: (!by_provider.is_empty()).then_some(month_chart),
                table: cost_table,
                empty: by_provider
                    .is_empty()
                    .then(|| "Nothing is billed this month.".to_string()),
                note: None,
            },
        ],
    }
}

fn fleet_section(rows: &[StatsRow]) -> Section {
    let all = rows.iter().find(|r| r.by == "all");
    let of = |by: &str| -> Vec<&StatsRow> { rows.iter().filter(|r| r.by == by).collect() };
    let count = |v: f64| num(v.round());
    let providers = of("provider");
    let statuses = of("status");
    let mut regions = of("region");
    regions.sort_by(|a, b| b.nodes.cmp(&a.nodes).then_with(|| a.value.cmp(&b.value)));
    let region_total = regions.len();
    regions.truncate(MAX_BARS);
    let none = "No live node is recorded — deploy one, or `inventory import` a CSV.".to_string();

    let by_provider = report::hbars(
        "Live nodes by provider and status",
        "nodes",
        "provider",
        &[
            Series {
                name: "running".into(),
                color: 2,
            },
            Series {
                name: "stopped".into(),
                color: 1,
            },
            Series {
                name: "other (pending, error, …)".into(),
                color: 7,
            },
        ],
        &providers
            .iter()
            .map(|r| Category {
                label: r.value.clone(),
                values: vec![
                    r.running as f64,
                    r.stopped as f64,
                    (r.nodes - r.running - r.stopped) as f64,
                ],
                value_text: r.nodes.to_string(),
                highlight: false,
                class: String::new(),
            })
            .collect::<Vec<_>>(),
        &count,
    );
    let mut t_provider = Table::new(
        "Live nodes by provider (inventory stats)",
        &[
            ("provider", false),
            ("nodes", true),
            ("running", true),
            ("stopped", true),
            ("billable", true),
            ("USD/hour", true),
            ("USD/month", true),
        ],
    );
    for r in &providers {
        t_provider.push(
            vec![
                r.value.clone(),
                r.nodes.to_string(),
                r.running.to_string(),
                r.stopped.to_string(),
                r.billable.to_string(),
                num(r.hourly_usd),
                num(r.monthly_usd),
            ],
            "",
        );
    }
    // Regions and statuses: one bar each, coloured by nothing in particular but one hue.
    let single = |rows: &[&StatsRow], title: &str, what: &str, color: usize| {
        let chart = report::hbars(
            title,
            "nodes",
            what,
            &[Series {
                name: "nodes".into(),
                color,
            }],
            &rows
                .iter()
                .map(|r| Category {
                    label: r.value.clone(),
                    values: vec![r.nodes as f64],
                    value_text: r.nodes.to_string(),
                    highlight: false,
                    class: String::new(),
                })
                .collect::<Vec<_>>(),
            &count,
        );
        let mut t = Table::new(
            title,
            &[
                (what, false),
                ("nodes", true),
                ("running", true),
                ("stopped", true),
            ],
        );
        for r in rows {
            t.push(
                vec![
                    r.value.clone(),
                    r.nodes.to_string(),
                    r.running.to_string(),
                    r.stopped.to_string(),
                ],
                "",
            );
        }
        chart_or_note(&format!("fleet-{what}"), chart, t, rows.is_empty(), &none)
    };
    let mut region_fig = single(&regions, "Live nodes by region", "region", 0);
    if region_total > MAX_BARS {
        region_fig.note = Some(format!(
            "The {MAX_BARS} largest of {region_total} regions are shown."
        ));
    }
    let facts = all.map_or_else(Vec::new, |a| {
        vec![
            ("live nodes".into(), a.nodes.to_string()),
            ("billable now".into(), a.billable.to_string()),
            ("run rate".into(), format!("{}/h", usd(a.hourly_usd))),
            ("per month".into(), usd(a.monthly_usd)),
        ]
    });
    Section {
        id: "fleet".into(),
        title: "Fleet".into(),
        lead: vec![
            "The live (not deleted) nodes of the local record, as `inventory stats` counts them."
                .into(),
        ],
        facts,
        callout: None,
        figures: vec![
            chart_or_note(
                "fleet-provider",
                by_provider,
                t_provider,
                providers.is_empty(),
                &none,
            ),
            region_fig,
            single(&statuses, "Live nodes by status", "status", 3),
        ],
    }
}

fn chart_or_note(id: &str, chart: report::Chart, table: Table, empty: bool, none: &str) -> Figure {
    Figure {
        id: id.to_string(),
        chart: (!empty).then_some(chart),
        table,
        empty: empty.then(|| none.to_string()),
        note: None,
    }
}

fn trust(ctx: &Ctx, now: i64) -> Section {
    let cat = &ctx.catalog;
    // The rule of `catalog status`: age from the refresh (or the embedded price date), stale
    // past --stale-after, retired providers never stale (nothing refreshes them).
    let limit_days = ctx.stale_after.as_secs_f64() / 86400.0;
    let stale_days = limit_days.round();
    let mut cats = Vec::new();
    let mut table = Table::new(
        "Price dates and sources by provider",
        &[
            ("provider", false),
            ("status", false),
            ("prices as of", false),
            ("layer", false),
            ("age, days", true),
            ("stale", false),
            ("currency", false),
            ("source", false),
        ],
    );
    let mut stale_count = 0;
    for p in &cat.providers {
        let m = &p.meta;
        let days = crate::context::prices_age_days(cat, p, now);
        let stale = !p.is_retired() && days.is_some_and(|d| d as f64 > limit_days);
        let layer = match cat.refreshed.get(p.id()) {
            Some(at) => format!("refreshed {at}"),
            None => "embedded".to_string(),
        };
        stale_count += usize::from(stale);
        let status = if p.is_retired() {
            format!("retired {}", m.status.date)
        } else {
            m.status.state_name().to_string()
        };
        let label = if p.is_retired() {
            format!("{} (retired)", p.id())
        } else {
            p.id().to_string()
        };
        cats.push(Category {
            label,
            values: vec![days.unwrap_or(0).max(0) as f64],
            value_text: match days {
                Some(d) if stale => format!("{d} d, stale"),
                Some(d) => format!("{d} d"),
                None => "no date".into(),
            },
            highlight: false,
            class: if stale { "warn".into() } else { String::new() },
        });
        table.push(
            vec![
                p.id().to_string(),
                status,
                m.prices_as_of.clone(),
                layer,
                days.map_or("-".into(), |d| d.to_string()),
                if stale { "yes".into() } else { "no".into() },
                m.currency.clone(),
                m.prices_source.clone(),
            ],
            if p.is_retired() {
                "retired"
            } else if stale {
                "warn"
            } else {
                ""
            },
        );
    }
    let chart = report::hbars(
        "Age of each provider's prices",
        "days since the prices were taken",
        "provider",
        &[Series {
            name: "age of the price list, days".into(),
            color: 6,
        }],
        &cats,
        &|v| num(v.round()),
    );
    let mut rates = Table::new(
        "Exchange rates used to convert prices to USD",
        &[
            ("currency", false),
            ("USD per unit", true),
            ("as of", false),
            ("source", false),
        ],
    );
    let mut rate_lines = Vec::new();
    for r in &cat.rates {
        rates.push(
            vec![
                r.currency.clone(),
                num(r.usd),
                r.as_of.clone(),
                r.source.clone(),
            ],
            "",
        );
        rate_lines.push(format!(
            "1 {} = {} USD (as of {})",
            r.currency,
            num(r.usd),
            r.as_of
        ));
    }
    let retired: Vec<&str> = cat
        .providers
        .iter()
        .filter(|p| p.is_retired())
        .map(|p| p.id())
        .collect();
    let mut lead = vec![format!(
        "Each provider's prices carry the date they were taken and their source. Prices older than {stale_days} days are flagged stale: refresh them with `capsule openmesh catalog refresh`."
    )];
    if !rate_lines.is_empty() {
        lead.push(format!(
            "Prices in other currencies are converted at {}.",
            rate_lines.join("; ")
        ));
    }
    if !retired.is_empty() {
        let why: Vec<String> = cat
            .providers
            .iter()
            .filter(|p| p.is_retired())
            .map(|p| {
                format!(
                    "{} since {} ({})",
                    p.id(),
                    p.meta.status.date,
                    p.meta.status.reason.trim_end_matches('.')
                )
            })
            .collect();
        lead.push(format!(
            "Retired providers are listed but never deployed to: {}.",
            why.join("; ")
        ));
    }
    Section {
        id: "trust".into(),
        title: "Trust: price dates and sources".into(),
        lead,
        facts: vec![
            ("providers".into(), cat.providers.len().to_string()),
            ("stale price lists".into(), stale_count.to_string()),
            ("retired".into(), retired.len().to_string()),
        ],
        callout: None,
        figures: vec![
            Figure {
                id: "trust-age".into(),
                chart: Some(chart),
                table,
                empty: None,
                note: Some(format!(
                    "Bars past {stale_days} days are stale (labels in amber); retired providers are never refreshed, so never flagged."
                )),
            },
            Figure {
                id: "trust-rates".into(),
                chart: None,
                table: rates,
                empty: None,
                note: None,
            },
        ],
    }
}
