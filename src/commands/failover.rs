//! Smart deploy's failover: when a provider refuses a create for a reason its catalog documents
//! (`[[api.errors.refusals]]`: no capacity, quota used up, plan not offered there), the node
//! moves to the next candidate — first another region of the same offer, then the next offer
//! within the user's constraints — and every attempt is kept for the explanation.
//!
//! Pure bookkeeping: no I/O, no store, no driver. `deploy` asks [`Failover::next_for`] where a
//! refused node goes, records the move, and creates it there. What the fleet learns is shared:
//! a region found full is not tried again for that offer by any node, and a provider whose quota
//! is used up is skipped in every region (a quota belongs to the account, not the region).
//! Only definite refusals reach this module; a create that may have been carried out is settled
//! by its tag first and never moved.

use crate::driver::Refusal;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Where a node can be created: one offer (a template) in one region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Candidate {
    pub provider: String,
    pub template: String,
    pub region: String,
}

impl Candidate {
    fn describe(&self) -> String {
        format!("{} ({}) in {}", self.template, self.provider, self.region)
    }
}

/// What came of one attempt to create a node that failed over at least once.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Attempt {
    pub name: String,
    pub provider: String,
    pub template: String,
    pub region: String,
    /// `refused`, `skipped` (the candidate could not be prepared), `created`, `failed` or
    /// `in_doubt`.
    pub outcome: &'static str,
    /// `capacity`, `quota` or `unavailable` for a refusal.
    pub reason: Option<Refusal>,
    pub error: Option<String>,
    /// Where the node went next (`TEMPLATE (PROVIDER) in REGION`), or why it stopped.
    pub next: Option<String>,
}

/// A refusal in words.
pub(crate) fn reason_text(r: Refusal) -> &'static str {
    match r {
        Refusal::Capacity => "no capacity",
        Refusal::Quota => "quota used up",
        Refusal::Unavailable => "plan not offered there",
    }
}

/// The candidates of a smart deploy and what the fleet learnt of them.
#[derive(Debug)]
pub(crate) struct Failover {
    /// `deploy --no-failover` stops at the first refusal.
    enabled: bool,
    /// Ranked, cheapest first (the smart plan's feasible offers).
    candidates: Vec<Candidate>,
    /// (template, region) pairs refused for capacity or availability.
    full: BTreeSet<(String, String)>,
    /// Providers whose quota is used up.
    no_quota: BTreeSet<String>,
    /// Per node name: the candidates it already tried.
    tried: BTreeMap<String, BTreeSet<Candidate>>,
    /// Node names that failed over at least once.
    moved: BTreeSet<String>,
    attempts: Vec<Attempt>,
}

impl Failover {
    pub fn new(candidates: Vec<Candidate>, enabled: bool) -> Failover {
        Failover {
            enabled,
            candidates,
            full: BTreeSet::new(),
            no_quota: BTreeSet::new(),
            tried: BTreeMap::new(),
            moved: BTreeSet::new(),
            attempts: Vec::new(),
        }
    }

    /// Learn from a refusal of `name` at `at`.
    pub fn refused(&mut self, name: &str, at: &Candidate, why: Refusal) {
        match why {
            Refusal::Capacity | Refusal::Unavailable => {
                self.full.insert((at.template.clone(), at.region.clone()));
            }
            Refusal::Quota => {
                self.no_quota.insert(at.provider.clone());
            }
        }
        self.tried_by(name, at);
    }

    /// A candidate `name` cannot use (it could not be prepared there).
    pub fn tried_by(&mut self, name: &str, c: &Candidate) {
        self.tried
            .entry(name.to_string())
            .or_default()
            .insert(c.clone());
    }

    /// Where `name`, refused at `at`, goes next: another region of the same offer, else the
    /// next offer; `None` when failover is off or nothing is left.
    pub fn next_for(&self, name: &str, at: &Candidate) -> Option<Candidate> {
        if !self.enabled {
            return None;
        }
        let tried = self.tried.get(name);
        let open = |c: &&Candidate| {
            !self.full.contains(&(c.template.clone(), c.region.clone()))
                && !self.no_quota.contains(&c.provider)
                && tried.is_none_or(|t| !t.contains(*c))
        };
        let mut open_ones = self.candidates.iter().filter(open);
        let same_offer = self
            .candidates
            .iter()
            .filter(open)
            .find(|c| c.template == at.template && c.provider == at.provider);
        same_offer.or_else(|| open_ones.next()).cloned()
    }

    /// Why a refused node stops here (for its attempt).
    pub fn stop_reason(&self) -> &'static str {
        if self.enabled {
            "no candidate left within the constraints"
        } else {
            "stopped: --no-failover"
        }
    }

    /// Record an attempt that moved on (or stopped).
    pub fn record(&mut self, attempt: Attempt) {
        self.moved.insert(attempt.name.clone());
        self.attempts.push(attempt);
    }

    /// Record how the last attempt of a node ended, if it had failed over.
    pub fn finish(
        &mut self,
        name: &str,
        at: &Candidate,
        outcome: &'static str,
        error: Option<String>,
    ) {
        if !self.moved.contains(name) {
            return;
        }
        self.attempts.push(Attempt {
            name: name.to_string(),
            provider: at.provider.clone(),
            template: at.template.clone(),
            region: at.region.clone(),
            outcome,
            reason: None,
            error,
            next: None,
        });
    }

    /// Every attempt, in order, for the JSON explanation.
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// The attempts as text lines for the explanation (empty without a failover).
    pub fn attempts_text(&self) -> String {
        if self.attempts.is_empty() {
            return String::new();
        }
        let mut s = String::from("Attempts:\n");
        for a in &self.attempts {
            s.push_str(&format!("  {}\n", line(a)));
        }
        s
    }

    /// The latest refusal as one line, for the progress output.
    pub fn last_refusal(&self) -> Option<String> {
        self.attempts
            .iter()
            .rev()
            .find(|a| a.outcome == "refused")
            .map(line)
    }
}

