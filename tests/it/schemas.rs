//! The documented JSON schemas, pinned: one golden file per command under `golden/schema/`. A
//! file holds the *shape* of the command's `-o json` output (every key, in order, and the JSON
//! types its values take over all rows), so a renamed, dropped, moved or retyped field fails
//! here, whatever the catalog's prices or the clock say.

use crate::support::mock::{MockConfig, MockServer, NodeSpec, Provider};
use crate::support::{against, capsule, golden, Capsule};
use serde_json::{json, Map, Value};

/// The shape of a JSON value: scalars by type name, objects key by key, arrays by the merged
/// shape of their elements; a key missing from some rows is `absent` there.
fn shape(v: &Value) -> Value {
    match v {
        Value::Null => json!("null"),
        Value::Bool(_) => json!("boolean"),
        Value::Number(_) => json!("number"),
        Value::String(_) => json!("string"),
        Value::Array(items) => match items.iter().map(shape).reduce(|a, b| merge(&a, &b)) {
            Some(s) => json!([s]),
            None => json!([]),
        },
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
    }
}

/// Two shapes as one: objects key by key, arrays element-wise, anything else a sorted union
/// (`null|string`, or `{"any_of": [...]}` when an alternative has structure).
fn merge(a: &Value, b: &Value) -> Value {
    match (a, b) {
        _ if a == b => a.clone(),
        (Value::Object(x), Value::Object(y)) => {
            let mut out = Map::new();
            for (k, v) in x {
                out.insert(k.clone(), merge(v, y.get(k).unwrap_or(&json!("absent"))));
            }
            for (k, v) in y {
                if !x.contains_key(k) {
                    out.insert(k.clone(), merge(&json!("absent"), v));
                }
            }
            Value::Object(out)
        }
        (Value::Array(x), Value::Array(y)) if x.is_empty() || y.is_empty() => {
            if x.is_empty() {
                b.clone()
            } else {
                a.clone()
            }
        }
        (Value::Array(x), Value::Array(y)) => json!([merge(&x[0], &y[0])]),
        _ => union(a, b),
    }
}

fn alternatives(v: &Value) -> Vec<Value> {
    match v {
        Value::String(s) => s.split('|').map(|t| json!(t)).collect(),
        Value::Object(m) if m.len() == 1 && m.contains_key("any_of") => {
            m["any_of"].as_array().cloned().unwrap_or_default()
        }
        other => vec![other.clone()],
    }
}

fn union(a: &Value, b: &Value) -> Value {
    let mut all = alternatives(a);
    for alt in alternatives(b) {
        if !all.contains(&alt) {
            all.push(alt);
        }
    }
    all.sort_by_key(|v| v.to_string());
    if all.iter().all(Value::is_string) {
        let names: Vec<&str> = all.iter().filter_map(Value::as_str).collect();
        json!(names.join("|"))
    } else {
        json!({ "any_of": all })
    }
}

/// Run `capsule openmesh ARGS -o json` and pin the shape of its answer.
#[track_caller]
pub(crate) fn pin(c: &Capsule, name: &str, args: &[&str]) -> Value {
    let mut argv = vec!["openmesh"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["-o", "json"]);
    let out = c.run_args(&argv);
    assert_eq!(out.code, 0, "capsule {argv:?}: {}", out.stderr);
    let value = out.json();
    let text = serde_json::to_string_pretty(&shape(&value)).unwrap() + "\n";
    golden("schema", &format!("{name}.json"), &text);
    value
}

#[test]
fn shape_merges_rows_and_marks_optional_keys() {
    let rows = json!([{"a": 1, "b": null}, {"a": 2, "b": "x", "c": [true]}]);
    assert_eq!(
        shape(&rows),
        json!([{"a": "number", "b": "null|string", "c": {"any_of": ["absent", ["boolean"]]}}])
    );
}

