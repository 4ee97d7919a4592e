//! Cost: the price paid at deploy time × the hours a node spent in a billable status, with the
//! provider's monthly cap applied per node and calendar month (UTC).
//!
//! The arithmetic is pure ([`node_cost`], [`month_cap`]); [`report`] streams the store's
//! timelines through it and sums by provider, region, template or node, in the native currency
//! and in USD.
//!
//! # The rules
//! - Billable: pending, running and deleting; stopped too when the provider bills stopped
//!   machines (`billed_when_stopped`). `creating` (the provider has not answered), `error` and
//!   `deleted` are free. Time is counted to the second, not rounded up to hours.
//! - Monthly cap, per node and calendar month: the month's charge is
//!   `min(hours × hourly, cap)` with `cap = min(hourly × monthly_cap_hours, price_monthly)`
//!   when the provider (or the node's template) declares `monthly_cap_hours`, else
//!   `cap = price_monthly`; a declared `"none"` (infinite hours) bills every hour uncapped (no cap when
//!   neither is known).
//! - A window `[since, until)` that cuts a month gets the part of the month's capped charge that
//!   accrued inside it: `charge(hours up to until) − charge(hours up to since)`. Windows that
//!   tile a month therefore add up to exactly the month's bill.
//! - Projection: for the current month, what a node will have cost by the month's end if it stays
//!   as it is now (month-to-date for nodes that are not billable now).

use super::model::{CostNode, NodeFilter, NodeRecord, NodeStatus};
use super::time;
use super::Store;
use serde::Serialize;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};

/// How a provider bills, from its catalog entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BillingRule {
    pub billed_when_stopped: bool,
    /// Hours after which a month is billed at the monthly price; 0 = not declared;
    /// `f64::INFINITY` = no cap at all (every hour is billed, the monthly price is ignored).
    pub monthly_cap_hours: f64,
}

impl Default for BillingRule {
    fn default() -> Self {
        BillingRule {
            billed_when_stopped: true,
            monthly_cap_hours: 0.0,
        }
    }
}

/// Billing rules by provider and USD rates by currency: what cost and run-rate figures need
/// besides the store. Built by the commands from the catalog.
#[derive(Debug, Clone, Default)]
pub struct Billing {
    rules: HashMap<String, BillingRule>,
    /// provider → template → a template's own `monthly_cap_hours`.
    template_caps: HashMap<String, HashMap<String, f64>>,
    usd: HashMap<String, f64>,
}

impl Billing {
    pub fn new() -> Billing {
        Billing::default()
    }

    pub fn set_rule(&mut self, provider: &str, rule: BillingRule) {
        self.rules.insert(provider.to_string(), rule);
    }

    /// USD per unit of `currency`.
    pub fn set_rate(&mut self, currency: &str, usd: f64) {
        self.usd.insert(currency.to_ascii_uppercase(), usd);
    }

    /// A template billed by another cap than its provider's (`monthly_cap_hours` on the template).
    pub fn set_template_cap(&mut self, provider: &str, template: &str, cap_hours: f64) {
        self.template_caps
            .entry(provider.to_string())
            .or_default()
            .insert(template.to_string(), cap_hours);
    }

    /// The provider's rule; providers the catalog no longer knows bill as most do.
    pub fn rule(&self, provider: &str) -> BillingRule {
        self.rules.get(provider).copied().unwrap_or_default()
    }

    /// The rule for a node of `template` at `provider`: the provider's, with the template's own
    /// cap where it has one.
    pub fn rule_for(&self, provider: &str, template: &str) -> BillingRule {
        let mut rule = self.rule(provider);
        if let Some(cap) = self
            .template_caps
            .get(provider)
            .and_then(|caps| caps.get(template))
        {
            rule.monthly_cap_hours = *cap;
        }
        rule
    }

    /// USD per unit of `currency`; `None` when no rate is known.
    pub fn usd_rate(&self, currency: &str) -> Option<f64> {
        if currency.eq_ignore_ascii_case("USD") {
            return Some(1.0);
        }
        // Rates are kept by upper-case code; a code written so is looked up without a copy.
        if !currency.bytes().any(|b| b.is_ascii_lowercase()) {
            return self.usd.get(currency).copied();
        }
        self.usd.get(&currency.to_ascii_uppercase()).copied()
    }

