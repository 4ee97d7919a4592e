//! Refresh benchmark: `catalog refresh --all-plans` of every provider with a price list against
//! local servers answering full-size lists, then commands on the refreshed catalog.
//!
//! - The price lists: the test suite's price servers (`tests/it/support/mock/prices.rs`, in the
//!   shape of each official spec) with `REFRESH_PLANS` extra plans per list (default 1800, so
//!   that the refreshed catalog has more than 30,000 offers), and a Hivelocity inventory of
//!   `REFRESH_PLANS / 18` products in each of its 25 facilities.
//! - AWS: the test suite's `GetProducts` server (`tests/it/support/mock/aws_pricing.rs`: SigV4
//!   scope checked, `PriceList` items as JSON strings) with `REFRESH_AWS_TYPES` (default 800)
//!   instance types besides the catalog's own in each of the 5 regions, at most 100 a
//!   `NextToken` page (9 pages a region).
//! - Measured as whole processes: wall time and peak RSS (`/usr/bin/time`) of the refresh;
//!   `templates --min-cpu 4 --min-memory 8 --limit 5` on the refreshed catalog against the same
//!   command with `--embedded-only` (the baseline, same run), median of `REFRESH_RUNS` (20).
//!
//! - The refresh is run `REFRESH_RSS_RUNS` (3) times, each in a fresh home; the median wall,
//!   CPU (user + sys) and peak RSS are shown. With `REFRESH_BASELINE_BIN` (another capsule
//!   binary, e.g. a build of an earlier commit) its refresh is run as many times, alternating
//!   with this one against the same servers, and the ratios are shown.
//!
//! Run: `cargo bench --bench refresh` (env `REFRESH_PLANS`, `REFRESH_AWS_TYPES`,
//! `REFRESH_RUNS`, `REFRESH_RSS_RUNS`, `REFRESH_BASELINE_BIN`; `REFRESH_BIN` measures another
//! binary than this build's; `REFRESH_WRAP`, e.g. `heaptrack -o /tmp/refresh`, runs the
//! refresh under a profiler).

#[path = "../tests/it/support/mock/prices.rs"]
#[allow(dead_code)]
mod prices;

#[path = "../tests/it/support/mock/aws_pricing.rs"]
#[allow(dead_code)]
mod aws_pricing;

use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Hivelocity's `GET /api/v2/inventory/product?group_by=flat`: `Stock` rows (swagger), `per`
/// products in each facility, the catalog's five among them.
fn start_inventory(per: usize) -> String {
    const FACILITIES: &[&str] = &[
        "ATL2", "TPA1", "TPA2", "LAX2", "LAX3", "NYC1", "MIA1", "DAL1", "SEA1", "ORD1", "IAD3",
        "SLC1", "YYZ2", "AMS1", "FRA1", "LHR2", "SIN1", "NRT2", "BOM1", "DEL1", "PNQ1", "POZ1",
        "RIX1", "VNO1", "IND1",
    ];
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", server.server_addr().to_ip().expect("ip"));
    let rows = |gpu: bool| -> Value {
        let mut out = Vec::new();
        for (f, dc) in FACILITIES.iter().enumerate() {
            for n in 0..per {
                let cores = 4u32 << (n % 4);
                let hourly = 0.03 * f64::from(cores) + (n % 7) as f64 / 100.0;
                out.push(json!({
                    "product_id": 400 + n + if gpu { 10_000 } else { 0 }, "product_name": format!("Server {n}"),
                    "data_center": dc, "stock": if (n + f) % 5 == 0 { "unavailable" } else { "available" },
                    "product_cpu": format!("Xeon {n}"), "product_cpu_cores": format!("{cores} Cores"),
                    "processor_info": {"cores": cores, "threads": cores * 2, "sockets": 1, "vCPUs": cores * 2},
                    "product_memory": format!("{}GB", cores * 8), "product_drive": "960GB SSD",
                    "product_gpu": if gpu { "1x NVIDIA RTX 4090" } else { "" },
                    "product_bandwidth": "20TB", "product_hourly_price": hourly,
                    "product_monthly_price": (hourly * 720.0).round(), "hourly_location_premium": 0.0,
                    "monthly_location_premium": 0.0, "product_disabled_billing_periods": ["triennial"],
                    "is_vps": n % 3 == 0, "is_sps": n % 3 != 0, "core": true, "edge": false,
                    "location_option_id": 1, "product_on_sale": false,
                }));
            }
        }
        Value::Array(out)
    };
    let (main, gpu) = (rows(false).to_string(), rows(true).to_string());
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let body = if req.url().contains("location=GPU") {
                gpu.clone()
            } else {
                main.clone()
            };
            let header =
                tiny_http::Header::from_bytes("Content-Type", "application/json").expect("header");
            let _ = req.respond(tiny_http::Response::from_string(body).with_header(header));
        }
    });
    url
}

