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

// ---------------------------------------------------------------------------------------------
// The refreshed layer: `catalog refresh` into $CAPSULE_HOME/catalog/, used by default.

use crate::support::mock::prices::{PriceBook, PriceServer};
use crate::support::Capsule;

const REFRESHED: [&str; 3] = ["digitalocean", "vultr", "linode"];

/// A capsule pointed at the price server with credentials for the three providers.
fn against(server: &PriceServer) -> Capsule {
    let mut c = capsule();
    for (var, val) in [
        ("CAPSULE_ENDPOINT_DIGITALOCEAN", server.url.as_str()),
        ("CAPSULE_ENDPOINT_VULTR", server.url.as_str()),
        ("CAPSULE_ENDPOINT_LINODE", server.url.as_str()),
        ("DIGITALOCEAN_TOKEN", "do-token"),
        ("VULTR_API_KEY", "vultr-key"),
        ("LINODE_TOKEN", "linode-token"),
    ] {
        c = c.env(var, val);
    }
    c
}

fn refresh_args() -> Vec<&'static str> {
    let mut a = vec!["openmesh", "catalog", "refresh"];
    for p in REFRESHED {
        a.extend(["--provider", p]);
    }
    a
}

fn find<'a>(ts: &'a [Value], id: &str) -> &'a Value {
    ts.iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("{id} missing"))
}

fn listed(c: &Capsule, extra: &[&str]) -> Vec<Value> {
    let mut a = vec!["openmesh", "templates", "-o", "json"];
    a.extend_from_slice(extra);
    let out = c.run_args(&a);
    assert_eq!(out.code, 0, "{out:?}");
    out.json().as_array().unwrap().clone()
}

#[test]
fn refresh_writes_a_validated_layer_that_every_command_uses() {
    let server = PriceServer::start(PriceBook::default());
    let c = against(&server);
    let out = c.run_args(&refresh_args());
    assert_eq!(out.code, 0, "{out:?}");
    let layer = c.home().join("catalog/layer.json");
    assert!(
        layer.is_file(),
        "the layer is written under CAPSULE_HOME/catalog/"
    );
    let seen = server.seen();
    for path in [
        "/v2/sizes",
        "/v2/plans?",
        "/v2/plans-metal",
        "/v4/linode/types",
    ] {
        assert!(
            seen.iter().any(|s| s.starts_with(path)),
            "{path} not read: {seen:?}"
        );
    }
    // DigitalOcean pages its 124 sizes 200 at a time: one page; Linode's 76 types one page.
    let ts = listed(&c, &[]);
    assert_eq!(
        find(&ts, "do-small")["price_hourly"],
        0.00744,
        "from the price list"
    );
    assert_eq!(find(&ts, "vultr-vc2-1")["price_monthly"], 6.0);
    assert_eq!(
        find(&ts, "vultr-bare-4")["regions"],
        serde_json::json!(["sjc", "sgp"])
    );
    // Vultr's vhf plan is sold in sea and syd only.
    assert_eq!(
        find(&ts, "vultr-hf-4")["regions"],
        serde_json::json!(["sea", "syd"])
    );
    // Linode GPU: a $0 base price in the list never becomes the price.
    assert_eq!(find(&ts, "linode-gpu-rtx6000")["price_hourly"], 1.5);
    // The templates the catalog has (retired Equinix Metal is listed only on request).
    assert_eq!(ts.len(), 28, "no plan beyond the catalog's own");
    // Embedded-only ignores the layer.
    let embedded = listed(&c, &["--embedded-only"]);
    assert_eq!(find(&embedded, "do-small")["price_hourly"], 0.00893);
    // The provenance: date, age and source per provider.
    let status = c
        .run_args(&["openmesh", "catalog", "status", "-o", "json"])
        .json();
    for row in status.as_array().unwrap() {
        let id = row["provider"].as_str().unwrap();
        if REFRESHED.contains(&id) {
            assert_eq!(row["layer"], "refreshed", "{row}");
            assert_eq!(row["age_days"], 0, "{row}");
            assert_eq!(row["stale"], false, "{row}");
            assert!(
                row["source"].as_str().unwrap().contains(&server.url),
                "{row}"
            );
        } else {
            assert_eq!(row["layer"], "embedded", "{row}");
        }
    }
    let vultr = status
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["provider"] == "vultr")
        .unwrap();
    assert!(
        vultr["source"]
            .as_str()
            .unwrap()
            .contains("/v2/plans-metal"),
        "{vultr}"
    );
    let providers = c.run_args(&["openmesh", "providers", "-o", "json"]).json();
    let dig = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "digitalocean")
        .unwrap();
    assert_eq!(dig["prices_age_days"], 0);
    let aws = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "aws")
        .unwrap();
    assert!(aws["prices_age_days"].as_i64().unwrap() > 30);
    // A secret never reaches the layer.
    let text = std::fs::read_to_string(&layer).unwrap();
    assert!(!text.contains("do-token") && !text.contains("vultr-key"));
}