    /// A node's hourly and monthly run rate in USD (monthly = its capped month).
    pub fn run_rate_usd(&self, node: &NodeRecord) -> Option<(f64, f64)> {
        let rate = self.usd_rate(&node.currency)?;
        let cap = month_cap(
            node.price_hourly,
            node.price_monthly,
            self.rule_for(&node.provider, &node.template)
                .monthly_cap_hours,
        );
        let monthly = if cap.is_finite() {
            cap
        } else {
            node.price_hourly * 730.0
        };
        Some((node.price_hourly * rate, monthly * rate))
    }
}

/// The most a node is charged for one calendar month: see the module docs. `f64::INFINITY`
/// when there is no cap.
pub fn month_cap(hourly: f64, monthly: f64, cap_hours: f64) -> f64 {
    if cap_hours == f64::INFINITY {
        return f64::INFINITY;
    }
    let by_hours = if cap_hours > 0.0 {
        hourly * cap_hours
    } else {
        f64::INFINITY
    };
    let by_price = if monthly > 0.0 {
        monthly
    } else {
        f64::INFINITY
    };
    by_hours.min(by_price)
}

/// What one node cost.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct NodeCost {
    /// Billable hours inside the window.
    pub hours: f64,
    /// Charge inside the window, native currency.
    pub cost: f64,
    /// Charge of the current calendar month so far.
    pub month_to_date: f64,
    /// The current month's charge by its end if the node stays as it is.
    pub projected_month: f64,
    /// Billable right now.
    pub billable_now: bool,
}

/// The cost of one node. `timeline` is `(status, since)` in Unix seconds, oldest first; each
/// status lasts until the next one, the last until `now`. `window` is `[since, until)`.
pub fn node_cost(
    timeline: &[(NodeStatus, i64)],
    hourly: f64,
    monthly: f64,
    rule: BillingRule,
    window: (i64, i64),
    now: i64,
) -> NodeCost {
    let cap = month_cap(hourly, monthly, rule.monthly_cap_hours);
    let charge = |hours: f64| (hours * hourly).min(cap);
    let (ws, we) = (window.0, window.1.min(now));
    // Per month start: (hours before the window, hours inside it, hours in all). A timeline
    // visits few months, mostly in order: a short list sorted at the end, not a tree.
    let mut months: Vec<(i64, (f64, f64, f64))> = Vec::new();
    for (i, &(state, from)) in timeline.iter().enumerate() {
        if !state.is_billable(rule.billed_when_stopped) {
            continue;
        }
        let to = timeline.get(i + 1).map_or(now, |next| next.1).min(now);
        let mut cursor = from;
        while cursor < to {
            let (ms, me) = time::month_bounds(cursor);
            let end = to.min(me);
            let at = match months.iter().rposition(|m| m.0 == ms) {
                Some(at) => at,
                None => {
                    months.push((ms, (0.0, 0.0, 0.0)));
                    months.len() - 1
                }
            };
            let m = &mut months[at].1;
            m.0 += overlap(cursor, end, i64::MIN, ws);
            m.1 += overlap(cursor, end, ws, we);
            m.2 += (end - cursor) as f64 / 3600.0;
            cursor = end;
        }
    }
    months.sort_unstable_by_key(|m| m.0);
    let mut out = NodeCost::default();
    for (_, (before, inside, _)) in &months {
        out.hours += inside;
        out.cost += charge(before + inside) - charge(*before);
    }
    let billable_now = timeline
        .last()
        .is_some_and(|&(s, t)| t <= now && s.is_billable(rule.billed_when_stopped));
    let (ms, me) = time::month_bounds(now);
    let so_far = months.iter().find(|m| m.0 == ms).map_or(0.0, |m| m.1 .2);
    out.month_to_date = charge(so_far);
    out.projected_month = if billable_now {
        charge(so_far + (me - now) as f64 / 3600.0)
    } else {
        out.month_to_date
    };
    out.billable_now = billable_now;
    out
}

/// Hours of `[a, b)` inside `[lo, hi)`.
fn overlap(a: i64, b: i64, lo: i64, hi: i64) -> f64 {
    let (s, e) = (a.max(lo), b.min(hi));
    if e > s {
        (e - s) as f64 / 3600.0
    } else {
        0.0
    }
}

/// What a cost report sums by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Provider,
    Region,
    Template,
    Node,
}

