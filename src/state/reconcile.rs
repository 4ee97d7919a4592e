//! `sync`: compare the store's records of one provider with the provider's live list.
//!
//! [`reconcile`] is pure: records + live nodes → a [`SyncPlan`] of
//! - orphans: live nodes carrying a capsule deploy tag that no record knows;
//! - ghosts: live records the provider no longer lists;
//! - drift: records whose status, IPv4, plan or provider id differ from the live node.
//!
//! [`apply`] writes a plan into a store: drift is always updated, orphans are recorded only with
//! `adopt` and ghosts marked deleted only with `forget`.

use super::model::{Action, Created, NewNode, NodeRecord, NodeStatus, Observation};
use super::{time, Store};
use std::collections::{HashMap, HashSet};

/// A node as a provider lists it, reduced to what sync compares (the command converts the
/// driver's node into this).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LiveNode {
    pub provider: String,
    /// The provider's id.
    pub id: String,
    pub name: String,
    pub region: String,
    pub plan: String,
    /// `None`: the provider's status word maps to no known status.
    pub status: Option<NodeStatus>,
    pub raw_status: String,
    pub ipv4: Option<String>,
    pub created_at: Option<String>,
    /// The capsule tag (`capsule-<deploy_id>`), when the node has one.
    pub tag: Option<String>,
    /// The deploy id that tag carries under the provider's tag format (the command reads it
    /// with the catalog's one tag function; the store knows no tag format).
    pub deploy_id: Option<String>,
    pub api_variant: String,
}

impl LiveNode {
    pub fn deploy_id(&self) -> Option<&str> {
        self.deploy_id.as_deref()
    }
}

/// One difference between a record and the live node.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    pub field: &'static str,
    pub recorded: Option<String>,
    pub live: Option<String>,
}

/// A record and the live node it matches, with what differs.
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    pub record: NodeRecord,
    pub live: LiveNode,
    pub changes: Vec<FieldChange>,
}

/// What sync found for one provider.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncPlan {
    pub provider: String,
    pub orphans: Vec<LiveNode>,
    pub ghosts: Vec<NodeRecord>,
    pub drift: Vec<Drift>,
    /// Records that match their live node exactly.
    pub in_sync: Vec<NodeRecord>,
}

/// Compare `records` (all of one provider's, deleted ones included) with `live` (that provider's
/// list). Live nodes the provider reports as deleted count as absent; untagged live nodes that
/// no record knows are not capsule's and are ignored.
pub fn reconcile(provider: &str, records: &[NodeRecord], live: &[LiveNode]) -> SyncPlan {
    let mut plan = SyncPlan {
        provider: provider.to_string(),
        ..SyncPlan::default()
    };
    let by_deploy: HashMap<&str, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.deploy_id.as_str(), i))
        .collect();
    let mut by_pid: HashMap<&str, usize> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        if let Some(pid) = r.provider_id.as_deref() {
            // Prefer the live record when a provider id was recorded twice.
            if r.is_live() || !by_pid.contains_key(pid) {
                by_pid.insert(pid, i);
            }
        }
    }
    let mut matched: HashSet<usize> = HashSet::new();
    for node in live
        .iter()
        .filter(|n| n.status != Some(NodeStatus::Deleted))
    {
        let hit = node
            .deploy_id()
            .and_then(|d| by_deploy.get(d))
            .or_else(|| by_pid.get(node.id.as_str()))
            .copied();
        match hit {
            Some(i) if matched.insert(i) => {
                let record = &records[i];
                let changes = differences(record, node);
                if changes.is_empty() {
                    plan.in_sync.push(record.clone());
                } else {
                    plan.drift.push(Drift {
                        record: record.clone(),
                        live: node.clone(),
                        changes,
                    });
                }
            }
            // A second live node claiming a matched record's tag is an orphan of its own.
            Some(_) => plan.orphans.push(node.clone()),
            None if node.deploy_id().is_some() => plan.orphans.push(node.clone()),
            None => {}
        }
    }
    for (i, r) in records.iter().enumerate() {
        if matched.contains(&i) || !r.is_live() || r.status == NodeStatus::Deleted {
            continue;
        }
        if r.status == NodeStatus::Deleting {
            // It was being deleted and now it is gone: that is the deletion finishing.
            let gone = LiveNode {
                provider: r.provider.clone(),
                id: r.provider_id.clone().unwrap_or_default(),
                status: Some(NodeStatus::Deleted),
                ipv4: r.ipv4.clone(),
                plan: r.plan.clone(),
                ..LiveNode::default()
            };
            let changes = vec![FieldChange {
                field: "status",
                recorded: Some(r.status.to_string()),
                live: Some("deleted".into()),
            }];
            plan.drift.push(Drift {
                record: r.clone(),
                live: gone,
                changes,
            });
        } else {
            plan.ghosts.push(r.clone());
        }
    }
    plan
}

