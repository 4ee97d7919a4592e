//! `catalog refresh` for AWS: per-region on-demand Linux prices from the Price List Query API
//! (`GetProducts`, SigV4 service `pricing`, NextToken paging, PriceList items that are JSON
//! strings), against the mock in `support/mock/aws_pricing.rs`.

use crate::support::mock::aws_pricing::{Pricing, PricingServer, REGIONS};
use crate::support::{capsule, Capsule};
use serde_json::Value;

const SECRET: &str = "aws-secret-key-for-the-pricing-mock";

fn against(server: &PricingServer) -> Capsule {
    capsule()
        .env("CAPSULE_ENDPOINT_AWS", &server.url)
        .env("AWS_ACCESS_KEY_ID", "AKIAMOCKTEST00000001")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
}

fn refresh(c: &Capsule, extra: &[&str]) -> crate::support::Output {
    let mut a = vec!["openmesh", "catalog", "refresh", "--provider", "aws"];
    a.extend_from_slice(extra);
    c.run_args(&a)
}

fn aws_templates(c: &Capsule, extra: &[&str]) -> Vec<Value> {
    let mut a = vec!["openmesh", "templates", "--provider", "aws", "-o", "json"];
    a.extend_from_slice(extra);
    let out = c.run_args(&a);
    assert_eq!(out.code, 0, "{out:?}");
    out.json().as_array().unwrap().clone()
}

fn hourly(ts: &[Value], id: &str) -> f64 {
    ts.iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("{id} missing: {ts:?}"))["price_hourly"]
        .as_f64()
        .unwrap()
}

fn layer_template(c: &Capsule, id: &str) -> Value {
    let text = std::fs::read_to_string(c.home().join("catalog/layer.json")).unwrap();
    let layer: Value = serde_json::from_str(&text).unwrap();
    layer["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in the layer"))
        .clone()
}

#[test]
fn aws_prices_come_per_region_from_signed_paged_get_products() {
    let server = PricingServer::start(Pricing::default());
    let c = against(&server);
    let out = refresh(&c, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    // Every region read in full: 234 products a region, 100 a page → 3 pages, the later ones
    // asked for with the NextToken in the body.
    let seen = server.seen();
    for region in REGIONS {
        let pages: Vec<_> = seen
            .iter()
            .filter(|s| {
                s.body["Filters"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|f| f["Field"] == "regionCode" && f["Value"] == region)
            })
            .collect();
        assert_eq!(pages.len(), 3, "{region}: {pages:?}");
        assert!(pages[0].body.get("NextToken").is_none());
        assert_eq!(pages[1].body["NextToken"], format!("{region}:100"));
        assert_eq!(pages[2].body["NextToken"], format!("{region}:200"));
    }
    // Signed for the price list's own service and region, whatever the EC2 region.
    for s in &seen {
        assert!(
            s.authorization.contains("/us-east-1/pricing/aws4_request"),
            "{}",
            s.authorization
        );
        assert!(s.body["ServiceCode"] == "AmazonEC2");
    }
    // The layer holds the catalog's four types only, with AWS's per-region prices.
    let ts = aws_templates(&c, &[]);
    assert_eq!(ts.len(), 4, "no filler type without --all-plans");
    for (region, micro, big) in [
        ("us-east-1", 0.0104, 0.34),
        ("us-west-2", 0.0104, 0.34),
        ("eu-west-1", 0.0118, 0.384),
        ("ap-southeast-1", 0.0132, 0.392),
        ("ap-northeast-1", 0.0136, 0.428),
    ] {
        let ts = aws_templates(&c, &["--region", region]);
        assert_eq!(hourly(&ts, "aws-t3-micro"), micro, "{region}");
        assert_eq!(hourly(&ts, "aws-c5-2xlarge"), big, "{region}");
    }
    let micro = layer_template(&c, "aws-t3-micro");
    assert_eq!(micro["price_hourly"], 0.0104);
    assert_eq!(micro["region_prices"]["eu-west-1"], 0.0118);
    assert!(
        micro["region_prices"].get("us-west-2").is_none(),
        "a region priced as the base has no regional price: {micro}"
    );
    // The provenance names the price list, and the layer validates for every command.
    let status = c
        .run_args(&["openmesh", "catalog", "status", "-o", "json"])
        .json();
    let aws = status
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["provider"] == "aws")
        .unwrap()
        .clone();
    assert_eq!(aws["layer"], "refreshed", "{aws}");
    assert!(aws["source"].as_str().unwrap().contains("POST"), "{aws}");
    let text = std::fs::read_to_string(c.home().join("catalog/layer.json")).unwrap();
    assert!(!text.contains(SECRET), "no secret in the layer");
}

