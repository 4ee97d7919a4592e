//! The read-only catalog commands: `providers`, `templates`, `template show`, `regions`,
//! `compare`, and `catalog validate|export|schema|generate`.

use super::stdout;
use crate::catalog::schema::Template;
use crate::catalog::{self, Catalog, ProviderEntry};
use crate::cli::{CatalogCommand, OutputFormat, RegionsArgs, SortKey, TemplateFilter};
use crate::context::Ctx;
use crate::error::{bad_input, unknown};
use crate::messages;
use crate::render::{self, col, usd, Column, Kind, Style};
use crate::select::{self, GpuWant, Offer, Query};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::ExitCode;

/// `unknown provider 'x' — did you mean 'y'?` unless every id is known.
pub fn check_providers(catalog: &Catalog, ids: &[String]) -> anyhow::Result<()> {
    for id in ids {
        if catalog.provider(id).is_none() {
            return Err(unknown(
                "provider",
                id,
                catalog.providers.iter().map(|p| p.meta.id.as_str()),
                "providers",
            ));
        }
    }
    Ok(())
}

/// An unknown region slug is an error with a suggestion (`--continent` is checked by clap).
pub fn check_region(catalog: &Catalog, region: Option<&str>) -> anyhow::Result<()> {
    if let Some(r) = region {
        if !catalog.providers.iter().any(|p| p.region(r).is_some()) {
            let all: BTreeSet<&str> = catalog
                .providers
                .iter()
                .flat_map(|p| p.regions.iter().map(|r| r.id.as_str()))
                .collect();
            return Err(unknown("region", r, all.iter().copied(), "regions"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// providers

const PROVIDER_COLUMNS: &[Column] = &[
    col("id", "id", Kind::Text).ident(),
    col("name", "name", Kind::Text).prio(5),
    col("kind", "kind", Kind::Text).prio(4),
    col("status", "status", Kind::Status).prio(0),
    col("templates", "templates", Kind::Num).prio(3),
    col("regions", "regions", Kind::Num).prio(3),
    col("from/h", "price_hourly_min", Kind::Money("currency")).prio(0),
    col("to/h", "price_hourly_max", Kind::Money("currency")).prio(2),
    col("from/mo", "price_monthly_min", Kind::Money("currency")).prio(1),
    col("to/mo", "price_monthly_max", Kind::Money("currency")).prio(2),
    col("usd/h from (conv.)", "price_hourly_min_usd", Kind::Usd).prio(5),
    col("price_hourly_max_usd", "price_hourly_max_usd", Kind::Usd).extra(),
    col("price_monthly_min_usd", "price_monthly_min_usd", Kind::Usd).extra(),
    col("price_monthly_max_usd", "price_monthly_max_usd", Kind::Usd).extra(),
    col("gpus", "gpu_models", Kind::List).prio(4),
    col("prices as of", "prices_as_of", Kind::Text).prio(3),
    col("age days", "prices_age_days", Kind::Num).prio(5),
    col("usd rate", "_rate", Kind::Text).prio(4),
    col("configured", "configured", Kind::Text).prio(0),
];

/// `1 EUR = 1.16 USD (2026-01-02)` for a non-USD currency; `None` for USD.
fn rate_text(catalog: &Catalog, currency: &str) -> Option<String> {
    if currency.eq_ignore_ascii_case("USD") {
        return None;
    }
    let r = catalog
        .rates
        .iter()
        .find(|r| r.currency.eq_ignore_ascii_case(currency))?;
    Some(format!("1 {} = {} USD ({})", r.currency, r.usd, r.as_of))
}

pub fn providers(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let rows: Vec<render::Row> = ctx
        .catalog
        .providers
        .iter()
        .map(|p| {
            let row = render::Row::of(&provider_row(ctx, p)?);
            Ok(match rate_text(&ctx.catalog, p.currency()) {
                Some(rate) => row.with_cell("_rate", rate),
                None => row,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    ctx.note_stale(ctx.catalog.providers.iter().map(|p| p.id()));
    render::listing(&mut stdout(), ctx.style, PROVIDER_COLUMNS, &rows)?;
    if ctx.format() == OutputFormat::Table && !ctx.style.quiet {
        let rates: BTreeSet<String> = ctx
            .catalog
            .providers
            .iter()
            .filter_map(|p| rate_text(&ctx.catalog, p.currency()))
            .collect();
        for r in rates {
            messages::note(format!(
                "prices are in each provider's currency; USD figures convert at {r}"
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One row of `providers` (`golden/schema/providers.json`): the provider, its price ranges in
/// its currency and in USD, and where its prices come from.
#[derive(Debug, Serialize)]
struct ProviderRow<'a> {
    id: &'a str,
    name: &'a str,
    kind: &'a str,
    status: &'a str,
    status_date: Option<&'a str>,
    status_reason: Option<&'a str>,
    templates: usize,
    regions: usize,
    currency: &'a str,
    price_hourly_min: Option<f64>,
    price_hourly_max: Option<f64>,
    price_monthly_min: Option<f64>,
    price_monthly_max: Option<f64>,
    price_hourly_min_usd: Option<f64>,
    price_hourly_max_usd: Option<f64>,
    price_monthly_min_usd: Option<f64>,
    price_monthly_max_usd: Option<f64>,
    gpu_models: BTreeSet<&'a str>,
    prices_as_of: &'a str,
    prices_age_days: Option<i64>,
    prices_source: &'a str,
    prices_refreshed_at: Option<&'a str>,
    homepage: &'a str,
    configured: &'static str,
    usd_rate: f64,
    usd_rate_as_of: Option<&'a str>,
}

fn provider_row<'a>(ctx: &'a Ctx, p: &'a ProviderEntry) -> anyhow::Result<ProviderRow<'a>> {
    let configured = crate::credentials::configured(&ctx.home, p, &ctx.account)?;
    let cat = &ctx.catalog;
    let rate = cat.usd_rate(p.currency()).unwrap_or(1.0);
    let ts: Vec<&Template> = cat.templates_of(p.id()).collect();
    let range = |f: fn(&Template) -> f64| -> (Option<f64>, Option<f64>) {
        let vals: Vec<f64> = ts.iter().map(|t| f(t)).collect();
        if vals.is_empty() {
            return (None, None);
        }
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (Some(lo), Some(hi))
    };
    let (h_lo, h_hi) = range(|t| t.price_hourly);
    let (m_lo, m_hi) = range(|t| t.price_monthly);
    let usd_of = |v: Option<f64>| v.map(|x| round(x * rate, 5));
    let gpu_models: BTreeSet<&str> = ts
        .iter()
        .filter_map(|t| t.gpu.as_ref().map(|g| g.model.as_str()))
        .collect();
    let status = &p.meta.status;
    let nonempty = |s: &'a str| (!s.is_empty()).then_some(s);
    Ok(ProviderRow {
        id: p.id(),
        name: &p.meta.name,
        kind: p.meta.kind.map_or("", |k| k.as_str()),
        status: status.state_name(),
        status_date: nonempty(&status.date),
        status_reason: nonempty(&status.reason),
        templates: ts.len(),
        regions: p.regions.len(),
        currency: p.currency(),
        price_hourly_min: h_lo,
        price_hourly_max: h_hi,
        price_monthly_min: m_lo,
        price_monthly_max: m_hi,
        price_hourly_min_usd: usd_of(h_lo),
        price_hourly_max_usd: usd_of(h_hi),
        price_monthly_min_usd: usd_of(m_lo),
        price_monthly_max_usd: usd_of(m_hi),
        gpu_models,
        prices_as_of: &p.meta.prices_as_of,
        prices_age_days: crate::context::prices_age_days(cat, p, crate::state::time::now_unix()),
        prices_source: &p.meta.prices_source,
        prices_refreshed_at: cat.refreshed.get(p.id()).map(String::as_str),
        homepage: &p.meta.homepage,
        configured,
        usd_rate: rate,
        usd_rate_as_of: cat
            .rates
            .iter()
            .find(|r| r.currency.eq_ignore_ascii_case(p.currency()))
            .map(|r| r.as_of.as_str()),
    })
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

// ---------------------------------------------------------------------------------------------
// templates

const TEMPLATE_TABLE: &[Column] = &[
    col("id", "id", Kind::Text).ident(),
    col("provider", "_provider", Kind::Text).prio(0),
    col("plan", "plan", Kind::Text).prio(5),
    col("cpu", "cpu", Kind::Num).prio(0),
    col("mem gb", "memory_gb", Kind::Num).prio(0),
    col("disk gb", "storage_gb", Kind::Num).prio(2),
    col("transfer", "_bandwidth", Kind::Text).prio(4),
    col("price/h", "price_hourly", Kind::Money("currency")).prio(0),
    col("price/mo", "price_monthly", Kind::Money("currency")).prio(1),
    col("usd/mo (conv.)", "price_monthly_usd", Kind::Usd).prio(5),
    col("price_hourly_usd", "price_hourly_usd", Kind::Usd).extra(),
    col("gpu", "gpu", Kind::Text).prio(2).text(gpu_text),
    col("arch", "arch", Kind::Text).prio(3),
    col("regions", "_region_count", Kind::Num).prio(4),
];

/// A template's GPU as a person reads it: `2× NVIDIA A100`.
fn gpu_text(gpu: &Value) -> String {
    format!(
        "{}× {}",
        render::raw_text(&gpu["count"], ", "),
        render::raw_text(&gpu["model"], ", ")
    )
}

const TEMPLATE_CSV: &[Column] = &[
    col("id", "id", Kind::Text),
    col("provider", "provider", Kind::Text),
    col("plan", "plan", Kind::Text),
    col("name", "name", Kind::Text),
    col("cpu", "cpu", Kind::Num),
    col("memory_gb", "memory_gb", Kind::Num),
    col("storage_gb", "storage_gb", Kind::Num),
    col("bandwidth_tb", "bandwidth_tb", Kind::Num),
    col("bandwidth_unmetered", "bandwidth_unmetered", Kind::Text),
    col("price_hourly", "price_hourly", Kind::Num),
    col("price_monthly", "price_monthly", Kind::Num),
    col("currency", "currency", Kind::Text),
    col("price_hourly_usd", "price_hourly_usd", Kind::Num),
    col("price_monthly_usd", "price_monthly_usd", Kind::Num),
    col("gpu_model", "gpu.model", Kind::Text),
    col("gpu_count", "gpu.count", Kind::Num),
    col("gpu_vram_gb", "gpu.vram_gb", Kind::Num),
    col("arch", "arch", Kind::Text),
    col("regions", "regions", Kind::List),
    col("features", "features", Kind::List),
];

/// The query a `templates` filter means.
pub fn filter_query(catalog: &Catalog, f: &TemplateFilter) -> anyhow::Result<Query> {
    check_providers(catalog, &f.providers)?;
    check_region(catalog, f.region.as_deref())?;
    let gpu = match (&f.gpu_model, f.gpu) {
        (Some(m), _) => Some(GpuWant::parse(m).map_err(bad_input)?),
        (None, true) => Some(GpuWant {
            model: String::new(),
            count: 1,
        }),
        (None, false) => None,
    };
    Ok(Query {
        xnode: None,
        providers: f.providers.clone(),
        region: f.region.clone(),
        continent: f.continent,
        min_cpu: f.size.min_cpu,
        min_memory: f.size.min_memory,
        min_storage: f.size.min_storage,
        gpu,
        max_hourly_usd: f.max_price,
        max_monthly_usd: f.max_monthly,
        arch: f.arch,
        ..Query::default()
    })
}

/// Templates matching a filter, each with its cheapest matching offer, sorted.
pub fn matching_templates<'a>(catalog: &'a Catalog, q: &Query, sort: SortKey) -> Vec<Offer<'a>> {
    let offers = select::offers_where(catalog, |t| q.template_may_fit(t));
    let mut best = best_offers(&offers, q);
    sort_listing(&mut best, sort);
    best
}

/// Each template's first fitting offer in rank order, from offers grouped by template.
fn best_offers<'a>(offers: &[Offer<'a>], q: &Query) -> Vec<Offer<'a>> {
    offers
        .chunk_by(|a, b| std::ptr::eq(a.template, b.template))
        .filter_map(|group| {
            group
                .iter()
                .filter(|o| q.check(o).is_none())
                .min_by(|a, b| select::rank_order(a, b))
                .cloned()
        })
        .collect()
}

/// The listing order: cheapest first, ties by template id.
fn by_price(a: &Offer, b: &Offer) -> std::cmp::Ordering {
    a.hourly_usd
        .total_cmp(&b.hourly_usd)
        .then_with(|| a.template.id.cmp(&b.template.id))
}

/// Sort templates' best offers for a listing.
fn sort_listing(best: &mut [Offer], sort: SortKey) {
    match sort {
        SortKey::Price => best.sort_by(by_price),
        SortKey::Cpu => best.sort_by(|a, b| {
            a.template
                .cpu
                .cmp(&b.template.cpu)
                .then_with(|| by_price(a, b))
        }),
        SortKey::Memory => best.sort_by(|a, b| {
            a.template
                .memory_gb
                .total_cmp(&b.template.memory_gb)
                .then_with(|| by_price(a, b))
        }),
        SortKey::PricePerCpu => best.sort_by(|a, b| {
            (a.hourly_usd / f64::from(a.template.cpu.max(1)))
                .total_cmp(&(b.hourly_usd / f64::from(b.template.cpu.max(1))))
                .then_with(|| by_price(a, b))
        }),
    }
}

/// The templates `templates` lists for a filter (each at its best matching offer, sorted and
/// limited), and how many templates of retired providers were left out. Shared with `report`.
pub(crate) fn listed_templates<'a>(
    ctx: &'a Ctx,
    f: &TemplateFilter,
) -> anyhow::Result<(Vec<Offer<'a>>, usize)> {
    listed_in(&ctx.catalog, f)
}

/// [`listed_templates`] over a catalog. A catalog fresh from the cache answers through its
/// index ([`indexed_listing`]), with the same result; any other decodes its templates.
pub fn listed_in<'a>(
    catalog: &'a Catalog,
    f: &TemplateFilter,
) -> anyhow::Result<(Vec<Offer<'a>>, usize)> {
    let q = filter_query(catalog, f)?;
    let curated = if f.curated {
        let embedded = catalog::embedded()?;
        Some(embedded.templates.iter().map(|t| t.id.clone()).collect())
    } else {
        None
    };
    if let Some(ix) = catalog::index::of(catalog) {
        if let Some(found) = indexed_listing(catalog, ix, &q, f, curated.as_ref()) {
            return Ok(found);
        }
    }
    let mut found = matching_templates(catalog, &q, f.sort);
    let before = found.len();
    found.retain(|o| !left_out(f, o.provider));
    let left_out = before - found.len();
    if let Some(ids) = &curated {
        found.retain(|o| ids.contains(o.template.id.as_str()));
    }
    if let Some(n) = f.limit {
        found.truncate(n);
    }
    Ok((found, left_out))
}

/// A retired provider's templates cannot be deployed: shown only when asked for, by
/// --include-retired or by naming the provider.
fn left_out(f: &TemplateFilter, p: &ProviderEntry) -> bool {
    let asked = f.providers.iter().any(|x| x.eq_ignore_ascii_case(p.id()));
    p.is_retired() && !f.include_retired && !asked
}

/// [`listed_in`] from a cache entry's index, decoding only the templates it needs: those whose
/// index row may match (a superset of the matches), cheapest lower bound first, each one run
/// through the same code as the full path ([`Query::template_may_fit`], [`best_offers`],
/// [`sort_listing`]). Sorted by price with a limit, it stops once the limit is filled and the
/// next row's lower bound is above the last kept price: no template after it can be listed.
/// Retired providers' rows come first in the index and are all looked at, to count the ones
/// left out. `None` when a template cannot be decoded (the caller then decodes them all).
fn indexed_listing<'a>(
    catalog: &'a Catalog,
    ix: &'a catalog::index::Indexed,
    q: &Query,
    f: &TemplateFilter,
    curated: Option<&std::collections::HashSet<String>>,
) -> Option<(Vec<Offer<'a>>, usize)> {
    let pre = catalog::index::Prefilter::new(catalog, q);
    let retired: Vec<bool> = catalog.providers.iter().map(|p| p.is_retired()).collect();
    let is_retired = |r: &catalog::index::Row| retired.get(r.provider as usize) == Some(&true);
    // Stop early only where the order is the lower bound's: by price, with a limit.
    let limit = match f.sort {
        SortKey::Price => f.limit,
        _ => None,
    };
    let mut kept: Vec<Offer<'a>> = Vec::new();
    let mut left = 0;
    // The price of the last template the limit keeps, once `limit` are kept.
    let mut worst: Option<f64> = None;
    for n in 0..ix.len() {
        let r = ix.row(n)?;
        if let (Some(w), false) = (worst, is_retired(&r)) {
            if r.min_hourly_usd > w {
                break;
            }
        }
        if limit == Some(0) && !is_retired(&r) {
            break;
        }
        if !pre.may_match(&r) {
            continue;
        }
        let t = ix.template(r.pos as usize)?;
        if !q.template_may_fit(t) {
            continue;
        }
        let offers = select::offers_of(catalog, [t]);
        let Some(best) = best_offers(&offers, q).into_iter().next() else {
            continue;
        };
        if left_out(f, best.provider) {
            left += 1;
            continue;
        }
        if curated.is_some_and(|ids| !ids.contains(best.template.id.as_str())) {
            continue;
        }
        kept.push(best);
        if let Some(l) = limit.filter(|l| *l > 0) {
            if kept.len() >= l && (worst.is_none() || kept.len() >= 2 * l) {
                kept.sort_by(by_price);
                kept.truncate(l);
                worst = Some(kept[l - 1].hourly_usd);
            }
        }
    }
    sort_listing(&mut kept, f.sort);
    if let Some(l) = f.limit {
        kept.truncate(l);
    }
    Some((kept, left))
}

pub fn templates(ctx: &Ctx, f: &TemplateFilter) -> anyhow::Result<ExitCode> {
    let (found, left_out) = listed_templates(ctx, f)?;
    ctx.note_stale(found.iter().map(|o| o.provider.id()));
    let rows: Vec<render::Row> = found.iter().map(template_listing_row).collect();
    let cols = if ctx.format() == OutputFormat::Csv {
        TEMPLATE_CSV
    } else {
        TEMPLATE_TABLE
    };
    render::listing(&mut stdout(), ctx.style, cols, &rows)?;
    if rows.is_empty() && ctx.format() == OutputFormat::Table {
        messages::info("no template matches these filters");
    }
    if left_out > 0 && ctx.format() == OutputFormat::Table && !ctx.style.quiet {
        messages::note(format!(
            "{left_out} templates of retired providers left out — --include-retired shows them"
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// A template priced by one offer: the documented JSON of `templates`, `template show` and
/// `compare`.
#[derive(Debug, Serialize)]
pub struct TemplateRow<'a> {
    pub id: &'a str,
    pub provider: &'a str,
    pub plan: &'a str,
    pub name: &'a str,
    pub cpu: u32,
    pub memory_gb: f64,
    pub storage_gb: f64,
    pub bandwidth_tb: f64,
    pub bandwidth_unmetered: bool,
    pub price_hourly: f64,
    pub price_monthly: f64,
    pub currency: &'a str,
    pub price_hourly_usd: f64,
    pub price_monthly_usd: f64,
    pub gpu: Option<GpuRow<'a>>,
    pub arch: &'a str,
    pub regions: &'a [String],
    pub features: &'a [String],
    pub provider_retired: bool,
}

/// A template's GPUs.
#[derive(Debug, Serialize)]
pub struct GpuRow<'a> {
    pub model: &'a str,
    pub count: u32,
    pub vram_gb: f64,
}

impl<'a> TemplateRow<'a> {
    pub fn of(o: &Offer<'a>) -> TemplateRow<'a> {
        let t = o.template;
        TemplateRow {
            id: &t.id,
            provider: &t.provider,
            plan: &t.plan,
            name: &t.name,
            cpu: t.cpu,
            memory_gb: t.memory_gb,
            storage_gb: t.storage_gb,
            bandwidth_tb: t.bandwidth_tb,
            bandwidth_unmetered: t.bandwidth_unmetered,
            price_hourly: o.hourly,
            price_monthly: o.monthly,
            currency: o.provider.currency(),
            price_hourly_usd: round(o.hourly_usd, 5),
            price_monthly_usd: round(o.monthly_usd, 2),
            gpu: t.gpu.as_ref().map(|g| GpuRow {
                model: &g.model,
                count: g.count,
                vram_gb: g.vram_gb,
            }),
            arch: t.arch_name(),
            regions: &t.regions,
            features: &t.features,
            provider_retired: o.provider.is_retired(),
        }
    }
}

/// A template's listing row: its JSON, and the table's provider, transfer and region-count
/// cells.
fn template_listing_row(o: &Offer<'_>) -> render::Row {
    let t = o.template;
    let provider = if o.provider.is_retired() {
        format!("{} (retired)", t.provider)
    } else {
        t.provider.clone()
    };
    render::Row::of(&TemplateRow::of(o))
        .with_cell("_bandwidth", bandwidth_text(t))
        .with_cell("_provider", provider)
        .with_cell("_region_count", t.regions.len())
}

/// Transfer as a person reads it: `unmetered`, `5 TB` included, or `none` included.
fn bandwidth_text(t: &Template) -> String {
    if t.bandwidth_unmetered {
        "unmetered".into()
    } else if t.bandwidth_tb > 0.0 {
        format!("{} TB", render::num(t.bandwidth_tb))
    } else {
        "none".into()
    }
}

pub(crate) fn find_template<'a>(catalog: &'a Catalog, id: &str) -> anyhow::Result<&'a Template> {
    catalog.template(id).ok_or_else(|| {
        unknown(
            "template",
            id,
            catalog.templates.iter().map(|t| t.id.as_str()),
            "templates",
        )
    })
}

/// The base offer of a template: its price without a regional difference.
pub(crate) fn base_offer<'a>(catalog: &'a Catalog, t: &'a Template) -> Option<Offer<'a>> {
    let mut offers: Vec<Offer<'a>> = select::all_offers(catalog)
        .into_iter()
        .filter(|o| o.template.id == t.id)
        .collect();
    select::rank(&mut offers);
    offers.into_iter().next()
}

pub fn template_show(ctx: &Ctx, id: &str) -> anyhow::Result<ExitCode> {
    let t = find_template(&ctx.catalog, id)?;
    let o = base_offer(&ctx.catalog, t)
        .ok_or_else(|| anyhow::anyhow!("template '{id}' has no region"))?;
    let p = o.provider;
    ctx.note_stale([p.id()]);
    let rate = ctx.catalog.usd_rate(p.currency()).unwrap_or(1.0);
    let detail = TemplateDetail {
        template: TemplateRow::of(&o),
        region_prices: t
            .regions
            .iter()
            .filter_map(|slug| p.region(slug))
            .map(|r| RegionPrice {
                region: &r.id,
                city: &r.city,
                country: &r.country,
                price_hourly: t.hourly_in(&r.id),
                price_hourly_usd: round(t.hourly_in(&r.id) * rate, 5),
            })
            .collect(),
        prices_as_of: &p.meta.prices_as_of,
        provider_status: p.meta.status.state_name(),
        usd_rate: rate,
        usd_rate_as_of: ctx
            .catalog
            .rates
            .iter()
            .find(|r| r.currency.eq_ignore_ascii_case(p.currency()))
            .map(|r| r.as_of.as_str()),
    };
    let usd_native = p.currency().eq_ignore_ascii_case("USD");
    let mut pairs = vec![
        ("id".to_string(), t.id.clone()),
        ("name".into(), t.name.clone()),
        ("provider".into(), format!("{} ({})", p.meta.name, p.id())),
        ("plan".into(), t.plan.clone()),
        ("cpu".into(), t.cpu.to_string()),
        ("memory".into(), format!("{} GB", render::num(t.memory_gb))),
        (
            "storage".into(),
            format!("{} GB", render::num(t.storage_gb)),
        ),
        (
            "transfer".into(),
            if t.bandwidth_unmetered {
                "unmetered".to_string()
            } else {
                format!("{} TB included", render::num(t.bandwidth_tb))
            },
        ),
        (
            "price".into(),
            format!(
                "{}/h, {}/month",
                render::money(o.hourly, p.currency()),
                render::money(o.monthly, p.currency())
            ),
        ),
    ];
    if !usd_native {
        pairs.push((
            "price in USD (converted)".into(),
            format!("{}/h, {}/month", usd(o.hourly_usd), usd(o.monthly_usd)),
        ));
        if let Some(r) = rate_text(&ctx.catalog, p.currency()) {
            pairs.push(("exchange rate".into(), r));
        }
    }
    pairs.push((
        "gpu".into(),
        t.gpu.as_ref().map_or("-".into(), |g| {
            format!("{}× {} ({} GB)", g.count, g.model, render::num(g.vram_gb))
        }),
    ));
    pairs.push(("arch".into(), t.arch_name().to_string()));
    let regions: Vec<String> = t
        .regions
        .iter()
        .map(|r| {
            if t.region_prices.contains_key(r) {
                format!("{r} ({}/h)", usd(t.hourly_in(r) * rate))
            } else {
                r.clone()
            }
        })
        .collect();
    pairs.push(("regions".into(), regions.join(", ")));
    pairs.push(("features".into(), t.features.join(", ")));
    pairs.push(("prices as of".into(), p.meta.prices_as_of.clone()));
    if p.is_retired() {
        pairs.push((
            "provider status".into(),
            format!("retired {} — {}", p.meta.status.date, p.meta.status.reason),
        ));
    }
    render::detail(&mut stdout(), ctx.style, &pairs, &detail)?;
    Ok(ExitCode::SUCCESS)
}

/// `template show` (`golden/schema/template-show.json`): the template row, its price in each
/// region, and where its prices and rate come from.
#[derive(Debug, Serialize)]
struct TemplateDetail<'a> {
    #[serde(flatten)]
    template: TemplateRow<'a>,
    region_prices: Vec<RegionPrice<'a>>,
    prices_as_of: &'a str,
    provider_status: &'a str,
    usd_rate: f64,
    usd_rate_as_of: Option<&'a str>,
}

/// A template's hourly price in one region.
#[derive(Debug, Serialize)]
struct RegionPrice<'a> {
    region: &'a str,
    city: &'a str,
    country: &'a str,
    price_hourly: f64,
    price_hourly_usd: f64,
}

// ---------------------------------------------------------------------------------------------
// regions

const REGION_COLUMNS: &[Column] = &[
    col("provider", "provider", Kind::Text).prio(0),
    col("region", "id", Kind::Text).ident(),
    col("api id", "api_id", Kind::Text).prio(3),
    col("city", "city", Kind::Text).prio(1),
    col("country", "country", Kind::Text).prio(1),
    col("continent", "continent", Kind::Text).prio(2),
    col("templates", "templates", Kind::Num).prio(2),
];

/// One row of `regions` (`golden/schema/regions.json`).
#[derive(Debug, Serialize)]
struct RegionRow<'a> {
    provider: &'a str,
    id: &'a str,
    /// The id the provider's API uses (the catalog id when they are the same).
    api_id: &'a str,
    city: &'a str,
    country: &'a str,
    continent: &'a str,
    /// How many templates are offered there.
    templates: usize,
}

pub fn regions(ctx: &Ctx, args: &RegionsArgs) -> anyhow::Result<ExitCode> {
    check_providers(&ctx.catalog, &args.providers)?;
    let mut rows = Vec::new();
    for p in &ctx.catalog.providers {
        if !args.providers.is_empty()
            && !args
                .providers
                .iter()
                .any(|x| x.eq_ignore_ascii_case(p.id()))
        {
            continue;
        }
        for r in &p.regions {
            if args.continent.is_some_and(|c| r.continent != Some(c)) {
                continue;
            }
            let n = ctx
                .catalog
                .templates_of(p.id())
                .filter(|t| t.regions.contains(&r.id))
                .count();
            rows.push(render::Row::of(&RegionRow {
                provider: p.id(),
                id: &r.id,
                api_id: if r.api_id.is_empty() {
                    &r.id
                } else {
                    &r.api_id
                },
                city: &r.city,
                country: &r.country,
                continent: r.continent_name(),
                templates: n,
            }));
        }
    }
    render::listing(&mut stdout(), ctx.style, REGION_COLUMNS, &rows)?;
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// compare

/// The offers `compare` shows (each template at its base offer, duplicates dropped) and the id
/// of the cheapest. Shared with `compare --chart`.
pub(crate) fn compare_offers<'a>(
    ctx: &'a Ctx,
    ids: &[String],
    include_retired: bool,
) -> anyhow::Result<(Vec<Offer<'a>>, Option<String>)> {
    let mut offers = Vec::new();
    let mut seen = BTreeSet::new();
    for id in ids {
        let t = find_template(&ctx.catalog, id)?;
        if let Some(p) = ctx.catalog.provider(&t.provider).filter(|p| p.is_retired()) {
            if !include_retired {
                return Err(bad_input(format!(
                    "template '{}' belongs to {}, retired {} — add --include-retired to compare it anyway",
                    t.id,
                    p.id(),
                    p.meta.status.date
                )));
            }
        }
        if !seen.insert(t.id.clone()) {
            continue;
        }
        offers.push(
            base_offer(&ctx.catalog, t)
                .ok_or_else(|| anyhow::anyhow!("template '{id}' has no region"))?,
        );
    }
    let cheapest = offers
        .iter()
        .min_by(|a, b| {
            a.hourly_usd
                .total_cmp(&b.hourly_usd)
                .then_with(|| a.template.id.cmp(&b.template.id))
        })
        .map(|o| o.template.id.clone());
    Ok((offers, cheapest))
}

pub fn compare(ctx: &Ctx, ids: &[String], include_retired: bool) -> anyhow::Result<ExitCode> {
    let (offers, cheapest) = compare_offers(ctx, ids, include_retired)?;
    ctx.note_stale(offers.iter().map(|o| o.provider.id()));
    let rows: Vec<render::Row> = offers
        .iter()
        .map(|o| {
            let c = Some(&o.template.id) == cheapest.as_ref();
            let item = CompareRow {
                template: TemplateRow::of(o),
                cheapest: c,
                price_per_cpu_usd: round(o.hourly_usd / f64::from(o.template.cpu.max(1)), 5),
                price_per_gb_usd: round(o.hourly_usd / o.template.memory_gb.max(0.001), 5),
            };
            render::Row::of(&item)
                .with_cell("_bandwidth", bandwidth_text(o.template))
                .highlighted(c)
        })
        .collect();
    match ctx.format() {
        OutputFormat::Table => compare_table(ctx.style, &rows)?,
        _ => {
            let mut cols = TEMPLATE_CSV.to_vec();
            cols.push(col("price_per_cpu_usd", "price_per_cpu_usd", Kind::Num));
            cols.push(col("cheapest", "cheapest", Kind::Text));
            render::listing(&mut stdout(), ctx.style, &cols, &rows)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One template of `compare` (the documented JSON): the template row, how its price compares.
#[derive(Debug, Serialize)]
struct CompareRow<'a> {
    #[serde(flatten)]
    template: TemplateRow<'a>,
    cheapest: bool,
    price_per_cpu_usd: f64,
    price_per_gb_usd: f64,
}

/// A region list as its length (`8 regions`).
fn region_count(regions: &Value) -> String {
    format!("{} regions", regions.as_array().map_or(0, Vec::len))
}

/// Templates as columns, attributes as rows; the cheapest column marked.
fn compare_table(style: Style, rows: &[render::Row]) -> anyhow::Result<()> {
    use colored::Colorize;
    use std::io::Write;
    let attrs: &[Column] = &[
        col("provider", "provider", Kind::Text),
        col("plan", "plan", Kind::Text),
        col("cpu", "cpu", Kind::Num),
        col("memory gb", "memory_gb", Kind::Num),
        col("storage gb", "storage_gb", Kind::Num),
        col("transfer", "_bandwidth", Kind::Text),
        col("price/hour", "price_hourly", Kind::Money("currency")),
        col("price/month", "price_monthly", Kind::Money("currency")),
        col("usd/hour (conv.)", "price_hourly_usd", Kind::Usd),
        col("usd/cpu/hour", "price_per_cpu_usd", Kind::Usd),
        col("gpu", "gpu", Kind::Text).text(gpu_text),
        col("arch", "arch", Kind::Text),
        col("regions", "regions", Kind::List).text(region_count),
    ];
    let mut grid: Vec<Vec<String>> = Vec::new();
    let mut header = vec![String::new()];
    for r in rows.iter().map(|r| &r.data) {
        let mut id = r["id"].as_str().unwrap_or("").to_string();
        if r["provider_retired"].as_bool().unwrap_or(false) {
            id.push_str(" (retired)");
        }
        let cheap = r["cheapest"].as_bool().unwrap_or(false);
        header.push(if cheap {
            format!("{id} (cheapest)")
        } else {
            id
        });
    }
    grid.push(header);
    for c in attrs {
        let mut line = vec![c.header.to_string()];
        line.extend(rows.iter().map(|r| render::cell(r, c)));
        grid.push(line);
    }
    let widths: Vec<usize> = (0..grid[0].len())
        .map(|c| grid.iter().map(|l| l[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = stdout();
    for (i, line) in grid.iter().enumerate() {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            let padded = format!("{cell:w$}", w = widths[c]);
            let cheap = c > 0 && rows[c - 1].highlight;
            let styled = if style.color && i == 0 {
                padded.bold().to_string()
            } else if style.color && cheap {
                padded.green().to_string()
            } else {
                padded
            };
            text.push_str(&styled);
            if c + 1 < line.len() {
                text.push_str("  ");
            }
        }
        writeln!(out, "{}", text.trim_end())?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// catalog validate | export | generate

pub fn validate_dir(dir: &Path, format: OutputFormat) -> anyhow::Result<ExitCode> {
    let cat = catalog::validate_dir(dir)?;
    let summary = ValidSummary {
        valid: true,
        directory: dir.display().to_string(),
        providers: cat.providers.len(),
        templates: cat.templates.len(),
    };
    let mut out = stdout();
    if format == OutputFormat::Json {
        serde_json::to_writer_pretty(&mut out, &summary)?;
        use std::io::Write;
        writeln!(out)?;
    } else {
        use std::io::Write;
        writeln!(
            out,
            "{} is valid: {} providers, {} templates (layered over the embedded catalog)",
            dir.display(),
            cat.providers.len(),
            cat.templates.len()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `catalog validate DIR -o json`: what the valid directory adds up to.
#[derive(Debug, Serialize)]
struct ValidSummary {
    valid: bool,
    directory: String,
    providers: usize,
    templates: usize,
}

pub fn catalog_command(ctx: &Ctx, cmd: CatalogCommand) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    match cmd {
        CatalogCommand::Validate { dir } => validate_dir(&dir, ctx.format()),
        CatalogCommand::Export { dir } => {
            let files = catalog::export(&ctx.catalog, &dir)?;
            let mut out = stdout();
            writeln!(out, "wrote {} files to {}", files.len(), dir.display())?;
            Ok(ExitCode::SUCCESS)
        }
        CatalogCommand::Refresh {
            out,
            providers,
            all_plans,
        } => match out {
            Some(dir) => refresh_out(ctx, &dir, &providers),
            None => refresh_layer(ctx, &providers, all_plans),
        },
        CatalogCommand::Status => status(ctx),
        CatalogCommand::Schema { write } => schema_command(write.as_deref()),
        #[cfg(feature = "dev")]
        CatalogCommand::Generate { dir, templates } => {
            generate(&ctx.catalog, &dir, templates)?;
            writeln!(
                stdout(),
                "wrote a synthetic provider with {templates} templates to {}",
                dir.display()
            )?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// catalog schema: the JSON Schema of catalog files and the Markdown reference made from it

/// `catalog schema [--write DIR]`.
fn schema_command(write: Option<&Path>) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let json = schema_json_text();
    let Some(dir) = write else {
        stdout().write_all(json.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    };
    if dir.exists() && !dir.is_dir() {
        return Err(bad_input(format!(
            "--write {} is a file, not a directory; give a directory to write catalog.schema.json and catalog.md into",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create directory {}: {e}", dir.display()))?;
    let md = schema_markdown();
    for (name, text) in [("catalog.schema.json", &json), ("catalog.md", &md)] {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    writeln!(
        stdout(),
        "wrote {} and {}",
        dir.join("catalog.schema.json").display(),
        dir.join("catalog.md").display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The JSON Schema of one catalog file, from the serde types the loader reads it with.
pub fn catalog_schema() -> Value {
    let mut v = schemars::schema_for!(catalog::schema::FileDoc).to_value();
    if let Some(o) = v.as_object_mut() {
        o.insert("title".into(), json!("capsule catalog file"));
    }
    v
}

/// [`catalog_schema`] as pretty JSON with a final newline (the text of `catalog.schema.json`).
pub fn schema_json_text() -> String {
    let mut s = serde_json::to_string_pretty(&catalog_schema()).unwrap_or_default();
    s.push('\n');
    s
}

/// One step of a TOML path: a key, an element of an array of tables, a value of a table keyed
/// by free names.
#[derive(Clone, PartialEq)]
enum Seg {
    Key(String),
    Each,
    Any,
}

/// `[api.operations.<name>]`, `[[templates]]`, `[templates.gpu]`.
fn toml_header(segs: &[Seg]) -> String {
    if matches!(segs.last(), Some(Seg::Each)) {
        format!("[[{}]]", key_path(segs))
    } else {
        format!("[{}]", key_path(segs))
    }
}

fn def_name(r: &str) -> Option<&str> {
    r.strip_prefix("#/$defs/")
}

/// The definitions a schema refers to, each with the path it is reached by.
fn refs_of(s: &Value, segs: &[Seg], out: &mut Vec<(String, Vec<Seg>)>) {
    if let Some(r) = s.get("$ref").and_then(Value::as_str).and_then(def_name) {
        out.push((r.to_string(), segs.to_vec()));
    }
    for k in ["anyOf", "oneOf", "allOf"] {
        for b in s.get(k).and_then(Value::as_array).into_iter().flatten() {
            refs_of(b, segs, out);
        }
    }
    if let Some(items) = s.get("items") {
        let mut p = segs.to_vec();
        p.push(Seg::Each);
        refs_of(items, &p, out);
    }
    if let Some(ap) = s.get("additionalProperties").filter(|v| v.is_object()) {
        let mut p = segs.to_vec();
        p.push(Seg::Any);
        refs_of(ap, &p, out);
    }
}

/// The object forms of a definition: itself, or each variant of a tagged enum.
fn forms(s: &Value) -> Vec<&Value> {
    if s.get("properties").is_some() {
        return vec![s];
    }
    ["oneOf", "anyOf"]
        .iter()
        .filter_map(|k| s.get(*k).and_then(Value::as_array))
        .flatten()
        .filter(|v| v.get("properties").is_some())
        .collect()
}

fn anchor(def: &str) -> String {
    def.to_ascii_lowercase()
}

/// A value written as TOML (`"text"`, `[]`, `true`, `{}`).
fn toml_value(v: &Value) -> String {
    match v {
        Value::Object(m) if m.is_empty() => "{}".into(),
        _ => {
            let t: Result<toml::Value, _> = serde_json::from_value(v.clone());
            match t {
                Ok(t) => t.to_string(),
                Err(_) => v.to_string(),
            }
        }
    }
}

/// A key's type in words, linking to the section of a table type.
fn type_words(s: &Value, defs: &serde_json::Map<String, Value>) -> String {
    if let Some(r) = s.get("$ref").and_then(Value::as_str).and_then(def_name) {
        let d = defs.get(r);
        // A plain enum of words is shown inline.
        if let Some(words) = d.and_then(|d| d.get("enum")).and_then(Value::as_array) {
            return one_of_words(words);
        }
        if d.is_some_and(|d| forms(d).is_empty()) {
            return format!("[{r}](#{})", anchor(r));
        }
        return format!("table ([{r}](#{}))", anchor(r));
    }
    if let Some(c) = s.get("const") {
        return format!("`{}`", toml_value(c));
    }
    if let Some(words) = s.get("enum").and_then(Value::as_array) {
        return one_of_words(words);
    }
    for k in ["anyOf", "oneOf"] {
        if let Some(bs) = s.get(k).and_then(Value::as_array) {
            let parts: Vec<String> = bs
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) != Some("null"))
                .map(|b| type_words(b, defs))
                .collect();
            return parts.join(" or ");
        }
    }
    let ty = match s.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_string(),
        _ => return "any value".into(),
    };
    match ty.as_str() {
        "string" => "text".into(),
        "boolean" => "`true` or `false`".into(),
        "integer" => {
            if s.get("minimum").and_then(Value::as_f64) == Some(0.0) {
                "whole number ≥ 0".into()
            } else {
                "whole number".into()
            }
        }
        "number" => "number".into(),
        "array" => {
            let item = s
                .get("items")
                .map(|i| type_words(i, defs))
                .unwrap_or_else(|| "any value".into());
            match (s.get("minItems"), s.get("maxItems")) {
                (Some(a), Some(b)) if a == b => format!("list of {a} × {item}"),
                _ => format!("list of {item}"),
            }
        }
        "object" => match s.get("additionalProperties") {
            Some(ap) if ap.is_object() => format!("table of name → {}", type_words(ap, defs)),
            _ => "table of any keys".into(),
        },
        other => other.into(),
    }
}

fn one_of_words(words: &[Value]) -> String {
    let w: Vec<String> = words
        .iter()
        .map(|v| format!("`{}`", toml_value(v)))
        .collect();
    match w.as_slice() {
        [one] => one.clone(),
        _ => format!("one of {}", w.join(", ")),
    }
}

/// `api.node.id`, `api.operations.<name>.paging`: a key's path in words.
fn key_path(segs: &[Seg]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for s in segs {
        match s {
            Seg::Key(k) => parts.push(k.clone()),
            Seg::Any => parts.push("<name>".into()),
            Seg::Each => {}
        }
    }
    parts.join(".")
}

/// Text fit for one Markdown table cell.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// The value at a TOML path in the first embedded catalog file that has one, with the file's
/// path and the header naming the real keys (`[api.operations.create]`).
fn embedded_example(segs: &[Seg]) -> Option<(String, String, toml::Value)> {
    fn walk(v: &toml::Value, segs: &[Seg], parts: &mut Vec<String>) -> Option<toml::Value> {
        let Some((first, rest)) = segs.split_first() else {
            return Some(v.clone());
        };
        match first {
            Seg::Key(k) => {
                parts.push(k.clone());
                walk(v.as_table()?.get(k)?, rest, parts)
            }
            Seg::Each => walk(v.as_array()?.first()?, rest, parts),
            Seg::Any => {
                for (k, sub) in v.as_table()? {
                    let mut p = parts.clone();
                    p.push(k.clone());
                    if let Some(found) = walk(sub, rest, &mut p) {
                        *parts = p;
                        return Some(found);
                    }
                }
                None
            }
        }
    }
    for f in catalog::embedded_files() {
        let Ok(doc) = f.text.parse::<toml::Table>() else {
            continue;
        };
        let mut parts = Vec::new();
        if let Some(v) = walk(&toml::Value::Table(doc), segs, &mut parts) {
            let header = if matches!(segs.last(), Some(Seg::Each)) {
                format!("[[{}]]", parts.join("."))
            } else {
                format!("[{}]", parts.join("."))
            };
            return Some((f.path, header, v));
        }
    }
    None
}

/// A section's title: the TOML table it describes, or the name of a value kind (`Field`).
fn section_title(def: &str, segs: &[Seg], defs: &serde_json::Map<String, Value>) -> String {
    if defs.get(def).is_some_and(|d| forms(d).is_empty()) {
        return format!("Value kind `{def}`");
    }
    // A table that is one form of a value kind (a `Field` written as a table).
    let in_value = defs.values().any(|d| {
        forms(d).is_empty() && {
            let mut r = Vec::new();
            refs_of(d, &[], &mut r);
            r.iter().any(|(x, _)| x == def)
        }
    });
    if in_value {
        format!("Table `{def}` (inline, as a value)")
    } else {
        format!("`{}`", toml_header(segs))
    }
}

/// The Markdown catalog reference: every table, its keys with their type, default, whether
/// required, description, and an example from the embedded catalog.
pub fn schema_markdown() -> String {
    use std::fmt::Write;
    let root = catalog_schema();
    let empty = serde_json::Map::new();
    let defs = root
        .get("$defs")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    // Depth first from the file's top level: every table type once, at the first path that
    // reaches it (the other paths are noted), each followed by the tables inside it.
    fn visit(
        def: Option<String>,
        segs: Vec<Seg>,
        root: &Value,
        defs: &serde_json::Map<String, Value>,
        order: &mut Vec<(Option<String>, Vec<Seg>)>,
        also: &mut std::collections::BTreeMap<String, Vec<String>>,
    ) {
        let schema = match &def {
            None => root,
            Some(d) => &defs[d.as_str()],
        };
        order.push((def, segs.clone()));
        let mut found = Vec::new();
        let fs = forms(schema);
        if fs.is_empty() {
            refs_of(schema, &segs, &mut found);
        }
        for form in fs {
            for (k, p) in form["properties"].as_object().into_iter().flatten() {
                let mut path = segs.clone();
                path.push(Seg::Key(k.clone()));
                refs_of(p, &path, &mut found);
            }
        }
        for (d, path) in found {
            let Some(ds) = defs.get(&d) else { continue };
            if ds.get("enum").is_some() {
                continue; // a word list: shown inline
            }
            if forms(ds).is_empty() {
                // A value kind: listed with every key that takes it.
                if !matches!(path.last(), Some(Seg::Each)) {
                    let h = format!("`{}`", key_path(&path));
                    let list = also.entry(d.clone()).or_default();
                    if !list.contains(&h) {
                        list.push(h);
                    }
                }
                if order.iter().any(|(o, _)| o.as_deref() == Some(d.as_str())) {
                    continue;
                }
                visit(Some(d), path, root, defs, order, also);
                continue;
            }
            if order.iter().any(|(o, _)| o.as_deref() == Some(d.as_str())) {
                let h = format!("`{}`", toml_header(&path));
                let list = also.entry(d).or_default();
                if !list.contains(&h) {
                    list.push(h);
                }
            } else {
                visit(Some(d), path, root, defs, order, also);
            }
        }
    }
    let mut order: Vec<(Option<String>, Vec<Seg>)> = Vec::new();
    let mut also: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    visit(None, Vec::new(), &root, defs, &mut order, &mut also);

    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Catalog file reference\n\n\
         <!-- Generated by `capsule openmesh catalog schema --write docs`; do not edit. -->\n\n\
         Every provider is described by TOML files under `catalog/<provider>/` (or an overlay \
         directory given with `--catalog DIR`). Each file may hold any of the top-level tables \
         below; a file in a provider folder belongs to that provider. Unknown keys are errors.\n\n\
         Most keys may be left out of one file, so that an overlay can patch a single field of an \
         existing entry; whether each *merged* entry is complete (a template's `plan` and `name`, a \
         provider's `name`, `currency` and `prices_as_of`, the required API operations, …) is \
         checked when the catalog is loaded, and by `capsule openmesh catalog validate DIR`.\n\n\
         The same rules as a JSON Schema: [`catalog.schema.json`](catalog.schema.json) \
         (editors with TOML schema support, such as Taplo or Even Better TOML, can use it).\n\n\
         Columns: *Required* is `yes` when a file that has the table must write the key; \
         *Default* is the value used when the key is left out.\n"
    );
    let _ = writeln!(md, "## Contents\n");
    for (def, segs) in &order {
        let (title, a) = match def {
            None => ("Top level of a file".to_string(), "top-level".to_string()),
            Some(d) => (section_title(d, segs, defs), anchor(d)),
        };
        let _ = writeln!(md, "- [{title}](#{a})");
    }
    let _ = writeln!(md);
    for (def, segs) in &order {
        let schema = match def {
            None => &root,
            Some(d) => &defs[d.as_str()],
        };
        match def {
            None => {
                let _ = writeln!(md, "<a id=\"top-level\"></a>\n\n## Top level of a file\n");
            }
            Some(d) => {
                let _ = writeln!(
                    md,
                    "<a id=\"{}\"></a>\n\n## {}\n",
                    anchor(d),
                    section_title(d, segs, defs)
                );
                if let Some(more) = also.get(d) {
                    let what = if forms(schema).is_empty() {
                        "Taken by"
                    } else {
                        "Also used at"
                    };
                    let _ = writeln!(md, "{what} {}.\n", more.join(", "));
                }
            }
        }
        if let Some(desc) = schema.get("description").and_then(Value::as_str) {
            let _ = writeln!(md, "{}\n", desc.trim());
        }
        let fs = forms(schema);
        if fs.is_empty() {
            let _ = writeln!(md, "Written as one of:\n");
            for k in ["anyOf", "oneOf"] {
                for b in schema
                    .get(k)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let what = cell(&type_words(b, defs));
                    match b.get("description").and_then(Value::as_str) {
                        Some(d) => {
                            let _ = writeln!(md, "- {what}: {}", cell(d));
                        }
                        None => {
                            let _ = writeln!(md, "- {what}");
                        }
                    }
                }
            }
            let _ = writeln!(md);
            continue;
        }
        let tagged = fs.len() > 1;
        for form in fs {
            let required: Vec<&str> = form
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let props = form["properties"].as_object().cloned().unwrap_or_default();
            if tagged {
                let tag = props
                    .iter()
                    .find_map(|(k, v)| v.get("const").map(|c| format!("{k} = {}", toml_value(c))));
                let _ = writeln!(md, "### `{}`\n", tag.unwrap_or_else(|| "form".into()));
                if let Some(desc) = form.get("description").and_then(Value::as_str) {
                    let _ = writeln!(md, "{}\n", desc.trim());
                }
            }
            let rows: Vec<(&String, &Value)> = props
                .iter()
                .filter(|(_, v)| !(tagged && v.get("const").is_some()))
                .collect();
            if rows.is_empty() {
                let _ = writeln!(md, "No other keys.\n");
                continue;
            }
            let _ = writeln!(
                md,
                "| Key | Type | Required | Default | Description |\n|---|---|---|---|---|"
            );
            for (k, v) in rows {
                let req = if required.contains(&k.as_str()) {
                    "yes"
                } else {
                    "no"
                };
                let default = v
                    .get("default")
                    .map(|d| format!("`{}`", toml_value(d)))
                    .unwrap_or_else(|| "—".into());
                let desc = v
                    .get("description")
                    .and_then(Value::as_str)
                    .map(cell)
                    .unwrap_or_default();
                let _ = writeln!(
                    md,
                    "| `{k}` | {} | {req} | {} | {} |",
                    cell(&type_words(v, defs)),
                    cell(&default),
                    desc
                );
            }
            let _ = writeln!(md);
        }
        if def.is_some() {
            if let Some((file, header, value)) = embedded_example(segs).filter(|e| e.2.is_table()) {
                // Keys that are tables of their own sections are shown there.
                let own: BTreeSet<String> = forms(schema)
                    .iter()
                    .flat_map(|f| f["properties"].as_object().into_iter().flatten())
                    .filter(|(_, p)| {
                        let mut r = Vec::new();
                        refs_of(p, &[], &mut r);
                        r.iter()
                            .any(|(d, _)| defs.get(d).is_some_and(|d| !forms(d).is_empty()))
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                let body = match value {
                    toml::Value::Table(t) => {
                        let kept: toml::Table =
                            t.into_iter().filter(|(k, _)| !own.contains(k)).collect();
                        toml::to_string(&kept).unwrap_or_default()
                    }
                    other => format!("{other}\n"),
                };
                if !body.trim().is_empty() {
                    let _ = writeln!(
                        md,
                        "Example (from `{file}`):\n\n```toml\n{header}\n{}```\n",
                        body
                    );
                }
            }
        }
    }
    while md.ends_with("\n\n") {
        md.pop();
    }
    md
}

/// A synthetic provider `synthetic` with `n` templates, modelled on the first embedded provider
/// (benchmarks load, validate, filter and rank it).
#[cfg(feature = "dev")]
pub fn generate(catalog: &Catalog, dir: &Path, n: usize) -> anyhow::Result<()> {
    let model = catalog
        .providers
        .first()
        .ok_or_else(|| anyhow::anyhow!("the catalog has no provider"))?;
    let folder = dir.join("synthetic");
    std::fs::create_dir_all(&folder)?;
    let mut meta = model.meta.clone();
    meta.id = "synthetic".into();
    meta.name = "Synthetic".into();
    meta.currency = "USD".into();
    meta.monthly_ratio = None;
    let doc = crate::catalog::schema::FileDoc {
        provider: Some(meta),
        regions: model.regions.clone(),
        credentials: model.credentials.clone(),
        api: Some(model.api.clone()),
        ..Default::default()
    };
    std::fs::write(folder.join("provider.toml"), toml::to_string(&doc)?)?;
    let regions: Vec<String> = model.regions.iter().map(|r| r.id.clone()).collect();
    let mut text = String::with_capacity(n * 300);
    // A small linear congruential generator keeps the output deterministic.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        seed >> 33
    };
    for i in 0..n {
        let cpu = 1u64 << (next() % 7);
        let mem = cpu * (1 + next() % 8);
        let hourly =
            (cpu as f64) * 0.004 + (mem as f64) * 0.002 + (next() % 1000) as f64 / 100_000.0;
        let monthly = hourly * 720.0;
        let r1 = &regions[(next() as usize) % regions.len()];
        let r2 = &regions[(next() as usize) % regions.len()];
        let regs = if r1 == r2 {
            format!("\"{r1}\"")
        } else {
            format!("\"{r1}\", \"{r2}\"")
        };
        text.push_str(&format!(
            "[[templates]]\nid = \"syn-{i}\"\nplan = \"syn-plan-{i}\"\nname = \"Synthetic {i}\"\ncpu = {cpu}\nmemory_gb = {mem}\nstorage_gb = {}\nbandwidth_tb = 1\nprice_hourly = {hourly:.6}\nprice_monthly = {monthly:.4}\narch = \"x86_64\"\nregions = [{regs}]\nfeatures = [\"ssd\"]\n\n",
            mem * 10
        ));
    }
    std::fs::write(folder.join("templates.toml"), text)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// catalog refresh

const REFRESH_COLUMNS: &[Column] = &[
    col("provider", "provider", Kind::Text),
    col("template", "template", Kind::Text),
    col("plan", "plan", Kind::Text),
    col("hourly was", "price_hourly_was", Kind::Num),
    col("hourly now", "price_hourly", Kind::Num),
    col("monthly was", "price_monthly_was", Kind::Num),
    col("monthly now", "price_monthly", Kind::Num),
    col("currency", "currency", Kind::Text),
];

/// One price change of `catalog refresh` (`-o json`; `golden/refresh/*.json`).
#[derive(Debug, Serialize)]
struct RefreshRow {
    provider: String,
    template: String,
    plan: String,
    price_hourly_was: f64,
    price_hourly: f64,
    price_monthly_was: f64,
    price_monthly: f64,
    currency: String,
    region_prices_was: BTreeMap<String, f64>,
    /// The regional prices to write, when they changed (`null` otherwise).
    region_prices: Option<BTreeMap<String, f64>>,
}

/// What one provider's price list said.
struct Fetched {
    provider: String,
    list: crate::driver::PriceList,
}

/// The providers to refresh, the ones skipped (with why) and the ones that failed before any
/// request (with why).
#[allow(clippy::type_complexity)]
fn refresh_targets<'a>(
    ctx: &'a Ctx,
    only: &[String],
) -> anyhow::Result<(
    Vec<&'a ProviderEntry>,
    Vec<(String, String)>,
    Vec<(String, String)>,
)> {
    check_providers(&ctx.catalog, only)?;
    let mut targets = Vec::new();
    let mut skipped = Vec::new();
    let mut failed = Vec::new();
    for p in &ctx.catalog.providers {
        let named = only.iter().any(|o| o.eq_ignore_ascii_case(p.id()));
        if !only.is_empty() && !named {
            continue;
        }
        if only.is_empty() && !ctx.configured(p, &ctx.account)? {
            continue;
        }
        if p.is_retired() {
            let s = &p.meta.status;
            skipped.push((
                p.id().to_string(),
                format!(
                    "retired {} ({}); its prices stay as they were",
                    s.date,
                    s.reason.trim_end_matches('.')
                ),
            ));
            continue;
        }
        if p.api.prices.is_none() && p.api.plan_lookup.is_none() {
            failed.push((
                p.id().to_string(),
                "its catalog describes no price list API".to_string(),
            ));
            continue;
        }
        targets.push(p);
    }
    if targets.is_empty() && failed.is_empty() && skipped.is_empty() {
        return Err(bad_input(
            "no provider is configured to refresh — run `capsule openmesh provider configure NAME`, or name one with --provider",
        ));
    }
    Ok((targets, skipped, failed))
}

/// Fetch every target's price list at once; failures carry the provider and the reason.
fn fetch_prices(
    ctx: &Ctx,
    targets: &[&ProviderEntry],
    failed: &mut Vec<(String, String)>,
) -> anyhow::Result<Vec<Fetched>> {
    let mut drivers = Vec::new();
    for p in targets {
        // A provider without a price list is priced from its plan-lookup inventory.
        let inventory: Option<Vec<Template>> = p.api.prices.is_none().then(|| {
            ctx.catalog
                .templates_of(p.id())
                .filter(|t| !from_price_list(t))
                .cloned()
                .collect()
        });
        match ctx.driver(p.id()) {
            Ok(d) => drivers.push((d, inventory)),
            Err(e) => failed.push((p.id().to_string(), e.to_string())),
        }
    }
    // The lists are read on this one thread, their requests still overlapping: every page is
    // parsed and dropped in the same allocator arena, whose freed memory the layer's validation
    // then reuses. On worker threads each arena keeps its own high-water mark, which cost the
    // refresh about 30 MB of peak RSS (BENCHMARKS.md, issue 11).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = rt.block_on(crate::engine::fan_out(
        drivers,
        crate::engine::DEFAULT_LIMIT,
        &crate::engine::Progress::hidden(),
        |(d, inventory)| async move {
            match &inventory {
                Some(ts) => d.inventory_prices(ts).await,
                None => d.prices().await,
            }
        },
    ));
    let mut out = Vec::new();
    for ((d, _), r) in results {
        let provider = d.provider_id().to_string();
        match r {
            Ok(Ok(list)) => out.push(Fetched { provider, list }),
            Ok(Err(e)) => failed.push((provider, e.to_string())),
            Err(e) => failed.push((provider, e.to_string())),
        }
    }
    out.sort_by(|a, b| a.provider.cmp(&b.provider));
    Ok(out)
}

/// The provider's templates at their live prices (only those the list names), the change
/// rows, and the templates whose plan the list does not have.
fn refreshed_templates(
    ctx: &Ctx,
    f: &Fetched,
) -> anyhow::Result<(Vec<Template>, Vec<RefreshRow>, Vec<String>)> {
    let p = ctx.provider(&f.provider)?;
    let by_plan: std::collections::HashMap<&str, &crate::driver::PlanPrice> =
        f.list.plans.iter().map(|x| (x.plan.as_str(), x)).collect();
    let mut ts = Vec::new();
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for t in ctx
        .catalog
        .templates_of(&f.provider)
        .filter(|t| !from_price_list(t))
    {
        let Some(live) = by_plan.get(t.plan.as_str()) else {
            missing.push(format!(
                "{} ({}) is not in the live price list; its catalog price is kept",
                t.id, t.plan
            ));
            continue;
        };
        let hourly = live.hourly.unwrap_or(t.price_hourly);
        let monthly = live.monthly.unwrap_or_else(|| {
            if t.price_hourly > 0.0 {
                t.price_monthly * hourly / t.price_hourly
            } else {
                t.price_monthly
            }
        });
        let mut nt = t.clone();
        // Where the plan is sold now, among the provider's regions capsule knows.
        if let Some(live_regions) = &live.regions {
            let sold: BTreeSet<&str> = live_regions
                .iter()
                .filter_map(|r| p.region(r).map(|x| x.id.as_str()))
                .collect();
            if sold.is_empty() {
                missing.push(format!(
                    "{} ({}) is sold in none of capsule's {} regions right now; it is kept as it was",
                    t.id,
                    t.plan,
                    p.id()
                ));
                continue;
            }
            // Keep the catalog's order for regions it had, then the new ones.
            let mut regions: Vec<String> = t
                .regions
                .iter()
                .filter(|r| sold.contains(r.as_str()))
                .cloned()
                .collect();
            for r in &p.regions {
                if sold.contains(r.id.as_str()) && !regions.contains(&r.id) {
                    regions.push(r.id.clone());
                }
            }
            nt.regions = regions;
        }
        if !f.list.regional && live.region_prices.is_empty() {
            // A list that says nothing about regional prices: a regional price stays relative
            // to the base price it was declared against. A list that states them replaces them
            // (a region it prices no differently loses its old regional price).
            if t.price_hourly > 0.0 && (hourly - t.price_hourly).abs() > 1e-12 {
                let k = hourly / t.price_hourly;
                for v in nt.region_prices.values_mut() {
                    *v *= k;
                }
            }
        } else {
            nt.region_prices = live
                .region_prices
                .iter()
                .filter_map(|(r, h)| p.region(r).map(|x| (x.id.clone(), *h)))
                .collect();
        }
        nt.region_prices.retain(|r, _| nt.regions.contains(r));
        nt.price_hourly = hourly;
        nt.price_monthly = monthly;
        let regional_changed = nt.region_prices != t.region_prices;
        if regional_changed
            || (hourly - t.price_hourly).abs() >= 1e-9
            || (monthly - t.price_monthly).abs() >= 1e-9
        {
            // An overlay merges regional prices key by key: one the refresh dropped is set
            // back to the base price, so the old figure cannot survive the merge.
            let regional: BTreeMap<String, f64> = t
                .region_prices
                .keys()
                .map(|r| (r.clone(), hourly))
                .chain(nt.region_prices.iter().map(|(r, h)| (r.clone(), *h)))
                .collect();
            rows.push(RefreshRow {
                provider: f.provider.clone(),
                template: t.id.clone(),
                plan: t.plan.clone(),
                price_hourly_was: t.price_hourly,
                price_hourly: hourly,
                price_monthly_was: t.price_monthly,
                price_monthly: monthly,
                currency: p.currency().to_string(),
                region_prices_was: t.region_prices.clone(),
                region_prices: regional_changed.then_some(regional),
            });
        }
        ts.push(nt);
    }
    Ok((ts, rows, missing))
}

/// A template `catalog refresh --all-plans` added (not one of the catalog's own).
fn from_price_list(t: &Template) -> bool {
    t.features.iter().any(|f| f == PRICE_LIST_FEATURE)
}

const PRICE_LIST_FEATURE: &str = "price-list";

/// `--all-plans`: every plan of the list that no template names, as a template with a stable
/// id (`PROVIDER-PLAN`), when the list gives its shape, a plausible price and a region capsule
/// knows. Returns the templates and how many plans were left out.
fn new_plan_templates(ctx: &Ctx, f: &Fetched) -> anyhow::Result<(Vec<Template>, usize)> {
    let p = ctx.provider(&f.provider)?;
    let known: BTreeSet<&str> = ctx
        .catalog
        .templates_of(&f.provider)
        .filter(|t| !from_price_list(t))
        .map(|t| t.plan.as_str())
        .collect();
    let [lo, hi] = p.meta.monthly_ratio.unwrap_or([600.0, 745.0]);
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut skipped = 0;
    for live in &f.list.plans {
        if known.contains(live.plan.as_str()) || !seen.insert(live.plan.clone()) {
            continue;
        }
        let spec = |k: &str| live.specs.get(k).copied().unwrap_or(0.0);
        let (cpu, mem) = (spec("cpu"), spec("memory_gb"));
        let regions: Vec<String> = match &live.regions {
            Some(rs) => p
                .regions
                .iter()
                .filter(|r| rs.iter().any(|x| p.region(x).is_some_and(|y| y.id == r.id)))
                .map(|r| r.id.clone())
                .collect(),
            None => Vec::new(),
        };
        let Some(hourly) = live.hourly else {
            skipped += 1;
            continue;
        };
        let monthly = live.monthly.unwrap_or(hourly * 730.0);
        let ratio = monthly / hourly;
        if cpu < 1.0 || mem <= 0.0 || regions.is_empty() || ratio < lo || ratio > hi {
            skipped += 1;
            continue;
        }
        let slug: String = live
            .plan
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let mut region_prices = std::collections::BTreeMap::new();
        for (r, h) in &live.region_prices {
            if let Some(x) = p.region(r) {
                if regions.contains(&x.id) {
                    region_prices.insert(x.id.clone(), *h);
                }
            }
        }
        out.push(Template {
            id: format!("{}-{slug}", p.id()),
            provider: p.id().to_string(),
            plan: live.plan.clone(),
            name: format!("{} (from the price list)", live.plan),
            cpu: cpu as u32,
            memory_gb: mem,
            storage_gb: spec("storage_gb"),
            bandwidth_tb: spec("bandwidth_tb"),
            price_hourly: hourly,
            price_monthly: monthly,
            region_prices,
            arch: Some(catalog::schema::Arch::X86_64),
            regions,
            features: vec![PRICE_LIST_FEATURE.into()],
            api_variant: live.variant.clone(),
            ..Template::default()
        });
    }
    Ok((out, skipped))
}

fn report_problems(skipped: &[(String, String)], failed: &[(String, String)]) {
    for (id, msg) in skipped {
        messages::info(format!("{id}: skipped: {msg}"));
    }
    for (id, msg) in failed {
        messages::info(format!("{id}: not refreshed: {msg}"));
    }
}

/// The price changes of a refresh (or an export of one).
fn refresh_listing(ctx: &Ctx, rows: &[RefreshRow]) -> std::io::Result<()> {
    let rows: Vec<render::Row> = rows.iter().map(render::Row::of).collect();
    render::listing(&mut stdout(), ctx.style, REFRESH_COLUMNS, &rows)
}

/// `catalog refresh`: live prices into the refreshed layer `$CAPSULE_HOME/catalog/layer.json`,
/// all or nothing. Providers not refreshed this time keep what the previous layer had.
fn refresh_layer(ctx: &Ctx, only: &[String], all_plans: bool) -> anyhow::Result<ExitCode> {
    use crate::catalog::layer::{self, Layer, Provenance};
    let (targets, skipped, mut failed) = refresh_targets(ctx, only)?;
    let fetched = fetch_prices(ctx, &targets, &mut failed)?;
    let path = layer::path(&ctx.home);
    if fetched.is_empty() && failed.is_empty() {
        report_problems(&skipped, &failed);
        return Ok(ExitCode::SUCCESS);
    }
    if !failed.is_empty() {
        report_problems(&skipped, &failed);
        return Err(anyhow::anyhow!(
            "{} of {} providers could not be refreshed, so nothing was written — {} is unchanged",
            failed.len(),
            failed.len() + fetched.len(),
            path.display()
        ));
    }
    let now = crate::state::time::now();
    let today = now.get(..10).unwrap_or_default().to_string();
    let previous = layer::read(&ctx.home).ok().flatten().unwrap_or_default();
    let refreshed: BTreeSet<&str> = fetched.iter().map(|f| f.provider.as_str()).collect();
    let mut next = Layer {
        version: layer::VERSION,
        embedded_digest: catalog::embedded_digest(),
        providers: previous
            .providers
            .into_iter()
            .filter(|(id, _)| !refreshed.contains(id.as_str()))
            .collect(),
        templates: previous
            .templates
            .into_iter()
            .filter(|t| !refreshed.contains(t.provider.as_str()))
            .collect(),
    };
    let mut rows = Vec::new();
    for f in &fetched {
        let (ts, mut changes, missing) = refreshed_templates(ctx, f)?;
        for m in missing {
            messages::info(format!("{}: {m}", f.provider));
        }
        rows.append(&mut changes);
        next.templates.extend(ts);
        if all_plans {
            let (added, skipped_plans) = new_plan_templates(ctx, f)?;
            if skipped_plans > 0 {
                messages::info(format!("{}: {skipped_plans} plans left out (sold in none of capsule's regions, or no shape or price in the list)",
                    f.provider));
            }
            next.templates.extend(added);
        }
        next.providers.insert(
            f.provider.clone(),
            Provenance {
                refreshed_at: now.clone(),
                prices_as_of: today.clone(),
                source: f.list.source.clone(),
            },
        );
    }
    layer::sort_templates(&mut next.templates);
    // Validate the new layer over the embedded catalog before it replaces the old one.
    let base = catalog::embedded()?;
    let mut files = catalog::embedded_files();
    files.extend(layer::source_files(&next, &base, &ctx.home, 1));
    if let Err(d) = catalog::load::load_files(&files) {
        return Err(anyhow::anyhow!(
            "the live prices do not validate, so nothing was written ({} is unchanged):\n{d}",
            path.display()
        ));
    }
    layer::write(&ctx.home, &next).map_err(|e| {
        anyhow::anyhow!(
            "cannot write {}: {e} — the previous layer is unchanged",
            path.display()
        )
    })?;
    refresh_listing(ctx, &rows)?;
    report_problems(&skipped, &[]);
    if ctx.format() == OutputFormat::Table {
        messages::info(format!("refreshed {} ({} price changes) into {} — every command uses it now (--embedded-only ignores it)",
            fetched.iter().map(|f| f.provider.as_str()).collect::<Vec<_>>().join(", "),
            rows.len(),
            path.display()));
    }
    Ok(ExitCode::SUCCESS)
}

/// `catalog refresh --out DIR`: live prices → `DIR/<provider>/prices.toml` patches for the
/// templates whose price changed, validated over the effective catalog before anything is
/// written. Providers that fail are reported (exit 1); the others are written.
fn refresh_out(ctx: &Ctx, out: &Path, only: &[String]) -> anyhow::Result<ExitCode> {
    use std::fmt::Write as _;
    let (targets, skipped, mut failed) = refresh_targets(ctx, only)?;
    let fetched = fetch_prices(ctx, &targets, &mut failed)?;
    let today = crate::state::time::now()
        .get(..10)
        .unwrap_or_default()
        .to_string();
    let mut rows = Vec::new();
    let mut files: Vec<(std::path::PathBuf, String)> = Vec::new();
    for f in &fetched {
        let (_, mut changes, _) = refreshed_templates(ctx, f)?;
        let mut text = format!(
            "# Written by `capsule openmesh catalog refresh` on {today}.\n\n[provider]\nprices_as_of = \"{today}\"\nprices_source = {}\n",
            toml::Value::from(f.list.source.clone())
        );
        // Numbers as JSON writes them (`5.0`, not `5`), which TOML reads as floats.
        let num = |x: f64| Value::from(x);
        for r in &changes {
            let _ = write!(
                text,
                "\n[[templates]]\nid = \"{}\"\nprice_hourly = {}\nprice_monthly = {}  # was {} / {}\n",
                r.template,
                num(r.price_hourly),
                num(r.price_monthly),
                num(r.price_hourly_was),
                num(r.price_monthly_was)
            );
            if let Some(regional) = &r.region_prices {
                let pairs: Vec<String> = regional
                    .iter()
                    .map(|(k, v)| format!("{} = {}", toml::Value::from(k.as_str()), num(*v)))
                    .collect();
                let _ = writeln!(text, "region_prices = {{ {} }}", pairs.join(", "));
            }
        }
        rows.append(&mut changes);
        files.push((out.join(&f.provider).join("prices.toml"), text));
    }
    // Check the overlay over the current catalog before writing it.
    let staging = tempdir_in(out)?;
    for (path, text) in &files {
        let rel = path.strip_prefix(out).unwrap_or(path);
        let dest = staging.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(dest, text)?;
    }
    let check = catalog::load(Some(&staging));
    let _ = std::fs::remove_dir_all(&staging);
    if let Err(e) = check {
        return Err(anyhow::anyhow!(
            "the live prices do not validate, nothing was written: {e}"
        ));
    }
    for (path, text) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    refresh_listing(ctx, &rows)?;
    if ctx.format() == OutputFormat::Table {
        messages::info(format!(
            "{} price changes from {} providers written to {} — use it with --catalog {}",
            rows.len(),
            files.len(),
            out.display(),
            out.display()
        ));
    }
    report_problems(&skipped, &failed);
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A fresh scratch directory beside `out` (created if needed).
fn tempdir_in(out: &Path) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(out)?;
    let dir = out.join(format!(".refresh-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

// ---------------------------------------------------------------------------------------------
// catalog status

const STATUS_COLUMNS: &[Column] = &[
    col("provider", "provider", Kind::Text),
    col("status", "status", Kind::Status),
    col("prices from", "layer", Kind::Text),
    col("as of", "prices_as_of", Kind::Text),
    col("age days", "age_days", Kind::Num),
    col("stale", "stale", Kind::Text),
    col("source", "source", Kind::Text),
];

/// `catalog status`: where each provider's prices come from and how old they are.
fn status(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let now = crate::state::time::now_unix();
    let limit_days = ctx.stale_after.as_secs_f64() / 86400.0;
    let rows: Vec<render::Row> = ctx
        .catalog
        .providers
        .iter()
        .map(|p| {
            let age = crate::context::prices_age_days(&ctx.catalog, p, now);
            let refreshed = ctx.catalog.refreshed.get(p.id());
            render::Row::of(&PriceStatus {
                provider: p.id(),
                status: p.meta.status.state_name(),
                layer: if refreshed.is_some() {
                    "refreshed"
                } else {
                    "embedded"
                },
                prices_as_of: &p.meta.prices_as_of,
                refreshed_at: refreshed,
                age_days: age,
                stale: !p.is_retired() && age.is_some_and(|d| d as f64 > limit_days),
                source: &p.meta.prices_source,
            })
        })
        .collect();
    render::listing(&mut stdout(), ctx.style, STATUS_COLUMNS, &rows)?;
    Ok(ExitCode::SUCCESS)
}

/// One provider of `catalog status` (`golden/schema/catalog-status.json`).
#[derive(Debug, Serialize)]
struct PriceStatus<'a> {
    provider: &'a str,
    status: &'a str,
    layer: &'static str,
    prices_as_of: &'a str,
    refreshed_at: Option<&'a String>,
    age_days: Option<i64>,
    stale: bool,
    source: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::schema::{Arch, Continent};
    use crate::cli::MinSize;

    /// A few templates the generator does not make: GPUs, arm64, regional prices below and
    /// above the base price, a region price that makes one region the cheapest.
    const EXTRA: &str = r#"
[[templates]]
id = "syn-gpu-a"
plan = "g-a"
name = "GPU A"
cpu = 8
memory_gb = 32
storage_gb = 100
price_hourly = 0.05
price_monthly = 36
arch = "x86_64"
regions = ["us-east-1", "eu-west-1"]
region_prices = { "eu-west-1" = 0.001 }
features = ["gpu"]
gpu = { count = 2, model = "NVIDIA H100", vram_gb = 80 }

[[templates]]
id = "syn-gpu-b"
plan = "g-b"
name = "GPU B"
cpu = 4
memory_gb = 16
storage_gb = 50
price_hourly = 0.002
price_monthly = 1.44
arch = "x86_64"
regions = ["us-west-2"]
features = ["gpu"]
gpu = { count = 1, model = "RTX 4090", vram_gb = 24 }

[[templates]]
id = "syn-arm-a"
plan = "a-a"
name = "Arm A"
cpu = 16
memory_gb = 64
storage_gb = 640
price_hourly = 0.02
price_monthly = 14.4
arch = "arm64"
regions = ["ap-southeast-1", "us-east-1"]
region_prices = { "us-east-1" = 0.9 }
features = ["ssd"]
"#;

    /// `n` templates whose regions are priced apart: one region well below the base price,
    /// one above, all of them about as cheap as the cheapest generated ones, so that a region or continent filter sees prices above a template's lower
    /// bound (what the early stop of the index path has to get right).
    fn regional(n: usize) -> String {
        let regions = [
            "us-east-1",
            "us-west-2",
            "eu-west-1",
            "ap-southeast-1",
            "ap-northeast-1",
        ];
        let mut seed: u64 = 0x1234_5678_9abc_def1;
        let mut next = |m: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % m
        };
        let mut text = String::new();
        for i in 0..n {
            let cpu = 1u64 << next(7);
            let mem = cpu * (1 + next(8));
            let base = 0.003 + next(10_000) as f64 / 500_000.0;
            // The cheap region in Asia, the others in America or Europe: a filter on the
            // latter sees prices well above the lower bound.
            let cheap = regions[3 + next(2) as usize];
            let dear = regions[next(3) as usize];
            let other = regions[next(3) as usize];
            let mut regs = vec![cheap, dear, other];
            regs.sort_unstable();
            regs.dedup();
            let cheap_price = base * (0.5 + next(50) as f64 / 100.0);
            let mut prices = format!("\"{cheap}\" = {cheap_price:.6}");
            if dear != cheap {
                prices.push_str(&format!(", \"{dear}\" = {:.6}", base * 1.5));
            }
            text.push_str(&format!(
                "[[templates]]\nid = \"syn-rp-{i}\"\nplan = \"rp-{i}\"\nname = \"Regional {i}\"\ncpu = {cpu}\nmemory_gb = {mem}\nstorage_gb = {}\nprice_hourly = {base:.6}\nprice_monthly = {:.4}\narch = \"x86_64\"\nregions = [{}]\nregion_prices = {{ {prices} }}\nfeatures = [\"ssd\"]\n\n",
                mem * 10,
                base * 720.0,
                regs.iter().map(|r| format!("\"{r}\"")).collect::<Vec<_>>().join(", "),
            ));
        }
        text
    }

    /// The index path gives exactly the full path's listing, for a spread of filters, and never
    /// decodes every template to do it.
    #[test]
    fn the_indexed_listing_is_the_full_listing() {
        let dir = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        let embedded = catalog::embedded().unwrap();
        generate(&embedded, dir.path(), 3000).unwrap();
        std::fs::write(dir.path().join("synthetic/extra.toml"), EXTRA).unwrap();
        std::fs::write(dir.path().join("synthetic/regional.toml"), regional(400)).unwrap();
        let full = catalog::load(Some(dir.path())).unwrap();
        // The first load writes the entry and answers from it already (the same path as every
        // later load); the second reads it.
        let (first, notes) = catalog::load_layered(home.path(), Some(dir.path()), true).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        assert!(
            catalog::index::of(&first).is_some(),
            "the first load uses the entry"
        );
        assert_eq!(
            serde_json::to_string(&first).unwrap(),
            serde_json::to_string(&full).unwrap()
        );
        drop(first);
        let (cached, _) = catalog::load_layered(home.path(), Some(dir.path()), true).unwrap();
        let ix = catalog::index::of(&cached).expect("read from the cache");
        assert_eq!(ix.len(), full.templates.len());

        // The benchmark's query decodes a handful of the 3,000 templates.
        let f = TemplateFilter {
            size: MinSize {
                min_cpu: Some(4),
                min_memory: Some(8.0),
                min_storage: None,
            },
            limit: Some(5),
            ..TemplateFilter::default()
        };
        let ids = |found: &[Offer]| -> Vec<String> {
            found.iter().map(|o| o.template.id.clone()).collect()
        };
        let want = listed_in(&full, &f).unwrap();
        let got = listed_in(&cached, &f).unwrap();
        assert_eq!(ids(&got.0), ids(&want.0));
        assert_eq!(got.1, want.1);
        assert!(ix.decoded() < 100, "{} templates decoded", ix.decoded());

        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut pick = |n: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((seed >> 33) as usize) % n
        };
        // A retired provider and an active one of the embedded catalog (named in another case).
        let retired = embedded
            .providers
            .iter()
            .find(|p| p.is_retired())
            .unwrap()
            .id()
            .to_string();
        let active = embedded.providers.iter().find(|p| !p.is_retired()).unwrap();
        let active = active.id().to_uppercase();
        let mut served = 0;
        for case in 0..600 {
            let f = TemplateFilter {
                gpu: pick(10) == 0,
                gpu_model: [Some("h100"), Some(":2"), Some("4090")]
                    .get(pick(24))
                    .copied()
                    .flatten()
                    .map(String::from),
                providers: match pick(6) {
                    0 => vec!["synthetic".into()],
                    1 => vec![retired.clone()],
                    2 => vec![active.clone(), "synthetic".into()],
                    _ => vec![],
                },
                region: ["us-east-1", "eu-west-1"]
                    .get(pick(8))
                    .map(|r| r.to_string()),
                continent: [Continent::Europe].get(pick(8)).copied(),
                size: MinSize {
                    min_cpu: [1, 4, 16, 64, 65].get(pick(8)).copied(),
                    min_memory: [0.5, 8.0, 100.0].get(pick(6)).copied(),
                    min_storage: [80.0, 1000.0].get(pick(8)).copied(),
                },
                max_price: [0.05, 0.2, 0.001].get(pick(8)).copied(),
                max_monthly: [40.0, 150.0].get(pick(8)).copied(),
                arch: [Arch::X86_64, Arch::Arm64].get(pick(8)).copied(),
                sort: [
                    SortKey::Price,
                    SortKey::Price,
                    SortKey::Cpu,
                    SortKey::Memory,
                    SortKey::PricePerCpu,
                ][pick(5)],
                limit: [None, Some(0), Some(1), Some(5), Some(5), Some(50)][pick(6)],
                include_retired: pick(3) == 0,
                curated: pick(8) == 0,
            };
            let shown = |r: anyhow::Result<(Vec<Offer>, usize)>| {
                r.map(|(found, left)| {
                    let rows: Vec<String> = found
                        .iter()
                        .map(|o| {
                            let row = serde_json::to_string(&TemplateRow::of(o)).unwrap();
                            format!("{row} @ {}", o.region.id)
                        })
                        .collect();
                    (rows, left)
                })
                .map_err(|e| e.to_string())
            };
            let want = shown(listed_in(&full, &f));
            let got = shown(listed_in(&cached, &f));
            assert_eq!(got, want, "case {case}: {f:?}");
            served += usize::from(want.as_ref().is_ok_and(|(rows, _)| !rows.is_empty()));
        }
        assert!(served > 200, "only {served} filters matched anything");
        assert!(
            !cached.templates.is_decoded(),
            "every query was served from the index"
        );
        // Reading the templates afterwards gives the whole catalog, in order.
        assert_eq!(
            serde_json::to_string(&cached).unwrap(),
            serde_json::to_string(&full).unwrap()
        );

        // The cheapest match shrinks to 1 vCPU in the overlay: the next listing from the cache
        // leaves it out.
        let cheapest = ids(&want.0)[0].clone();
        let file = ["templates", "regional", "extra"]
            .iter()
            .map(|f| dir.path().join(format!("synthetic/{f}.toml")))
            .find(|p| {
                std::fs::read_to_string(p)
                    .unwrap()
                    .contains(&format!("id = \"{cheapest}\"\n"))
            })
            .expect("the cheapest is a generated template");
        let text = std::fs::read_to_string(&file).unwrap();
        let at = text.find(&format!("id = \"{cheapest}\"\n")).unwrap();
        let cpu = at + text[at..].find("cpu = ").unwrap();
        let end = cpu + text[cpu..].find('\n').unwrap();
        let changed = format!("{}cpu = 1{}", &text[..cpu], &text[end..]);
        std::fs::write(&file, changed).unwrap();
        catalog::load_layered(home.path(), Some(dir.path()), true).unwrap();
        let (again, _) = catalog::load_layered(home.path(), Some(dir.path()), true).unwrap();
        assert!(catalog::index::of(&again).is_some(), "read from the cache");
        let now = listed_in(&again, &f).unwrap();
        assert!(!ids(&now.0).contains(&cheapest), "{:?}", ids(&now.0));
        let full = catalog::load(Some(dir.path())).unwrap();
        assert_eq!(ids(&now.0), ids(&listed_in(&full, &f).unwrap().0));
    }
}