fn differences(r: &NodeRecord, n: &LiveNode) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut diff = |field: &'static str, recorded: Option<&str>, live: Option<&str>| {
        out.push(FieldChange {
            field,
            recorded: recorded.map(str::to_string),
            live: live.map(str::to_string),
        });
    };
    if let Some(s) = n.status {
        if s != r.status {
            diff("status", Some(r.status.as_str()), Some(s.as_str()));
        }
    }
    let live_ip = n.ipv4.as_deref().filter(|s| !s.is_empty());
    if live_ip != r.ipv4.as_deref() {
        diff("ipv4", r.ipv4.as_deref(), live_ip);
    }
    if !n.plan.is_empty() && n.plan != r.plan {
        diff("plan", Some(&r.plan), Some(&n.plan));
    }
    if !n.id.is_empty() && r.provider_id.as_deref() != Some(n.id.as_str()) {
        diff("provider_id", r.provider_id.as_deref(), Some(&n.id));
    }
    out
}

/// What [`apply`] did with one finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// `orphan`, `ghost`, `drift` or `ok`.
    pub finding: &'static str,
    pub provider: String,
    pub name: String,
    pub deploy_id: Option<String>,
    pub provider_id: Option<String>,
    /// What differs or why it is listed.
    pub detail: String,
    /// `adopted`, `forgotten`, `updated`, `reported`, `unchanged`, or `failed: …`.
    pub action: String,
}

pub use super::lifecycle::IN_FLIGHT_SECS;

