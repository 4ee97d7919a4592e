//! `deploy`: smart selection with its explanation, the manual form, dry runs, bounded-parallel
//! fleets, waiting, and `--resume`.
//!
//! Every node is recorded in the state store before its create call. Provider calls run
//! concurrently on a tokio runtime; the store is written only from the command's own thread, so
//! the order "recorded, then created" always holds.
//!
//! The parts: `plan` (placements, fleet planning, the create requests), `run` (the one engine
//! that runs creates bounded-parallel, records every report and fails refused creates over) and
//! `resume`. The explanation of a smart choice is `crate::explain`.

mod plan;
mod resume;
mod run;

use plan::*;
use resume::*;
use run::*;

use crate::catalog::schema::Template;
use crate::catalog::ProviderEntry;
use crate::cli::{DeployArgs, OutputFormat, Spread};
use crate::commands::failover::{self, Attempt, Candidate, Failover};
use crate::commands::nodes::{confirm, observe, open_store, status_of};
use crate::commands::stdout;
use crate::context::Ctx;
use crate::driver::{
    CreateOutcome, CreateRequest, Driver, DriverError, ErrorKind, Node, NodeState, RenderedRequest,
};
use crate::error::bad_input;
use crate::messages;
use crate::render::{self, col, usd, Kind};
use crate::select::{self, Offer};
use crate::state::lifecycle::{self, ResumeStep};
use crate::state::{
    self, Action, Created, Failure, NewNode, NodeRecord, NodeStatus, Outcome, Store,
};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use crate::explain::{smart_plan, Explanation, ExplanationJson};

/// `deploy --dry-run -o json` (`golden/schema/deploy-dry-run.json`), and the answer of a smart
/// deploy that nothing fits (`dry_run` left out, no nodes).
#[derive(Debug, Serialize)]
struct DryRun<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    dry_run: Option<bool>,
    plan: Option<ExplanationJson<'a>>,
    nodes: Vec<DryRunNode<'a>>,
}

/// One node a dry run would create: where, for how much, and the requests it would send.
#[derive(Debug, Serialize)]
struct DryRunNode<'a> {
    name: &'a str,
    provider: &'a str,
    template: &'a str,
    region: &'a str,
    price_hourly: f64,
    price_monthly: f64,
    price_hourly_usd: f64,
    price_monthly_usd: f64,
    requests: &'a [RenderedRequest],
    #[serde(skip_serializing_if = "Option::is_none")]
    user_data: Option<&'a str>,
}

impl<'a> DryRunNode<'a> {
    fn of(
        pl: &'a Placement,
        requests: &'a [RenderedRequest],
        user_data: Option<&'a str>,
    ) -> DryRunNode<'a> {
        DryRunNode {
            name: &pl.name,
            provider: &pl.provider,
            template: &pl.template,
            region: &pl.region,
            price_hourly: pl.hourly,
            price_monthly: pl.monthly,
            price_hourly_usd: (pl.hourly_usd * 1e5).round() / 1e5,
            price_monthly_usd: (pl.monthly_usd * 100.0).round() / 100.0,
            requests,
            user_data,
        }
    }
}

pub fn deploy(ctx: &Ctx, args: &DeployArgs) -> anyhow::Result<ExitCode> {
    // xNode values are checked before anything else; the warnings are said once, below.
    let xnode = super::xnode::spec(ctx, &args.xnode)?;
    if let Some(group) = &args.resume {
        return resume(ctx, args, group);
    }
    let ttl = super::expiry::parse_ttl(args.ttl)?;
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
            let v = DryRun {
                dry_run: None,
                plan: plan.explanation.as_ref().map(Explanation::json),
                nodes: Vec::new(),
            };
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
    let fleet = Fleet::open(ctx, &group_id)?;
    let intents = jobs
        .iter()
        .map(|(pl, req)| new_node(ctx, &group_id, &ctx.account, pl, req))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Every node is recorded, in one transaction, before the first create call.
    fleet.store.record_intents(&intents)?;
    let ids: Vec<String> = intents.iter().map(|n| n.deploy_id.clone()).collect();
    super::expiry::record(fleet.store.as_ref(), &ids, ttl)?;
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
    run_jobs(&runner, &fleet, jobs, plan.explanation, failover)
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
        let v = DryRun {
            dry_run: Some(true),
            plan: plan.explanation.as_ref().map(Explanation::json),
            nodes: items
                .iter()
                .map(|(pl, reqs, ud)| DryRunNode::of(pl, reqs, ud.as_deref()))
                .collect(),
        };
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
