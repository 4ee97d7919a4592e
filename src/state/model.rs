//! The records the store keeps: nodes, their status transitions and events.
//!
//! Plain data with a stable serde shape (the JSON of `inventory`, `history` and `inventory
//! export`). No storage code and no secrets: nothing in here may ever hold a credential.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The account a node belongs to when none is named (`--account`, `CAPSULE_ACCOUNT`), and the
/// account of every node recorded before accounts existed.
pub const DEFAULT_ACCOUNT: &str = "default";

/// A node's status as capsule records it.
///
/// `Creating` is capsule's own: the intent is recorded and the provider has not answered the
/// create call yet. `InDoubt` is capsule's own too: the create may or may not have been carried
/// out (a 5xx, a timeout, an answer without an id, a failed step after it); the node keeps its
/// name until a lookup by its deploy tag settles it. The others mirror the driver's normalised
/// states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    Creating,
    #[serde(rename = "in_doubt")]
    InDoubt,
    Pending,
    Running,
    Stopped,
    Deleting,
    Deleted,
    Error,
}

impl NodeStatus {
    pub const ALL: [NodeStatus; 8] = [
        NodeStatus::Creating,
        NodeStatus::InDoubt,
        NodeStatus::Pending,
        NodeStatus::Running,
        NodeStatus::Stopped,
        NodeStatus::Deleting,
        NodeStatus::Deleted,
        NodeStatus::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Creating => "creating",
            NodeStatus::InDoubt => "in_doubt",
            NodeStatus::Pending => "pending",
            NodeStatus::Running => "running",
            NodeStatus::Stopped => "stopped",
            NodeStatus::Deleting => "deleting",
            NodeStatus::Deleted => "deleted",
            NodeStatus::Error => "error",
        }
    }

    /// The status named by `text` (case-insensitive; `in doubt` and `in-doubt` name
    /// `in_doubt`).
    pub fn parse(text: &str) -> Option<NodeStatus> {
        // As the store writes it: no copy (cost reports read hundreds of thousands).
        if let Some(s) = NodeStatus::ALL.into_iter().find(|s| s.as_str() == text) {
            return Some(s);
        }
        let text = text.trim().replace([' ', '-'], "_");
        NodeStatus::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(&text))
    }

    /// How people read it: `in doubt` for `in_doubt`, the status itself otherwise.
    pub fn label(self) -> &'static str {
        match self {
            NodeStatus::InDoubt => "in doubt",
            s => s.as_str(),
        }
    }

    /// Whether the provider bills a node in this status.
    ///
    /// Pending, running and deleting nodes exist at the provider and are billed; stopped ones
    /// only where the provider bills powered-off machines. `creating` (no answer yet), `in_doubt`
    /// (not known to exist), `error` and `deleted` are not billed.
    pub fn is_billable(self, billed_when_stopped: bool) -> bool {
        match self {
            NodeStatus::Pending | NodeStatus::Running | NodeStatus::Deleting => true,
            NodeStatus::Stopped => billed_when_stopped,
            NodeStatus::Creating
            | NodeStatus::InDoubt
            | NodeStatus::Deleted
            | NodeStatus::Error => false,
        }
    }
}