/// One attempt as text: `NAME: TEMPLATE (PROVIDER) in REGION: what came of it; next`.
fn line(a: &Attempt) -> String {
    let at = format!("{} ({}) in {}", a.template, a.provider, a.region);
    let what = match (a.reason, &a.error) {
        (Some(r), Some(e)) => format!("refused, {} — {e}", reason_text(r)),
        (_, Some(e)) => format!("{} — {e}", a.outcome.replace('_', " ")),
        (_, None) => a.outcome.replace('_', " "),
    };
    match &a.next {
        Some(n) => format!("{}: {at}: {what}; {n}", a.name),
        None => format!("{}: {at}: {what}", a.name),
    }
}

/// "moved to X" for an attempt's `next`.
pub(crate) fn moved_to(c: &Candidate) -> String {
    format!("moved to {}", c.describe())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(provider: &str, template: &str, region: &str) -> Candidate {
        Candidate {
            provider: provider.into(),
            template: template.into(),
            region: region.into(),
        }
    }

    fn ranked() -> Vec<Candidate> {
        vec![
            c("acme", "a-small", "r1"),
            c("other", "o-small", "x1"),
            c("acme", "a-small", "r2"),
            c("acme", "a-big", "r1"),
            c("other", "o-small", "x2"),
        ]
    }

    #[test]
    fn capacity_moves_to_another_region_of_the_same_offer_first() {
        let mut f = Failover::new(ranked(), true);
        let at = c("acme", "a-small", "r1");
        f.refused("n1", &at, Refusal::Capacity);
        assert_eq!(f.next_for("n1", &at), Some(c("acme", "a-small", "r2")));
        // The fleet learnt that r1 is full: another node refused there goes to r2 as well.
        assert_eq!(f.next_for("n2", &at), Some(c("acme", "a-small", "r2")));
        // Once r2 is full too, the next offer by rank.
        let r2 = c("acme", "a-small", "r2");
        f.refused("n1", &r2, Refusal::Capacity);
        assert_eq!(f.next_for("n1", &r2), Some(c("other", "o-small", "x1")));
    }

    #[test]
    fn a_quota_skips_every_region_of_the_provider() {
        let mut f = Failover::new(ranked(), true);
        let at = c("acme", "a-small", "r1");
        f.refused("n1", &at, Refusal::Quota);
        assert_eq!(f.next_for("n1", &at), Some(c("other", "o-small", "x1")));
        let x1 = c("other", "o-small", "x1");
        f.refused("n1", &x1, Refusal::Capacity);
        assert_eq!(f.next_for("n1", &x1), Some(c("other", "o-small", "x2")));
        f.refused("n1", &c("other", "o-small", "x2"), Refusal::Quota);
        assert_eq!(f.next_for("n1", &x1), None);
    }

    #[test]
    fn no_failover_stops_at_the_first_refusal() {
        let mut f = Failover::new(ranked(), false);
        let at = c("acme", "a-small", "r1");
        f.refused("n1", &at, Refusal::Capacity);
        assert_eq!(f.next_for("n1", &at), None);
        assert_eq!(f.stop_reason(), "stopped: --no-failover");
    }

    #[test]
    fn a_candidate_a_node_could_not_use_is_not_offered_to_it_again() {
        let mut f = Failover::new(ranked(), true);
        let at = c("acme", "a-small", "r1");
        f.refused("n1", &at, Refusal::Capacity);
        f.tried_by("n1", &c("acme", "a-small", "r2"));
        assert_eq!(f.next_for("n1", &at), Some(c("other", "o-small", "x1")));
        assert_eq!(f.next_for("n2", &at), Some(c("acme", "a-small", "r2")));
    }

    #[test]
    fn attempts_read_as_one_line_each() {
        let mut f = Failover::new(ranked(), true);
        let at = c("acme", "a-small", "r1");
        f.finish("n1", &at, "created", None);
        assert!(f.attempts_text().is_empty(), "no failover, no attempts");
        f.record(Attempt {
            name: "n1".into(),
            provider: "acme".into(),
            template: "a-small".into(),
            region: "r1".into(),
            outcome: "refused",
            reason: Some(Refusal::Capacity),
            error: Some("acme: sold out (HTTP 503)".into()),
            next: Some(moved_to(&c("acme", "a-small", "r2"))),
        });
        f.finish("n1", &c("acme", "a-small", "r2"), "created", None);
        assert_eq!(
            f.attempts_text(),
            "Attempts:\n  n1: a-small (acme) in r1: refused, no capacity — acme: sold out (HTTP 503); moved to a-small (acme) in r2\n  n1: a-small (acme) in r2: created\n"
        );
        assert_eq!(f.attempts().len(), 2);
        assert!(f
            .last_refusal()
            .is_some_and(|l| l.starts_with("n1: a-small (acme) in r1: refused")));
    }
}
