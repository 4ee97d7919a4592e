//! `sync`: compare the inventory with each provider's live list of capsule-tagged nodes and
//! report orphans, ghosts and drift; update drift, `--adopt` orphans, `--forget` ghosts.
//!
//! The comparison and its application are `state::reconcile`; this file fetches the lists
//! through the driver, looks adopted nodes' prices up in the catalog, and renders the findings.
//! Providers without credentials are skipped with a note (a failure when named with
//! `--provider`); a provider whose list fails is reported and the others are still synced
//! (exit 1).

use super::cleanup::{at_account, Account};
use super::stdout;
use crate::catalog::ProviderEntry;
use crate::cli::SyncArgs;
use crate::context::Ctx;
use crate::driver::Node;
use crate::messages;
use crate::render::{self, col, Column, Kind};
use crate::state::reconcile::{self, Applied, LiveNode};
use crate::state::{self, Action, NewNode, NodeFilter, NodeStatus, Outcome, Store};
use serde::Serialize;
use std::process::ExitCode;

const COLUMNS: &[Column] = &[
    col("provider", "provider", Kind::Text).prio(0),
    col("finding", "finding", Kind::Status).prio(0),
    col("node", "name", Kind::Text).prio(0),
    col("deploy id", "deploy_id", Kind::Text).prio(3),
    col("provider id", "provider_id", Kind::Text).prio(2),
    col("detail", "detail", Kind::Text).prio(1),
    col("action", "action", Kind::Text).prio(0),
];

/// The driver's node as sync compares it; its deploy id read with the provider's tag format.
fn live_node(p: &ProviderEntry, n: &Node) -> LiveNode {
    LiveNode {
        deploy_id: n
            .tag
            .as_deref()
            .and_then(|t| p.api.tagging.deploy_id_in(t))
            .map(str::to_string),
        provider: n.provider.clone(),
        id: n.id.clone(),
        name: n.name.clone(),
        region: n.region.clone(),
        plan: n.plan.clone(),
        status: NodeStatus::parse(n.state.as_str()),
        raw_status: n.raw_status.clone(),
        ipv4: n.ipv4.clone(),
        created_at: n.created_at.clone(),
        tag: n.tag.clone(),
        api_variant: n.variant.clone(),
    }
}

/// The record an orphan becomes: its template found by plan in the catalog, priced as the
/// catalog prices it today (the deploy-time price is not known).
fn adopt_as(provider: &ProviderEntry, ctx: &Ctx, account: &str, o: &LiveNode) -> NewNode {
    let region = provider.region_slug_for_api_id(&o.region).to_string();
    let template = ctx
        .catalog
        .templates_of(provider.id())
        .find(|t| t.plan.eq_ignore_ascii_case(&o.plan));
    // Names and ids from a listing are the provider's (or whoever named the server): a record
    // keeps to the same alphabet as a deploy, so an odd one is adopted under a safe form.
    use crate::state::names;
    let deploy_id = o
        .deploy_id()
        .filter(|d| names::deploy_id_problem("deploy id", d).is_none())
        .map_or_else(
            || format!("adopted-{}", names::safe_label(&o.id, 48)),
            str::to_string,
        );
    let name = if names::name_problem(&o.name).is_none() {
        o.name.clone()
    } else if o.name.trim().is_empty() {
        names::safe_label(&format!("{}-{}", provider.id(), o.id), names::MAX_NAME)
    } else {
        names::safe_label(&o.name, names::MAX_NAME)
    };
    NewNode {
        group_id: deploy_id.clone(),
        deploy_id,
        name,
        provider: provider.id().to_string(),
        account: account.to_string(),
        template: template.map_or_else(|| o.plan.clone(), |t| t.id.clone()),
        plan: o.plan.clone(),
        region: region.clone(),
        api_variant: o.api_variant.clone(),
        price_hourly: template.map_or(0.0, |t| t.hourly_in(&region)),
        price_monthly: template.map_or(0.0, |t| t.monthly_in(&region)),
        currency: provider.currency().to_string(),
        prices_as_of: provider.meta.prices_as_of.clone(),
    }
}

