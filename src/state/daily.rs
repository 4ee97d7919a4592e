//! Daily spend: what the recorded nodes cost on each UTC day of a window, by provider, in USD.
//!
//! The arithmetic is [`super::cost::node_cost`] over one window per day, so the rules (billable
//! statuses, the monthly cap, the price paid) are exactly `cost`'s, and the days of a window add
//! up to what `cost --since … --until …` reports for the whole window: day windows tile it, and
//! `node_cost` charges a cut month by the part that accrued inside each cut.

use super::cost::{node_cost, Billing, Window};
use super::model::{NodeFilter, NodeStatus};
use super::time;
use super::Store;
use serde::Serialize;
use std::collections::BTreeMap;

const DAY: i64 = 86_400;

/// Spend per day and provider, in USD.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DailySpend {
    /// `YYYY-MM-DD`, oldest first, one per UTC day that the window touches.
    pub days: Vec<String>,
    /// Providers with any spend in the window, sorted by id.
    pub providers: Vec<String>,
    /// `usd[p][d]`: provider `providers[p]` on day `days[d]`, rounded to 6 decimals.
    pub usd: Vec<Vec<f64>>,
    /// Each provider's whole window, summed before rounding (as `cost` sums it).
    pub provider_totals: Vec<f64>,
    /// The whole window, all providers, summed before rounding: `cost`'s `total_usd`.
    pub total_usd: f64,
    /// Each day, all providers, summed before rounding: `cost --by day`'s `cost_usd`.
    pub day_totals: Vec<f64>,
    /// Currencies without a USD rate (their nodes are left out).
    pub missing_rates: Vec<String>,
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// Midnight UTC of the day holding `unix`.
pub fn day_start(unix: i64) -> i64 {
    unix.div_euclid(DAY) * DAY
}