/// A capsule command (`bin`, under `wrap` if not empty) in `home`, pointed at the servers, with
/// every provider's credentials.
fn capsule(
    bin: &str,
    wrap: &[String],
    home: &std::path::Path,
    prices: &str,
    inventory: &str,
    aws: &str,
) -> Command {
    let mut c = Command::new("/usr/bin/time");
    c.args(["-f", "%U %S %M"]).args(wrap).arg(bin);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CAPSULE_HOME", home)
        .env("HOME", home)
        .env("NO_COLOR", "1");
    for p in ["DIGITALOCEAN", "VULTR", "LINODE", "SCALEWAY"] {
        c.env(format!("CAPSULE_ENDPOINT_{p}"), prices);
    }
    c.env("CAPSULE_ENDPOINT_HIVELOCITY", inventory);
    c.env("CAPSULE_ENDPOINT_AWS", aws);
    for (k, v) in [
        ("DIGITALOCEAN_TOKEN", "do-token"),
        ("VULTR_API_KEY", "vultr-key"),
        ("LINODE_TOKEN", "linode-token"),
        ("SCW_SECRET_KEY", "scw-secret"),
        ("SCW_ACCESS_KEY", "SCWXXXXXXXXXXXXXXXXX"),
        (
            "SCW_DEFAULT_PROJECT_ID",
            "11111111-1111-1111-1111-111111111111",
        ),
        ("HIVELOCITY_API_KEY", "hive-key"),
        ("AWS_ACCESS_KEY_ID", "AKIAMOCKTEST00000001"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "aws-secret-key-for-the-pricing-mock",
        ),
    ] {
        c.env(k, v);
    }
    c
}

/// One whole-process run: wall, CPU time (user + sys), peak RSS in KB.
#[derive(Clone, Copy)]
struct Cost {
    wall: Duration,
    cpu: f64,
    rss: u64,
}