/// One row of `sync`'s documented JSON (pinned by `golden/schema/sync-findings.json`): what
/// was found about one node, or an account that could not be listed.
#[derive(Debug, Clone, Serialize)]
struct Finding {
    provider: String,
    /// `orphan`, `ghost`, `drift`, `ok`, or `failed` (the account was not listed).
    finding: &'static str,
    name: Option<String>,
    deploy_id: Option<String>,
    provider_id: Option<String>,
    detail: String,
    action: String,
}

impl Finding {
    fn of(a: &Applied) -> Finding {
        Finding {
            provider: a.provider.clone(),
            finding: a.finding,
            name: Some(a.name.clone()),
            deploy_id: a.deploy_id.clone(),
            provider_id: a.provider_id.clone(),
            detail: a.detail.clone(),
            action: a.action.clone(),
        }
    }

    fn failure(provider: &str, message: &str) -> Finding {
        Finding {
            provider: provider.to_string(),
            finding: "failed",
            name: None,
            deploy_id: None,
            provider_id: None,
            detail: message.to_string(),
            action: "not synced".to_string(),
        }
    }

    /// Whether the record and the provider differ here (`--exit-code`).
    fn differs(&self) -> bool {
        matches!(self.finding, "drift" | "orphan" | "ghost")
    }
}