impl fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One node as recorded: identity, what was bought at what price, and its lifecycle times.
///
/// Timestamps are RFC 3339 UTC with whole seconds (`2024-05-01T12:00:00Z`). The field order is
/// the column order of `inventory export`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// capsule's id for this deploy; unique, and the provider-side tag `capsule-<deploy_id>`.
    pub deploy_id: String,
    /// The fleet this node was deployed with (`deploy --resume GROUP`); a single deploy's group
    /// is its own deploy id.
    pub group_id: String,
    /// Unique among live (not deleted) nodes.
    pub name: String,
    pub provider: String,
    /// The credentials account the node was deployed with (`default` unless `--account` named
    /// another); every later action on the node uses that account's credentials.
    pub account: String,
    /// The provider's id; `None` until the create call answered.
    pub provider_id: Option<String>,
    pub template: String,
    pub plan: String,
    pub region: String,
    /// The catalog API variant that created it (empty: the provider's main operations).
    pub api_variant: String,
    pub status: NodeStatus,
    /// The provider's own status word, as last seen.
    pub raw_status: String,
    pub ipv4: Option<String>,
    /// Price at deploy time, in `currency`.
    pub price_hourly: f64,
    pub price_monthly: f64,
    pub currency: String,
    /// `prices_as_of` of the catalog the prices came from.
    pub prices_as_of: String,
    /// When capsule first recorded the node (the deploy intent).
    pub recorded_at: String,
    /// When the provider created it (its own clock when it says; else when it answered).
    pub created_at: Option<String>,
    /// Last transition to running.
    pub started_at: Option<String>,
    /// Last transition to stopped.
    pub stopped_at: Option<String>,
    /// Set when the node left the live set (deleted, forgotten, or a create that failed cleanly).
    pub deleted_at: Option<String>,
    pub updated_at: String,
}

impl NodeRecord {
    /// A record that knows only its status: every text empty, no prices, no times. The base for
    /// records built from part of a row (`..NodeRecord::blank(status)`).
    pub fn blank(status: NodeStatus) -> NodeRecord {
        NodeRecord {
            deploy_id: String::new(),
            group_id: String::new(),
            name: String::new(),
            provider: String::new(),
            account: String::new(),
            provider_id: None,
            template: String::new(),
            plan: String::new(),
            region: String::new(),
            api_variant: String::new(),
            status,
            raw_status: String::new(),
            ipv4: None,
            price_hourly: 0.0,
            price_monthly: 0.0,
            currency: String::new(),
            prices_as_of: String::new(),
            recorded_at: String::new(),
            created_at: None,
            started_at: None,
            stopped_at: None,
            deleted_at: None,
            updated_at: String::new(),
        }
    }

    /// Not deleted: it may cost money and its name is taken.
    pub fn is_live(&self) -> bool {
        self.deleted_at.is_none()
    }

    /// `PROVIDER:ID` when the provider id is known.
    pub fn provider_ref(&self) -> Option<String> {
        self.provider_id
            .as_ref()
            .map(|id| format!("{}:{}", self.provider, id))
    }

    /// A status timeline rebuilt from the record's timestamps, for nodes that arrive without one
    /// (imports, stores migrated from v1).
    ///
    /// A node the provider never created (no provider id and no creation time) gets no billable
    /// span. Otherwise it is pending from its creation, running from `started_at`, stopped from
    /// `stopped_at` and deleted from `deleted_at`, in time order; if that does not end in the
    /// recorded status, the recorded status follows from `updated_at`.
    pub fn synthesized_timeline(&self) -> Vec<Transition> {
        let mut points: Vec<(String, NodeStatus)> = Vec::new();
        let created = self.provider_id.is_some() || self.created_at.is_some();
        if !created || self.status == NodeStatus::Creating {
            points.push((self.recorded_at.clone(), NodeStatus::Creating));
        } else {
            points.push((
                self.created_at
                    .clone()
                    .unwrap_or_else(|| self.recorded_at.clone()),
                NodeStatus::Pending,
            ));
            if let Some(t) = &self.started_at {
                points.push((t.clone(), NodeStatus::Running));
            }
            if let Some(t) = &self.stopped_at {
                points.push((t.clone(), NodeStatus::Stopped));
            }
            if let Some(t) = &self.deleted_at {
                let end = if self.status == NodeStatus::Error {
                    NodeStatus::Error
                } else {
                    NodeStatus::Deleted
                };
                points.push((t.clone(), end));
            }
            // Fixed-width UTC timestamps sort as text; the sort is stable for equal times.
            points.sort_by(|a, b| a.0.cmp(&b.0));
        }
        let last_time = points
            .iter()
            .map(|p| p.0.as_str())
            .max()
            .unwrap_or("")
            .to_string();
        if points.last().map(|p| p.1) != Some(self.status) {
            points.push((last_time.max(self.updated_at.clone()), self.status));
        }
        let mut out: Vec<Transition> = Vec::with_capacity(points.len());
        for (since, state) in points {
            match out.last_mut() {
                // Two statuses at one instant: only the later one lasted.
                Some(last) if last.since == since => last.state = state,
                Some(last) if last.state == state => {}
                _ => out.push(Transition { state, since }),
            }
        }
        out.dedup_by(|b, a| a.state == b.state);
        out
    }
}

