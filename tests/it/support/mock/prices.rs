//! Price-list servers for `catalog refresh`: each provider's catalog endpoint in the shape of its
//! official spec, at a realistic size, paged the way the real API pages.
//!
//! - DigitalOcean `GET /v2/sizes` (`sizes/models/size.yml`: `slug`, `memory` MB, `vcpus`, `disk`,
//!   `transfer` TB, `price_monthly`, `price_hourly`, `regions`, `available`; `links.pages.next`,
//!   `meta.total`), `per_page` honoured.
//! - Vultr `GET /v2/plans` (`plans[]`: `id`, `vcpu_count`, `ram` MB, `disk`, `disk_count`,
//!   `bandwidth`, `monthly_cap`… `monthly_cost`, `hourly_cost`, `type`, `locations`; cursor paging
//!   in `meta.links.next`) and `GET /v2/plans-metal` (`plans_metal[]`).
//! - Linode `GET /v4/linode/types` (`data[]`: `id`, `label`, `class`, `vcpus`, `memory`, `disk`,
//!   `transfer`, `gpus`, `price{hourly,monthly}`, `region_prices[]`; `page`, `pages`, `results`);
//!   GPU types answer a $0 base price, as the live endpoint does.
//!
//! - Scaleway `GET /instance/v1/zones/{zone}/products/servers` (`ListServersTypesResponse`: a
//!   map `servers` keyed by commercial type, `hourly_price` EUR, `ncpus`, `ram` bytes) and
//!   `…/products/servers/availability` (`servers.<type>.availability`: available, scarce,
//!   shortage), page by page until an empty map.
//!
//! A route can be made to fail (HTTP 500) to test that a refresh is all or nothing.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Price changes the servers apply to the catalog's real plans.
#[derive(Clone, Debug)]
pub struct PriceBook {
    /// plan id → (hourly, monthly).
    pub prices: HashMap<String, (f64, f64)>,
    /// How many extra synthetic plans each list carries (realistic sizes: DO ~150, Vultr ~140,
    /// Linode ~75).
    pub filler: usize,
}

impl Default for PriceBook {
    fn default() -> Self {
        let prices = [
            // DigitalOcean: a price drop for do-small; the others as listed.
            ("s-1vcpu-1gb", 0.00744, 5.0),
            ("s-2vcpu-4gb", 0.03571, 24.0),
            ("s-4vcpu-8gb", 0.07143, 48.0),
            ("s-8vcpu-32gb-amd", 0.25, 168.0),
            // Vultr: hourly_cost = monthly / 730; a rise for vc2-1c-1gb.
            ("vc2-1c-1gb", 0.009, 6.0),
            ("vc2-2c-4gb", 0.027, 20.0),
            ("vhf-4c-16gb", 0.132, 96.0),
            ("vbm-4c-32gb", 0.164, 120.0),
            // Linode: standard prices.
            ("g6-nanode-1", 0.0075, 5.0),
            ("g6-standard-1", 0.018, 12.0),
            ("g6-standard-2", 0.036, 24.0),
            ("g6-dedicated-2", 0.054, 36.0),
            ("g6-dedicated-4", 0.108, 72.0),
        ]
        .into_iter()
        .map(|(k, h, m)| (k.to_string(), (h, m)))
        .collect();
        PriceBook {
            prices,
            filler: 120,
        }
    }
}

