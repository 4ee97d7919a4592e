//! The `nodes` table's columns and a node's values for them, backend-neutral: the one list the
//! storage adapters and the benchmark seeder share, so a new field is added in one place.
//!
//! Values travel as [`Value`]s: each adapter binds and reads them with its own driver, and
//! [`node_values`] / [`node_from_values`] are the only code that knows which field is which
//! column. Migrations that read old rows keep their own frozen column lists instead: a step
//! written for schema N must not change meaning when a later version adds a column.

use super::model::{NodeRecord, NodeStatus};
use anyhow::anyhow;

/// The `nodes` columns, in [`NodeRecord`] field order.
pub const NODE_COLUMNS: &str = "deploy_id, group_id, name, provider, account, provider_id, template, plan, region, \
     api_variant, status, raw_status, ipv4, price_hourly, price_monthly, currency, prices_as_of, recorded_at, \
     created_at, started_at, stopped_at, deleted_at, updated_at";

/// How many columns [`NODE_COLUMNS`] names.
pub const NODE_COLUMN_COUNT: usize = 23;

/// One column value, as both backends store it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Value {
    /// Take the value out as text (leaving NULL); a NULL or a number is an error naming `what`.
    pub fn take_text(&mut self, what: &str) -> anyhow::Result<String> {
        match std::mem::replace(self, Value::Null) {
            Value::Text(s) => Ok(s),
            other => Err(unexpected(what, "text", &other)),
        }
    }

    /// Take the value out as optional text.
    pub fn take_opt_text(&mut self, what: &str) -> anyhow::Result<Option<String>> {
        match self {
            Value::Null => Ok(None),
            other => other.take_text(what).map(Some),
        }
    }

    /// The value as a number (an integer column read as a float is fine).
    pub fn real(&self, what: &str) -> anyhow::Result<f64> {
        match self {
            Value::Real(v) => Ok(*v),
            Value::Int(v) => Ok(*v as f64),
            other => Err(unexpected(what, "a number", other)),
        }
    }

    /// The value as an integer.
    pub fn int(&self, what: &str) -> anyhow::Result<i64> {
        match self {
            Value::Int(v) => Ok(*v),
            other => Err(unexpected(what, "an integer", other)),
        }
    }
}

pub(crate) fn unexpected(what: &str, wanted: &str, got: &Value) -> anyhow::Error {
    anyhow!("the state store holds {got:?} in '{what}' where {wanted} belongs")
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Value {
        Value::Text(s.clone())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Real(v)
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

/// A node's values, in [`NODE_COLUMNS`] order.
pub fn node_values(n: &NodeRecord) -> Vec<Value> {
    vec![
        (&n.deploy_id).into(),
        (&n.group_id).into(),
        (&n.name).into(),
        (&n.provider).into(),
        (&n.account).into(),
        n.provider_id.as_ref().into(),
        (&n.template).into(),
        (&n.plan).into(),
        (&n.region).into(),
        (&n.api_variant).into(),
        n.status.as_str().into(),
        (&n.raw_status).into(),
        n.ipv4.as_ref().into(),
        n.price_hourly.into(),
        n.price_monthly.into(),
        (&n.currency).into(),
        (&n.prices_as_of).into(),
        (&n.recorded_at).into(),
        n.created_at.as_ref().into(),
        n.started_at.as_ref().into(),
        n.stopped_at.as_ref().into(),
        n.deleted_at.as_ref().into(),
        (&n.updated_at).into(),
    ]
}

/// A node from values in [`NODE_COLUMNS`] order (taken out of the slice).
pub fn node_from_values(v: &mut [Value]) -> anyhow::Result<NodeRecord> {
    if v.len() < NODE_COLUMN_COUNT {
        return Err(anyhow!(
            "the state store returned {} node columns where {NODE_COLUMN_COUNT} belong",
            v.len()
        ));
    }
    let status = v[10].take_text("status")?;
    let status = NodeStatus::parse(&status)
        .ok_or_else(|| anyhow!("the state store holds an unknown status '{status}'"))?;
    Ok(NodeRecord {
        deploy_id: v[0].take_text("deploy_id")?,
        group_id: v[1].take_text("group_id")?,
        name: v[2].take_text("name")?,
        provider: v[3].take_text("provider")?,
        account: v[4].take_text("account")?,
        provider_id: v[5].take_opt_text("provider_id")?,
        template: v[6].take_text("template")?,
        plan: v[7].take_text("plan")?,
        region: v[8].take_text("region")?,
        api_variant: v[9].take_text("api_variant")?,
        status,
        raw_status: v[11].take_text("raw_status")?,
        ipv4: v[12].take_opt_text("ipv4")?,
        price_hourly: v[13].real("price_hourly")?,
        price_monthly: v[14].real("price_monthly")?,
        currency: v[15].take_text("currency")?,
        prices_as_of: v[16].take_text("prices_as_of")?,
        recorded_at: v[17].take_text("recorded_at")?,
        created_at: v[18].take_opt_text("created_at")?,
        started_at: v[19].take_opt_text("started_at")?,
        stopped_at: v[20].take_opt_text("stopped_at")?,
        deleted_at: v[21].take_opt_text("deleted_at")?,
        updated_at: v[22].take_text("updated_at")?,
    })
}

/// `$1, $2, …, $n` (both backends read numbered placeholders; SQLite's `?N` is rewritten by
/// its adapter).
pub fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_list_and_the_values_agree() {
        let n = NodeRecord {
            deploy_id: "d1".into(),
            group_id: "g".into(),
            name: "web".into(),
            provider: "acme".into(),
            account: "team-b".into(),
            provider_id: Some("7".into()),
            template: "t".into(),
            plan: "p".into(),
            region: "r".into(),
            api_variant: String::new(),
            status: NodeStatus::Running,
            raw_status: "active".into(),
            ipv4: None,
            price_hourly: 0.5,
            price_monthly: 300.0,
            currency: "USD".into(),
            prices_as_of: "2024-05-01".into(),
            recorded_at: "2024-05-01T00:00:00Z".into(),
            created_at: Some("2024-05-01T00:01:00Z".into()),
            started_at: None,
            stopped_at: None,
            deleted_at: None,
            updated_at: "2024-05-01T00:01:00Z".into(),
        };
        let mut values = node_values(&n);
        assert_eq!(NODE_COLUMNS.split(", ").count(), NODE_COLUMN_COUNT);
        assert_eq!(values.len(), NODE_COLUMN_COUNT);
        assert_eq!(node_from_values(&mut values.clone()).unwrap(), n);
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
        let e = node_from_values(&mut values[..3]).unwrap_err().to_string();
        assert!(e.contains("3 node columns"), "{e}");
    }
}