impl GroupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Provider => "provider",
            GroupBy::Region => "region",
            GroupBy::Template => "template",
            GroupBy::Node => "node",
        }
    }
}

/// One line of a cost report: a group in one native currency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostRow {
    /// The provider, region, template or node name.
    pub group: String,
    /// `--by node` only: the node's deploy id (names repeat once nodes are deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deploy_id: Option<String>,
    /// `--by node`, `--by region`: the provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub currency: String,
    /// Nodes with billable time in the window.
    pub nodes: u64,
    /// Nodes billable now.
    pub running_now: u64,
    pub hours: f64,
    /// In `currency`.
    pub cost: f64,
    /// `None` when no exchange rate is known for `currency`.
    pub cost_usd: Option<f64>,
    pub month_to_date_usd: Option<f64>,
    pub projected_month_usd: Option<f64>,
}

/// A cost report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostReport {
    pub by: &'static str,
    pub since: String,
    pub until: String,
    /// The month the projection is for (`2024-05`).
    pub month: String,
    pub rows: Vec<CostRow>,
    pub total_usd: f64,
    pub month_to_date_usd: f64,
    pub projected_month_usd: f64,
    /// Currencies without a USD rate (their rows have no USD figures and are left out of totals).
    pub missing_rates: Vec<String>,
}

fn round(v: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (v * f).round() / f
}

/// The time a cost figure covers, in Unix seconds: `[since, until)`, with nothing billed after
/// `now` (a window that reaches past `now` is billed up to `now`; the month's projection goes
/// on from there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: i64,
    pub until: i64,
    pub now: i64,
}

/// Cost by `by` over the window, with the current month's projection.
pub fn report(
    store: &dyn Store,
    billing: &Billing,
    filter: &NodeFilter,
    by: GroupBy,
    window: Window,
) -> anyhow::Result<CostReport> {
    let Window { since, until, now } = window;
    let mut groups: BTreeMap<(String, String, String), CostRow> = BTreeMap::new();
    let mut filter = filter.clone();
    filter.include_deleted = true;
    store.for_each_cost_timeline(&filter, &mut |node, points| {
        if points.is_empty() {
            return Ok(());
        }
        let rule = billing.rule_for(&node.provider, &node.template);
        let c = node_cost(
            points,
            node.price_hourly,
            node.price_monthly,
            rule,
            (since, until),
            now,
        );
        if c.hours <= 0.0 && c.projected_month <= 0.0 {
            return Ok(());
        }
        let running = c.billable_now && node.live;
        // The group's key takes the node's own strings; a new group's row copies them.
        let (group, deploy_id, provider) = match by {
            GroupBy::Provider => (node.provider, None, None),
            GroupBy::Region => (node.region, None, Some(node.provider)),
            GroupBy::Template => (node.template, None, Some(node.provider)),
            GroupBy::Node => (node.name, Some(node.deploy_id), Some(node.provider)),
        };
        let second = deploy_id.as_ref().or(provider.as_ref()).cloned();
        let key = (group, second.unwrap_or_default(), node.currency);
        let row = match groups.entry(key) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let (group, _, currency) = e.key().clone();
                e.insert(CostRow {
                    group,
                    deploy_id,
                    provider,
                    currency,
                    nodes: 0,
                    running_now: 0,
                    hours: 0.0,
                    cost: 0.0,
                    cost_usd: None,
                    month_to_date_usd: None,
                    projected_month_usd: None,
                })
            }
        };
        if c.hours > 0.0 {
            row.nodes += 1;
        }
        if running {
            row.running_now += 1;
        }
        row.hours += c.hours;
        row.cost += c.cost;
        if let Some(r) = billing.usd_rate(&row.currency) {
            for (slot, v) in [
                (&mut row.cost_usd, c.cost),
                (&mut row.month_to_date_usd, c.month_to_date),
                (&mut row.projected_month_usd, c.projected_month),
            ] {
                *slot = Some(slot.unwrap_or(0.0) + v * r);
            }
        }
        Ok(())
    })?;
    let mut missing: Vec<String> = Vec::new();
    let mut rows: Vec<CostRow> = groups.into_values().collect();
    let (mut total, mut mtd, mut proj) = (0.0, 0.0, 0.0);
    for r in &mut rows {
        if billing.usd_rate(&r.currency).is_none() && !missing.contains(&r.currency) {
            missing.push(r.currency.clone());
        }
        total += r.cost_usd.unwrap_or(0.0);
        mtd += r.month_to_date_usd.unwrap_or(0.0);
        proj += r.projected_month_usd.unwrap_or(0.0);
        r.hours = round(r.hours, 4);
        r.cost = round(r.cost, 6);
        r.cost_usd = r.cost_usd.map(|v| round(v, 6));
        r.month_to_date_usd = r.month_to_date_usd.map(|v| round(v, 6));
        r.projected_month_usd = r.projected_month_usd.map(|v| round(v, 6));
    }
    let month = time::format(now)[..7].to_string();
    Ok(CostReport {
        by: by.as_str(),
        since: time::format(since),
        until: time::format(until.min(now)),
        month,
        rows,
        total_usd: round(total, 6),
        month_to_date_usd: round(mtd, 6),
        projected_month_usd: round(proj, 6),
        missing_rates: missing,
    })
}