#[test]
fn a_failed_refresh_leaves_the_previous_layer_byte_identical() {
    let server = PriceServer::start(PriceBook::default());
    let c = against(&server);
    assert_eq!(c.run_args(&refresh_args()).code, 0);
    let layer = c.home().join("catalog/layer.json");
    let before = std::fs::read(&layer).unwrap();
    // Vultr's bare-metal list now fails: its plans answered, the metal list did not.
    server.fail("/v2/plans-metal");
    let out = c.run_args(&refresh_args());
    assert_eq!(out.code, 1, "{out:?}");
    out.stderr_has("vultr: not refreshed")
        .stderr_has("nothing was written");
    assert_eq!(std::fs::read(&layer).unwrap(), before, "byte-identical");
    let leftovers: Vec<_> = std::fs::read_dir(c.home().join("catalog"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
    // And with no previous layer, nothing is created.
    let fresh = against(&server);
    assert_eq!(fresh.run_args(&refresh_args()).code, 1);
    assert!(!fresh.home().join("catalog/layer.json").exists());
}

#[test]
fn refreshing_one_provider_keeps_the_others_and_an_overlay_still_wins() {
    let server = PriceServer::start(PriceBook::default());
    let c = against(&server);
    assert_eq!(c.run_args(&refresh_args()).code, 0);
    let out = c.run_args(&["openmesh", "catalog", "refresh", "--provider", "linode"]);
    assert_eq!(out.code, 0, "{out:?}");
    let ts = listed(&c, &[]);
    assert_eq!(find(&ts, "vultr-vc2-1")["price_monthly"], 6.0, "vultr kept");
    // embedded → refreshed → --catalog.
    let overlay = tempfile::tempdir().unwrap();
    std::fs::write(
        overlay.path().join("mine.toml"),
        "[[templates]]\nid = \"do-small\"\nprovider = \"digitalocean\"\nprice_hourly = 0.5\nprice_monthly = 336\n",
    )
    .unwrap();
    let ts = listed(&c, &["--catalog", overlay.path().to_str().unwrap()]);
    assert_eq!(
        find(&ts, "do-small")["price_hourly"],
        0.5,
        "the overlay wins"
    );
    assert_eq!(
        find(&ts, "vultr-vc2-1")["price_monthly"],
        6.0,
        "over the refreshed layer"
    );
    assert_eq!(
        find(&ts, "vultr-bare-4")["regions"],
        serde_json::json!(["sjc", "sgp"])
    );
}

#[test]
fn a_retired_provider_is_skipped_with_its_reason() {
    let out = capsule()
        .args([
            "openmesh",
            "catalog",
            "refresh",
            "--provider",
            "equinix-metal",
        ])
        .env("METAL_AUTH_TOKEN", "t")
        .env("METAL_PROJECT_ID", "p")
        .ok();
    out.stderr_has("equinix-metal: skipped: retired 2026-06-30");
}

#[test]
fn a_refresh_with_out_still_writes_a_reviewable_overlay() {
    let server = PriceServer::start(PriceBook::default());
    let c = against(&server);
    let dir = tempfile::tempdir().unwrap();
    let mut a = refresh_args();
    a.extend(["--out", dir.path().to_str().unwrap()]);
    assert_eq!(c.run_args(&a).code, 0);
    assert!(dir.path().join("vultr/prices.toml").is_file());
    assert!(
        !c.home().join("catalog/layer.json").exists(),
        "--out leaves the home alone"
    );
}

// ---------------------------------------------------------------------------------------------
// Staleness

const NOTICE: &str = "run `capsule openmesh catalog refresh`";

/// The default threshold (30 days), without the test builder's environment.
#[test]
fn stale_prices_are_announced_by_default() {
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_capsule"))
        .args(["openmesh", "templates", "--provider", "aws"])
        .env_clear()
        .env("CAPSULE_HOME", home.path())
        .env("HOME", home.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.matches(NOTICE).count(), 1, "{stderr}");
    assert!(stderr.contains("older than 30 days"), "{stderr}");
    assert!(stderr.contains("aws (2025-01-01"), "{stderr}");
}

#[test]
fn stale_prices_are_announced_once_on_stderr() {
    let out = capsule()
        .args(["openmesh", "templates"])
        .env("CAPSULE_STALE_AFTER", "30d")
        .ok();
    assert_eq!(out.stderr.matches(NOTICE).count(), 1, "{}", out.stderr);
    out.stderr_has("older than 30 days");
    assert!(!out.stdout.contains(NOTICE));
    let flag = capsule()
        .args(["openmesh", "providers", "--stale-after", "30d"])
        .ok();
    assert_eq!(flag.stderr.matches(NOTICE).count(), 1, "{}", flag.stderr);
    // Configurable by flag and by environment.
    let relaxed = capsule()
        .args(["openmesh", "templates", "--stale-after", "100000d"])
        .ok();
    assert!(!relaxed.stderr.contains(NOTICE), "{}", relaxed.stderr);
    let env = capsule()
        .args(["openmesh", "compare", "do-small", "aws-t3-micro"])
        .env("CAPSULE_STALE_AFTER", "100000d")
        .ok();
    assert!(!env.stderr.contains(NOTICE), "{}", env.stderr);
    // JSON stays clean (stdout is JSON, stderr quiet off a terminal).
    let json = capsule()
        .args(["openmesh", "templates", "-o", "json"])
        .env("CAPSULE_STALE_AFTER", "30d")
        .ok();
    json.json();
    assert!(json.stderr.is_empty(), "{}", json.stderr);
    // Retired providers have nothing to refresh: no notice for them.
    let retired = capsule()
        .args(["openmesh", "template", "show", "equinix-c3-small"])
        .env("CAPSULE_STALE_AFTER", "30d")
        .ok();
    assert!(!retired.stderr.contains(NOTICE), "{}", retired.stderr);
}

#[test]
fn fresh_prices_are_not_announced() {
    let server = PriceServer::start(PriceBook::default());
    let c = against(&server).env("CAPSULE_STALE_AFTER", "30d");
    assert_eq!(c.run_args(&refresh_args()).code, 0);
    let out = c.run_args(&["openmesh", "templates", "--provider", "digitalocean"]);
    assert_eq!(out.code, 0);
    assert!(!out.stderr.contains(NOTICE), "{}", out.stderr);
    let out = c.run_args(&["openmesh", "templates", "--provider", "aws"]);
    assert!(out.stderr.contains("aws (2025-01-01"), "{}", out.stderr);
    assert!(!out.stderr.contains("digitalocean ("), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------------
// Real Hivelocity deploys: a template resolves to an integer productId from the inventory.

use crate::support::mock::{MockServer, Provider};

fn hive(mock: &MockServer, args: &[&str]) -> crate::support::Output {
    let mut c = capsule().args(args);
    for (k, v) in mock.env() {
        c = c.env(&k, v);
    }
    c.run()
}

fn create_bodies(mock: &MockServer) -> Vec<Value> {
    mock.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v2/compute/")
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[test]
fn the_seed_hivelocity_command_sends_a_product_id_from_the_inventory() {
    let mock = MockServer::new(Provider::Hivelocity);
    let out = hive(
        &mock,
        &[
            "openmesh",
            "deploy",
            "--provider",
            "hivelocity",
            "--template",
            "hive-large",
            "--name",
            "my-node",
            "--region",
            "atlanta",
            "--yes",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    // hive-large (16 cores, 64 GB) in ATL2: 612 is the smallest fit in stock ("limited" counts);
    // 640 fits too but is bigger.
    out.stdout_has("hive-large in atlanta: hivelocity product 612");
    let bodies = create_bodies(&mock);
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["productId"], 612, "an integer from the inventory");
    assert!(bodies[0]["productId"].is_u64());
    assert_eq!(bodies[0]["locationName"], "ATL2");
    assert_eq!(bodies[0]["osName"], "Ubuntu 24.04", "bare metal");
    let inv = mock
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v2/inventory/product")
        .count();
    assert!(inv >= 1, "the inventory was read");
}

#[test]
fn an_out_of_stock_facility_names_the_nearest_products() {
    let mock = MockServer::new(Provider::Hivelocity);
    // In NYC1 the 16-core product is unavailable: nothing fits, the error says what is near.
    let out = hive(
        &mock,
        &[
            "openmesh",
            "deploy",
            "--provider",
            "hivelocity",
            "--template",
            "hive-large",
            "--name",
            "n",
            "--region",
            "new-york",
            "--yes",
        ],
    );
    assert_eq!(out.code, 1, "{out:?}");
    out.stderr_has("no product in stock in NYC1 fits template 'hive-large'")
        .stderr_has("product 612")
        .stderr_has("unavailable");
    assert!(create_bodies(&mock).is_empty(), "nothing ordered");
}

#[test]
fn a_gpu_template_resolves_in_the_gpu_store_and_a_vps_gets_its_os_name() {
    let mock = MockServer::new(Provider::Hivelocity);
    let out = hive(
        &mock,
        &[
            "openmesh",
            "deploy",
            "--provider",
            "hivelocity",
            "--template",
            "hive-gpu",
            "--name",
            "g",
            "--region",
            "atlanta",
            "--yes",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(create_bodies(&mock)[0]["productId"], 780);
    // hive-large in Tampa: only a VPS product fits there, so osName is the VPS image.
    let mock = MockServer::new(Provider::Hivelocity);
    let out = hive(
        &mock,
        &[
            "openmesh",
            "deploy",
            "--provider",
            "hivelocity",
            "--template",
            "hive-large",
            "--name",
            "v",
            "--region",
            "tampa",
            "--yes",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let body = &create_bodies(&mock)[0];
    assert_eq!(body["productId"], 2379);
    assert_eq!(body["osName"], "Ubuntu 24.04 (VPS)");
}

#[test]
fn all_plans_adds_every_plan_and_smart_deploy_picks_from_them() {
    let server = PriceServer::start(PriceBook::default());
    let c = against(&server);
    let mut a = refresh_args();
    a.push("--all-plans");
    let out = c.run_args(&a);
    assert_eq!(out.code, 0, "{out:?}");
    let all = listed(&c, &[]);
    assert!(all.len() > 28 + 200, "{} templates", all.len());
    let metal = find(&all, "vultr-vbm-6c-32gb");
    assert_eq!(metal["cpu"], 6);
    assert_eq!(metal["regions"], serde_json::json!(["ewr", "sjc"]));
    // Stable ids: a second refresh gives the same ones.
    assert_eq!(c.run_args(&a).code, 0);
    let again = listed(&c, &[]);
    let ids = |ts: &[Value]| ts.iter().map(|t| t["id"].to_string()).collect::<Vec<_>>();
    assert_eq!(ids(&all), ids(&again));
    // --curated shows the embedded set only.
    assert_eq!(listed(&c, &["--curated"]).len(), 28);
    // Smart deploy chooses among them: 32 vCPU and 200 GB exist only in the price list.
    let out = c.run_args(&[
        "openmesh",
        "deploy",
        "--min-cpu",
        "32",
        "--min-memory",
        "200",
        "--name",
        "big",
        "--dry-run",
        "--include-unconfigured",
        "-o",
        "json",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let v = out.json();
    let chosen = v["nodes"][0]["template"].as_str().unwrap();
    assert!(
        chosen.starts_with("digitalocean-so-32vcpu-256gb"),
        "{chosen}"
    );
    // Without --all-plans, a refresh drops them again.
    assert_eq!(c.run_args(&refresh_args()).code, 0);
    assert_eq!(listed(&c, &[]).len(), 28);
}

#[test]
fn scaleway_prices_come_from_every_zone_with_its_stock() {
    let server = PriceServer::start(PriceBook::default());
    let c = capsule()
        .env("CAPSULE_ENDPOINT_SCALEWAY", &server.url)
        .env("SCW_SECRET_KEY", "scw-secret")
        .env("SCW_ACCESS_KEY", "SCWXXXXXXXXXXXXXXXXX")
        .env(
            "SCW_DEFAULT_PROJECT_ID",
            "11111111-1111-1111-1111-111111111111",
        );
    let out = c.run_args(&["openmesh", "catalog", "refresh", "--provider", "scaleway"]);
    assert_eq!(out.code, 0, "{out:?}");
    let seen = server.seen();
    for zone in ["fr-par-1", "fr-par-2", "nl-ams-1", "nl-ams-2", "pl-waw-1"] {
        let avail = format!("/instance/v1/zones/{zone}/products/servers/availability");
        assert!(
            seen.iter().any(|s| s.starts_with(&avail)),
            "{avail} not read: {seen:?}"
        );
    }
    let ts = listed(&c, &["--provider", "scaleway"]);
    let h100 = find(&ts, "scw-h100-1-80g");
    assert_eq!(h100["price_hourly"], 2.73, "EUR from the list");
    assert_eq!(h100["regions"], serde_json::json!(["par2"]));
    // DEV1-M is short in nl-ams-1: not offered there.
    assert_eq!(
        find(&ts, "scw-dev1-m")["regions"],
        serde_json::json!(["par1", "par2", "waw1"])
    );
    let status = c
        .run_args(&["openmesh", "catalog", "status", "-o", "json"])
        .json();
    let scw = status
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["provider"] == "scaleway")
        .unwrap();
    assert_eq!(scw["layer"], "refreshed");
}

#[test]
fn a_price_list_description_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("scaleway")).unwrap();
    std::fs::write(
        dir.path().join("scaleway/api.toml"),
        "[api.prices]\navailability = { operation = \"availabilty\", value = \"/availability\", sold = [\"available\"] }\nspecs = { cores = \"/ncpus\" }\n",
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
    out.stderr_has("availabilty")
        .stderr_has("did you mean 'availability'");
    out.stderr_has("cores");
}

#[test]
fn hivelocity_prices_and_stock_come_from_its_inventory() {
    let mock = MockServer::new(Provider::Hivelocity);
    let mut c = capsule();
    for (k, v) in mock.env() {
        c = c.env(&k, v);
    }
    let out = c.run_args(&["openmesh", "catalog", "refresh", "--provider", "hivelocity"]);
    assert_eq!(out.code, 0, "{out:?}");
    let ts = listed(&c, &["--provider", "hivelocity"]);
    // hive-large (16 cores, 64 GB) fits 612 in ATL2 (0.48 + 0.02 premium) and the VPS 2379 in
    // TPA1 (0.30); nothing in stock fits it in LAX2 or NYC1.
    let large = find(&ts, "hive-large");
    assert_eq!(large["regions"], serde_json::json!(["atlanta", "tampa"]));
    assert_eq!(large["price_hourly"], 0.3);
    let gpu = find(&ts, "hive-gpu");
    assert_eq!(gpu["regions"], serde_json::json!(["atlanta"]));
    assert_eq!(gpu["price_hourly"], 0.79);
    let atl = c
        .run_args(&[
            "openmesh",
            "templates",
            "--region",
            "atlanta",
            "-p",
            "hivelocity",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(
        find(atl.as_array().unwrap(), "hive-large")["price_hourly"],
        0.5
    );
    let status = c
        .run_args(&["openmesh", "catalog", "status", "-o", "json"])
        .json();
    let hv = status
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["provider"] == "hivelocity")
        .unwrap();
    assert!(
        hv["source"]
            .as_str()
            .unwrap()
            .contains("/api/v2/inventory/product"),
        "{hv}"
    );
}

#[test]
fn a_resumed_hivelocity_deploy_sends_the_os_name_its_product_kind_needs() {
    use crate::support::mock::{Fault, Op};
    let mock = MockServer::new(Provider::Hivelocity);
    // Every create attempt of the first run is throttled: the node is refused, resume recreates it.
    for _ in 0..5 {
        mock.set_fault_on(Op::Create, Fault::Status429);
    }
    let mut c = capsule();
    for (k, v) in mock.env() {
        c = c.env(&k, v);
    }
    let first = c.run_args(&[
        "openmesh",
        "deploy",
        "--provider",
        "hivelocity",
        "--template",
        "hive-large",
        "--name",
        "v",
        "--region",
        "tampa",
        "--yes",
        "-o",
        "json",
    ]);
    assert_eq!(first.code, 1, "{first:?}");
    let group = first.json()["group_id"].as_str().unwrap().to_string();
    let again = c.run_args(&["openmesh", "deploy", "--resume", &group, "--yes"]);
    assert_eq!(again.code, 0, "{again:?}");
    let bodies = create_bodies(&mock);
    assert!(bodies.len() >= 2, "{bodies:?}");
    // In Tampa hive-large resolved to VPS product 2379: the resumed create sends it with the
    // VPS osName the first attempt chose, not the catalog's bare-metal default.
    let last = bodies.last().unwrap();
    assert_eq!(last["productId"], 2379);
    assert_eq!(last["osName"], "Ubuntu 24.04 (VPS)");
    assert!(bodies.iter().all(|b| b["osName"] == "Ubuntu 24.04 (VPS)"));
}

/// The inventory answered as the spec's `Inventory` (a map of `Stock` arrays keyed by facility)
/// even though capsule asks for `group_by=flat`: the deploy and the refresh read the same
/// products as from the flat array.
#[test]
fn a_grouped_inventory_answer_reads_like_the_flat_one() {
    use crate::support::mock::MockConfig;
    let mock = MockServer::start(
        Provider::Hivelocity,
        MockConfig::default().with_grouped_inventory(),
    );
    let out = hive(
        &mock,
        &[
            "openmesh",
            "deploy",
            "--provider",
            "hivelocity",
            "--template",
            "hive-large",
            "--name",
            "my-node",
            "--region",
            "atlanta",
            "--yes",
        ],
    );
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout_has("hive-large in atlanta: hivelocity product 612");
    let bodies = create_bodies(&mock);
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0]["productId"], 612);
    assert_eq!(bodies[0]["locationName"], "ATL2");
    // The mock did answer a map: the same request, read back, is keyed by facility.
    let inv: Vec<_> = mock
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/v2/inventory/product")
        .collect();
    assert!(!inv.is_empty());
    assert!(inv.iter().all(|r| r.q("group_by") == Some("flat")));

    let mut c = capsule();
    for (k, v) in mock.env() {
        c = c.env(&k, v);
    }
    let out = c.run_args(&["openmesh", "catalog", "refresh", "--provider", "hivelocity"]);
    assert_eq!(out.code, 0, "{out:?}");
    let ts = listed(&c, &["--provider", "hivelocity"]);
    let large = find(&ts, "hive-large");
    assert_eq!(large["regions"], serde_json::json!(["atlanta", "tampa"]));
    assert_eq!(large["price_hourly"], 0.3);
    let gpu = find(&ts, "hive-gpu");
    assert_eq!(gpu["regions"], serde_json::json!(["atlanta"]));
    assert_eq!(gpu["price_hourly"], 0.79);
}

/// The mock itself answers each documented `group_by` in its documented shape, so the grouped
/// test above exercises a map and the others an array.
#[tokio::test]
async fn the_inventory_mock_answers_each_group_by_in_its_shape() {
    let mock = MockServer::new(Provider::Hivelocity);
    let client = reqwest::Client::new();
    let get = |q: &str| {
        client
            .get(format!("{}/api/v2/inventory/product?{q}", mock.url()))
            .header("X-API-KEY", &mock.config().token)
            .send()
    };
    let flat: Value = get("location=MAIN&group_by=flat")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(flat.as_array().unwrap().len(), 7);
    let by_facility: Value = get("location=MAIN").await.unwrap().json().await.unwrap();
    let m = by_facility.as_object().unwrap();
    assert_eq!(m["ATL2"].as_array().unwrap().len(), 4);
    assert_eq!(m["NYC1"].as_array().unwrap().len(), 2);
    let by_city: Value = get("location=MAIN&group_by=city")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(by_city["Atlanta"].is_array(), "{by_city}");
}

/// The change rows of a refresh, pinned byte for byte (`-o json`, into the layer and with
/// `--out`), and the overlay `--out` writes, without its dated and addressed lines.
#[test]
fn refresh_change_rows_and_overlay_are_pinned() {
    let server = PriceServer::start(PriceBook::default());
    let c = against(&server);
    let mut a = refresh_args();
    a.extend(["-o", "json"]);
    let out = c.run_args(&a);
    assert_eq!(out.code, 0, "{out:?}");
    crate::support::golden("refresh", "layer.json", &out.stdout);

    let fresh = against(&server);
    let dir = tempfile::tempdir().unwrap();
    let mut a = refresh_args();
    a.extend(["--out", dir.path().to_str().unwrap(), "-o", "json"]);
    let out = fresh.run_args(&a);
    assert_eq!(out.code, 0, "{out:?}");
    crate::support::golden("refresh", "out.json", &out.stdout);
    let mut overlay = String::new();
    for p in REFRESHED {
        let text = std::fs::read_to_string(dir.path().join(p).join("prices.toml")).unwrap();
        overlay.push_str(&format!("## {p}\n"));
        for line in text.lines().filter(|l| {
            !l.starts_with("# Written by")
                && !l.starts_with("prices_as_of")
                && !l.starts_with("prices_source")
        }) {
            overlay.push_str(line);
            overlay.push('\n');
        }
    }
    crate::support::golden("refresh", "out-prices.toml", &overlay);
}
