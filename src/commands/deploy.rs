//! `deploy`: smart selection with its explanation, the manual form, dry runs, bounded-parallel
//! fleets, waiting, and `--resume`.
//!
//! Every node is recorded in the state store before its create call. Provider calls run
//! concurrently on a tokio runtime; the store is written only from the command's own thread, so
//! the order "recorded, then created" always holds.

use super::failover::{self, Attempt, Candidate, Failover};
use super::nodes::{confirm, observe, open_store, status_of};
use super::stdout;
use crate::catalog::schema::Template;
use crate::catalog::ProviderEntry;
use crate::cli::{DeployArgs, OutputFormat, Spread};
use crate::context::{parse_duration, Ctx};
use crate::driver::{
    CreateOutcome, CreateRequest, Driver, DriverError, ErrorKind, Node, NodeState, RenderedRequest,
};
use crate::error::bad_input;
use crate::messages;
use crate::render::{self, col, usd, Kind};
use crate::select::{self, GpuWant, Offer, Query, Reject};
use crate::state::lifecycle::{self, ResumeStep};
use crate::state::{
    self, Action, Created, Failure, NewNode, NodeRecord, NodeStatus, Outcome, Store,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

/// One node to create.
#[derive(Debug, Clone)]
struct Placement {
    name: String,
    provider: String,
    template: String,
    region: String,
    hourly: f64,
    monthly: f64,
    hourly_usd: f64,
    monthly_usd: f64,
}

/// The explanation of a smart choice.
#[derive(Debug, Default)]
pub(crate) struct Explanation {
    pub(crate) constraints: String,
    pub(crate) choice: Option<Value>,
    candidates: Vec<Value>,
    rejected: Vec<(String, usize)>,
    skipped: Vec<(String, String)>,
    nearest_miss: Option<String>,
    /// Every attempt of a node that failed over (set once the deploy ran).
    attempts: Vec<Value>,
}

fn offer_json(o: &Offer<'_>) -> Value {
    json!({
        "template": o.template.id,
        "provider": o.provider.id(),
        "plan": o.template.plan,
        "region": o.region.id,
        "cpu": o.template.cpu,
        "memory_gb": o.template.memory_gb,
        "storage_gb": o.template.storage_gb,
        "gpu": o.template.gpu.as_ref().map(|g| json!({"model": g.model, "count": g.count, "vram_gb": g.vram_gb})),
        "price_hourly_usd": (o.hourly_usd * 1e5).round() / 1e5,
        "price_monthly_usd": (o.monthly_usd * 100.0).round() / 100.0,
    })
}

pub(crate) fn offer_line(o: &Value) -> String {
    let gpu = o["gpu"]
        .as_object()
        .map(|g| format!(", {}× {}", g["count"], g["model"].as_str().unwrap_or("")))
        .unwrap_or_default();
    format!(
        "{} ({} {}) in {} — {} vCPU, {} GB{gpu}, {}/h ({}/month)",
        o["template"].as_str().unwrap_or(""),
        o["provider"].as_str().unwrap_or(""),
        o["plan"].as_str().unwrap_or(""),
        o["region"].as_str().unwrap_or(""),
        o["cpu"],
        render::num(o["memory_gb"].as_f64().unwrap_or(0.0)),
        usd(o["price_hourly_usd"].as_f64().unwrap_or(0.0)),
        usd(o["price_monthly_usd"].as_f64().unwrap_or(0.0)),
    )
}

impl Explanation {
    fn text(&self) -> String {
        let mut s = String::new();
        match &self.choice {
            Some(c) => s.push_str(&format!(
                "Cheapest offer for {}:\n  {}\n",
                self.constraints,
                offer_line(c)
            )),
            None => s.push_str(&format!("No offer fits {}.\n", self.constraints)),
        }
        if !self.candidates.is_empty() {
            s.push_str("Next candidates:\n");
            for (i, c) in self.candidates.iter().enumerate() {
                s.push_str(&format!("  {}. {}\n", i + 1, offer_line(c)));
            }
        }
        if !self.rejected.is_empty() {
            let parts: Vec<String> = self
                .rejected
                .iter()
                .map(|(r, n)| format!("{n} by {r}"))
                .collect();
            s.push_str(&format!("Offers rejected: {}.\n", parts.join(", ")));
        }
        // Providers without credentials read as one line, not one each.
        let (bare, other): (Vec<_>, Vec<_>) = self
            .skipped
            .iter()
            .partition(|(_, why)| why.starts_with(NO_CREDENTIALS));
        for (p, why) in other {
            s.push_str(&format!("Skipped {p}: {why}.\n"));
        }
        if !bare.is_empty() {
            let names: Vec<&str> = bare.iter().map(|(p, _)| p.as_str()).collect();
            s.push_str(&format!(
                "Skipped, {NO_CREDENTIALS}: {} — run `capsule openmesh provider configure NAME`, or plan anyway with --include-unconfigured.\n",
                names.join(", ")
            ));
        }
        if let Some(m) = &self.nearest_miss {
            s.push_str(&format!("{m}\n"));
        }
        s
    }

    fn json(&self) -> Value {
        json!({
            "constraints": self.constraints,
            "choice": self.choice,
            "candidates": self.candidates,
            "rejected": self.rejected.iter().map(|(r, n)| json!({"constraint": r, "offers": n})).collect::<Vec<_>>(),
            "skipped": self.skipped.iter().map(|(p, w)| json!({"provider": p, "reason": w})).collect::<Vec<_>>(),
            "nearest_miss": self.nearest_miss,
            "attempts": self.attempts,
        })
    }
}

fn constraint_text(args: &DeployArgs) -> String {
    let mut parts = Vec::new();
    if let Some(c) = args.min_cpu {
        parts.push(format!("≥{c} vCPU"));
    }
    if let Some(m) = args.min_memory {
        parts.push(format!("≥{} GB memory", render::num(m)));
    }
    if let Some(s) = args.min_storage {
        parts.push(format!("≥{} GB storage", render::num(s)));
    }
    if let Some(g) = &args.gpu {
        parts.push(if g.is_empty() {
            "a GPU".to_string()
        } else {
            format!("GPU {g}")
        });
    }
    if let Some(b) = args.budget {
        parts.push(format!("≤ {}/h", usd(b)));
    }
    if let Some(b) = args.max_monthly {
        parts.push(format!("≤ {}/month", usd(b)));
    }
    for (label, v) in [
        ("region", &args.region),
        ("continent", &args.continent),
        ("country", &args.country),
        ("arch", &args.arch),
    ] {
        if let Some(v) = v {
            parts.push(format!("{label} {v}"));
        }
    }
    if !args.providers.is_empty() {
        parts.push(format!("provider {}", args.providers.join("/")));
    }
    if args.xnode.xnode {
        parts.push("able to run an xNode".to_string());
    }
    if parts.is_empty() {
        "any server".to_string()
    } else {
        parts.join(", ")
    }
}

fn smart_query(ctx: &Ctx, args: &DeployArgs) -> anyhow::Result<Query> {
    super::catalog::check_providers(&ctx.catalog, &args.providers)?;
    super::catalog::check_providers(&ctx.catalog, &args.exclude_provider)?;
    super::catalog::check_place(
        &ctx.catalog,
        args.region.as_deref(),
        args.continent.as_deref(),
    )?;
    for (name, v) in [
        ("--budget", args.budget),
        ("--max-monthly", args.max_monthly),
        ("--min-memory", args.min_memory),
        ("--min-storage", args.min_storage),
    ] {
        if v.is_some_and(|x| !(x.is_finite() && x > 0.0)) {
            return Err(bad_input(format!("{name} must be a positive number")));
        }
    }
    let gpu = match &args.gpu {
        Some(g) => Some(GpuWant::parse(g).map_err(bad_input)?),
        None => None,
    };
    Ok(Query {
        xnode: super::xnode::needs(ctx, &args.xnode),
        providers: args.providers.clone(),
        exclude_providers: args.exclude_provider.clone(),
        region: args.region.clone(),
        continent: args.continent.clone(),
        country: args.country.clone(),
        min_cpu: args.min_cpu,
        min_memory: args.min_memory,
        min_storage: args.min_storage,
        gpu,
        max_hourly_usd: args.budget,
        max_monthly_usd: args.max_monthly,
        arch: args.arch.clone(),
    })
}

/// How a skip for missing credentials starts (such skips are listed together).
const NO_CREDENTIALS: &str = "no credentials";

/// Which providers may be planned on, and why the others are skipped.
/// Provider ids to plan on, and (provider, reason) for those skipped.
type Usable = (BTreeSet<String>, Vec<(String, String)>);

/// A broken credentials file is an error here, never "not configured".
fn usable_providers(ctx: &Ctx, args: &DeployArgs) -> anyhow::Result<Usable> {
    let mut ok = BTreeSet::new();
    let mut skipped = Vec::new();
    for p in &ctx.catalog.providers {
        let id = p.id().to_string();
        if args
            .exclude_provider
            .iter()
            .any(|x| x.eq_ignore_ascii_case(&id))
            || (!args.providers.is_empty()
                && !args.providers.iter().any(|x| x.eq_ignore_ascii_case(&id)))
        {
            continue;
        }
        if p.is_retired() {
            skipped.push((
                id,
                format!(
                    "retired {} ({})",
                    p.meta.status.date,
                    p.meta.status.reason.trim_end_matches('.')
                ),
            ));
            continue;
        }
        let configured = ctx.configured(p, &ctx.account)?;
        if !configured && !args.include_unconfigured {
            skipped.push((
                id.clone(),
                format!("{NO_CREDENTIALS} — run `capsule openmesh provider configure {id}`, or plan anyway with --include-unconfigured"),
            ));
            continue;
        }
        ok.insert(id);
    }
    Ok((ok, skipped))
}

/// Plan a smart deploy: the ranked feasible offers and the explanation.
pub(crate) fn smart_plan<'a>(
    ctx: &'a Ctx,
    args: &DeployArgs,
) -> anyhow::Result<(Vec<Offer<'a>>, Explanation)> {
    let q = smart_query(ctx, args)?;
    let (usable, skipped) = usable_providers(ctx, args)?;
    let (fits, mut rejected) = select::plan(&ctx.catalog, &q);
    let mut skipped_offers = 0;
    let fits: Vec<Offer<'a>> = fits
        .into_iter()
        .filter(|o| {
            let keep = usable.contains(o.provider.id());
            if !keep {
                skipped_offers += 1;
            }
            keep
        })
        .collect();
    rejected.retain(|(r, _)| *r != Reject::Provider);
    let mut exp = Explanation {
        constraints: constraint_text(args),
        rejected: rejected
            .iter()
            .map(|(r, n)| (r.describe().to_string(), *n))
            .collect(),
        skipped,
        ..Explanation::default()
    };
    if skipped_offers > 0 {
        exp.rejected
            .push(("skipped providers".to_string(), skipped_offers));
    }
    // Candidates: the best region of each template, after the choice; among equally cheap
    // regions of a template, the provider's default region.
    let mut seen = BTreeSet::new();
    let distinct: Vec<&Offer<'a>> = fits
        .iter()
        .filter(|o| seen.insert(o.template.id.clone()))
        .map(|best| {
            fits.iter()
                .find(|o| {
                    o.template.id == best.template.id
                        && o.region.id == o.provider.meta.default_region
                        && o.hourly_usd <= best.hourly_usd + 1e-12
                })
                .unwrap_or(best)
        })
        .collect();
    let fits: Vec<Offer<'a>> = {
        // Put the chosen offer first so placements follow the explanation.
        let mut v = fits.clone();
        if let Some(first) = distinct.first() {
            if let Some(i) = v
                .iter()
                .position(|o| o.template.id == first.template.id && o.region.id == first.region.id)
            {
                let chosen = v.remove(i);
                v.insert(0, chosen);
            }
        }
        v
    };
    if let Some(first) = distinct.first() {
        exp.choice = Some(offer_json(first));
        exp.candidates = distinct
            .iter()
            .skip(1)
            .take(5)
            .map(|o| offer_json(o))
            .collect();
    } else {
        // The nearest miss: what fits every constraint but price, among usable providers, or
        // among all providers when none is usable.
        let relaxed = Query {
            max_hourly_usd: None,
            max_monthly_usd: None,
            ..q.clone()
        };
        let (mut all, _) = select::plan(&ctx.catalog, &relaxed);
        let usable_first: Vec<Offer<'a>> = all
            .iter()
            .filter(|o| usable.contains(o.provider.id()))
            .cloned()
            .collect();
        let pool = if usable_first.is_empty() {
            all.retain(|o| !o.provider.is_retired());
            all
        } else {
            usable_first
        };
        if let Some(m) = pool.first() {
            let shape = format!(
                "{} vCPU / {} GB",
                m.template.cpu,
                render::num(m.template.memory_gb)
            );
            let mut msg = format!(
                "Nearest miss: {} ({}) in {} at {}/h ({}/month)",
                m.template.id,
                m.provider.id(),
                m.region.id,
                usd(m.hourly_usd),
                usd(m.monthly_usd)
            );
            if let Some(b) = q.max_hourly_usd.filter(|b| m.hourly_usd > *b) {
                msg.push_str(&format!(
                    " — the cheapest {shape} offer is {} over budget; raise --budget to {:.4}",
                    usd(m.hourly_usd - b),
                    (m.hourly_usd * 1e4).ceil() / 1e4
                ));
            } else if let Some(b) = q.max_monthly_usd.filter(|b| m.monthly_usd > *b) {
                msg.push_str(&format!(" — {} over --max-monthly", usd(m.monthly_usd - b)));
            }
            if !usable.contains(m.provider.id()) {
                msg.push_str(&format!("; {} is not configured", m.provider.id()));
            }
            exp.nearest_miss = Some(msg);
        } else {
            exp.nearest_miss = Some(hardware_miss(ctx, &q, &usable));
        }
    }
    Ok((fits, exp))
}

