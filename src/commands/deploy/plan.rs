//! Placement and fleet planning: which template, region and name each node gets (the manual
//! form, or the smart plan spread over regions or providers), live product ids, user data, and
//! the create request and record of each node. No provider call but plan lookups.

use super::*;

/// One node to create.
#[derive(Debug, Clone)]
pub(super) struct Placement {
    pub(super) name: String,
    pub(super) provider: String,
    pub(super) template: String,
    pub(super) region: String,
    pub(super) hourly: f64,
    pub(super) monthly: f64,
    pub(super) hourly_usd: f64,
    pub(super) monthly_usd: f64,
}

/// Names for N nodes: `NAME` for one, `NAME-01`… for a fleet.
pub(super) fn node_names(args: &DeployArgs, default_base: &str) -> anyhow::Result<Vec<String>> {
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
pub(super) fn check_name(name: &str) -> anyhow::Result<()> {
    match crate::state::names::name_problem(name) {
        Some(msg) => Err(bad_input(msg)),
        None => Ok(()),
    }
}

/// The region for a template: `--region`, else the account's own region (`AWS_REGION`, a
/// profile's region) when the template is offered there and no place is asked for, else its
/// cheapest within --continent/--country, else the provider's default.
pub(super) fn pick_region(
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
        .filter(|o| args.continent.is_none_or(|c| o.region.continent == Some(c)))
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

pub(super) fn placement_of(
    ctx: &Ctx,
    name: &str,
    p: &ProviderEntry,
    t: &Template,
    region: &str,
) -> Placement {
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
pub(super) fn spread(offers: &[Offer<'_>], by: Option<Spread>, n: usize) -> Vec<usize> {
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
pub(super) fn user_data(
    ctx: &Ctx,
    args: &DeployArgs,
    pl: &Placement,
) -> anyhow::Result<Option<String>> {
    if let Some(spec) = crate::commands::xnode::spec(ctx, &args.xnode)? {
        let ud = crate::commands::xnode::user_data(
            ctx,
            &spec,
            &pl.name,
            &pl.provider,
            &pl.region,
            &pl.template,
        )?;
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
pub(super) struct Plan {
    pub(super) placements: Vec<Placement>,
    pub(super) explanation: Option<Explanation>,
    /// Smart deploy: every feasible offer, ranked, for failing over.
    pub(super) candidates: Vec<Candidate>,
}

pub(super) fn plan_deploy(ctx: &Ctx, args: &DeployArgs) -> anyhow::Result<Plan> {
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
        crate::commands::xnode::check_template(ctx, &args.xnode, t)?;
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
        && args.size.min_cpu.is_none()
        && args.size.min_memory.is_none()
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
pub(super) fn resolve_plans(
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
pub(super) fn lookup_needed(p: &ProviderEntry, t: &Template) -> bool {
    p.api.plan_lookup.is_some()
        && (t.plan.is_empty() || !t.plan.bytes().all(|b| b.is_ascii_digit()))
}

pub(super) fn create_request(
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
                    .then(|| crate::commands::xnode::image(p, t))
                    .flatten()
            }),
        ssh_keys: crate::commands::sshkeys::for_provider(ctx, args, account, p, &pl.region)?,
        user_data,
        deploy_id: deploy_id.to_string(),
        api_variant: t.api_variant.clone(),
        vars: if args.xnode.xnode {
            crate::commands::xnode::create_vars()
        } else {
            Default::default()
        },
    })
}

/// A driver for a dry run: real credentials where configured, placeholders otherwise (the
/// rendered request redacts auth either way).
pub(super) fn dry_run_driver(ctx: &Ctx, provider: &str) -> anyhow::Result<Driver> {
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

/// The record of a node about to be created at `pl` with `req`.
pub(super) fn new_node(
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