/// Time buckets of a cost-over-time report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    /// Monday to Monday (ISO weeks), UTC.
    Week,
    Month,
}

impl Period {
    /// The bucket holding `unix`: `(start, end)`, end exclusive.
    pub fn bounds(self, unix: i64) -> (i64, i64) {
        let day = unix.div_euclid(86_400) * 86_400;
        match self {
            Period::Day => (day, day + 86_400),
            Period::Week => {
                // 1970-01-01 was a Thursday: days since the Monday before it.
                let weekday = (unix.div_euclid(86_400) + 3).rem_euclid(7);
                let start = day - weekday * 86_400;
                (start, start + 7 * 86_400)
            }
            Period::Month => time::month_bounds(unix),
        }
    }

    /// A bucket's label: `2024-05-31`, `2024-05-27` (the week's Monday), `2024-05`.
    pub fn label(self, start: i64) -> String {
        let text = time::format(start);
        match self {
            Period::Day | Period::Week => text[..10].to_string(),
            Period::Month => text[..7].to_string(),
        }
    }
}

/// One bucket of a cost-over-time report, in USD (buckets mix currencies).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketRow {
    pub period: String,
    pub start: String,
    pub end: String,
    /// Nodes with billable time in the bucket.
    pub nodes: u64,
    pub hours: f64,
    pub cost_usd: f64,
}

/// Most buckets one report holds (a day-by-day report of many years is a mistake).
pub const MAX_BUCKETS: usize = 5000;

