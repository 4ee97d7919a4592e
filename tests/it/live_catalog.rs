//! Issue 11: the embedded catalog corrected from published facts (per-region AWS prices, Vultr's
//! hourly convention and bare-metal regions, Linode GPU billing, the 2026 EUR rate, monthly caps
//! as data), the refreshed catalog layer under `$CAPSULE_HOME/catalog/`, and the staleness notice.

use crate::support::capsule;
use serde_json::Value;
use std::path::Path;

fn templates(args: &[&str]) -> Vec<Value> {
    let mut a = vec!["openmesh", "templates", "-o", "json"];
    a.extend_from_slice(args);
    capsule().args(a).ok().json().as_array().unwrap().clone()
}

fn price_of(ts: &[Value], id: &str) -> f64 {
    ts.iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("{id} missing"))["price_hourly"]
        .as_f64()
        .unwrap()
}

#[test]
fn aws_prices_differ_by_region_in_listing_and_selection() {
    for (region, micro, big) in [
        ("us-east-1", 0.0104, 0.34),
        ("us-west-2", 0.0104, 0.34),
        ("eu-west-1", 0.0114, 0.384),
        ("ap-southeast-1", 0.0132, 0.392),
        ("ap-northeast-1", 0.0136, 0.428),
    ] {
        let ts = templates(&["--provider", "aws", "--region", region]);
        assert_eq!(price_of(&ts, "aws-t3-micro"), micro, "{region}");
        assert_eq!(price_of(&ts, "aws-c5-2xlarge"), big, "{region}");
    }
    // Selection prices the offer in its region: the cheapest t3.micro in Europe is eu-west-1's.
    let out = capsule()
        .args([
            "openmesh",
            "deploy",
            "--provider",
            "aws",
            "--template",
            "aws-t3-micro",
            "--continent",
            "europe",
            "--name",
            "n",
            "--dry-run",
            "--include-unconfigured",
            "-o",
            "json",
        ])
        .ok();
    let v = out.json();
    let node = &v["nodes"][0];
    assert_eq!(node["region"], "eu-west-1", "{node:#}");
    assert_eq!(node["price_hourly"].as_f64(), Some(0.0114), "{node:#}");
}

#[test]
fn vultr_hourly_prices_follow_its_own_hourly_cost_convention() {
    for t in templates(&["--provider", "vultr"]) {
        let h = t["price_hourly"].as_f64().unwrap();
        let m = t["price_monthly"].as_f64().unwrap();
        let api = (m / 730.0 * 1000.0).round() / 1000.0;
        assert!(
            (h - api).abs() < 1e-9,
            "{}: {h} is not monthly/730 = {api}",
            t["id"]
        );
    }
    let bare = templates(&["--provider", "vultr"])
        .into_iter()
        .find(|t| t["id"] == "vultr-bare-4")
        .unwrap();
    assert_eq!(bare["regions"], serde_json::json!(["sjc", "sgp"]));
}

#[test]
fn eur_converts_at_a_2026_rate() {
    let ts = templates(&["--provider", "scaleway"]);
    let h100 = ts.iter().find(|t| t["id"] == "scw-h100-1-80g").unwrap();
    let native = h100["price_hourly"].as_f64().unwrap();
    let usd = h100["price_hourly_usd"].as_f64().unwrap();
    assert!((usd / native - 1.16).abs() < 1e-3, "{usd} / {native}");
    let rates =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog/rates.toml"))
            .unwrap();
    assert!(rates.contains("as_of = \"2026-"), "a 2026 rate");
    assert!(
        rates.contains("seed: 1.0389"),
        "the seed's figure kept beside it"
    );
}

/// Every figure issue 11 changed carries the seed's figure and a dated source beside it.
#[test]
fn changed_figures_keep_the_seed_and_a_source() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let aws = read("aws/templates.toml");
    for line in aws
        .lines()
        .filter(|l| l.starts_with("eu-west-1") || l.starts_with("ap-southeast-1"))
    {
        assert!(
            line.contains("# seed:"),
            "AWS regional price without the seed's figure: {line}"
        );
    }
    assert!(
        aws.contains("issue 11, filed 2026-11"),
        "AWS regional source and date"
    );
    let vultr = read("vultr/templates.toml");
    for line in vultr.lines().filter(|l| l.starts_with("price_hourly")) {
        assert!(
            line.contains("seed:"),
            "Vultr hourly price without the seed's figure: {line}"
        );
    }
    let linode = read("linode/templates.toml");
    assert!(linode.contains("price_monthly = 1095.00  # seed: 1000.00"));
    assert!(linode.contains("updated 2026-09"));
    for (file, word) in [
        ("aws/provider.toml", "Seed: 730"),
        ("scaleway/provider.toml", "Seed: 730"),
        ("equinix-metal/provider.toml", "Seed: 730"),
    ] {
        assert!(read(file).contains(word), "{file} keeps the seed's cap");
    }
}

#[test]
fn monthly_caps_are_data_and_cost_follows_them() {
    // Linode GPU: no cap since 2026-07-01. A 31-day month of the GPU template costs 744 h × 1.50,
    // above its monthly figure; a Nanode stops at its monthly price.
    let home = capsule();
    let csv = home.home().join("nodes.csv");
    std::fs::write(
        &csv,
        "deploy_id,name,provider,template,plan,region,status,price_hourly,price_monthly,currency,created_at,started_at,stopped_at,deleted_at\n\
         g1,gpu,linode,linode-gpu-rtx6000,g1-gpu-rtx6000-1,us-east,deleted,1.5,1095,USD,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z,,2024-02-01T00:00:00Z\n\
         n1,nano,linode,linode-nanode-1gb,g6-nanode-1,us-east,deleted,0.0075,5,USD,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z,,2024-02-01T00:00:00Z\n",
    )
    .unwrap();
    let imported = home.run_args(&["openmesh", "inventory", "import", csv.to_str().unwrap()]);
    assert_eq!(imported.code, 0, "{imported:?}");
    let out = home.run_args(&[
        "openmesh",
        "cost",
        "--by",
        "template",
        "--since",
        "2024-01-01",
        "--until",
        "2024-02-01",
        "-o",
        "json",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    let rows = v.as_array().unwrap_or_else(|| panic!("{v:#}"));
    let cost = |id: &str| {
        rows.iter()
            .find(|r| r["group"] == id)
            .unwrap_or_else(|| panic!("{id} in {v:#}"))["cost"]
            .as_f64()
            .unwrap()
    };
    assert!((cost("linode-gpu-rtx6000") - 1116.0).abs() < 1e-6, "{v:#}");
    assert!((cost("linode-nanode-1gb") - 5.0).abs() < 1e-6, "{v:#}");
}

#[test]
fn a_cap_that_is_neither_hours_nor_none_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("aws")).unwrap();
    std::fs::write(
        dir.path().join("aws/provider.toml"),
        "[provider]\nmonthly_cap_hours = \"forever\"\n",
    )
    .unwrap();
    let out = capsule()
        .args([
            "openmesh",
            "catalog",
            "validate",
            dir.path().to_str().unwrap(),
        ])
        .code(2);
    out.stderr_has("monthly_cap_hours").stderr_has("none");
}