/// Write a plan into the store. `adopt_as` turns an orphan into the record to create (the
/// command looks its template and price up in the catalog). `hidden_secs` is how long the
/// provider may leave a new node out of its listings while it provisions (the catalog's
/// `hidden_after_create_seconds`): such a ghost is kept. Failures of single nodes are reported
/// in their row, not returned.
pub fn apply(
    store: &dyn Store,
    plan: &SyncPlan,
    adopt: bool,
    forget: bool,
    hidden_secs: i64,
    adopt_as: &dyn Fn(&LiveNode) -> NewNode,
) -> anyhow::Result<Vec<Applied>> {
    let mut out = Vec::new();
    for d in &plan.drift {
        let obs = Observation {
            status: d.live.status,
            raw_status: Some(d.live.raw_status.clone()).filter(|s| !s.is_empty()),
            ipv4: Some(d.live.ipv4.clone()),
            provider_id: Some(d.live.id.clone()).filter(|s| !s.is_empty()),
            plan: Some(d.live.plan.clone()).filter(|s| !s.is_empty()),
        };
        let detail = d
            .changes
            .iter()
            .map(|c| {
                format!(
                    "{} {} → {}",
                    c.field,
                    c.recorded.as_deref().unwrap_or("-"),
                    c.live.as_deref().unwrap_or("-")
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let action = match store.record_observation(&d.record.deploy_id, &obs, Action::Sync, "sync")
        {
            Ok(_) => "updated".to_string(),
            Err(e) => format!("failed: {e}"),
        };
        out.push(Applied {
            finding: "drift",
            provider: plan.provider.clone(),
            name: d.record.name.clone(),
            deploy_id: Some(d.record.deploy_id.clone()),
            provider_id: d.record.provider_id.clone().or(Some(d.live.id.clone())),
            detail,
            action,
        });
    }
    for o in &plan.orphans {
        let new = adopt_as(o);
        let action = if !adopt {
            "reported".to_string()
        } else {
            let created = Created {
                provider_id: o.id.clone(),
                status: o.status.unwrap_or(NodeStatus::Running),
                raw_status: o.raw_status.clone(),
                ipv4: o.ipv4.clone(),
                created_at: o.created_at.clone(),
            };
            match store.adopt(&new, &created) {
                Ok(_) => "adopted".to_string(),
                Err(e) => format!("failed: {e}"),
            }
        };
        out.push(Applied {
            finding: "orphan",
            provider: plan.provider.clone(),
            name: new.name.clone(),
            deploy_id: o.deploy_id().map(str::to_string),
            provider_id: Some(o.id.clone()),
            detail: format!(
                "tagged by capsule at the provider ({}), not in the inventory",
                o.status.map_or("unknown", |s| s.as_str())
            ),
            action,
        });
    }
    let now = time::now_unix();
    for g in &plan.ghosts {
        let kept = super::lifecycle::keep_ghost(g, now, hidden_secs);
        let action = if !forget {
            "reported".to_string()
        } else if let Some(why) = kept {
            why.to_string()
        } else {
            match store.forget(&g.deploy_id, "gone from the provider") {
                Ok(_) => "forgotten".to_string(),
                Err(e) => format!("failed: {e}"),
            }
        };
        out.push(Applied {
            finding: "ghost",
            provider: plan.provider.clone(),
            name: g.name.clone(),
            deploy_id: Some(g.deploy_id.clone()),
            provider_id: g.provider_id.clone(),
            detail: format!("recorded {}, not listed by the provider", g.status),
            action,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(deploy: &str, pid: Option<&str>, status: NodeStatus, ip: Option<&str>) -> NodeRecord {
        NodeRecord {
            deploy_id: deploy.into(),
            group_id: deploy.into(),
            name: format!("n-{deploy}"),
            provider: "acme".into(),
            account: crate::state::DEFAULT_ACCOUNT.into(),
            provider_id: pid.map(Into::into),
            template: "acme-small".into(),
            plan: "s-1".into(),
            region: "r1".into(),
            ipv4: ip.map(Into::into),
            price_hourly: 0.01,
            price_monthly: 5.0,
            currency: "USD".into(),
            recorded_at: "2024-05-01T00:00:00Z".into(),
            deleted_at: if status == NodeStatus::Deleted {
                Some("2024-05-02T00:00:00Z".into())
            } else {
                None
            },
            updated_at: "2024-05-01T00:00:00Z".into(),
            ..NodeRecord::blank(status)
        }
    }

    /// The intent of an `acme-small` deploy (its own group) named `name`.
    fn new_node(deploy_id: &str, name: &str) -> NewNode {
        NewNode::sample(deploy_id, name)
    }

    fn live(id: &str, tag: Option<&str>, status: NodeStatus, ip: Option<&str>) -> LiveNode {
        LiveNode {
            provider: "acme".into(),
            id: id.into(),
            name: format!("live-{id}"),
            plan: "s-1".into(),
            status: Some(status),
            ipv4: ip.map(Into::into),
            tag: tag.map(Into::into),
            deploy_id: tag.and_then(|t| t.strip_prefix("capsule-")).map(Into::into),
            ..LiveNode::default()
        }
    }

    #[test]
    fn finds_orphans_ghosts_and_drift() {
        use NodeStatus::*;
        let records = [
            rec("a1", Some("100"), Running, Some("10.0.0.1")), // in sync
            rec("b2", Some("200"), Running, Some("10.0.0.2")), // stopped at the provider: drift
            rec("c3", Some("300"), Running, None),             // gone: ghost
            rec("d4", None, Creating, None), // killed before the answer, exists: drift
            rec("e5", Some("500"), Deleted, None), // deleted and gone: nothing
            rec("f6", Some("600"), Deleting, None), // deletion finished: drift to deleted
        ];
        let live = [
            live("100", Some("capsule-a1"), Running, Some("10.0.0.1")),
            live("200", Some("capsule-b2"), Stopped, Some("10.0.0.2")),
            live("400", Some("capsule-d4"), Running, Some("10.0.0.4")),
            live("700", Some("capsule-zz"), Running, None), // orphan
            live("800", None, Running, None),               // not capsule's
            live("900", Some("capsule-yy"), Deleted, None), // deleted at the provider: ignored
        ];
        let deploy_ids =
            |rs: &[NodeRecord]| -> Vec<String> { rs.iter().map(|r| r.deploy_id.clone()).collect() };
        let plan = reconcile("acme", &records, &live);
        assert_eq!(deploy_ids(&plan.in_sync), ["a1"]);
        assert_eq!(
            plan.orphans
                .iter()
                .map(|n| n.id.as_str())
                .collect::<Vec<_>>(),
            ["700"]
        );
        assert_eq!(deploy_ids(&plan.ghosts), ["c3"]);
        let drift: Vec<(&str, Vec<&str>)> = plan
            .drift
            .iter()
            .map(|d| {
                (
                    d.record.deploy_id.as_str(),
                    d.changes.iter().map(|c| c.field).collect(),
                )
            })
            .collect();
        assert_eq!(
            drift,
            [
                ("b2", vec!["status"]),
                ("d4", vec!["status", "ipv4", "provider_id"]),
                ("f6", vec!["status"])
            ]
        );
    }

    #[test]
    fn matches_by_provider_id_when_untagged() {
        let records = [rec("a1", Some("100"), NodeStatus::Running, None)];
        let plan = reconcile(
            "acme",
            &records,
            &[live("100", None, NodeStatus::Running, None)],
        );
        assert_eq!(plan.in_sync.len(), 1);
        assert!(plan.orphans.is_empty() && plan.ghosts.is_empty() && plan.drift.is_empty());
    }

    #[test]
    fn a_node_created_within_the_hiding_window_is_not_forgotten() {
        use crate::state::{Created, SqliteStore, Store};
        let store = SqliteStore::open_in_memory().unwrap();
        store.record_intent(&new_node("hid", "hidden")).unwrap();
        let created = Created {
            provider_id: "900".into(),
            status: NodeStatus::Pending,
            raw_status: String::new(),
            ipv4: None,
            created_at: Some(time::now()),
        };
        store.record_created("hid", &created).unwrap();
        let records = store.list_nodes(&Default::default()).unwrap();
        let plan = reconcile("acme", &records, &[]);
        assert_eq!(plan.ghosts.len(), 1);
        let kept = apply(&store, &plan, false, true, 3600, &|_| unreachable!()).unwrap();
        assert_eq!(
            kept[0].action,
            "kept: the provider does not list a node while it provisions"
        );
        assert!(store.node_by_deploy_id("hid").unwrap().unwrap().is_live());
        let gone = apply(&store, &plan, false, true, 0, &|_| unreachable!()).unwrap();
        assert_eq!(gone[0].action, "forgotten");
    }

    #[test]
    fn apply_adopts_forgets_and_spares_a_deploy_in_flight() {
        use crate::state::{Failure, SqliteStore, Store};
        let store = SqliteStore::open_in_memory().unwrap();
        // Just recorded, create not answered yet: may be in flight in another process.
        store.record_intent(&new_node("fresh", "fresh")).unwrap();
        // A create that timed out and never reached the provider.
        store.record_intent(&new_node("doubt", "doubt")).unwrap();
        store
            .record_failed("doubt", "acme: timed out", Failure::InDoubt)
            .unwrap();
        let records = store
            .list_nodes(&crate::state::NodeFilter {
                include_deleted: true,
                ..Default::default()
            })
            .unwrap();
        let orphan = live(
            "700",
            Some("capsule-o7"),
            NodeStatus::Running,
            Some("10.0.0.7"),
        );
        let plan = reconcile("acme", &records, &[orphan]);
        assert_eq!(plan.ghosts.len(), 2);
        let out = apply(&store, &plan, true, true, 0, &|o| {
            new_node(o.deploy_id().unwrap(), &o.name)
        })
        .unwrap();
        let actions: Vec<(&str, &str)> = out
            .iter()
            .map(|a| (a.name.as_str(), a.action.as_str()))
            .collect();
        assert_eq!(
            actions,
            [
                ("live-700", "adopted"),
                ("doubt", "forgotten"),
                ("fresh", "kept: a deploy may still be creating it")
            ]
        );
        let adopted = store.node_by_deploy_id("o7").unwrap().unwrap();
        assert_eq!(
            (adopted.provider_id.as_deref(), adopted.ipv4.as_deref()),
            (Some("700"), Some("10.0.0.7"))
        );
        assert!(!store.node_by_deploy_id("doubt").unwrap().unwrap().is_live());
        assert!(store.node_by_deploy_id("fresh").unwrap().unwrap().is_live());
    }
}