/// Spend per UTC day over the window (time after `now` costs nothing). The first and last days
/// are cut at `since` and `until`.
pub fn daily(
    store: &dyn Store,
    billing: &Billing,
    filter: &NodeFilter,
    window: Window,
) -> anyhow::Result<DailySpend> {
    let Window { since, until, now } = window;
    let end = until.min(now);
    let first = day_start(since);
    let n_days = if end > since {
        ((end - 1 - first).div_euclid(DAY) + 1) as usize
    } else {
        0
    };
    let days: Vec<String> = (0..n_days)
        .map(|d| time::format(first + d as i64 * DAY)[..10].to_string())
        .collect();
    let mut by_provider: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut missing: Vec<String> = Vec::new();
    let mut filter = filter.clone();
    filter.include_deleted = true;
    store.for_each_cost_timeline(&filter, &mut |node, points| {
        let (Some(&(_, born)), false) = (points.first(), n_days == 0) else {
            return Ok(());
        };
        let Some(rate) = billing.usd_rate(&node.currency) else {
            if !missing.contains(&node.currency) {
                missing.push(node.currency);
            }
            return Ok(());
        };
        // A node costs nothing before its first transition, nor after it was deleted.
        let gone = match points.last() {
            Some(&(NodeStatus::Deleted, at)) => at,
            _ => i64::MAX,
        };
        let rule = billing.rule_for(&node.provider, &node.template);
        let mut spent: Vec<(usize, f64)> = Vec::new();
        for d in 0..n_days {
            let ds = (first + d as i64 * DAY).max(since);
            let de = (first + (d as i64 + 1) * DAY).min(end);
            if de <= born || ds >= gone {
                continue;
            }
            let c = node_cost(
                points,
                node.price_hourly,
                node.price_monthly,
                rule,
                (ds, de),
                now,
            );
            if c.cost > 0.0 {
                spent.push((d, c.cost * rate));
            }
        }
        if !spent.is_empty() {
            let row = by_provider
                .entry(node.provider)
                .or_insert_with(|| vec![0.0; n_days]);
            for (d, usd) in spent {
                row[d] += usd;
            }
        }
        Ok(())
    })?;
    let providers: Vec<String> = by_provider.keys().cloned().collect();
    let exact: Vec<f64> = by_provider.values().map(|v| v.iter().sum()).collect();
    let day_totals = (0..n_days)
        .map(|d| round6(by_provider.values().map(|v| v[d]).sum()))
        .collect();
    let usd = by_provider
        .into_values()
        .map(|v| v.into_iter().map(round6).collect())
        .collect();
    Ok(DailySpend {
        days,
        providers,
        usd,
        provider_totals: exact.iter().copied().map(round6).collect(),
        total_usd: round6(exact.iter().sum()),
        day_totals,
        missing_rates: missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::model::NodeRecord;
    use crate::state::SqliteStore;

    fn t(s: &str) -> i64 {
        time::unix(s).unwrap()
    }

    #[test]
    fn day_start_is_midnight_utc() {
        assert_eq!(
            time::format(day_start(t("2024-05-01T13:14:15Z"))),
            "2024-05-01T00:00:00Z"
        );
        assert_eq!(
            day_start(t("2024-05-01T00:00:00Z")),
            t("2024-05-01T00:00:00Z")
        );
    }

    fn node(id: &str, provider: &str, hourly: f64, monthly: f64, currency: &str) -> NodeRecord {
        NodeRecord {
            deploy_id: id.into(),
            group_id: id.into(),
            name: id.into(),
            provider: provider.into(),
            account: crate::state::DEFAULT_ACCOUNT.into(),
            provider_id: Some(id.into()),
            template: "t".into(),
            plan: "p".into(),
            region: "r".into(),
            currency: currency.into(),
            price_hourly: hourly,
            price_monthly: monthly,
            raw_status: "gone".into(),
            prices_as_of: "2024-04-01".into(),
            recorded_at: "2024-05-01T00:00:00Z".into(),
            created_at: Some("2024-05-01T00:00:00Z".into()),
            updated_at: "2024-05-01T00:00:00Z".into(),
            ..NodeRecord::blank(NodeStatus::Deleted)
        }
    }

    #[test]
    fn days_tile_the_window_and_add_up_to_the_cost_report() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        // a: 2024-05-01 06:00 → 2024-05-03 12:00 at 0.5/h with a 10.00 monthly cap: 18 h on day 1
        // (9.00), 24 h on day 2 (12.00, but capped: 1.00 left), nothing after the cap.
        // b: EUR, 2024-05-02 00:00 → 2024-05-02 10:00 at 0.1/h = 1.00 EUR.
        // c: a currency without a rate: left out and named.
        let mut a = node("a", "pa", 0.5, 10.0, "USD");
        a.started_at = Some("2024-05-01T06:00:00Z".into());
        a.created_at = Some("2024-05-01T06:00:00Z".into());
        a.deleted_at = Some("2024-05-03T12:00:00Z".into());
        let mut b = node("b", "pb", 0.1, 70.0, "EUR");
        b.started_at = Some("2024-05-02T00:00:00Z".into());
        b.created_at = Some("2024-05-02T00:00:00Z".into());
        b.deleted_at = Some("2024-05-02T10:00:00Z".into());
        let mut c = node("c", "pc", 1.0, 700.0, "XXX");
        c.created_at = Some("2024-05-01T00:00:00Z".into());
        c.started_at = Some("2024-05-01T00:00:00Z".into());
        c.deleted_at = Some("2024-05-01T10:00:00Z".into());
        store.import_nodes(&[a, b, c], false).unwrap();
        let mut billing = Billing::new();
        billing.set_rate("EUR", 1.25);
        let window = Window {
            since: t("2024-05-01T03:00:00Z"),
            until: t("2024-05-04T00:00:00Z"),
            now: t("2024-06-01T00:00:00Z"),
        };
        let f = NodeFilter::default();
        let d = daily(&store, &billing, &f, window).unwrap();
        assert_eq!(d.days, ["2024-05-01", "2024-05-02", "2024-05-03"]);
        assert_eq!(d.providers, ["pa", "pb"]);
        assert_eq!(d.usd[0], [9.0, 1.0, 0.0]);
        assert_eq!(d.usd[1], [0.0, 1.25, 0.0]);
        assert_eq!(d.day_totals, [9.0, 2.25, 0.0]);
        assert_eq!(d.missing_rates, ["XXX"]);
        let whole = crate::state::cost::report(
            &store,
            &billing,
            &f,
            crate::state::cost::GroupBy::Provider,
            window,
        )
        .unwrap();
        assert_eq!(d.total_usd, whole.total_usd);
        assert_eq!(d.provider_totals, [10.0, 1.25]);
        // An empty window has no day.
        let empty = Window {
            since: window.until,
            ..window
        };
        let none = daily(&store, &billing, &f, empty).unwrap();
        assert!(none.days.is_empty() && none.providers.is_empty());
    }
}
