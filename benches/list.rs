//! List benchmark: `capsule openmesh list` over 7 providers whose APIs each take 100 ms per
//! call, against `list --provider p1` alone. Listing is concurrent, so 7 providers should cost
//! about what one does (the goal is ≤ 1.2×).
//!
//! The 7 providers are clones of the embedded DigitalOcean description under the ids `p1`…`p7`
//! (a `--catalog` overlay: adding a provider is adding files). Each points at its own local
//! server through `CAPSULE_ENDPOINT_P<n>`.
//!
//! Run: `cargo bench --bench list` (env `LIST_RUNS`, default 10; `LIST_LATENCY_MS`, default 100).

use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PROVIDERS: usize = 7;

/// A droplet API that lists 3 tagged droplets after `latency`, and answers the account call.
fn start_mock(latency: Duration) -> String {
    let server = std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind"));
    let url = format!(
        "http://{}",
        server.server_addr().to_ip().expect("ip address")
    );
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            std::thread::spawn(move || {
                std::thread::sleep(latency);
                let path = req.url().split('?').next().unwrap_or("").to_string();
                let body = if path == "/v2/droplets" {
                    let droplets: Vec<_> = (1..=3)
                        .map(|i| {
                            json!({
                                "id": i, "name": format!("node-{i}"), "status": "active",
                                "size_slug": "s-1vcpu-1gb", "region": {"slug": "nyc3"},
                                "tags": ["capsule", format!("capsule-{i:012}")],
                                "networks": {"v4": [{"ip_address": format!("203.0.113.{i}"), "type": "public"}]},
                                "created_at": "2026-01-01T00:00:00Z",
                            })
                        })
                        .collect();
                    json!({"droplets": droplets, "links": {}, "meta": {"total": 3}})
                } else {
                    json!({"account": {"uuid": "bench", "status": "active"}})
                };
                let header = tiny_http::Header::from_bytes("Content-Type", "application/json")
                    .expect("header");
                let _ = req.respond(
                    tiny_http::Response::from_string(body.to_string()).with_header(header),
                );
            });
        }
    });
    url
}

fn capsule() -> Command {
    Command::new(env!("CARGO_BIN_EXE_capsule"))
}

/// Write p1…p7 as copies of the embedded DigitalOcean files, each with its own token variable.
fn overlay(dir: &std::path::Path) {
    let export = dir.join("export");
    let status = capsule()
        .args(["openmesh", "catalog", "export"])
        .arg(&export)
        .stdout(Stdio::null())
        .status()
        .expect("run capsule");
    assert!(status.success(), "catalog export failed");
    let provider = std::fs::read_to_string(export.join("digitalocean/provider.toml")).unwrap();
    let api = std::fs::read_to_string(export.join("digitalocean/api.toml")).unwrap();
    let overlay = dir.join("overlay");
    for n in 1..=PROVIDERS {
        let folder = overlay.join(format!("p{n}"));
        std::fs::create_dir_all(&folder).unwrap();
        let p = provider
            .replace("id = \"digitalocean\"", &format!("id = \"p{n}\""))
            .replace(
                "\"DIGITALOCEAN_TOKEN\", \"DIGITALOCEAN_ACCESS_TOKEN\"",
                &format!("\"P{n}_TOKEN\""),
            );
        std::fs::write(folder.join("provider.toml"), p).unwrap();
        std::fs::write(
            folder.join("api.toml"),
            api.replace("\"DIGITALOCEAN_API_URL\"", &format!("\"P{n}_API_URL\"")),
        )
        .unwrap();
    }
}

fn run(
    args: &[&str],
    env: &[(String, String)],
    home: &std::path::Path,
    catalog: &std::path::Path,
) -> Duration {
    let start = Instant::now();
    let out = capsule()
        .args(args)
        .env_clear()
        .env("CAPSULE_HOME", home)
        .env("CAPSULE_CATALOG", catalog)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("run capsule");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs: usize = std::env::var("LIST_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let latency = Duration::from_millis(
        std::env::var("LIST_LATENCY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100),
    );
    let dir = tempfile::tempdir().unwrap();
    overlay(dir.path());
    let catalog = dir.path().join("overlay");
    let home = dir.path().join("home");
    let mut env = Vec::new();
    for n in 1..=PROVIDERS {
        env.push((format!("CAPSULE_ENDPOINT_P{n}"), start_mock(latency)));
        env.push((format!("P{n}_TOKEN"), format!("bench-token-{n}")));
    }
    let mut providers: Vec<String> = vec!["openmesh".into(), "list".into()];
    for n in 1..=PROVIDERS {
        providers.push("--provider".into());
        providers.push(format!("p{n}"));
    }
    let all: Vec<&str> = providers.iter().map(String::as_str).collect();
    let one = ["openmesh", "list", "--provider", "p1"];
    // Warm up (page cache, state store creation).
    run(&one, &env, &home, &catalog);
    let (mut t_one, mut t_all) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..runs {
        t_one += run(&one, &env, &home, &catalog);
        t_all += run(&all, &env, &home, &catalog);
    }
    let one_ms = t_one.as_secs_f64() * 1000.0 / runs as f64;
    let all_ms = t_all.as_secs_f64() * 1000.0 / runs as f64;
    println!(
        "list, {} ms per call: 1 provider {one_ms:.1} ms, {PROVIDERS} providers {all_ms:.1} ms, ratio {:.2}× (goal ≤ 1.2×), {runs} runs each",
        latency.as_millis(),
        all_ms / one_ms
    );
}
