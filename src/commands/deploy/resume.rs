//! `deploy --resume GROUP`: finish an interrupted fleet without duplicates (the rules are
//! `state::lifecycle::resume_step`).

use super::*;

/// How long creates that a killed process had in flight may take to reach the provider: a
/// resume right after a `kill -9` waits this long after the previous holder's last heartbeat
/// before it looks up the nodes that were still `creating`.
pub(super) const IN_FLIGHT_GRACE: Duration = Duration::from_secs(10);

/// The image the first attempt chose for a node whose template was resolved to a live product
/// (`api.plan_lookup`, the recorded plan differs from the template's): the one the product's
/// kind needs, read again from the inventory, so a resume sends what the first attempt sent.
/// `None` when the first attempt resolved nothing or the kind needs no particular image.
fn resumed_image(
    ctx: &Ctx,
    rt: &mut Option<tokio::runtime::Runtime>,
    n: &state::NodeRecord,
    t: Option<&Template>,
) -> anyhow::Result<Option<String>> {
    let p = ctx.provider(&n.provider)?;
    let product_id = !n.plan.is_empty() && n.plan.bytes().all(|b| b.is_ascii_digit());
    let resolved = product_id && t.is_none_or(|t| lookup_needed(p, t));
    if !resolved
        || p.api
            .plan_lookup
            .as_ref()
            .is_none_or(|lk| lk.image_by.is_empty())
    {
        return Ok(None);
    }
    let driver = ctx.driver(p.id())?;
    if rt.is_none() {
        *rt = Some(ctx.runtime()?);
    }
    let rt = rt.as_ref().ok_or_else(|| anyhow::anyhow!("no runtime"))?;
    Ok(rt.block_on(driver.plan_image(&n.plan, &n.region))?)
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
pub(super) fn resume(ctx: &Ctx, args: &DeployArgs, group: &str) -> anyhow::Result<ExitCode> {
    let fleet = Fleet::open(ctx, group)?;
    let nodes = fleet.store.nodes_in_group(group)?;
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
    let mut rt = None;
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
        if args.image.is_none() {
            if let Some(image) = resumed_image(ctx, &mut rt, n, t)? {
                req.image = Some(image);
            }
        }
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
        let wait = fleet
            .lease
            .settle_wait(IN_FLIGHT_GRACE, std::time::SystemTime::now());
        if !wait.is_zero() {
            messages::info(format!("fleet {group} was being deployed moments ago; waiting {} s for creates still in flight to reach the provider before looking them up",
                wait.as_secs().max(1)));
            fleet.lease.beat();
            std::thread::sleep(wait);
        }
    }
    // Recorded before any create, as every deploy is.
    fleet.store.record_intents(&fresh)?;
    run_jobs(&runner, &fleet, jobs, None, None)
}