/// The nearest miss when no offer meets the size constraints: the offer closest to the wanted
/// size (the sum of have/want per constraint, each capped at 1), cheapest first among equals,
/// with what it lacks and how far it is over budget.
fn hardware_miss(ctx: &Ctx, q: &Query, usable: &BTreeSet<String>) -> String {
    let relaxed = Query {
        min_cpu: None,
        min_memory: None,
        min_storage: None,
        max_hourly_usd: None,
        max_monthly_usd: None,
        ..q.clone()
    };
    let (all, _) = select::plan(&ctx.catalog, &relaxed);
    let usable_first: Vec<&Offer<'_>> = all
        .iter()
        .filter(|o| usable.contains(o.provider.id()))
        .collect();
    let pool: Vec<&Offer<'_>> = if usable_first.is_empty() {
        all.iter().filter(|o| !o.provider.is_retired()).collect()
    } else {
        usable_first
    };
    let ratio = |have: f64, want: Option<f64>| want.map_or(0.0, |w| (have / w).min(1.0));
    let score = |o: &Offer<'_>| {
        ratio(f64::from(o.template.cpu), q.min_cpu.map(f64::from))
            + ratio(o.template.memory_gb, q.min_memory)
            + ratio(o.template.storage_gb, q.min_storage)
    };
    // `pool` is ranked cheapest first; keep the first of the best score.
    let best = pool.iter().fold(None::<&&Offer<'_>>, |best, o| match best {
        Some(b) if score(b) + 1e-12 >= score(o) => Some(b),
        _ => Some(o),
    });
    let Some(m) = best else {
        return "Nothing in the catalog meets the hardware constraints; relax --min-cpu, --min-memory, --gpu or the place.".into();
    };
    let t = m.template;
    let mut short = Vec::new();
    if let Some(c) = q.min_cpu.filter(|c| t.cpu < *c) {
        short.push(format!("{} vCPU of the {c} wanted (--min-cpu)", t.cpu));
    }
    if let Some(g) = q.min_memory.filter(|g| t.memory_gb + 1e-9 < *g) {
        short.push(format!(
            "{} GB memory of the {} wanted (--min-memory)",
            render::num(t.memory_gb),
            render::num(g)
        ));
    }
    if let Some(g) = q.min_storage.filter(|g| t.storage_gb + 1e-9 < *g) {
        short.push(format!(
            "{} GB storage of the {} wanted (--min-storage)",
            render::num(t.storage_gb),
            render::num(g)
        ));
    }
    let mut msg = format!(
        "Nearest miss: no offer is that large; the closest is {} ({}) in {} at {}/h ({}/month) with {}",
        t.id,
        m.provider.id(),
        m.region.id,
        usd(m.hourly_usd),
        usd(m.monthly_usd),
        short.join(", ")
    );
    if let Some(b) = q.max_hourly_usd.filter(|b| m.hourly_usd > *b) {
        msg.push_str(&format!(
            ", and it is {} over budget",
            usd(m.hourly_usd - b)
        ));
    } else if let Some(b) = q.max_monthly_usd.filter(|b| m.monthly_usd > *b) {
        msg.push_str(&format!(
            ", and it is {} over --max-monthly",
            usd(m.monthly_usd - b)
        ));
    }
    if !usable.contains(m.provider.id()) {
        msg.push_str(&format!("; {} is not configured", m.provider.id()));
    }
    msg.push_str(" — lower the size constraints");
    if q.max_hourly_usd.is_some() || q.max_monthly_usd.is_some() {
        msg.push_str(" and raise the budget");
    }
    msg.push('.');
    msg
}