pub fn run(ctx: &Ctx, args: &SyncArgs) -> anyhow::Result<ExitCode> {
    let explicit = !args.providers.is_empty();
    let providers: Vec<&ProviderEntry> = if explicit {
        args.providers
            .iter()
            .flat_map(|p| p.split(','))
            .map(|p| ctx.provider(p.trim()))
            .collect::<anyhow::Result<_>>()?
    } else {
        ctx.catalog.providers.iter().collect()
    };
    let store = state::open(&ctx.home)?;
    let runtime = ctx.runtime()?;
    // Each account of each provider is reconciled on its own: its records against its listing.
    let recorded = super::nodes::recorded_for_accounts(ctx, store.as_ref())?;
    let mut pairs: Vec<(&ProviderEntry, String, bool)> = Vec::new();
    for p in &providers {
        for account in super::nodes::accounts_of(ctx, p, &recorded)? {
            // A broken credentials file is an error (exit 2), not "unconfigured".
            let configured = ctx.configured(p, &account)?;
            pairs.push((p, account, configured));
        }
    }
    // Every configured account is listed at once; the results are reconciled in order below.
    let mut listings: std::collections::HashMap<Account, anyhow::Result<Vec<crate::driver::Node>>> =
        std::collections::HashMap::new();
    let mut drivers = Vec::new();
    for (p, account, _) in pairs.iter().filter(|(_, _, c)| *c) {
        let key = (p.id().to_string(), account.clone());
        match ctx.driver_for(p.id(), account) {
            Ok(d) => drivers.push((key, d)),
            Err(e) => {
                listings.insert(key, Err(e));
            }
        }
    }
    let listed = runtime.block_on(crate::engine::fan_out(
        drivers,
        crate::engine::DEFAULT_LIMIT,
        &crate::engine::Progress::hidden(),
        |(_, d)| async move { d.list(false).await },
    ));
    for ((key, _), r) in listed {
        let r = match r {
            Ok(r) => r.map_err(anyhow::Error::from),
            Err(e) => Err(anyhow::anyhow!("listing stopped: {e}")),
        };
        listings.insert(key, r);
    }
    let mut rows: Vec<Finding> = Vec::new();
    let mut failed = false;
    let mut synced = 0;
    let mut unconfigured: Vec<String> = Vec::new();
    let mut accounts_done: Vec<Account> = Vec::new();
    for (p, account, configured) in pairs {
        let id = p.id();
        let at = at_account(id, &account);
        if !configured {
            let msg = format!(
                "no credentials — configure them with `capsule openmesh provider configure {id}{}`",
                if account == crate::state::DEFAULT_ACCOUNT {
                    String::new()
                } else {
                    format!(" --account {account}")
                }
            );
            if explicit && account == ctx.account {
                messages::info(format!("{at}: {msg}"));
                rows.push(Finding::failure(id, &msg));
                failed = true;
            } else {
                unconfigured.push(at);
            }
            continue;
        }
        let key = (id.to_string(), account.clone());
        let listed = listings
            .remove(&key)
            .unwrap_or_else(|| Err(anyhow::anyhow!("{at} was not listed")));
        let live = match listed {
            Ok(nodes) => nodes,
            Err(e) => {
                let msg = super::one_line(&e);
                messages::info(super::provider_failure(&at, "listing failed", &msg));
                rows.push(Finding::failure(id, &msg));
                let _ = store.record_action(
                    None,
                    Action::Sync,
                    Outcome::Failed,
                    &format!("{at}: {msg}"),
                );
                failed = true;
                continue;
            }
        };
        let applied = sync_provider(store.as_ref(), ctx, p, &account, &live, args)?;
        // An update that could not be written is a failed sync (exit 1), named on stderr.
        for a in applied.iter().filter(|a| a.action.starts_with("failed")) {
            messages::info(format!(
                "{at}: {} {} ({}) was not updated: {}",
                a.finding,
                a.name,
                a.deploy_id.as_deref().unwrap_or("-"),
                a.action.trim_start_matches("failed: ")
            ));
            failed = true;
        }
        rows.extend(applied.iter().map(Finding::of));
        accounts_done.push(key);
        synced += 1;
    }
    if synced == 0 && !failed {
        // As `list` and `catalog refresh`: a command that needs a provider's API exits 2 when
        // none has credentials (the fix is the user's).
        return Err(crate::error::bad_input(
            "no provider has credentials — nothing to sync; run `capsule openmesh provider configure NAME --api-key KEY`",
        ));
    }
    // Cleanups left by deletes run once their node is gone (the listing above shows which).
    super::cleanup::settle(ctx, store.as_ref(), &runtime, Some(&accounts_done))?;
    let table: Vec<render::Row> = rows.iter().map(render::Row::of).collect();
    render::listing(&mut stdout(), ctx.style, COLUMNS, &table)?;
    if !unconfigured.is_empty() {
        messages::note(format!("skipped, no credentials: {} — configure them with `capsule openmesh provider configure NAME`",
            unconfigured.join(", ")));
    }
    let found = rows.iter().any(Finding::differs);
    Ok(if failed {
        ExitCode::from(1)
    } else if args.exit_code && found {
        // Like `terraform plan -detailed-exitcode`: 2 means "differences found".
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Reconcile one account of a provider and write the result; prints its summary line to
/// stderr.
fn sync_provider(
    store: &dyn Store,
    ctx: &Ctx,
    p: &ProviderEntry,
    account: &str,
    live: &[Node],
    args: &SyncArgs,
) -> anyhow::Result<Vec<Applied>> {
    let id = p.id();
    let live: Vec<LiveNode> = live.iter().map(|n| live_node(p, n)).collect();
    let records = store.list_nodes(&NodeFilter {
        providers: vec![id.to_string()],
        accounts: vec![account.to_string()],
        include_deleted: true,
        ..NodeFilter::default()
    })?;
    let plan = reconcile::reconcile(id, &records, &live);
    let hidden_secs = p.api.limits.hidden_after_create_seconds as i64;
    let applied = reconcile::apply(store, &plan, args.adopt, args.forget, hidden_secs, &|o| {
        adopt_as(p, ctx, account, o)
    })?;
    let mut summary = format!(
        "{}: {} in sync, {} drifted (updated), {} orphan{}, {} ghost{}",
        super::cleanup::at_account(id, account),
        plan.in_sync.len(),
        plan.drift.len(),
        plan.orphans.len(),
        if plan.orphans.len() == 1 { "" } else { "s" },
        plan.ghosts.len(),
        if plan.ghosts.len() == 1 { "" } else { "s" },
    );
    if !plan.orphans.is_empty() && !args.adopt {
        summary.push_str("; --adopt records orphans");
    }
    if !plan.ghosts.is_empty() && !args.forget {
        summary.push_str("; --forget marks ghosts deleted");
    }
    store.record_action(None, Action::Sync, Outcome::Ok, &summary)?;
    messages::note(summary);
    Ok(applied)
}
