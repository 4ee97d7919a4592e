//! Pending cleanups: the work a delete leaves for after the node is gone (volumes that would
//! keep billing), recorded in the state store when the delete is accepted and run by `--wait`,
//! by the next command that touches that provider, or by `sync`. A cleanup that fails stays
//! pending with its error; none is ever dropped unannounced.

use crate::context::Ctx;
use crate::driver::{Cleanup, CleanupState, Driver};
use crate::messages;
use crate::state::{Action, NewCleanup, Outcome, PendingCleanup, Store};
use std::collections::BTreeMap;

/// Record the cleanups a delete returned, to run later with `account`'s credentials.
pub fn record(
    store: &dyn Store,
    account: &str,
    deploy_id: Option<&str>,
    work: &[Cleanup],
) -> anyhow::Result<()> {
    let items: Vec<NewCleanup> = work
        .iter()
        .map(|c| {
            Ok(NewCleanup {
                provider: c.node.provider.clone(),
                account: account.to_string(),
                node_ref: format!("{}:{}", c.node.provider, c.node.id),
                deploy_id: deploy_id.map(str::to_string),
                what: describe(c),
                work: serde_json::to_string(c)?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    store.add_cleanups(&items)
}

/// `delete_volume 7017…` — the operation and the id of the element it runs for.
fn describe(c: &Cleanup) -> String {
    match c.item.get("id").and_then(|v| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }) {
        Some(id) => format!("{} {id}", c.operation),
        None => c.operation.clone(),
    }
}

/// What one settling pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    pub done: usize,
    /// The node still exists.
    pub waiting: usize,
    pub failed: usize,
}

/// Run a provider's pending cleanups with `driver`; each result is recorded.
pub async fn run_pending(
    driver: &Driver,
    pending: &[PendingCleanup],
) -> Vec<Result<CleanupState, String>> {
    let mut out = Vec::with_capacity(pending.len());
    for p in pending {
        let r = match serde_json::from_str::<Cleanup>(&p.work) {
            Ok(c) => driver.run_cleanup(&c).await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("the recorded cleanup cannot be read ({e})")),
        };
        out.push(r);
    }
    out
}

/// Record the results of [`run_pending`].
pub fn record_results(
    store: &dyn Store,
    pending: &[PendingCleanup],
    results: &[Result<CleanupState, String>],
) -> anyhow::Result<Settled> {
    let mut s = Settled::default();
    for (p, r) in pending.iter().zip(results) {
        match r {
            Ok(CleanupState::Waiting) => s.waiting += 1,
            Ok(CleanupState::Done) => {
                s.done += 1;
                store.finish_cleanup(p.id, Ok(()))?;
                if let Some(d) = &p.deploy_id {
                    if store.node_by_deploy_id(d)?.is_some() {
                        store.record_action(
                            Some(d),
                            Action::Delete,
                            Outcome::Ok,
                            &format!("cleanup done: {}", p.what),
                        )?;
                    }
                }
            }
            Err(msg) => {
                s.failed += 1;
                store.finish_cleanup(p.id, Err(msg))?;
            }
        }
    }
    Ok(s)
}

/// A provider and one of its accounts: the credentials a cleanup runs with.
pub type Account = (String, String);

/// Run the pending cleanups of these provider accounts (every one with some when `None`) and
/// say on stderr what happened. An account without credentials is left for later, with a note.
pub fn settle(
    ctx: &Ctx,
    store: &dyn Store,
    rt: &tokio::runtime::Runtime,
    only: Option<&[Account]>,
) -> anyhow::Result<Settled> {
    let mut by_account: BTreeMap<Account, Vec<PendingCleanup>> = BTreeMap::new();
    for p in store.pending_cleanups(None)? {
        let key = (p.provider.clone(), p.account.clone());
        if only.is_none_or(|list| list.contains(&key)) {
            by_account.entry(key).or_default().push(p);
        }
    }
    let mut total = Settled::default();
    for ((provider, account), pending) in by_account {
        let at = at_account(&provider, &account);
        let driver = match ctx.driver_for(&provider, &account) {
            Ok(d) => d,
            Err(e) => {
                messages::info(format!(
                    "{} cleanup(s) at {at} stay pending: {e}",
                    pending.len()
                ));
                total.waiting += pending.len();
                continue;
            }
        };
        let results = rt.block_on(run_pending(&driver, &pending));
        let s = record_results(store, &pending, &results)?;
        if s.done > 0 {
            messages::info(format!("finished {} pending cleanup(s) at {at}", s.done));
        }
        for (p, r) in pending.iter().zip(&results) {
            if let Err(msg) = r {
                messages::info(format!(
                    "cleanup '{}' of {} failed and stays pending: {msg}",
                    p.what, p.node_ref
                ));
            }
        }
        total.done += s.done;
        total.waiting += s.waiting;
        total.failed += s.failed;
    }
    Ok(total)
}

/// `vultr`, or `vultr (account staging)` for a named account.
pub fn at_account(provider: &str, account: &str) -> String {
    if account == crate::state::DEFAULT_ACCOUNT {
        provider.to_string()
    } else {
        format!("{provider} (account {account})")
    }
}