/// Names for N nodes: `NAME` for one, `NAME-01`… for a fleet.
fn node_names(args: &DeployArgs, default_base: &str) -> anyhow::Result<Vec<String>> {
    let n = args.count;
    if n == 0 {
        return Err(bad_input("--count must be at least 1"));
    }
    if n > 1000 {
        return Err(bad_input(format!(
            "--count {n} is more than 1000 nodes — deploy in smaller fleets"
        )));
    }
    let base = args
        .name_prefix
        .clone()
        .or_else(|| args.name.clone())
        .unwrap_or_else(|| default_base.to_string());
    check_name(&base)?;
    if n == 1 && args.name_prefix.is_none() {
        return Ok(vec![base]);
    }
    let width = n.to_string().len().max(2);
    let names: Vec<String> = (1..=n).map(|i| format!("{base}-{i:0width$}")).collect();
    for name in &names {
        check_name(name)?;
    }
    Ok(names)
}

/// Names become hostnames at most providers and land in files scripts source: letters,
/// digits, `-` and `.` only (`state::names`).
fn check_name(name: &str) -> anyhow::Result<()> {
    match crate::state::names::name_problem(name) {
        Some(msg) => Err(bad_input(msg)),
        None => Ok(()),
    }
}

/// The region for a template: `--region`, else the account's own region (`AWS_REGION`, a
/// profile's region) when the template is offered there and no place is asked for, else its
/// cheapest within --continent/--country, else the provider's default.
fn pick_region(
    ctx: &Ctx,
    p: &ProviderEntry,
    t: &Template,
    args: &DeployArgs,
) -> anyhow::Result<String> {
    if let Some(r) = &args.region {
        let region = p.region(r).ok_or_else(|| {
            crate::error::unknown(
                &format!("{} region", p.id()),
                r,
                p.regions.iter().map(|r| r.id.as_str()),
                "regions",
            )
        })?;
        if !t.regions.contains(&region.id) {
            return Err(bad_input(format!(
                "template '{}' is not offered in {} — it is offered in: {}",
                t.id,
                region.id,
                t.regions.join(", ")
            )));
        }
        return Ok(region.id.clone());
    }
    if args.continent.is_none() && args.country.is_none() {
        let fields = crate::credentials::load(&ctx.home, p, &ctx.account)?.public_fields();
        if let Some(r) = p.account_region(&fields) {
            if t.regions.iter().any(|x| x == r) {
                return Ok(r.to_string());
            }
        }
    }
    let mut offers: Vec<Offer<'_>> = select::all_offers(&ctx.catalog)
        .into_iter()
        .filter(|o| o.template.id == t.id)
        .filter(|o| {
            args.continent
                .as_ref()
                .is_none_or(|c| o.region.continent.eq_ignore_ascii_case(c))
        })
        .filter(|o| {
            args.country
                .as_ref()
                .is_none_or(|c| o.region.country.eq_ignore_ascii_case(c))
        })
        .collect();
    if args.continent.is_none()
        && args.country.is_none()
        && t.regions.contains(&p.meta.default_region)
    {
        // No place preference: the provider's default region when it is among the cheapest.
        select::rank(&mut offers);
        let cheapest = offers.first().map(|o| o.hourly_usd).unwrap_or(0.0);
        if offers
            .iter()
            .any(|o| o.region.id == p.meta.default_region && o.hourly_usd <= cheapest + 1e-12)
        {
            return Ok(p.meta.default_region.clone());
        }
    }
    select::rank(&mut offers);
    offers.first().map(|o| o.region.id.clone()).ok_or_else(|| {
        bad_input(format!(
            "template '{}' has no region on the requested continent/country — offered in: {}",
            t.id,
            t.regions.join(", ")
        ))
    })
}

fn placement_of(ctx: &Ctx, name: &str, p: &ProviderEntry, t: &Template, region: &str) -> Placement {
    let rate = ctx.catalog.usd_rate(p.currency()).unwrap_or(1.0);
    Placement {
        name: name.to_string(),
        provider: p.id().to_string(),
        template: t.id.clone(),
        region: region.to_string(),
        hourly: t.hourly_in(region),
        monthly: t.monthly_in(region),
        hourly_usd: t.hourly_in(region) * rate,
        monthly_usd: t.monthly_in(region) * rate,
    }
}

