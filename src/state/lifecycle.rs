//! Lifecycle rules as pure functions over records: what a failed create does to a record, what
//! `deploy --resume` does with each node of a fleet, and which ghosts `sync --forget` keeps.
//!
//! No storage and no I/O here: every backend (SQLite today, PostgreSQL later) and every command
//! calls these, so the rules exist once.

use super::model::{Failure, NewNode, NodeRecord, NodeStatus};
use super::time;

/// Apply a failed create to its record at `now`: `in_doubt` and live (name kept) when the
/// provider may have acted, `error` and out of the live set (name free) when it refused.
/// Returns the status the record moved to, if it changed.
pub fn fail_create(node: &mut NodeRecord, failure: Failure, now: &str) -> Option<NodeStatus> {
    let status = match failure {
        Failure::Rejected => NodeStatus::Error,
        Failure::InDoubt => NodeStatus::InDoubt,
    };
    let changed = (node.status != status).then_some(status);
    node.status = status;
    match failure {
        Failure::Rejected if node.deleted_at.is_none() => node.deleted_at = Some(now.to_string()),
        Failure::Rejected => {}
        Failure::InDoubt => node.deleted_at = None,
    }
    node.updated_at = now.to_string();
    changed
}

/// Move a create the provider definitely refused to its next placement (smart deploy's
/// failover): the same record, re-keyed to `to`'s deploy id, provider, template, plan, region and
/// prices, still `creating`. Only a record still `creating` with no provider id can move: any
/// other may stand for a node that exists.
pub fn move_to(node: &mut NodeRecord, to: &NewNode, now: &str) -> Result<(), String> {
    if node.status != NodeStatus::Creating || node.provider_id.is_some() || !node.is_live() {
        return Err(format!(
            "node '{}' ({}) is {}, not a create still to place — it was not moved",
            node.name,
            node.deploy_id,
            node.status.as_str()
        ));
    }
    node.deploy_id = to.deploy_id.clone();
    node.provider = to.provider.clone();
    node.template = to.template.clone();
    node.plan = to.plan.clone();
    node.region = to.region.clone();
    node.api_variant = to.api_variant.clone();
    node.price_hourly = to.price_hourly;
    node.price_monthly = to.price_monthly;
    node.currency = to.currency.clone();
    node.prices_as_of = to.prices_as_of.clone();
    node.updated_at = now.to_string();
    Ok(())
}

/// Whether a record is in doubt: the provider may have created it, and no lookup settled it.
pub fn is_in_doubt(node: &NodeRecord) -> bool {
    node.is_live() && node.status == NodeStatus::InDoubt
}

/// What `deploy --resume` does with one recorded node of the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeStep {
    /// The provider has it (its id is recorded): nothing to do.
    Exists,
    /// Look it up by its own (old) deploy tag and adopt what is found. `may_create`: create it
    /// under the same deploy id when the lookup definitively finds nothing; otherwise (an
    /// in-doubt create still inside the provider's hidden window) it stays in doubt.
    LookUp { may_create: bool },
    /// The provider refused the create: create it again under a fresh deploy id.
    Recreate,
    /// Out of the fleet (deleted or forgotten): left alone.
    Skip,
}

/// The resume step of a record at `now_unix`. `hidden_secs` is the provider's
/// `hidden_after_create_seconds`: an in-doubt create answered less than that long ago may exist
/// without being listed yet, so not finding its tag proves nothing.
pub fn resume_step(node: &NodeRecord, now_unix: i64, hidden_secs: f64) -> ResumeStep {
    if node.provider_id.is_some() {
        return ResumeStep::Exists;
    }
    if !node.is_live() {
        return if node.status == NodeStatus::Error {
            ResumeStep::Recreate
        } else {
            ResumeStep::Skip
        };
    }
    let may_create = match node.status {
        NodeStatus::InDoubt => !within(&node.updated_at, now_unix, hidden_secs),
        // `creating`: the create may never have been sent (a kill before it); the lookup first,
        // and the caller waits out creates that were in flight.
        _ => !within(&node.recorded_at, now_unix, hidden_secs),
    };
    ResumeStep::LookUp { may_create }
}

/// Whether `since` (RFC 3339) is less than `secs` seconds before `now_unix`. An unreadable time
/// counts as recent: the cautious answer.
fn within(since: &str, now_unix: i64, secs: f64) -> bool {
    if !(secs.is_finite() && secs > 0.0) {
        return false;
    }
    time::unix(since).is_none_or(|t| ((now_unix - t) as f64) < secs)
}

/// A ghost still in `creating` this recently may be a deploy in flight in another process;
/// `forget` leaves it alone.
pub const IN_FLIGHT_SECS: i64 = 15 * 60;