/// A running price-list server on 127.0.0.1.
pub struct PriceServer {
    pub url: String,
    stop: Arc<AtomicBool>,
    failing: Arc<Mutex<Vec<String>>>,
    seen: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PriceServer {
    pub fn start(book: PriceBook) -> PriceServer {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", server.server_addr().to_ip().expect("ip"));
        let stop = Arc::new(AtomicBool::new(false));
        let failing: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let (s2, f2, seen2, base) = (stop.clone(), failing.clone(), seen.clone(), url.clone());
        let thread = std::thread::spawn(move || {
            while !s2.load(Ordering::SeqCst) {
                let Ok(Some(req)) = server.recv_timeout(std::time::Duration::from_millis(20))
                else {
                    continue;
                };
                let full = req.url().to_string();
                let (path, query) = full.split_once('?').unwrap_or((&full, ""));
                seen2.lock().unwrap().push(full.clone());
                let q: HashMap<&str, &str> = query
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .collect();
                let fail = f2.lock().unwrap().iter().any(|p| path == p);
                let (code, body) = if fail {
                    (500, json!({"error": "internal error", "status": 500}))
                } else {
                    route(&book, &base, path, &q)
                };
                let resp = tiny_http::Response::from_string(body.to_string())
                    .with_status_code(code)
                    .with_header(
                        "Content-Type: application/json"
                            .parse::<tiny_http::Header>()
                            .unwrap(),
                    );
                let _ = req.respond(resp);
            }
        });
        PriceServer {
            url,
            stop,
            failing,
            seen,
            thread: Some(thread),
        }
    }

    /// Answer HTTP 500 on this path from now on.
    pub fn fail(&self, path: &str) {
        self.failing.lock().unwrap().push(path.to_string());
    }

    /// Every request URL (path and query) so far.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for PriceServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn route(book: &PriceBook, base: &str, path: &str, q: &HashMap<&str, &str>) -> (u16, Value) {
    let num = |k: &str, d: usize| q.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    match path {
        "/v2/sizes" => {
            let all = do_sizes(book);
            let per = num("per_page", 20).clamp(1, 200);
            let page = num("page", 1).max(1);
            let chunk: Vec<Value> = all
                .iter()
                .skip((page - 1) * per)
                .take(per)
                .cloned()
                .collect();
            let mut pages = json!({});
            if page * per < all.len() {
                pages["next"] = json!(format!("{base}/v2/sizes?page={}&per_page={per}", page + 1));
            }
            (
                200,
                json!({"sizes": chunk, "links": {"pages": pages}, "meta": {"total": all.len()}}),
            )
        }
        "/v2/plans" => cursor_page("plans", vultr_plans(book), base, "/v2/plans", q),
        "/v2/plans-metal" => {
            cursor_page("plans_metal", vultr_metal(book), base, "/v2/plans-metal", q)
        }
        "/v4/linode/types" => {
            let all = linode_types(book);
            let per = num("page_size", 100).clamp(25, 500);
            let page = num("page", 1).max(1);
            let pages = all.len().div_ceil(per);
            let chunk: Vec<Value> = all
                .iter()
                .skip((page - 1) * per)
                .take(per)
                .cloned()
                .collect();
            (
                200,
                json!({"data": chunk, "page": page, "pages": pages, "results": all.len()}),
            )
        }
        p if p.starts_with("/instance/v1/zones/") => scaleway(book, p, num("page", 1)),
        _ => (
            404,
            json!({"error": format!("no route {path}"), "status": 404}),
        ),
    }
}

fn cursor_page(
    key: &str,
    all: Vec<Value>,
    base: &str,
    path: &str,
    q: &HashMap<&str, &str>,
) -> (u16, Value) {
    let per: usize = q
        .get("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
        .clamp(1, 500);
    let start: usize = q
        .get("cursor")
        .and_then(|c| c.strip_prefix("at-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let chunk: Vec<Value> = all.iter().skip(start).take(per).cloned().collect();
    let next = if start + per < all.len() {
        format!("at-{}", start + per)
    } else {
        String::new()
    };
    let _ = (base, path);
    (
        200,
        json!({key: chunk, "meta": {"total": all.len(), "links": {"next": next, "prev": ""}}}),
    )
}

fn price(book: &PriceBook, plan: &str, h: f64, m: f64) -> (f64, f64) {
    book.prices.get(plan).copied().unwrap_or((h, m))
}

fn do_sizes(book: &PriceBook) -> Vec<Value> {
    let regions = [
        "nyc1", "nyc3", "sfo3", "tor1", "lon1", "fra1", "ams3", "sgp1", "blr1", "syd1",
    ];
    let mut out = Vec::new();
    for (slug, vcpus, mem, disk, tb) in [
        ("s-1vcpu-1gb", 1, 1024, 25, 1.0),
        ("s-2vcpu-4gb", 2, 4096, 80, 4.0),
        ("s-4vcpu-8gb", 4, 8192, 160, 5.0),
        ("s-8vcpu-32gb-amd", 8, 32768, 400, 10.0),
    ] {
        let (h, m) = price(book, slug, 0.01, 6.0);
        out.push(json!({
            "slug": slug, "memory": mem, "vcpus": vcpus, "disk": disk, "transfer": tb,
            "price_monthly": m, "price_hourly": h, "regions": regions, "available": true,
            "description": "Basic",
        }));
    }
    for i in 0..book.filler {
        let vcpus = 1 << (i % 6);
        out.push(json!({
            "slug": format!("so-{vcpus}vcpu-{}gb-{i}", vcpus * 8), "memory": vcpus * 8192,
            "vcpus": vcpus, "disk": vcpus * 25, "transfer": 4.0,
            "price_monthly": 12.0 * vcpus as f64, "price_hourly": 0.01786 * vcpus as f64,
            "regions": regions, "available": i % 7 != 0, "description": "Memory-Optimized",
        }));
    }
    out
}

fn vultr_plans(book: &PriceBook) -> Vec<Value> {
    let locs = [
        "ewr", "ord", "dfw", "sea", "lax", "ams", "fra", "sgp", "syd", "sjc",
    ];
    let mut out = Vec::new();
    for (id, vcpu, ram, disk, bw, ty) in [
        ("vc2-1c-1gb", 1, 1024, 25, 1024, "vc2"),
        ("vc2-2c-4gb", 2, 4096, 80, 3072, "vc2"),
        ("vhf-4c-16gb", 4, 16384, 384, 5120, "vhf"),
    ] {
        let (h, m) = price(book, id, 0.01, 5.0);
        let l: &[&str] = if ty == "vhf" { &["sea", "syd"] } else { &locs };
        out.push(json!({
            "id": id, "vcpu_count": vcpu, "ram": ram, "disk": disk, "disk_count": 1,
            "bandwidth": bw, "monthly_cost": m, "hourly_cost": h, "type": ty,
            "locations": l, "invoice_type": "hourly",
        }));
    }
    for i in 0..book.filler {
        let vcpu = 1 << (i % 5);
        out.push(json!({
            "id": format!("voc-g-{vcpu}c-{}gb-{i}", vcpu * 4), "vcpu_count": vcpu,
            "ram": vcpu * 4096, "disk": vcpu * 50, "disk_count": 1, "bandwidth": 4096,
            "monthly_cost": 30.0 * vcpu as f64, "hourly_cost": 0.041 * vcpu as f64,
            "type": "voc", "locations": locs, "invoice_type": "hourly",
        }));
    }
    out
}

fn vultr_metal(book: &PriceBook) -> Vec<Value> {
    let (h, m) = price(book, "vbm-4c-32gb", 0.164, 120.0);
    vec![
        json!({
            "id": "vbm-4c-32gb", "cpu_count": 4, "cpu_threads": 8, "cpu_model": "E3-1270v6",
            "ram": 32768, "disk": 240, "disk_count": 2, "bandwidth": 5120, "monthly_cost": m,
            "hourly_cost": h, "type": "SSD", "locations": ["sjc", "sgp"],
        }),
        json!({
            "id": "vbm-6c-32gb", "cpu_count": 6, "cpu_threads": 12, "cpu_model": "E-2286G",
            "ram": 32768, "disk": 960, "disk_count": 2, "bandwidth": 10240, "monthly_cost": 185.0,
            "hourly_cost": 0.253, "type": "SSD", "locations": ["ewr", "sjc"],
        }),
    ]
}

fn linode_types(book: &PriceBook) -> Vec<Value> {
    let mut out = Vec::new();
    for (id, class, vcpus, mem) in [
        ("g6-nanode-1", "nanode", 1, 1024),
        ("g6-standard-1", "standard", 1, 2048),
        ("g6-standard-2", "standard", 2, 4096),
        ("g6-dedicated-2", "dedicated", 2, 4096),
        ("g6-dedicated-4", "dedicated", 4, 8192),
    ] {
        let (h, m) = price(book, id, 0.01, 5.0);
        out.push(json!({
            "id": id, "label": id, "class": class, "vcpus": vcpus, "memory": mem,
            "disk": mem * 25, "transfer": 1000, "network_out": 1000, "gpus": 0,
            "price": {"hourly": h, "monthly": m},
            "region_prices": [
                {"id": "id-cgk", "hourly": h * 1.2, "monthly": m * 1.2},
                {"id": "br-gru", "hourly": h * 1.4, "monthly": m * 1.4}
            ],
            "addons": {"backups": {"price": {"hourly": 0.003, "monthly": 2.0}, "region_prices": []}},
            "successor": null,
        }));
    }
    // GPU: a $0 base price; the figure lives in region_prices.
    out.push(json!({
        "id": "g1-gpu-rtx6000-1", "label": "Dedicated 32 GB + RTX6000 GPU x1", "class": "gpu",
        "vcpus": 8, "memory": 32768, "disk": 655360, "transfer": 16000, "network_out": 10000,
        "gpus": 1, "price": {"hourly": 0.0, "monthly": 0.0},
        "region_prices": [
            {"id": "us-east", "hourly": 1.5, "monthly": 0.0},
            {"id": "eu-central", "hourly": 1.5, "monthly": 0.0}
        ],
        "addons": {"backups": {"price": {"hourly": 0.24, "monthly": 160.0}, "region_prices": []}},
        "successor": null,
    }));
    for i in 0..book.filler.min(70) {
        let vcpus = 1 << (i % 5);
        out.push(json!({
            "id": format!("g7-highmem-{vcpus}-{i}"), "label": "High Memory", "class": "highmem",
            "vcpus": vcpus, "memory": vcpus * 24576, "disk": 20480, "transfer": 5000,
            "network_out": 5000, "gpus": 0,
            "price": {"hourly": 0.09 * vcpus as f64, "monthly": 60.0 * vcpus as f64},
            "region_prices": [], "addons": {"backups": {"price": {"hourly": 0.0075, "monthly": 5.0}, "region_prices": []}},
            "successor": null,
        }));
    }
    out
}

/// Scaleway: which types each zone lists, and their stock there.
fn scaleway(book: &PriceBook, path: &str, page: usize) -> (u16, Value) {
    let rest = path.trim_start_matches("/instance/v1/zones/");
    let (zone, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let listed: &[(&str, &str)] = match zone {
        "fr-par-1" => &[
            ("DEV1-S", "available"),
            ("DEV1-M", "available"),
            ("PLAY2-NANO", "available"),
            ("BASIC2-A2C-4G", "scarce"),
            ("RENDER-S", "available"),
        ],
        "fr-par-2" => &[
            ("DEV1-S", "available"),
            ("DEV1-M", "available"),
            ("PLAY2-NANO", "available"),
            ("BASIC2-A2C-4G", "available"),
            ("H100-1-80G", "scarce"),
        ],
        "nl-ams-1" => &[
            ("DEV1-S", "available"),
            ("DEV1-M", "shortage"),
            ("PLAY2-NANO", "available"),
        ],
        "nl-ams-2" => &[("PLAY2-NANO", "available")],
        "pl-waw-1" => &[
            ("DEV1-S", "available"),
            ("DEV1-M", "available"),
            ("PLAY2-NANO", "available"),
        ],
        _ => {
            return (
                404,
                json!({"message": "zone not found", "type": "not_found"}),
            )
        }
    };
    let shape = |t: &str| -> (u32, u64, f64) {
        match t {
            "DEV1-S" => (2, 2, 0.008976),
            "DEV1-M" => (3, 4, 0.02019),
            "PLAY2-NANO" => (2, 4, 0.02754),
            "BASIC2-A2C-4G" => (2, 4, 0.023),
            "RENDER-S" => (10, 42, 1.221),
            "H100-1-80G" => (24, 240, 2.73),
            _ => (1, 1, 0.01),
        }
    };
    let mut servers = serde_json::Map::new();
    let mut avail = serde_json::Map::new();
    if page == 1 {
        for (t, stock) in listed {
            let (cpu, gb, h0) = shape(t);
            let (h, _) = price(book, t, h0, h0 * 730.0);
            servers.insert(
                t.to_string(),
                json!({
                    "ncpus": cpu, "ram": gb * 1_073_741_824,
                    "arch": if t.starts_with("BASIC2-A") { "arm64" } else { "x86_64" },
                    "hourly_price": h, "monthly_price": (h * 730.0 * 100.0).round() / 100.0,
                    "volumes_constraint": {"min_size": 0, "max_size": 0},
                    "baremetal": false, "alt_names": [],
                }),
            );
            avail.insert(t.to_string(), json!({"availability": stock}));
        }
        for i in 0..book.filler.min(60) {
            let n = 1u64 << (i % 5);
            let t = format!("POP2-{n}C-{}G-{i}", 4 * n);
            servers.insert(
                t.clone(),
                json!({
                    "ncpus": n, "ram": 4 * n * 1_073_741_824, "arch": "x86_64",
                    "hourly_price": 0.05 * n as f64, "monthly_price": 36.5 * n as f64,
                }),
            );
            avail.insert(t, json!({"availability": "available"}));
        }
    }
    if tail.ends_with("/availability") {
        (200, json!({"servers": avail}))
    } else {
        (200, json!({"servers": servers}))
    }
}