/// Spread a fleet over distinct regions or providers among the ranked offers, cheapest first.
fn spread(offers: &[Offer<'_>], by: Option<Spread>, n: usize) -> Vec<usize> {
    let Some(by) = by else {
        return vec![0; n];
    };
    let mut seen = BTreeSet::new();
    let mut picks = Vec::new();
    for (i, o) in offers.iter().enumerate() {
        let key = match by {
            Spread::Region => format!("{}/{}", o.provider.id(), o.region.id),
            Spread::Provider => o.provider.id().to_string(),
        };
        if seen.insert(key) {
            picks.push(i);
        }
    }
    (0..n).map(|i| picks[i % picks.len()]).collect()
}

/// User data for a node: the file, the catalog bootstrap, or none.
fn user_data(ctx: &Ctx, args: &DeployArgs, pl: &Placement) -> anyhow::Result<Option<String>> {
    if let Some(spec) = super::xnode::spec(ctx, &args.xnode)? {
        let ud =
            super::xnode::user_data(ctx, &spec, &pl.name, &pl.provider, &pl.region, &pl.template)?;
        return Ok(Some(ud));
    }
    if args.no_user_data {
        return Ok(None);
    }
    if let Some(path) = &args.user_data {
        let text =
            crate::input_file::read_text(path, "--user-data", crate::input_file::MAX_USER_DATA)?;
        return Ok(Some(text));
    }
    let tpl = &ctx.catalog.bootstrap.user_data;
    if tpl.is_empty() {
        return Ok(None);
    }
    // A template that fails is a catalog fault (exit 2), like any other catalog error.
    let out = crate::catalog::validate::render_bootstrap(
        tpl,
        &pl.name,
        &pl.provider,
        &pl.region,
        &pl.template,
    )
    .map_err(|e| {
        bad_input(format!(
            "the catalog's bootstrap template failed to render: {e} — fix [bootstrap] user_data, or pass --user-data FILE or --no-user-data"
        ))
    })?;
    Ok(Some(out))
}

/// What `deploy` will do.
struct Plan {
    placements: Vec<Placement>,
    explanation: Option<Explanation>,
    /// Smart deploy: every feasible offer, ranked, for failing over.
    candidates: Vec<Candidate>,
}

fn plan_deploy(ctx: &Ctx, args: &DeployArgs) -> anyhow::Result<Plan> {
    if let Some(tid) = &args.template {
        let t = ctx.catalog.template(tid).ok_or_else(|| {
            crate::error::unknown(
                "template",
                tid,
                ctx.catalog.templates.iter().map(|t| t.id.as_str()),
                "templates",
            )
        })?;
        let p = ctx.provider(&t.provider)?;
        super::xnode::check_template(ctx, &args.xnode, t)?;
        if let Some(given) = args.providers.first() {
            let gp = ctx.provider(given)?;
            if gp.id() != p.id() {
                return Err(bad_input(format!(
                    "template '{}' belongs to {}, not {} — drop --provider or pick a {} template",
                    t.id,
                    p.id(),
                    gp.id(),
                    gp.id()
                )));
            }
        }
        let region = pick_region(ctx, p, t, args)?;
        let names = node_names(args, &format!("{}-node", p.id()))?;
        let placements = names
            .iter()
            .map(|n| placement_of(ctx, n, p, t, &region))
            .collect();
        return Ok(Plan {
            placements,
            explanation: None,
            candidates: Vec::new(),
        });
    }
    if args.providers.len() == 1
        && args.min_cpu.is_none()
        && args.min_memory.is_none()
        && args.gpu.is_none()
        && args.budget.is_none()
    {
        ctx.provider(&args.providers[0])?;
    }
    let (offers, exp) = smart_plan(ctx, args)?;
    if offers.is_empty() {
        return Ok(Plan {
            placements: Vec::new(),
            explanation: Some(exp),
            candidates: Vec::new(),
        });
    }
    let names = node_names(args, "xnode")?;
    let picks = spread(&offers, args.spread, names.len());
    let mut placements = Vec::new();
    for (name, i) in names.iter().zip(picks) {
        let o = &offers[i];
        placements.push(placement_of(
            ctx,
            name,
            o.provider,
            o.template,
            &o.region.id,
        ));
    }
    let candidates = offers
        .iter()
        .map(|o| Candidate {
            provider: o.provider.id().to_string(),
            template: o.template.id.clone(),
            region: o.region.id.clone(),
        })
        .collect();
    Ok(Plan {
        placements,
        explanation: Some(exp),
        candidates,
    })
}

/// Templates whose plan is not a live product id (`api.plan_lookup`), resolved to the product in
/// stock that fits, one per placement (`None`: the plan is used as it is). A dry run resolves
/// only where credentials are configured, and says so otherwise.
fn resolve_plans(
    ctx: &Ctx,
    placements: &[Placement],
    dry: bool,
) -> anyhow::Result<Vec<Option<crate::driver::ResolvedPlan>>> {
    let mut out = Vec::with_capacity(placements.len());
    let mut rt = None;
    for pl in placements {
        let p = ctx.provider(&pl.provider)?;
        let t = ctx
            .catalog
            .template(&pl.template)
            .ok_or_else(|| anyhow::anyhow!("template '{}' vanished", pl.template))?;
        if !lookup_needed(p, t) {
            out.push(None);
            continue;
        }
        if dry && !ctx.configured(p, &ctx.account)? {
            messages::info(format!("{}: the product id for {} is looked up in the live inventory at deploy time — configure {} to see it in a dry run",
                p.id(),
                t.id,
                p.id()));
            out.push(None);
            continue;
        }
        let driver = if dry {
            dry_run_driver(ctx, p.id())?
        } else {
            ctx.driver(p.id())?
        };
        if rt.is_none() {
            rt = Some(ctx.runtime()?);
        }
        let resolved = rt
            .as_ref()
            .map(|rt| rt.block_on(driver.resolve_plan(t, &pl.region)))
            .ok_or_else(|| anyhow::anyhow!("no runtime"))??;
        if ctx.format() == OutputFormat::Table {
            writeln!(
                stdout(),
                "{} in {}: {} {}",
                t.id,
                pl.region,
                p.id(),
                resolved.describe()
            )?;
        }
        out.push(Some(resolved));
    }
    Ok(out)
}

/// Whether a template's product id is looked up in the live inventory (`api.plan_lookup`): a
/// plan that is not all digits is a catalog name, not a live product id.
fn lookup_needed(p: &ProviderEntry, t: &Template) -> bool {
    p.api.plan_lookup.is_some()
        && (t.plan.is_empty() || !t.plan.bytes().all(|b| b.is_ascii_digit()))
}

fn create_request(
    ctx: &Ctx,
    args: &DeployArgs,
    account: &str,
    pl: &Placement,
    deploy_id: &str,
    resolved: Option<&crate::driver::ResolvedPlan>,
) -> anyhow::Result<CreateRequest> {
    let p = ctx.provider(&pl.provider)?;
    let t = ctx
        .catalog
        .template(&pl.template)
        .ok_or_else(|| anyhow::anyhow!("template '{}' vanished", pl.template))?;
    let user_data = user_data(ctx, args, pl)?;
    if let Some(ud) = &user_data {
        let max = p.meta.user_data_max_bytes;
        if max > 0 && ud.len() as u64 > max {
            return Err(bad_input(format!(
                "user data is {} bytes, more than the {} bytes {} accepts — shorten it",
                ud.len(),
                max,
                p.id()
            )));
        }
    }
    Ok(CreateRequest {
        name: pl.name.clone(),
        region: pl.region.clone(),
        plan: resolved.map_or_else(|| t.plan.clone(), |r| r.plan.clone()),
        template: t.id.clone(),
        image: args
            .image
            .clone()
            .or_else(|| resolved.and_then(|r| r.image.clone()))
            .or_else(|| {
                args.xnode
                    .xnode
                    .then(|| super::xnode::image(p, t))
                    .flatten()
            }),
        ssh_keys: super::sshkeys::for_provider(ctx, args, account, p, &pl.region)?,
        user_data,
        deploy_id: deploy_id.to_string(),
        api_variant: t.api_variant.clone(),
        vars: if args.xnode.xnode {
            super::xnode::create_vars()
        } else {
            Default::default()
        },
    })
}

fn placement_json(pl: &Placement) -> Value {
    json!({
        "name": pl.name, "provider": pl.provider, "template": pl.template, "region": pl.region,
        "price_hourly": pl.hourly, "price_monthly": pl.monthly,
        "price_hourly_usd": (pl.hourly_usd * 1e5).round() / 1e5, "price_monthly_usd": (pl.monthly_usd * 100.0).round() / 100.0,
    })
}

/// A driver for a dry run: real credentials where configured, placeholders otherwise (the
/// rendered request redacts auth either way).
fn dry_run_driver(ctx: &Ctx, provider: &str) -> anyhow::Result<Driver> {
    let p = ctx.provider(provider)?;
    // A broken credentials file is reported, not replaced by placeholders.
    let mut creds = crate::credentials::load(&ctx.home, p, &ctx.account)?;
    // Placeholders only for the fields a request cannot do without: an optional field left out
    // (a session token, a subnet) must stay out of the shown request as it would of the real one.
    for f in p.credentials.iter().filter(|f| f.required) {
        if creds.get(&f.name).is_none() {
            let placeholder = if f.secret {
                "not-configured".to_string()
            } else {
                format!("<{}>", f.name)
            };
            creds.set(&f.name, crate::secret::Secret::new(placeholder), f.secret);
        }
    }
    Driver::new(p, creds, ctx.driver_options()?)
}

pub fn deploy(ctx: &Ctx, args: &DeployArgs) -> anyhow::Result<ExitCode> {
    // xNode values are checked before anything else; the warnings are said once, below.
    let xnode = super::xnode::spec(ctx, &args.xnode)?;
    if let Some(group) = &args.resume {
        return resume(ctx, args, group);
    }
    let ttl = super::expiry::parse_ttl(args.ttl.as_deref())?;
    let plan = plan_deploy(ctx, args)?;
    ctx.note_stale(plan.placements.iter().map(|p| p.provider.as_str()));
    let json_out = ctx.format() == OutputFormat::Json;
    if let Some(exp) = &plan.explanation {
        if !json_out {
            // The explanation goes with every smart deploy.
            write!(stdout(), "{}", exp.text())?;
        }
    }
    if plan.placements.is_empty() {
        if json_out {
            let v = json!({"plan": plan.explanation.as_ref().map(Explanation::json), "nodes": []});
            writeln!(stdout(), "{}", serde_json::to_string_pretty(&v)?)?;
        }
        return Ok(ExitCode::from(1));
    }
    for pl in &plan.placements {
        let p = ctx.provider(&pl.provider)?;
        if p.is_retired() {
            let s = &p.meta.status;
            let hint = if s.suggestion.is_empty() {
                String::new()
            } else {
                format!(" — {}", s.suggestion)
            };
            return Err(bad_input(format!(
                "{} was retired on {} ({}); it accepts no new servers{hint}",
                p.id(),
                s.date,
                s.reason.trim_end_matches('.')
            )));
        }
    }
    if let Some(spec) = &xnode {
        super::xnode::warn(ctx, spec);
    }
    let resolved = resolve_plans(ctx, &plan.placements, args.dry_run)?;
    if args.dry_run {
        return dry_run(ctx, args, &plan, &resolved);
    }
    let total_h: f64 = plan.placements.iter().map(|p| p.hourly_usd).sum();
    let total_m: f64 = plan.placements.iter().map(|p| p.monthly_usd).sum();
    let what = match plan.placements.as_slice() {
        [one] => format!(
            "{} ({} {} in {})",
            one.name, one.provider, one.template, one.region
        ),
        many => format!("{} nodes", many.len()),
    };
    if !confirm(
        ctx,
        &format!(
            "Deploy {what} for {}/h ({}/month)?",
            usd(total_h),
            usd(total_m)
        ),
        "--yes",
    )? {
        messages::info("nothing deployed");
        return Ok(ExitCode::from(1));
    }
    // Build every request, every driver (credentials, endpoint) and the wait before anything
    // is recorded: bad input or a missing credential stops here with no record written.
    let group_id = state::new_deploy_id();
    let mut jobs = Vec::new();
    for (pl, r) in plan.placements.iter().zip(&resolved) {
        let deploy_id = state::new_deploy_id();
        let req = create_request(ctx, args, &ctx.account, pl, &deploy_id, r.as_ref())?;
        jobs.push((pl.clone(), req));
    }
    let runner = Runner::new(
        ctx,
        args,
        &ctx.account,
        jobs.iter().map(|(pl, _)| pl.provider.as_str()),
    )?;
    let store = open_store(ctx)?;
    let lease = take_lease(ctx, &group_id)?;
    let intents = jobs
        .iter()
        .map(|(pl, req)| new_node(ctx, &group_id, &ctx.account, pl, req))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Every node is recorded, in one transaction, before the first create call.
    store.record_intents(&intents)?;
    let ids: Vec<String> = intents.iter().map(|n| n.deploy_id.clone()).collect();
    super::expiry::record(store.as_ref(), &ids, ttl)?;
    if jobs.len() > 1 {
        messages::info(format!("fleet {group_id}: {} nodes recorded; resume with `capsule openmesh deploy --resume {group_id}`", jobs.len()));
    }
    let jobs: Vec<Job> = jobs
        .into_iter()
        .map(|(pl, req)| Job {
            name: pl.name,
            provider: pl.provider,
            req,
            start: Start::Create,
        })
        .collect();
    let failover = plan
        .explanation
        .is_some()
        .then(|| Failover::new(plan.candidates, !args.no_failover));
    run_jobs(
        ctx,
        args,
        store.as_ref(),
        &runner,
        &lease,
        jobs,
        &group_id,
        plan.explanation,
        failover,
    )
}

/// The record of a node about to be created at `pl` with `req`.
fn new_node(
    ctx: &Ctx,
    group_id: &str,
    account: &str,
    pl: &Placement,
    req: &CreateRequest,
) -> anyhow::Result<NewNode> {
    let p = ctx.provider(&pl.provider)?;
    Ok(NewNode {
        deploy_id: req.deploy_id.clone(),
        group_id: group_id.to_string(),
        name: pl.name.clone(),
        provider: pl.provider.clone(),
        account: account.to_string(),
        template: pl.template.clone(),
        plan: req.plan.clone(),
        region: pl.region.clone(),
        api_variant: req.api_variant.clone(),
        price_hourly: pl.hourly,
        price_monthly: pl.monthly,
        currency: p.currency().to_string(),
        prices_as_of: p.meta.prices_as_of.clone(),
    })
}

fn dry_run(
    ctx: &Ctx,
    args: &DeployArgs,
    plan: &Plan,
    resolved: &[Option<crate::driver::ResolvedPlan>],
) -> anyhow::Result<ExitCode> {
    let mut items = Vec::new();
    for (pl, r) in plan.placements.iter().zip(resolved) {
        let driver = dry_run_driver(ctx, &pl.provider)?;
        let req = create_request(ctx, args, &ctx.account, pl, "dryrun000000", r.as_ref())?;
        let requests = driver.render_create(&req)?;
        items.push((pl, requests, req.user_data.filter(|_| args.xnode.xnode)));
    }
    let mut out = stdout();
    if ctx.format() == OutputFormat::Json {
        let nodes: Vec<Value> = items
            .iter()
            .map(|(pl, reqs, ud)| {
                let mut v = placement_json(pl);
                v["requests"] = json!(reqs);
                if let Some(ud) = ud {
                    v["user_data"] = json!(ud);
                }
                v
            })
            .collect();
        let v = json!({"dry_run": true, "plan": plan.explanation.as_ref().map(Explanation::json), "nodes": nodes});
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        for (pl, reqs, ud) in &items {
            writeln!(
                out,
                "Would deploy {} on {} ({} in {}) for {}/h ({}/month):",
                pl.name,
                pl.provider,
                pl.template,
                pl.region,
                usd(pl.hourly_usd),
                usd(pl.monthly_usd)
            )?;
            for r in reqs {
                write_request(&mut out, r)?;
            }
            if let Some(ud) = ud {
                writeln!(out, "  user data ({} bytes):", ud.len())?;
                for line in ud.lines() {
                    writeln!(out, "    {line}")?;
                }
            }
        }
        writeln!(out, "Dry run: nothing was created.")?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn write_request(out: &mut dyn Write, r: &RenderedRequest) -> std::io::Result<()> {
    writeln!(out, "  {} {}", r.method, r.url)?;
    for (k, v) in &r.headers {
        writeln!(out, "  {k}: {v}")?;
    }
    if let Some(b) = &r.body {
        let pretty = serde_json::from_str::<Value>(b)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| b.clone());
        for line in pretty.lines() {
            writeln!(out, "    {line}")?;
        }
    }
    Ok(())
}

/// How long creates that a killed process had in flight may take to reach the provider: a
/// resume right after a `kill -9` waits this long after the previous holder's last heartbeat
/// before it looks up the nodes that were still `creating`.
const IN_FLIGHT_GRACE: Duration = Duration::from_secs(10);

/// Everything a run needs, built and checked before the first intent is written: a failure
/// here (no credentials, an unreadable credentials file, a bad endpoint, a bad `--timeout`)
/// leaves no record behind.
struct Runner {
    drivers: BTreeMap<String, Driver>,
    /// The credentials account every create runs with.
    account: String,
    timeout: Duration,
    parallel: usize,
    wait: bool,
    wait_ssh: bool,
    /// The xNode install to check for, with `--xnode`.
    xnode: Option<super::xnode::Spec>,
    wait_ready: bool,
}

impl Runner {
    /// Drivers for `providers`, with the credentials of `account`.
    fn new<'a>(
        ctx: &Ctx,
        args: &DeployArgs,
        account: &str,
        providers: impl IntoIterator<Item = &'a str>,
    ) -> anyhow::Result<Runner> {
        let default_timeout = if args.xnode.wait_ready { "45m" } else { "10m" };
        let timeout = parse_duration(args.timeout.as_deref().unwrap_or(default_timeout))?;
        let xnode = super::xnode::spec(ctx, &args.xnode)?;
        let mut drivers = BTreeMap::new();
        for p in providers {
            if !drivers.contains_key(p) {
                drivers.insert(p.to_string(), ctx.driver_for(p, account)?);
            }
        }
        Ok(Runner {
            drivers,
            account: account.to_string(),
            timeout,
            parallel: args.parallel.max(1),
            wait: args.wait || args.wait_ssh,
            wait_ssh: args.wait_ssh,
            xnode,
            wait_ready: args.xnode.wait_ready,
        })
    }
}

/// Take the fleet's lease, or say which process holds it.
fn take_lease(ctx: &Ctx, group: &str) -> anyhow::Result<state::lease::Lease> {
    match state::lease::acquire(&ctx.home, group)? {
        state::lease::Acquired::Held(l) => Ok(l),
        state::lease::Acquired::Busy { pid } => {
            let who = pid.map_or_else(
                || "another capsule process".to_string(),
                |p| format!("capsule process {p}"),
            );
            Err(anyhow::anyhow!(
                "fleet {group} is being deployed by {who} — wait for it to finish, then run `capsule openmesh deploy --resume {group}`"
            ))
        }
    }
}

/// How a job begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// A deploy id never sent: create at once.
    Create,
    /// Resume: look the node up by its recorded (old) deploy tag and adopt what is found;
    /// create under that deploy id only when the lookup definitively finds nothing and
    /// `may_create` (outside the provider's hidden window).
    LookUp { may_create: bool },
}