/// What `record_intent` needs: everything known before the provider is called.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNode {
    pub deploy_id: String,
    /// The fleet's id (`deploy --resume`); pass the deploy id for a single node.
    pub group_id: String,
    pub name: String,
    pub provider: String,
    /// The credentials account (`DEFAULT_ACCOUNT` unless the user named one).
    pub account: String,
    pub template: String,
    pub plan: String,
    pub region: String,
    pub api_variant: String,
    pub price_hourly: f64,
    pub price_monthly: f64,
    pub currency: String,
    pub prices_as_of: String,
}

#[cfg(test)]
impl NewNode {
    /// The intent of an `acme-small` deploy (its own group) named `name`: a test fixture.
    pub(crate) fn sample(deploy_id: &str, name: &str) -> NewNode {
        NewNode {
            deploy_id: deploy_id.into(),
            group_id: deploy_id.into(),
            name: name.into(),
            provider: "acme".into(),
            account: crate::state::DEFAULT_ACCOUNT.into(),
            template: "acme-small".into(),
            plan: "s-1".into(),
            region: "r1".into(),
            api_variant: String::new(),
            price_hourly: 0.01,
            price_monthly: 5.0,
            currency: "USD".into(),
            prices_as_of: String::new(),
        }
    }
}

/// What the provider answered to a create call (or what `sync --adopt` found).
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub provider_id: String,
    pub status: NodeStatus,
    pub raw_status: String,
    pub ipv4: Option<String>,
    /// The provider's creation time (RFC 3339, any offset); `None` = now.
    pub created_at: Option<String>,
}

/// How a create call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The provider answered with a definite refusal (4xx, validation): nothing exists there.
    /// The node leaves the live set (status `error`, `deleted_at` set) so its name is free.
    Rejected,
    /// The provider may have acted (timeout, 5xx, connection reset after sending, an answer
    /// without an id, a failed step after the create): the node stays live in `in_doubt`, name
    /// kept, so that `sync` or `deploy --resume` find it by its deploy tag and settle it.
    InDoubt,
}

/// A fresh look at a node: from `status`, `list` or `sync`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observation {
    /// `None`: the provider's answer had no usable status (`unknown`); keep the recorded one.
    pub status: Option<NodeStatus>,
    pub raw_status: Option<String>,
    /// `Some(None)` clears the address; `None` leaves it as recorded.
    pub ipv4: Option<Option<String>>,
    pub provider_id: Option<String>,
    pub plan: Option<String>,
}

/// The result of recording an observation.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub node: NodeRecord,
    /// The status before, when it changed.
    pub previous: Option<NodeStatus>,
    /// Names of the fields that changed (`status`, `ipv4`, `plan`, `provider_id`, `raw_status`).
    pub changed: Vec<&'static str>,
}