/// Why `sync --forget` keeps a ghost (a live record the provider does not list), if it does.
pub fn keep_ghost(g: &NodeRecord, now_unix: i64, hidden_secs: i64) -> Option<&'static str> {
    let age = |t: &str| time::unix(t).map(|t| now_unix - t);
    let in_flight =
        g.status == NodeStatus::Creating && age(&g.recorded_at).is_some_and(|a| a < IN_FLIGHT_SECS);
    if in_flight {
        return Some("kept: a deploy may still be creating it");
    }
    // An in-doubt create within the hidden window may exist without being listed.
    let doubtful = g.status == NodeStatus::InDoubt
        && hidden_secs > 0
        && age(&g.updated_at).is_none_or(|a| a < hidden_secs);
    if doubtful {
        return Some("kept: in doubt, and the provider may not list a new node yet");
    }
    let provisioning = hidden_secs > 0
        && matches!(g.status, NodeStatus::Pending | NodeStatus::Running)
        && age(g.created_at.as_deref().unwrap_or(&g.recorded_at)).is_some_and(|a| a < hidden_secs);
    if provisioning {
        return Some("kept: the provider does not list a node while it provisions");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(status: NodeStatus, pid: Option<&str>, live: bool, at: &str) -> NodeRecord {
        NodeRecord {
            deploy_id: "d1".into(),
            group_id: "g".into(),
            name: "web".into(),
            provider: "acme".into(),
            account: crate::state::DEFAULT_ACCOUNT.into(),
            provider_id: pid.map(Into::into),
            template: "t".into(),
            plan: "p".into(),
            region: "r".into(),
            currency: "USD".into(),
            recorded_at: at.into(),
            deleted_at: (!live).then(|| at.to_string()),
            updated_at: at.into(),
            ..NodeRecord::blank(status)
        }
    }

    const T0: &str = "2024-05-01T00:00:00Z";

    fn t0() -> i64 {
        time::unix(T0).unwrap()
    }

    #[test]
    fn a_refusal_frees_the_name_a_doubt_keeps_it() {
        let mut n = rec(NodeStatus::Creating, None, true, T0);
        assert_eq!(
            fail_create(&mut n, Failure::Rejected, T0),
            Some(NodeStatus::Error)
        );
        assert!(!n.is_live());
        let mut n = rec(NodeStatus::Creating, None, true, T0);
        assert_eq!(
            fail_create(&mut n, Failure::InDoubt, T0),
            Some(NodeStatus::InDoubt)
        );
        assert!(n.is_live() && is_in_doubt(&n));
        assert_eq!(fail_create(&mut n, Failure::InDoubt, T0), None);
    }

    #[test]
    fn resume_looks_up_in_doubt_and_creating_nodes_and_recreates_only_refusals() {
        let now = t0() + 60;
        assert_eq!(
            resume_step(&rec(NodeStatus::Running, Some("7"), true, T0), now, 0.0),
            ResumeStep::Exists
        );
        assert_eq!(
            resume_step(&rec(NodeStatus::InDoubt, Some("7"), true, T0), now, 0.0),
            ResumeStep::Exists
        );
        assert_eq!(
            resume_step(&rec(NodeStatus::Error, None, false, T0), now, 0.0),
            ResumeStep::Recreate
        );
        assert_eq!(
            resume_step(&rec(NodeStatus::Deleted, None, false, T0), now, 0.0),
            ResumeStep::Skip
        );
        assert_eq!(
            resume_step(&rec(NodeStatus::InDoubt, None, true, T0), now, 0.0),
            ResumeStep::LookUp { may_create: true }
        );
        assert_eq!(
            resume_step(&rec(NodeStatus::Creating, None, true, T0), now, 0.0),
            ResumeStep::LookUp { may_create: true }
        );
        // Inside the hidden window, not finding the tag proves nothing.
        assert_eq!(
            resume_step(&rec(NodeStatus::InDoubt, None, true, T0), now, 3600.0),
            ResumeStep::LookUp { may_create: false }
        );
        assert_eq!(
            resume_step(
                &rec(NodeStatus::InDoubt, None, true, T0),
                t0() + 3600,
                3600.0
            ),
            ResumeStep::LookUp { may_create: true }
        );
        assert_eq!(
            resume_step(
                &rec(NodeStatus::InDoubt, None, true, "garbage"),
                now,
                3600.0
            ),
            ResumeStep::LookUp { may_create: false }
        );
    }

    #[test]
    fn forget_keeps_fresh_creates_and_doubts_in_the_hidden_window() {
        let now = t0() + 60;
        assert!(keep_ghost(&rec(NodeStatus::Creating, None, true, T0), now, 0).is_some());
        assert!(keep_ghost(&rec(NodeStatus::InDoubt, None, true, T0), now, 3600).is_some());
        assert!(keep_ghost(&rec(NodeStatus::InDoubt, None, true, T0), now, 0).is_none());
        assert!(keep_ghost(&rec(NodeStatus::Running, Some("1"), true, T0), now, 3600).is_some());
        assert!(keep_ghost(&rec(NodeStatus::Running, Some("1"), true, T0), now, 0).is_none());
        assert!(keep_ghost(
            &rec(NodeStatus::Creating, None, true, T0),
            t0() + IN_FLIGHT_SECS,
            0
        )
        .is_none());
    }
}