/// One create to run.
struct Job {
    name: String,
    provider: String,
    req: CreateRequest,
    start: Start,
}

/// What a create task reports back to the thread that owns the store.
enum Report {
    Outcome {
        deploy_id: String,
        outcome: CreateOutcome,
    },
    Observed {
        deploy_id: String,
        node: Node,
    },
    WaitFailed {
        deploy_id: String,
        error: String,
    },
    /// A task ended (sent by [`Finished`]).
    Done,
}

/// The outcome of one job: the create, or (resume) the lookup by the old tag first.
async fn run_job(driver: &Driver, job: &Job) -> CreateOutcome {
    let may_create = match job.start {
        Start::Create => return driver.create(&job.req).await,
        Start::LookUp { may_create } => may_create,
    };
    let tag = driver.tag_for(&job.req.deploy_id);
    let found = driver
        .find_by_deploy_id(&job.req.deploy_id, Some(job.req.region.as_str()))
        .await;
    match found {
        Ok(Some(node)) => CreateOutcome::Created(node),
        Ok(None) if may_create && driver.can_find_by_tag() => driver.create(&job.req).await,
        Ok(None) => {
            let hidden = driver.hidden_after_create_seconds();
            let why = if hidden > 0.0 {
                format!(
                    "tag '{tag}' is not listed yet, and the provider may not list a new node for up to {hidden} s after its create"
                )
            } else {
                format!("tag '{tag}' cannot be looked up with this provider's catalog")
            };
            CreateOutcome::InDoubt {
                error: DriverError::new(&job.provider, ErrorKind::NotFound, why).with_hint(
                    "nothing was created again; resume once that window has passed, or `capsule openmesh sync` to settle it",
                ),
                node: None,
            }
        }
        Err(e) => {
            let mut error = e;
            error.message = format!(
                "looking up tag '{tag}' failed: {} — nothing was created again",
                error.message
            );
            CreateOutcome::InDoubt { error, node: None }
        }
    }
}