/// What a history event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Deploy,
    Start,
    Stop,
    Reboot,
    Delete,
    Status,
    Sync,
    Import,
    Adopt,
    Forget,
    /// An xNode's install and readiness: the installer it got, each readiness stage reached.
    Xnode,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::Deploy,
        Action::Start,
        Action::Stop,
        Action::Reboot,
        Action::Delete,
        Action::Status,
        Action::Sync,
        Action::Import,
        Action::Adopt,
        Action::Forget,
        Action::Xnode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deploy => "deploy",
            Action::Start => "start",
            Action::Stop => "stop",
            Action::Reboot => "reboot",
            Action::Delete => "delete",
            Action::Status => "status",
            Action::Sync => "sync",
            Action::Import => "import",
            Action::Adopt => "adopt",
            Action::Forget => "forget",
            Action::Xnode => "xnode",
        }
    }

    pub fn parse(text: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an action went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Written before the provider call (the intent).
    Started,
    Ok,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Started => "started",
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        [Outcome::Started, Outcome::Ok, Outcome::Failed]
            .into_iter()
            .find(|o| o.as_str() == text)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One history entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: i64,
    pub time: String,
    /// The node's deploy id; `None` for events about no single node (an import, a sync run).
    pub deploy_id: Option<String>,
    /// The node's name, when the node is recorded.
    pub node: Option<String>,
    pub provider: Option<String>,
    pub action: Action,
    pub outcome: Outcome,
    /// The node's status after the event, when it is known.
    pub state: Option<NodeStatus>,
    pub message: String,
    /// The machine that caused it (`CAPSULE_MACHINE`, else its hostname); `None` when unknown
    /// (events recorded before capsule kept it).
    pub machine: Option<String>,
    /// The user that caused it (`$USER`); `None` when unknown.
    pub user: Option<String>,
}

/// One status transition: the node was in `state` from `since` until the next transition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    pub state: NodeStatus,
    pub since: String,
}

/// What cost reports read of a node: the few columns [`super::cost`] and [`super::daily`] use,
/// so their read of every node and its timeline stays narrow.
#[derive(Debug, Clone, PartialEq)]
pub struct CostNode {
    pub deploy_id: String,
    pub name: String,
    pub provider: String,
    pub region: String,
    pub template: String,
    pub price_hourly: f64,
    pub price_monthly: f64,
    pub currency: String,
    /// Not deleted (see [`NodeRecord::is_live`]).
    pub live: bool,
}

/// Which nodes a listing wants. Empty lists mean "any".
#[derive(Debug, Clone, Default)]
pub struct NodeFilter {
    pub providers: Vec<String>,
    /// Credentials accounts.
    pub accounts: Vec<String>,
    pub regions: Vec<String>,
    pub statuses: Vec<NodeStatus>,
    /// Include nodes that left the live set.
    pub include_deleted: bool,
    /// Only names matching this glob.
    pub name_glob: Option<globset::GlobMatcher>,
}

impl NodeFilter {
    /// Whether a node passes the parts of the filter a backend may not evaluate itself (the
    /// name glob); backends apply the rest in their query.
    pub fn matches_name(&self, name: &str) -> bool {
        self.name_glob.as_ref().is_none_or(|g| g.is_match(name))
    }
}

/// Which events `history` wants.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub deploy_id: Option<String>,
    /// RFC 3339 UTC; events at or after it.
    pub since: Option<String>,
    /// The newest `limit` events (0 = all), returned oldest first.
    pub limit: usize,
    /// Only events of this action.
    pub action: Option<Action>,
}

/// What `clean_events` removed (or would remove).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct CleanReport {
    pub removed: u64,
    /// Old events kept because their node is live.
    pub kept_live: u64,
}

/// What an import did (or would do).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ImportReport {
    pub rows: usize,
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Rows the store refused (nothing was written): `(row index, column, message)`.
    #[serde(skip)]
    pub conflicts: Vec<(usize, &'static str, String)>,
}

/// Work recorded to run once a node is gone (`cleanups`): what the driver needs, as opaque JSON
/// the store does not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCleanup {
    pub provider: String,
    /// The credentials account the work runs with (the node's).
    pub account: String,
    /// `PROVIDER:ID` of the node, for messages.
    pub node_ref: String,
    pub deploy_id: Option<String>,
    /// One line for people (`delete_volume 7017…`).
    pub what: String,
    pub work: String,
}

/// A recorded cleanup that has not run yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingCleanup {
    pub id: i64,
    pub provider: String,
    pub account: String,
    pub node_ref: String,
    pub deploy_id: Option<String>,
    pub what: String,
    #[serde(skip)]
    pub work: String,
    pub recorded_at: String,
    pub attempts: i64,
    pub last_error: String,
}
