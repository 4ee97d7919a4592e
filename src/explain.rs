//! The explanation of a smart deploy's choice: the constraints in words, the cheapest fit and
//! the next candidates, the offers each constraint rejected, the providers skipped and why, and
//! the nearest miss when nothing fits. Beside `select.rs`, which filters and ranks the offers;
//! this module adds what the user's credentials and the plan's failover attempts say.

use crate::cli::DeployArgs;
use crate::commands::failover::Attempt;
use crate::context::Ctx;
use crate::error::bad_input;
use crate::render::{self, usd};
use crate::select::{self, GpuWant, Offer, Query, Reject};
use serde::Serialize;
use std::collections::BTreeSet;

/// The explanation of a smart choice.
#[derive(Debug, Default)]
pub(crate) struct Explanation {
    pub(crate) constraints: String,
    pub(crate) choice: Option<OfferSummary>,
    candidates: Vec<OfferSummary>,
    rejected: Vec<(String, usize)>,
    skipped: Vec<(String, String)>,
    nearest_miss: Option<String>,
    /// Every attempt of a node that failed over (set once the deploy ran).
    pub(crate) attempts: Vec<Attempt>,
}

/// One offer of an explanation (`choice` and `candidates` in `golden/schema/deploy-explain.json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct OfferSummary {
    template: String,
    provider: String,
    plan: String,
    region: String,
    cpu: u32,
    memory_gb: f64,
    storage_gb: f64,
    gpu: Option<GpuSummary>,
    price_hourly_usd: f64,
    price_monthly_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct GpuSummary {
    model: String,
    count: u32,
    vram_gb: f64,
}

impl OfferSummary {
    /// The offer's template id.
    pub(crate) fn template(&self) -> &str {
        &self.template
    }
}

pub(crate) fn offer_summary(o: &Offer<'_>) -> OfferSummary {
    OfferSummary {
        template: o.template.id.clone(),
        provider: o.provider.id().to_string(),
        plan: o.template.plan.clone(),
        region: o.region.id.clone(),
        cpu: o.template.cpu,
        memory_gb: o.template.memory_gb,
        storage_gb: o.template.storage_gb,
        gpu: o.template.gpu.as_ref().map(|g| GpuSummary {
            model: g.model.clone(),
            count: g.count,
            vram_gb: g.vram_gb,
        }),
        price_hourly_usd: (o.hourly_usd * 1e5).round() / 1e5,
        price_monthly_usd: (o.monthly_usd * 100.0).round() / 100.0,
    }
}

pub(crate) fn offer_line(o: &OfferSummary) -> String {
    let gpu = o
        .gpu
        .as_ref()
        .map(|g| format!(", {}× {}", g.count, g.model))
        .unwrap_or_default();
    format!(
        "{} ({} {}) in {} — {} vCPU, {} GB{gpu}, {}/h ({}/month)",
        o.template,
        o.provider,
        o.plan,
        o.region,
        o.cpu,
        render::num(o.memory_gb),
        usd(o.price_hourly_usd),
        usd(o.price_monthly_usd),
    )
}

/// The JSON of an [`Explanation`] (`plan` in `golden/schema/deploy-explain.json`).
#[derive(Debug, Serialize)]
pub(crate) struct ExplanationJson<'a> {
    constraints: &'a str,
    choice: Option<&'a OfferSummary>,
    candidates: &'a [OfferSummary],
    rejected: Vec<Rejected<'a>>,
    skipped: Vec<Skipped<'a>>,
    nearest_miss: Option<&'a str>,
    attempts: &'a [Attempt],
}

/// How many offers one constraint rejected.
#[derive(Debug, Serialize)]
struct Rejected<'a> {
    constraint: &'a str,
    offers: usize,
}

/// A provider left out of the plan, and why.
#[derive(Debug, Serialize)]
struct Skipped<'a> {
    provider: &'a str,
    reason: &'a str,
}

impl Explanation {
    pub(crate) fn text(&self) -> String {
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

    /// The explanation as its documented JSON (`plan` in the deploy schemas).
    pub(crate) fn json(&self) -> ExplanationJson<'_> {
        ExplanationJson {
            constraints: &self.constraints,
            choice: self.choice.as_ref(),
            candidates: &self.candidates,
            rejected: self
                .rejected
                .iter()
                .map(|(constraint, offers)| Rejected {
                    constraint,
                    offers: *offers,
                })
                .collect(),
            skipped: self
                .skipped
                .iter()
                .map(|(provider, reason)| Skipped { provider, reason })
                .collect(),
            nearest_miss: self.nearest_miss.as_deref(),
            attempts: &self.attempts,
        }
    }
}

pub(crate) fn constraint_text(args: &DeployArgs) -> String {
    let mut parts = Vec::new();
    if let Some(c) = args.size.min_cpu {
        parts.push(format!("≥{c} vCPU"));
    }
    if let Some(m) = args.size.min_memory {
        parts.push(format!("≥{} GB memory", render::num(m)));
    }
    if let Some(s) = args.size.min_storage {
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
        ("continent", &args.continent.map(|c| c.as_str().to_string())),
        ("country", &args.country),
        ("arch", &args.arch.map(|a| a.as_str().to_string())),
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

pub(crate) fn smart_query(ctx: &Ctx, args: &DeployArgs) -> anyhow::Result<Query> {
    crate::commands::catalog::check_providers(&ctx.catalog, &args.providers)?;
    crate::commands::catalog::check_providers(&ctx.catalog, &args.exclude_provider)?;
    crate::commands::catalog::check_region(&ctx.catalog, args.region.as_deref())?;
    let gpu = match &args.gpu {
        Some(g) => Some(GpuWant::parse(g).map_err(bad_input)?),
        None => None,
    };
    Ok(Query {
        xnode: crate::commands::xnode::needs(ctx, &args.xnode),
        providers: args.providers.clone(),
        exclude_providers: args.exclude_provider.clone(),
        region: args.region.clone(),
        continent: args.continent,
        country: args.country.clone(),
        min_cpu: args.size.min_cpu,
        min_memory: args.size.min_memory,
        min_storage: args.size.min_storage,
        gpu,
        max_hourly_usd: args.budget,
        max_monthly_usd: args.max_monthly,
        arch: args.arch,
    })
}

/// How a skip for missing credentials starts (such skips are listed together).
pub(crate) const NO_CREDENTIALS: &str = "no credentials";

/// Which providers may be planned on, and why the others are skipped.
/// Provider ids to plan on, and (provider, reason) for those skipped.
pub(crate) type Usable = (BTreeSet<String>, Vec<(String, String)>);

/// A broken credentials file is an error here, never "not configured".
pub(crate) fn usable_providers(ctx: &Ctx, args: &DeployArgs) -> anyhow::Result<Usable> {
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
        exp.choice = Some(offer_summary(first));
        exp.candidates = distinct
            .iter()
            .skip(1)
            .take(5)
            .map(|o| offer_summary(o))
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
pub(crate) fn hardware_miss(ctx: &Ctx, q: &Query, usable: &BTreeSet<String>) -> String {
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