/// How long and for what each create task waits once its node exists.
#[derive(Clone, Copy)]
struct Waits {
    wait: bool,
    wait_ssh: bool,
    timeout: Duration,
}

/// Sends [`Report::Done`] when its task ends, however it ends, so the command thread knows how
/// many tasks still run.
struct Finished(tokio::sync::mpsc::UnboundedSender<Report>);

impl Drop for Finished {
    fn drop(&mut self) {
        let _ = self.0.send(Report::Done);
    }
}

/// Run one job on the runtime: the create (bounded by `sem`), then the waits, each result sent
/// to the command thread, which alone writes the store.
fn spawn_job(
    rt: &tokio::runtime::Runtime,
    driver: Driver,
    job: Job,
    tx: tokio::sync::mpsc::UnboundedSender<Report>,
    sem: std::sync::Arc<tokio::sync::Semaphore>,
    w: Waits,
) {
    rt.spawn(async move {
        let _done = Finished(tx.clone());
        let _permit = sem.acquire_owned().await;
        let deploy_id = job.req.deploy_id.clone();
        let outcome = run_job(&driver, &job).await;
        let created = match &outcome {
            CreateOutcome::Created(n) => Some(n.clone()),
            CreateOutcome::Rejected(_) | CreateOutcome::InDoubt { .. } => None,
        };
        let _ = tx.send(Report::Outcome {
            deploy_id: deploy_id.clone(),
            outcome,
        });
        let Some(node) = created.filter(|_| w.wait) else {
            return;
        };
        match driver
            .wait_for(&node.node_ref(), NodeState::Running, true, w.timeout)
            .await
        {
            Ok(n) => {
                if w.wait_ssh {
                    if let Some(ip) = &n.ipv4 {
                        if let Err(e) = wait_port(ip, 22, w.timeout).await {
                            let _ = tx.send(Report::WaitFailed {
                                deploy_id: deploy_id.clone(),
                                error: e,
                            });
                        }
                    }
                }
                let _ = tx.send(Report::Observed { deploy_id, node: n });
            }
            Err(e) => {
                let _ = tx.send(Report::WaitFailed {
                    deploy_id,
                    error: e.to_string(),
                });
            }
        }
    });
}

/// What a run keeps to move refused creates: where each node is being created, the drivers,
/// and the smart plan's failover.
struct Moves<'a> {
    ctx: &'a Ctx,
    args: &'a DeployArgs,
    store: &'a dyn Store,
    group_id: &'a str,
    drivers: BTreeMap<String, Driver>,
    /// The credentials account of the deploy (a moved node keeps it).
    account: String,
    /// Deploy id → where that create goes.
    places: BTreeMap<String, Candidate>,
    failover: Option<Failover>,
}

/// After a refused create: the job that creates the node at its next candidate, or the report
/// to record as it is.
enum Next {
    Move(Box<Job>, Driver),
    Keep(Box<Report>),
}

impl Moves<'_> {
    /// Look at a create's outcome: a documented refusal moves the node to its next candidate
    /// (re-keying its one record, the refused attempt kept as an event); anything else, or no
    /// candidate left, is recorded as it is.
    fn outcome(
        &mut self,
        rt: &tokio::runtime::Runtime,
        names: &mut BTreeMap<String, String>,
        deploy_id: String,
        outcome: CreateOutcome,
    ) -> Next {
        let (Some(f), Some(at)) = (self.failover.as_mut(), self.places.get(&deploy_id).cloned())
        else {
            return Next::Keep(Box::new(Report::Outcome { deploy_id, outcome }));
        };
        let name = names[&deploy_id].clone();
        let error = outcome.error().map(|e| e.to_string());
        let Some(why) = outcome.refusal() else {
            let label = match &outcome {
                CreateOutcome::Created(_) => "created",
                CreateOutcome::Rejected(_) => "failed",
                CreateOutcome::InDoubt { .. } => "in_doubt",
            };
            f.finish(&name, &at, label, error);
            return Next::Keep(Box::new(Report::Outcome { deploy_id, outcome }));
        };
        f.refused(&name, &at, why);
        let mut skipped = Vec::new();
        let mut moved = None;
        while let Some(next) = self.failover.as_ref().and_then(|f| f.next_for(&name, &at)) {
            let message = format!(
                "refused, {}: {} — moving to {}",
                failover::reason_text(why),
                error.as_deref().unwrap_or(""),
                failover::moved_to(&next).trim_start_matches("moved to ")
            );
            match self.prepare(rt, &deploy_id, &name, &next, &message) {
                Ok(job) => {
                    moved = Some((next, job));
                    break;
                }
                Err(e) => {
                    if let Some(f) = self.failover.as_mut() {
                        f.tried_by(&name, &next);
                    }
                    skipped.push(Attempt {
                        name: name.clone(),
                        provider: next.provider.clone(),
                        template: next.template.clone(),
                        region: next.region.clone(),
                        outcome: "skipped",
                        reason: None,
                        error: Some(e.to_string()),
                        next: None,
                    });
                }
            }
        }
        let Some(f) = self.failover.as_mut() else {
            return Next::Keep(Box::new(Report::Outcome { deploy_id, outcome }));
        };
        let next = match &moved {
            Some((c, _)) => failover::moved_to(c),
            None => f.stop_reason().to_string(),
        };
        f.record(Attempt {
            name: name.clone(),
            provider: at.provider.clone(),
            template: at.template.clone(),
            region: at.region.clone(),
            outcome: "refused",
            reason: Some(why),
            error,
            next: Some(next),
        });
        for a in skipped {
            f.record(a);
        }
        let Some((place, (job, driver))) = moved else {
            return Next::Keep(Box::new(Report::Outcome { deploy_id, outcome }));
        };
        names.remove(&deploy_id);
        self.places.remove(&deploy_id);
        names.insert(job.req.deploy_id.clone(), name);
        self.places.insert(job.req.deploy_id.clone(), place);
        Next::Move(Box::new(job), driver)
    }

    /// Build the create at `c` for the node recorded under `from`, and move its record there.
    /// Nothing is recorded unless everything else succeeded.
    fn prepare(
        &mut self,
        rt: &tokio::runtime::Runtime,
        from: &str,
        name: &str,
        c: &Candidate,
        message: &str,
    ) -> anyhow::Result<(Job, Driver)> {
        let ctx = self.ctx;
        let p = ctx.provider(&c.provider)?;
        let t = ctx
            .catalog
            .template(&c.template)
            .ok_or_else(|| anyhow::anyhow!("template '{}' vanished", c.template))?;
        let pl = placement_of(ctx, name, p, t, &c.region);
        if !self.drivers.contains_key(p.id()) {
            let driver = ctx.driver_for(p.id(), &self.account)?;
            self.drivers.insert(p.id().to_string(), driver);
        }
        let driver = self.drivers[p.id()].clone();
        let resolved = if lookup_needed(p, t) {
            Some(rt.block_on(driver.resolve_plan(t, &c.region))?)
        } else {
            None
        };
        let deploy_id = state::new_deploy_id();
        let req = create_request(
            ctx,
            self.args,
            &self.account,
            &pl,
            &deploy_id,
            resolved.as_ref(),
        )?;
        let node = new_node(ctx, self.group_id, &self.account, &pl, &req)?;
        self.store.record_moved(from, &node, message)?;
        let job = Job {
            name: name.to_string(),
            provider: pl.provider,
            req,
            start: Start::Create,
        };
        Ok((job, driver))
    }
}