#[test]
fn catalog_listings() {
    let c = capsule();
    pin(&c, "providers", &["providers"]);
    pin(&c, "templates", &["templates"]);
    pin(&c, "templates-gpu", &["templates", "--gpu"]);
    pin(&c, "regions", &["regions"]);
    pin(
        &c,
        "compare",
        &["compare", "do-small", "vultr-vc2-1", "hive-gpu"],
    );
    pin(&c, "template-show", &["template", "show", "do-small"]);
    pin(&c, "template-show-eur", &["template", "show", "scw-dev1-m"]);
    pin(&c, "catalog-status", &["catalog", "status"]);
    let exported = c.home().join("exported");
    let dir = exported.to_str().unwrap();
    let out = c.run_args(&["openmesh", "catalog", "export", dir]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let valid = pin(&c, "catalog-validate", &["catalog", "validate", dir]);
    assert_eq!(valid["valid"], true, "{valid}");
}

#[test]
fn credentials_and_state() {
    let c = capsule();
    pin(&c, "provider-show", &["provider", "show", "digitalocean"]);
    pin(
        &c,
        "provider-configure",
        &[
            "provider",
            "configure",
            "digitalocean",
            "--api-key",
            "dop_v1_schema",
        ],
    );
    pin(
        &c,
        "provider-remove",
        &["provider", "remove", "digitalocean"],
    );
    pin(&c, "state-info", &["state", "info"]);
    let path = c.home().join("nodes.csv");
    std::fs::write(&path, INVENTORY).unwrap();
    pin(
        &c,
        "inventory-import",
        &["inventory", "import", path.to_str().unwrap()],
    );
    pin(&c, "inventory-show", &["inventory", "show", "beta"]);
    pin(
        &c,
        "history-clean",
        &["history", "clean", "--older-than", "30d", "--dry-run"],
    );
    let copy = c.home().join("copy.db");
    pin(
        &c,
        "state-migrate",
        &["state", "migrate", "--to", copy.to_str().unwrap()],
    );
}

/// The inventory a CSV import records (fixed dates: the figures do not move with the clock).
const INVENTORY: &str = "deploy_id,name,provider,template,plan,region,status,price_hourly,price_monthly,currency,created_at,started_at,stopped_at,deleted_at
r1,alpha,digitalocean,do-small,s-1vcpu-1gb,nyc3,deleted,0.00893,6,USD,2024-01-05T00:00:00Z,2024-01-05T00:00:00Z,,2024-02-20T12:00:00Z
r2,beta,scaleway,scw-dev1-m,DEV1-M,par1,running,0.0198,14.45,EUR,2024-02-10T00:00:00Z,2024-02-10T00:00:00Z,,
";

#[test]
fn inventory_cost_and_stats() {
    let c = capsule();
    let path = c.home().join("nodes.csv");
    std::fs::write(&path, INVENTORY).unwrap();
    let out = c.run_args(&["openmesh", "inventory", "import", path.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    pin(&c, "inventory", &["inventory", "--all"]);
    pin(&c, "inventory-stats", &["inventory", "stats", "--all"]);
    pin(&c, "history", &["history"]);
    let window = ["--since", "2024-01-01", "--until", "2024-04-01"];
    let mut cost = vec!["cost"];
    cost.extend_from_slice(&window);
    pin(&c, "cost", &cost);
    let mut by_month = cost.clone();
    by_month.extend_from_slice(&["--by", "month"]);
    pin(&c, "cost-by-month", &by_month);
}

#[test]
fn deploy_nodes_and_sync() {
    let mock = MockServer::start(Provider::DigitalOcean, MockConfig::default());
    let c = against(capsule(), &[&mock]);
    let deploy = [
        "deploy",
        "--provider",
        "digitalocean",
        "--template",
        "do-small",
        "--region",
        "nyc1",
        "--name",
        "schema-1",
        "--yes",
    ];
    let mut dry = deploy.to_vec();
    dry.push("--dry-run");
    pin(&c, "deploy-dry-run", &dry);
    pin(
        &c,
        "deploy-explain",
        &[
            "deploy",
            "--min-cpu",
            "2",
            "--min-memory",
            "2",
            "--provider",
            "digitalocean",
            "--dry-run",
            "--explain",
        ],
    );
    pin(&c, "deploy", &deploy);
    pin(&c, "list", &["list"]);
    pin(&c, "status", &["status", "schema-1"]);
    pin(&c, "sync", &["sync", "--provider", "digitalocean"]);
    // A capsule-tagged server without a record: the findings' row shape.
    mock.add_node(
        NodeSpec::named("stray")
            .tag("capsule")
            .tag("capsule-o1")
            .plan("s-1vcpu-1gb"),
    );
    let findings = pin(&c, "sync-findings", &["sync", "--provider", "digitalocean"]);
    assert_eq!(findings[0]["finding"], "orphan", "{findings}");
    pin(
        &c,
        "provider-verify",
        &["provider", "verify", "digitalocean"],
    );
    let deploy_id = deploy_id_of(&c, "schema-1");
    let store = capsule::state::open(c.home()).expect("store");
    store
        .set_expiries(&[(deploy_id, "2020-01-01T00:00:00Z".to_string())])
        .expect("expiry");
    drop(store);
    let due = pin(&c, "reap-dry-run", &["reap", "--dry-run"]);
    assert_eq!(due[0]["name"], "schema-1", "{due}");
    mock.settle();
    pin(&c, "stop", &["stop", "schema-1", "--yes"]);
}

/// The deploy id of a recorded node, from the inventory.
fn deploy_id_of(c: &Capsule, name: &str) -> String {
    let out = c.run_args(&["openmesh", "inventory", "-o", "json"]);
    let rows = out.json();
    let row = rows
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("{name} not in {rows}"));
    row["deploy_id"].as_str().unwrap().to_string()
}

#[test]
fn xnode_reinstall() {
    let mock = MockServer::start(Provider::Linode, MockConfig::default());
    let id = mock.add_node(NodeSpec::named("ln1"));
    let c = against(capsule(), &[&mock]);
    let target = format!("linode:{id}");
    let owner = "0xABCDEF0123456789abcdef0123456789ABCDEF01";
    let args = ["reinstall", &target, "--xnode", "--owner", owner];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let planned = pin(&c, "reinstall-dry-run", &dry);
    assert_eq!(planned["dry_run"], true, "{planned}");
    let mut run = args.to_vec();
    run.push("--yes");
    pin(&c, "reinstall", &run);
}
