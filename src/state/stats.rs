//! `inventory stats`: node counts by provider, region, status and template, the USD run rate of
//! what is billable now, and the oldest and newest node of each group. One streaming pass.

use super::cost::Billing;
use super::model::{NodeFilter, NodeRecord, NodeStatus};
use super::Store;
use serde::Serialize;
use std::collections::BTreeMap;

/// One group's figures (`by = "all"` is the whole inventory).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsRow {
    /// `all`, `provider`, `region`, `status` or `template`.
    pub by: &'static str,
    pub value: String,
    pub nodes: u64,
    pub running: u64,
    pub stopped: u64,
    /// Live nodes billable now.
    pub billable: u64,
    /// USD per hour of the billable nodes.
    pub hourly_usd: f64,
    /// USD per month of the billable nodes (each at its capped monthly price).
    pub monthly_usd: f64,
    pub oldest: Option<String>,
    pub oldest_at: Option<String>,
    pub newest: Option<String>,
    pub newest_at: Option<String>,
}

impl StatsRow {
    fn new(by: &'static str, value: &str) -> StatsRow {
        StatsRow {
            by,
            value: value.to_string(),
            nodes: 0,
            running: 0,
            stopped: 0,
            billable: 0,
            hourly_usd: 0.0,
            monthly_usd: 0.0,
            oldest: None,
            oldest_at: None,
            newest: None,
            newest_at: None,
        }
    }

    fn add(&mut self, node: &NodeRecord, born: &str, rate: Option<(f64, f64)>, billable: bool) {
        self.nodes += 1;
        match node.status {
            NodeStatus::Running => self.running += 1,
            NodeStatus::Stopped => self.stopped += 1,
            _ => {}
        }
        if billable {
            self.billable += 1;
            if let Some((h, m)) = rate {
                self.hourly_usd += h;
                self.monthly_usd += m;
            }
        }
        if self.oldest_at.as_deref().is_none_or(|o| born < o) {
            self.oldest = Some(node.name.clone());
            self.oldest_at = Some(born.to_string());
        }
        if self.newest_at.as_deref().is_none_or(|n| born >= n) {
            self.newest = Some(node.name.clone());
            self.newest_at = Some(born.to_string());
        }
    }
}

/// The statistics of the nodes `filter` selects: the `all` row first, then each dimension's
/// groups sorted by value. Also returns the currencies without a USD rate (left out of the run
/// rate).
pub fn compute(
    store: &dyn Store,
    billing: &Billing,
    filter: &NodeFilter,
) -> anyhow::Result<(Vec<StatsRow>, Vec<String>)> {
    let mut all = StatsRow::new("all", "all");
    let mut dims: [(&'static str, BTreeMap<String, StatsRow>); 4] = [
        ("provider", BTreeMap::new()),
        ("region", BTreeMap::new()),
        ("status", BTreeMap::new()),
        ("template", BTreeMap::new()),
    ];
    let mut missing: Vec<String> = Vec::new();
    store.for_each_node(filter, &mut |node| {
        let born = node
            .created_at
            .as_deref()
            .unwrap_or(&node.recorded_at)
            .to_string();
        let billable = node.is_live()
            && node
                .status
                .is_billable(billing.rule(&node.provider).billed_when_stopped);
        let rate = billing.run_rate_usd(&node);
        if billable && rate.is_none() && !missing.contains(&node.currency) {
            missing.push(node.currency.clone());
        }
        all.add(&node, &born, rate, billable);
        let keys = [
            node.provider.as_str(),
            node.region.as_str(),
            node.status.as_str(),
            node.template.as_str(),
        ];
        for ((by, map), key) in dims.iter_mut().zip(keys) {
            if let Some(row) = map.get_mut(key) {
                row.add(&node, &born, rate, billable);
            } else {
                let mut row = StatsRow::new(by, key);
                row.add(&node, &born, rate, billable);
                map.insert(key.to_string(), row);
            }
        }
        Ok(())
    })?;
    let mut rows = vec![all];
    for (_, map) in dims {
        rows.extend(map.into_values());
    }
    for r in &mut rows {
        r.hourly_usd = (r.hourly_usd * 1e6).round() / 1e6;
        r.monthly_usd = (r.monthly_usd * 1e4).round() / 1e4;
    }
    Ok((rows, missing))
}