/// Cost per day, week or month over the window, from the store's timelines: each
/// bucket is a window of [`node_cost`], so buckets that tile a month add up to its capped bill.
/// Buckets start at the first billable record when `since` is earlier. Currencies without a
/// USD rate are left out and named in the second value.
pub fn buckets(
    store: &dyn Store,
    billing: &Billing,
    filter: &NodeFilter,
    period: Period,
    window: Window,
) -> anyhow::Result<(Vec<BucketRow>, Vec<String>)> {
    let Window { since, until, now } = window;
    let mut nodes: Vec<(CostNode, Vec<(NodeStatus, i64)>)> = Vec::new();
    let mut filter = filter.clone();
    filter.include_deleted = true;
    store.for_each_cost_timeline(&filter, &mut |node, points| {
        if !points.is_empty() {
            nodes.push((node, points.to_vec()));
        }
        Ok(())
    })?;
    let end = until.min(now);
    let first = nodes.iter().map(|(_, p)| p[0].1).min();
    let Some(first) = first else {
        return Ok((Vec::new(), Vec::new()));
    };
    let mut cursor = period.bounds(since.max(first)).0;
    let mut rows = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    while cursor < end {
        let (bs, be) = period.bounds(cursor);
        if rows.len() >= MAX_BUCKETS {
            return Err(crate::error::bad_input(format!(
                "more than {MAX_BUCKETS} buckets — give a later --since or a longer period (--by week or --by month)"
            )));
        }
        let window = (bs.max(since), be.min(end));
        let mut row = BucketRow {
            period: period.label(bs),
            start: time::format(window.0),
            end: time::format(window.1),
            nodes: 0,
            hours: 0.0,
            cost_usd: 0.0,
        };
        for (node, points) in &nodes {
            let c = node_cost(
                points,
                node.price_hourly,
                node.price_monthly,
                billing.rule_for(&node.provider, &node.template),
                window,
                now,
            );
            if c.hours <= 0.0 {
                continue;
            }
            match billing.usd_rate(&node.currency) {
                Some(rate) => {
                    row.nodes += 1;
                    row.hours += c.hours;
                    row.cost_usd += c.cost * rate;
                }
                None if !missing.contains(&node.currency) => missing.push(node.currency.clone()),
                None => {}
            }
        }
        row.hours = round(row.hours, 4);
        row.cost_usd = round(row.cost_usd, 6);
        rows.push(row);
        cursor = be;
    }
    Ok((rows, missing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use NodeStatus::*;

    #[test]
    fn periods_cut_days_weeks_and_months() {
        // 2024-05-31T12:00:00Z, a Friday.
        let t = 1_717_156_800;
        assert_eq!(Period::Day.label(Period::Day.bounds(t).0), "2024-05-31");
        assert_eq!(Period::Week.label(Period::Week.bounds(t).0), "2024-05-27");
        assert_eq!(Period::Month.label(Period::Month.bounds(t).0), "2024-05");
        let (s, e) = Period::Day.bounds(t);
        assert_eq!(Period::Day.label(e), "2024-06-01");
        assert_eq!(e - s, 86_400);
    }

    fn t(s: &str) -> i64 {
        time::unix(s).unwrap()
    }

    const ALWAYS: (i64, i64) = (i64::MIN, i64::MAX);
    const RULE: BillingRule = BillingRule {
        billed_when_stopped: true,
        monthly_cap_hours: 0.0,
    };

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn hours_times_price_without_cap() {
        // 10 h running at 0.5/h = 5.00.
        let tl = [
            (Running, t("2024-05-01T00:00:00Z")),
            (Deleted, t("2024-05-01T10:00:00Z")),
        ];
        let c = node_cost(&tl, 0.5, 0.0, RULE, ALWAYS, t("2024-06-15T00:00:00Z"));
        close(c.hours, 10.0);
        close(c.cost, 5.0);
        assert!(!c.billable_now);
    }

    #[test]
    fn creating_and_error_are_free_pending_is_billed() {
        let tl = [
            (Creating, t("2024-05-01T00:00:00Z")),
            (Pending, t("2024-05-01T01:00:00Z")),
            (Running, t("2024-05-01T01:30:00Z")),
            (Error, t("2024-05-01T03:00:00Z")),
        ];
        let c = node_cost(&tl, 1.0, 0.0, RULE, ALWAYS, t("2024-05-02T00:00:00Z"));
        close(c.hours, 2.0);
        close(c.cost, 2.0);
    }

    #[test]
    fn stopped_is_billed_only_where_the_provider_bills_it() {
        let tl = [
            (Running, t("2024-05-01T00:00:00Z")),
            (Stopped, t("2024-05-01T04:00:00Z")),
            (Deleted, t("2024-05-01T10:00:00Z")),
        ];
        let now = t("2024-05-03T00:00:00Z");
        close(node_cost(&tl, 0.25, 0.0, RULE, ALWAYS, now).cost, 2.5);
        let free = BillingRule {
            billed_when_stopped: false,
            monthly_cap_hours: 0.0,
        };
        close(node_cost(&tl, 0.25, 0.0, free, ALWAYS, now).cost, 1.0);
    }

    #[test]
    fn no_cap_bills_every_hour_of_a_long_month() {
        // "none" (infinite cap hours): a 744-hour month at 1.50/h is 1116.00, above both the
        // monthly price (1095) and 730 × hourly.
        let tl = [
            (Running, t("2024-01-01T00:00:00Z")),
            (Deleted, t("2024-02-01T00:00:00Z")),
        ];
        let uncapped = BillingRule {
            billed_when_stopped: true,
            monthly_cap_hours: f64::INFINITY,
        };
        let now = t("2024-03-01T00:00:00Z");
        let c = node_cost(&tl, 1.5, 1095.0, uncapped, ALWAYS, now);
        close(c.hours, 744.0);
        close(c.cost, 1116.0);
        let capped = BillingRule {
            billed_when_stopped: true,
            monthly_cap_hours: 730.0,
        };
        close(
            node_cost(&tl, 1.5, 1095.0, capped, ALWAYS, now).cost,
            1095.0,
        );
        assert!(month_cap(1.5, 1095.0, f64::INFINITY).is_infinite());
    }

    #[test]
    fn monthly_price_caps_each_calendar_month() {
        // Running 2024-01-20 00:00 → 2024-03-05 00:00 at 0.01/h, 5.00/month:
        //   January:  12 d × 24 = 288 h → 2.88 (under the cap)
        //   February: 29 d × 24 = 696 h → 6.96, capped at 5.00
        //   March:     4 d × 24 =  96 h → 0.96
        //   total 8.84 over 1080 h.
        let tl = [
            (Running, t("2024-01-20T00:00:00Z")),
            (Deleted, t("2024-03-05T00:00:00Z")),
        ];
        let c = node_cost(&tl, 0.01, 5.0, RULE, ALWAYS, t("2024-04-01T00:00:00Z"));
        close(c.hours, 1080.0);
        close(c.cost, 8.84);
    }

    #[test]
    fn cap_hours_cap_below_the_monthly_price() {
        // 672-hour cap at 0.01/h: cap = min(6.72, 7.30) = 6.72. All of March 2024 = 744 h → 6.72.
        let rule = BillingRule {
            billed_when_stopped: true,
            monthly_cap_hours: 672.0,
        };
        let tl = [
            (Running, t("2024-03-01T00:00:00Z")),
            (Deleted, t("2024-04-01T00:00:00Z")),
        ];
        let c = node_cost(&tl, 0.01, 7.30, rule, ALWAYS, t("2024-05-01T00:00:00Z"));
        close(c.cost, 6.72);
        close(month_cap(0.01, 7.30, 672.0), 6.72);
        close(month_cap(0.01, 5.0, 672.0), 5.0);
        assert!(month_cap(0.01, 0.0, 0.0).is_infinite());
    }

    #[test]
    fn windows_across_a_month_boundary_split_the_capped_charge() {
        // Running all February 2024 (696 h) at 0.01/h with a 5.00 cap: the cap is reached after
        // 500 h, i.e. 2024-02-21T20:00Z. A window from 2024-02-15 gets what accrued after it:
        //   hours before 2024-02-15 = 336 → 3.36; by the end 5.00 → window charge 1.64.
        let tl = [
            (Running, t("2024-02-01T00:00:00Z")),
            (Deleted, t("2024-03-02T00:00:00Z")),
        ];
        let now = t("2024-04-01T00:00:00Z");
        let feb1 = t("2024-02-01T00:00:00Z");
        let feb15 = t("2024-02-15T00:00:00Z");
        let mar1 = t("2024-03-01T00:00:00Z");
        let c = node_cost(&tl, 0.01, 5.0, RULE, (feb15, mar1), now);
        close(c.hours, 15.0 * 24.0); // February 15 to 29
        close(c.cost, 1.64);
        // The two halves add up to the month's bill; March 1 is a new month (24 h → 0.24).
        let first = node_cost(&tl, 0.01, 5.0, RULE, (feb1, feb15), now);
        close(first.cost, 3.36);
        let march = node_cost(&tl, 0.01, 5.0, RULE, (mar1, now), now);
        close(march.cost, 0.24);
        close(node_cost(&tl, 0.01, 5.0, RULE, ALWAYS, now).cost, 5.24);
    }

    #[test]
    fn projection_runs_to_the_end_of_the_month() {
        // Running since 2024-04-01 (a 30-day month), now 2024-04-11T00:00Z: 240 h so far at 0.01
        // = 2.40; by month's end 720 h = 7.20, capped at 5.00.
        let tl = [(Running, t("2024-04-01T00:00:00Z"))];
        let now = t("2024-04-11T00:00:00Z");
        let c = node_cost(&tl, 0.01, 5.0, RULE, ALWAYS, now);
        assert!(c.billable_now);
        close(c.month_to_date, 2.40);
        close(c.projected_month, 5.0);
        // A stopped node where stopping is free: projection = month to date.
        let tl = [
            (Running, t("2024-04-01T00:00:00Z")),
            (Stopped, t("2024-04-02T00:00:00Z")),
        ];
        let free = BillingRule {
            billed_when_stopped: false,
            monthly_cap_hours: 0.0,
        };
        let c = node_cost(&tl, 0.01, 5.0, free, ALWAYS, now);
        close(c.month_to_date, 0.24);
        close(c.projected_month, 0.24);
    }
}