/// Run once: the cost, stdout.
fn run(mut c: Command, args: &[&str]) -> (Cost, String) {
    c.args(args).stdin(Stdio::null());
    let t = Instant::now();
    let out = c.output().expect("run capsule");
    let wall = t.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed: {stderr}");
    let last: Vec<f64> = stderr
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let (cpu, rss) = match last[..] {
        [u, s, m] => (u + s, m as u64),
        _ => (0.0, 0),
    };
    (
        Cost { wall, cpu, rss },
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The median of each figure of `runs` (each figure on its own).
fn median_cost(runs: &[Cost]) -> Cost {
    let mut wall: Vec<Duration> = runs.iter().map(|c| c.wall).collect();
    let mut cpu: Vec<f64> = runs.iter().map(|c| c.cpu).collect();
    let mut rss: Vec<u64> = runs.iter().map(|c| c.rss).collect();
    cpu.sort_by(f64::total_cmp);
    rss.sort();
    Cost {
        wall: median(std::mem::take(&mut wall)),
        cpu: cpu[cpu.len() / 2],
        rss: rss[rss.len() / 2],
    }
}

fn show(c: &Cost) -> String {
    format!(
        "{:.0} ms wall, {:.2} s CPU, {:.1} MB peak RSS",
        ms(c.wall),
        c.cpu,
        c.rss as f64 / 1024.0
    )
}

const REFRESH: &[&str] = &[
    "openmesh",
    "catalog",
    "refresh",
    "--all-plans",
    "-o",
    "json",
];

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let plans = env_num("REFRESH_PLANS", 1800);
    let runs = env_num("REFRESH_RUNS", 20).max(1);
    let book = prices::PriceBook {
        filler: plans,
        ..Default::default()
    };
    let server = prices::PriceServer::start(book);
    let inventory = start_inventory((plans / 18).max(5));
    let aws_types = env_num("REFRESH_AWS_TYPES", 800);
    let aws = aws_pricing::PricingServer::start(aws_pricing::Pricing {
        filler: aws_types,
        page_cap: 100,
        ..Default::default()
    });
    let this = std::env::var("REFRESH_BIN").unwrap_or(env!("CARGO_BIN_EXE_capsule").to_string());
    let baseline_bin = std::env::var("REFRESH_BASELINE_BIN").ok();
    let wrap: Vec<String> = std::env::var("REFRESH_WRAP")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let rss_runs = env_num("REFRESH_RSS_RUNS", 3).max(1);
    let refresh = |bin: &str| -> (Cost, tempfile::TempDir) {
        let home = tempfile::tempdir().expect("temp home");
        let c = capsule(bin, &wrap, home.path(), &server.url, &inventory, &aws.url);
        (run(c, REFRESH).0, home)
    };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut home = None;
    for _ in 0..rss_runs {
        if let Some(b) = &baseline_bin {
            theirs.push(refresh(b).0);
        }
        let (c, h) = refresh(&this);
        ours.push(c);
        home = Some(h);
    }
    let home = home.expect("one refresh");
    let pages = aws.seen().len();
    let layer = std::fs::metadata(home.path().join("catalog/layer.json"))
        .map(|m| m.len())
        .unwrap_or(0);
    let cost = median_cost(&ours);
    println!(
        "refresh --all-plans ({plans} extra plans a list; AWS {} instance types x {} regions in {} GetProducts pages a refresh), median of {rss_runs}: {}, layer {:.1} MB",
        aws_types + 4,
        aws_pricing::REGIONS.len(),
        pages / (rss_runs * (1 + usize::from(baseline_bin.is_some()))),
        show(&cost),
        layer as f64 / 1e6
    );
    if let Some(b) = &baseline_bin {
        let base = median_cost(&theirs);
        println!(
            "  baseline {b} (same run, alternating): {}; this/baseline: wall {:.2}, CPU {:.2}, peak RSS {:.2}",
            show(&base),
            cost.wall.as_secs_f64() / base.wall.as_secs_f64(),
            cost.cpu / base.cpu,
            cost.rss as f64 / base.rss as f64
        );
    }
    assert!(
        pages >= aws_pricing::REGIONS.len() * (aws_types + 4).div_ceil(100),
        "AWS read in full: {pages} pages"
    );
    let cmd = || capsule(&this, &[], home.path(), &server.url, &inventory, &aws.url);
    let (_, all) = run(cmd(), &["openmesh", "templates", "-o", "json"]);
    let all: Value = serde_json::from_str(&all).expect("templates JSON");
    let offers: u64 = all
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t["regions"].as_array().map_or(0, |r| r.len() as u64))
        .sum();
    println!(
        "refreshed catalog: {} templates, {offers} offers",
        all.as_array().map_or(0, Vec::len)
    );

    let query = [
        "openmesh",
        "templates",
        "--min-cpu",
        "4",
        "--min-memory",
        "8",
        "--limit",
        "5",
        "-o",
        "json",
    ];
    let mut baseline = query.to_vec();
    baseline.push("--embedded-only");
    let (mut base, mut refreshed, mut peak) = (Vec::new(), Vec::new(), 0);
    for _ in 0..runs {
        base.push(run(cmd(), &baseline).0.wall);
        let (c, _) = run(cmd(), &query);
        refreshed.push(c.wall);
        peak = peak.max(c.rss);
    }
    let (b, r) = (median(base), median(refreshed));
    println!(
        "templates --min-cpu 4 --min-memory 8 --limit 5, median of {runs}: embedded only {:.1} ms, refreshed {:.1} ms ({:.2}×), peak RSS {:.1} MB",
        ms(b),
        ms(r),
        r.as_secs_f64() / b.as_secs_f64(),
        peak as f64 / 1024.0
    );
}