#[allow(clippy::too_many_arguments)]
fn run_jobs(
    ctx: &Ctx,
    args: &DeployArgs,
    store: &dyn Store,
    runner: &Runner,
    lease: &state::lease::Lease,
    jobs: Vec<Job>,
    group_id: &str,
    explanation: Option<Explanation>,
    failover: Option<Failover>,
) -> anyhow::Result<ExitCode> {
    let mut names: BTreeMap<String, String> = jobs
        .iter()
        .map(|j| (j.req.deploy_id.clone(), j.name.clone()))
        .collect();
    let rt = ctx.runtime()?;
    let timeout = runner.timeout;
    let waits = Waits {
        wait: runner.wait,
        wait_ssh: runner.wait_ssh,
        timeout,
    };
    let progress = ctx.interactive && ctx.format() == OutputFormat::Table && jobs.len() > 1;
    let bar = progress.then(|| {
        let b = indicatif::ProgressBar::new(jobs.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} nodes {wide_msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut results: BTreeMap<String, (Option<Node>, Option<String>)> = BTreeMap::new();
    let mut in_doubt: BTreeSet<String> = BTreeSet::new();
    let mut moves = Moves {
        ctx,
        args,
        store,
        group_id,
        drivers: runner.drivers.clone(),
        account: runner.account.clone(),
        places: jobs
            .iter()
            .map(|j| {
                let place = Candidate {
                    provider: j.provider.clone(),
                    template: j.req.template.clone(),
                    region: j.req.region.clone(),
                };
                (j.req.deploy_id.clone(), place)
            })
            .collect(),
        failover,
    };
    let beat = lease.handle()?;
    // The lease's heartbeat: the next holder learns when this process was last alive.
    let heartbeat = rt.spawn(async move {
        loop {
            let _ = beat.set_modified(std::time::SystemTime::now());
            tokio::time::sleep(state::lease::HEARTBEAT).await;
        }
    });
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Report>();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(runner.parallel));
    let mut running = 0usize;
    for job in jobs {
        let driver = moves.drivers[&job.provider].clone();
        spawn_job(&rt, driver, job, tx.clone(), sem.clone(), waits);
        running += 1;
    }
    // The command thread owns the store: it records every report, and moves refused creates.
    while running > 0 {
        let Some(report) = rt.block_on(rx.recv()) else {
            break;
        };
        let report = match report {
            Report::Done => {
                running -= 1;
                continue;
            }
            Report::Outcome { deploy_id, outcome } => {
                match moves.outcome(&rt, &mut names, deploy_id, outcome) {
                    Next::Move(job, driver) => {
                        if let Some(line) = moves.failover.as_ref().and_then(Failover::last_refusal)
                        {
                            match &bar {
                                Some(b) => b.println(format!("capsule: {line}")),
                                None => messages::info(&line),
                            }
                        }
                        spawn_job(&rt, driver, *job, tx.clone(), sem.clone(), waits);
                        running += 1;
                        continue;
                    }
                    Next::Keep(report) => *report,
                }
            }
            other => other,
        };
        let res = handle_report(
            store,
            &names,
            &mut results,
            &mut in_doubt,
            report,
            bar.as_ref(),
        );
        if let Err(e) = res {
            messages::info(format!("could not record a result: {e}"));
        }
    }
    heartbeat.abort();
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let failover = moves.failover;
    let explanation = explanation.map(|mut e| {
        if let Some(f) = &failover {
            e.attempts = f.attempts_json();
        }
        e
    });
    let table = ctx.format() == OutputFormat::Table;
    // The per-node result table.
    let mut rows = Vec::new();
    let mut failures = 0;
    for (deploy_id, name) in &names {
        let rec = store.node_by_deploy_id(deploy_id)?;
        let (node, err) = results
            .get(deploy_id)
            .cloned()
            .unwrap_or((None, Some("no result".into())));
        if err.is_some() {
            failures += 1;
        }
        let status = match (&node, &rec) {
            (Some(n), _) => Some(n.state.as_str().to_string()),
            (None, Some(r)) if table => Some(r.status.label().to_string()),
            (None, Some(r)) => Some(r.status.as_str().to_string()),
            (None, None) => None,
        };
        rows.push(json!({
            "name": name,
            "provider": rec.as_ref().map(|r| r.provider.clone()),
            "template": rec.as_ref().map(|r| r.template.clone()),
            "region": rec.as_ref().map(|r| r.region.clone()),
            "id": node.as_ref().map(|n| n.id.clone()).or_else(|| rec.as_ref().and_then(|r| r.provider_id.clone())),
            "status": status,
            "ipv4": node.as_ref().and_then(|n| n.ipv4.clone()),
            "deploy_id": deploy_id,
            "group_id": group_id,
            "price_hourly": rec.as_ref().map(|r| r.price_hourly),
            "currency": rec.as_ref().map(|r| r.currency.clone()),
            "error": err,
        }));
    }
    rows.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let not_ready = match &runner.xnode {
        Some(spec) => {
            super::xnode::finish(ctx, store, spec, &mut rows, runner.wait_ready, timeout)?
        }
        None => 0,
    };
    let cols = [
        col("name", "name", Kind::Text),
        col("provider", "provider", Kind::Text),
        col("template", "template", Kind::Text),
        col("region", "region", Kind::Text),
        col("id", "id", Kind::Text),
        col("status", "status", Kind::Text),
        col("ipv4", "ipv4", Kind::Text),
        col("error", "error", Kind::Text),
    ];
    if ctx.format() == OutputFormat::Json {
        let v = json!({"group_id": group_id, "plan": explanation.as_ref().map(Explanation::json), "nodes": rows});
        writeln!(stdout(), "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        render::listing(&mut stdout(), ctx.style, &cols, &render::rows_of(&rows))?;
        super::xnode::print_summary(&rows)?;
        if let Some(f) = failover.as_ref().filter(|_| table) {
            write!(stdout(), "{}", f.attempts_text())?;
        }
    }
    if !in_doubt.is_empty() {
        let which: Vec<&str> = in_doubt
            .iter()
            .filter_map(|d| names.get(d).map(String::as_str))
            .collect();
        messages::info(format!("{} in doubt: the provider may have created {} ({}); the name is kept, and `capsule openmesh deploy --resume {group_id}` or `capsule openmesh sync` look it up by its tag rather than create it twice",
            if which.len() == 1 { "1 node is".to_string() } else { format!("{} nodes are", which.len()) },
            if which.len() == 1 { "it" } else { "them" },
            which.join(", ")));
    }
    if failures > 0 {
        messages::info(format!("{failures} of {} nodes failed; every node is recorded — retry the rest with `capsule openmesh deploy --resume {group_id}`",
            names.len()));
        return Ok(ExitCode::from(1));
    }
    if not_ready > 0 {
        super::xnode::report_not_ready(&rows);
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn created_of(node: &Node) -> Created {
    Created {
        provider_id: node.id.clone(),
        status: status_of(node.state),
        raw_status: node.raw_status.clone(),
        ipv4: node.ipv4.clone(),
        created_at: node.created_at.clone(),
    }
}

fn handle_report(
    store: &dyn Store,
    names: &BTreeMap<String, String>,
    results: &mut BTreeMap<String, (Option<Node>, Option<String>)>,
    in_doubt: &mut BTreeSet<String>,
    report: Report,
    bar: Option<&indicatif::ProgressBar>,
) -> anyhow::Result<()> {
    let say = |msg: String| match bar {
        Some(b) => b.set_message(msg),
        None => messages::info(msg),
    };
    match report {
        Report::Outcome { deploy_id, outcome } => {
            if let Some(b) = bar {
                b.inc(1);
            }
            let name = &names[&deploy_id];
            match outcome {
                CreateOutcome::Created(node) => {
                    store.record_created(&deploy_id, &created_of(&node))?;
                    say(format!("{name} created at {} ({})", node.provider, node.id));
                    results.insert(deploy_id, (Some(node), None));
                }
                CreateOutcome::Rejected(error) => {
                    // A definite refusal: nothing exists, the record leaves the live set.
                    let msg = error.to_string();
                    store.record_failed(&deploy_id, &msg, Failure::Rejected)?;
                    say(format!("{name} failed: {msg}"));
                    results.insert(deploy_id, (None, Some(msg)));
                }
                CreateOutcome::InDoubt { error, node } => {
                    // The provider may have created it: the name stays taken, and a lookup by
                    // its tag settles it later. A node whose id is known is recorded with it.
                    if let Some(n) = &node {
                        store.record_created(&deploy_id, &created_of(n))?;
                    }
                    let msg = error.to_string();
                    store.record_failed(&deploy_id, &msg, Failure::InDoubt)?;
                    say(format!("{name} is in doubt: {msg}"));
                    in_doubt.insert(deploy_id.clone());
                    results.insert(deploy_id, (None, Some(msg)));
                }
            }
        }
        Report::Observed { deploy_id, node } => {
            store.record_observation(&deploy_id, &observe(&node), Action::Deploy, "")?;
            say(format!(
                "{} is {} at {}",
                names[&deploy_id],
                node.state,
                node.ipv4.as_deref().unwrap_or("-")
            ));
            results.insert(deploy_id, (Some(node), None));
        }
        Report::WaitFailed { deploy_id, error } => {
            store.record_action(
                Some(&deploy_id),
                Action::Deploy,
                Outcome::Failed,
                &format!("waiting: {error}"),
            )?;
            say(format!("{}: {error}", names[&deploy_id]));
            let entry = results.entry(deploy_id).or_insert((None, None));
            entry.1 = Some(error);
        }
        Report::Done => {}
    }
    Ok(())
}

/// Wait until a TCP port answers.
async fn wait_port(ip: &str, port: u16, timeout: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect((ip, port)),
        )
        .await;
        if matches!(attempt, Ok(Ok(_))) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "port {port} on {ip} did not answer within {}s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The account a fleet was deployed with (one per deploy); naming another is refused.
fn fleet_account(ctx: &Ctx, group: &str, nodes: &[NodeRecord]) -> anyhow::Result<String> {
    let account = nodes
        .first()
        .map_or(ctx.account.clone(), |n| n.account.clone());
    if ctx.account_named && ctx.account != account {
        return Err(bad_input(format!(
            "fleet '{group}' was deployed with account '{account}', not '{}' — resume it without --account (or with --account {account})",
            ctx.account
        )));
    }
    Ok(account)
}

/// Finish an interrupted fleet (the rules are `state::lifecycle::resume_step`): a node whose
/// id is recorded is left alone; a `creating` or in-doubt node is looked up by its OLD deploy
/// tag and adopted when found, and created under that same deploy id only when the lookup
/// definitively finds nothing outside the provider's hidden window; a refused node is created
/// again under a fresh record, with the fleet's own account. The fleet's lease is held throughout, and creates a killed
/// process may still have had in flight are given time to land before the lookups.
fn resume(ctx: &Ctx, args: &DeployArgs, group: &str) -> anyhow::Result<ExitCode> {
    let store = open_store(ctx)?;
    let lease = take_lease(ctx, group)?;
    let nodes = store.nodes_in_group(group)?;
    if nodes.is_empty() {
        return Err(bad_input(format!(
            "no fleet '{group}' in the inventory — `capsule openmesh history` shows recent deploys"
        )));
    }
    let account = fleet_account(ctx, group, &nodes)?;
    // A refused node left the live set; the fleet is only complete once it exists, so resume
    // creates it again under a fresh record — unless a live node of that name stands for it.
    let live_names: BTreeSet<&str> = nodes
        .iter()
        .filter(|n| n.is_live())
        .map(|n| n.name.as_str())
        .collect();
    let now = state::time::now_unix();
    let mut retried = BTreeSet::new();
    let mut jobs = Vec::new();
    let mut fresh = Vec::new();
    let mut in_flight = false;
    for n in &nodes {
        let p = ctx.provider(&n.provider)?;
        let hidden = p.api.limits.hidden_after_create_seconds;
        let start = match lifecycle::resume_step(n, now, hidden) {
            ResumeStep::Exists | ResumeStep::Skip => continue,
            ResumeStep::Recreate => {
                if live_names.contains(n.name.as_str()) || !retried.insert(n.name.clone()) {
                    continue;
                }
                Start::Create
            }
            ResumeStep::LookUp { may_create } => {
                in_flight |= n.status == NodeStatus::Creating;
                Start::LookUp { may_create }
            }
        };
        let t = ctx.catalog.template(&n.template);
        let pl = Placement {
            name: n.name.clone(),
            provider: n.provider.clone(),
            template: n.template.clone(),
            region: n.region.clone(),
            hourly: n.price_hourly,
            monthly: n.price_monthly,
            hourly_usd: n.price_hourly,
            monthly_usd: n.price_monthly,
        };
        let deploy_id = if start == Start::Create {
            state::new_deploy_id()
        } else {
            n.deploy_id.clone()
        };
        let mut req = create_request(ctx, args, &account, &pl, &deploy_id, None)?;
        req.plan = n.plan.clone();
        req.api_variant = t
            .map(|t| t.api_variant.clone())
            .unwrap_or_else(|| n.api_variant.clone());
        if start == Start::Create {
            fresh.push(NewNode {
                deploy_id: deploy_id.clone(),
                group_id: group.to_string(),
                name: n.name.clone(),
                provider: n.provider.clone(),
                account: n.account.clone(),
                template: n.template.clone(),
                plan: n.plan.clone(),
                region: n.region.clone(),
                api_variant: req.api_variant.clone(),
                price_hourly: n.price_hourly,
                price_monthly: n.price_monthly,
                currency: if n.currency.is_empty() {
                    p.currency().to_string()
                } else {
                    n.currency.clone()
                },
                prices_as_of: n.prices_as_of.clone(),
            });
        }
        jobs.push(Job {
            name: n.name.clone(),
            provider: n.provider.clone(),
            req,
            start,
        });
    }
    if jobs.is_empty() {
        writeln!(
            stdout(),
            "fleet {group}: all {} nodes already exist at their providers",
            live_names.len()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if !confirm(
        ctx,
        &format!(
            "Resume fleet {group}: create up to {} missing nodes?",
            jobs.len()
        ),
        "--yes",
    )? {
        return Ok(ExitCode::from(1));
    }
    let runner = Runner::new(
        ctx,
        args,
        &account,
        jobs.iter().map(|j| j.provider.as_str()),
    )?;
    if in_flight {
        // A process killed a moment ago may have had creates in flight: they reach the
        // provider a little later, and a lookup before then would miss them.
        let wait = lease.settle_wait(IN_FLIGHT_GRACE, std::time::SystemTime::now());
        if !wait.is_zero() {
            messages::info(format!("fleet {group} was being deployed moments ago; waiting {} s for creates still in flight to reach the provider before looking them up",
                wait.as_secs().max(1)));
            lease.beat();
            std::thread::sleep(wait);
        }
    }
    // Recorded before any create, as every deploy is.
    store.record_intents(&fresh)?;
    run_jobs(
        ctx,
        args,
        store.as_ref(),
        &runner,
        &lease,
        jobs,
        group,
        None,
        None,
    )
}