#[test]
fn a_truncated_page_leaves_the_previous_aws_layer_byte_identical() {
    let server = PricingServer::start(Pricing::default());
    let c = against(&server);
    assert_eq!(refresh(&c, &[]).code, 0);
    let layer = c.home().join("catalog/layer.json");
    let before = std::fs::read(&layer).unwrap();
    // The second page of eu-west-1 now breaks off in the middle.
    server.break_page("eu-west-1", 1);
    let out = refresh(&c, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    out.stderr_has("aws: not refreshed")
        .stderr_has("does not parse")
        .stderr_has("nothing was written");
    assert_eq!(std::fs::read(&layer).unwrap(), before, "byte-identical");
}

#[test]
fn a_price_list_item_that_is_not_json_fails_the_refresh() {
    // A PriceList string that is not a JSON document: the page is broken, not skipped.
    let server = PricingServer::start(Pricing::default());
    let c = against(&server);
    server.break_items();
    let out = refresh(&c, &[]);
    assert_eq!(out.code, 1, "{out:?}");
    out.stderr_has("not a JSON document");
    assert!(!c.home().join("catalog/layer.json").exists());
}

#[test]
fn a_refresh_prunes_regional_prices_the_list_no_longer_has() {
    let server = PricingServer::start(Pricing::default());
    let c = against(&server);
    assert_eq!(refresh(&c, &[]).code, 0);
    // Now t3.micro costs the same in eu-west-1 as in us-east-1, and ap-northeast-1 sells it no more.
    let mut p = Pricing::default();
    p.prices
        .insert(("t3.micro".into(), "eu-west-1".into()), 0.0104);
    p.prices
        .remove(&("t3.micro".to_string(), "ap-northeast-1".to_string()));
    server.set(p);
    let out = refresh(&c, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    let micro = layer_template(&c, "aws-t3-micro");
    let rp = micro["region_prices"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(
        !rp.contains_key("eu-west-1"),
        "stale eu-west-1 kept: {micro}"
    );
    assert!(!rp.contains_key("ap-northeast-1"), "{micro}");
    assert_eq!(rp.len(), 1, "only ap-southeast-1 differs: {micro}");
    assert!(
        !micro["regions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "ap-northeast-1"),
        "{micro}"
    );
    // The same through the TOML merge an overlay takes: no embedded regional price survives.
    let overlay = tempfile::tempdir().unwrap();
    std::fs::write(
        overlay.path().join("mine.toml"),
        "[[templates]]\nid = \"do-small\"\nprovider = \"digitalocean\"\nprice_hourly = 0.5\nprice_monthly = 336\n",
    )
    .unwrap();
    let dir = overlay.path().to_str().unwrap();
    let ts = aws_templates(&c, &["--region", "eu-west-1", "--catalog", dir]);
    assert_eq!(hourly(&ts, "aws-t3-micro"), 0.0104);
    let ts = aws_templates(&c, &["--region", "ap-northeast-1", "--catalog", dir]);
    assert!(
        !ts.iter().any(|t| t["id"] == "aws-t3-micro"),
        "not offered where it is not sold: {ts:?}"
    );
}

#[test]
fn the_price_list_has_its_own_endpoint_override_not_the_ec2_one() {
    let server = PricingServer::start(Pricing::default());
    // AWS_ENDPOINT_URL_EC2 points at the EC2 API (nothing listens there); the price list follows
    // AWS_ENDPOINT_URL_PRICING.
    let c = capsule()
        .env("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:9")
        .env("AWS_ENDPOINT_URL_PRICING", &server.url)
        .env("AWS_ACCESS_KEY_ID", "AKIAMOCKTEST00000001")
        .env("AWS_SECRET_ACCESS_KEY", SECRET);
    let out = refresh(&c, &[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(server.seen().len(), 15);
}

#[test]
fn all_plans_adds_every_aws_type_with_its_shape() {
    let server = PricingServer::start(Pricing::default());
    let c = against(&server);
    let out = refresh(&c, &["--all-plans"]);
    assert_eq!(out.code, 0, "{out:?}");
    let ts = aws_templates(&c, &[]);
    assert!(ts.len() > 200, "{}", ts.len());
    let t = ts
        .iter()
        .find(|t| t["id"] == "aws-m100-2xlarge")
        .expect("a filler type");
    assert_eq!(t["cpu"], 4);
    assert_eq!(t["memory_gb"], 16.0, "memory read from \"16 GiB\"");
    assert_eq!(t["regions"].as_array().unwrap().len(), 5);
}
