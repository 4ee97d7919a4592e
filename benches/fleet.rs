//! Fleet benchmark: `capsule openmesh deploy --count 100 --parallel 10` against a local
//! DigitalOcean-shaped API that sleeps 50 ms before answering every call. Reports the wall time of
//! the whole command (process start, plan, 100 recorded intents, the creates, 100 recorded
//! results, the result table) against the ideal `calls × latency ÷ parallel`.
//!
//! Run: `cargo bench --bench fleet` (env `FLEET_RUNS`, default 5; `FLEET_LATENCY_MS`, default 50).
//! Plain `main` (harness = false): one sample is a whole fleet, too long for criterion's sampling.
//! The server is a few lines of HTTP/1.1 on `std::net` (a thread per connection, keep-alive), so
//! its own costs stay out of the figures.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A minimal droplet API: create, get (always active with an address), list by tag, account.
struct Mock {
    url: String,
    calls: Arc<AtomicUsize>,
    creates: Arc<AtomicUsize>,
}

fn droplet(id: u64, name: &str, region: &str, size: &str, tags: &Value, active: bool) -> Value {
    let networks = if active {
        json!({"v4": [{"ip_address": format!("203.0.113.{}", id % 250), "type": "public"}]})
    } else {
        json!({"v4": []})
    };
    json!({
        "id": id, "name": name, "status": if active { "active" } else { "new" },
        "size_slug": size, "region": {"slug": region}, "tags": tags, "networks": networks,
        "created_at": "2026-01-01T00:00:00Z",
    })
}

/// One parsed request: method, target, body.
type Req = (String, String, String);

/// Read one HTTP/1.1 request (headers, then a `Content-Length` body); `None` at EOF.
fn read_request(r: &mut BufReader<TcpStream>) -> Option<Req> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((method, target, String::from_utf8_lossy(&body).into_owned()))
}

/// Answer one request after `latency`.
fn answer(req: Req, nodes: &Mutex<Vec<Value>>, creates: &AtomicUsize) -> (u16, Value) {
    let (method, target, body) = req;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    match (method.as_str(), path) {
        ("POST", "/v2/droplets") => {
            let b: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let n = creates.fetch_add(1, Ordering::SeqCst) as u64 + 1;
            let s = |k: &str| b[k].as_str().unwrap_or("").to_string();
            let d = droplet(
                500_000_000 + n,
                &s("name"),
                &s("region"),
                &s("size"),
                &b["tags"],
                false,
            );
            nodes.lock().unwrap().push(d.clone());
            (202, json!({ "droplet": d }))
        }
        ("GET", "/v2/droplets") => {
            let tag = query
                .split('&')
                .find_map(|p| p.strip_prefix("tag_name="))
                .unwrap_or("");
            let list: Vec<Value> = nodes
                .lock()
                .unwrap()
                .iter()
                .filter(|d| {
                    tag.is_empty()
                        || d["tags"]
                            .as_array()
                            .is_some_and(|t| t.iter().any(|x| x == tag))
                })
                .cloned()
                .collect();
            let total = list.len();
            (
                200,
                json!({"droplets": list, "links": {}, "meta": {"total": total}}),
            )
        }
        ("GET", "/v2/account") => (
            200,
            json!({"account": {"email": "bench@example.com", "status": "active"}}),
        ),
        ("GET", p) if p.starts_with("/v2/droplets/") => {
            let id: u64 = p.trim_start_matches("/v2/droplets/").parse().unwrap_or(0);
            let found = nodes
                .lock()
                .unwrap()
                .iter()
                .find(|d| d["id"] == id)
                .cloned();
            match found {
                Some(d) => {
                    let s = |k: &str| d[k].as_str().unwrap_or("").to_string();
                    let region = d["region"]["slug"].as_str().unwrap_or("").to_string();
                    (
                        200,
                        json!({"droplet": droplet(id, &s("name"), &region, &s("size_slug"), &d["tags"], true)}),
                    )
                }
                None => (
                    404,
                    json!({"id": "not_found", "message": "The resource you were accessing could not be found."}),
                ),
            }
        }
        _ => (404, json!({"id": "not_found", "message": "not modelled"})),
    }
}

/// A thread per connection, keep-alive, every answer after `latency`.
fn start_mock(latency: Duration) -> Mock {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let calls = Arc::new(AtomicUsize::new(0));
    let creates = Arc::new(AtomicUsize::new(0));
    let nodes: Arc<Mutex<Vec<Value>>> = Arc::default();
    let (c1, c2) = (calls.clone(), creates.clone());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (calls, creates, nodes) = (c1.clone(), c2.clone(), nodes.clone());
            std::thread::spawn(move || {
                let _ = stream.set_nodelay(true);
                let mut out = stream.try_clone().expect("clone stream");
                let mut reader = BufReader::new(stream);
                while let Some(req) = read_request(&mut reader) {
                    calls.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(latency);
                    let (status, body) = answer(req, &nodes, &creates);
                    let body = body.to_string();
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    if out
                        .write_all(head.as_bytes())
                        .and_then(|_| out.write_all(body.as_bytes()))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Mock {
        url,
        calls,
        creates,
    }
}

struct Sample {
    wall: Duration,
    calls: usize,
    creates: usize,
}

fn run_fleet(latency: Duration, count: usize, parallel: usize, wait: bool) -> Sample {
    let mock = start_mock(latency);
    let home = tempfile::tempdir().expect("home");
    let count_s = count.to_string();
    let parallel_s = parallel.to_string();
    let mut args = vec![
        "openmesh",
        "deploy",
        "--provider",
        "digitalocean",
        "--template",
        "do-small",
        "--name-prefix",
        "bench",
        "--count",
        &count_s,
        "--parallel",
        &parallel_s,
        "--no-user-data",
        "--yes",
        "-o",
        "json",
    ];
    if wait {
        args.push("--wait");
    }
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_capsule"))
        .args(&args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CAPSULE_HOME", home.path())
        .env("HOME", home.path())
        .env("NO_COLOR", "1")
        .env("CAPSULE_POLL_INTERVAL_MS", latency.as_millis().to_string())
        .env("DIGITALOCEAN_TOKEN", "bench-token-0123456789")
        .env("CAPSULE_ENDPOINT_DIGITALOCEAN", &mock.url)
        .stdin(Stdio::null())
        .output()
        .expect("run capsule");
    let wall = started.elapsed();
    assert!(
        out.status.success(),
        "capsule failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Sample {
        wall,
        calls: mock.calls.load(Ordering::SeqCst),
        creates: mock.creates.load(Ordering::SeqCst),
    }
}

fn report(label: &str, latency: Duration, parallel: usize, samples: &mut [Sample]) {
    samples.sort_by_key(|s| s.wall);
    let best = &samples[0];
    let median = &samples[samples.len() / 2];
    let calls = median.calls;
    let ideal = latency.mul_f64(calls as f64 / parallel as f64);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{label}: {} creates, {calls} calls, ideal {:.0} ms; wall median {:.0} ms ({:.2}× ideal), best {:.0} ms ({:.2}×), over {} runs",
        median.creates,
        ms(ideal),
        ms(median.wall),
        median.wall.as_secs_f64() / ideal.as_secs_f64(),
        ms(best.wall),
        best.wall.as_secs_f64() / ideal.as_secs_f64(),
        samples.len()
    );
}

fn main() {
    // `cargo test --benches` runs bench targets with `--bench` absent: do one quick run only.
    let quick = !std::env::args().any(|a| a == "--bench");
    let env_num = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let runs = if quick {
        1
    } else {
        env_num("FLEET_RUNS", 5) as usize
    };
    let latency = Duration::from_millis(env_num("FLEET_LATENCY_MS", 50));
    let (count, parallel) = (100, 10);
    let mut samples: Vec<Sample> = (0..runs)
        .map(|_| run_fleet(latency, count, parallel, false))
        .collect();
    report("fleet 100 --parallel 10", latency, parallel, &mut samples);
    let mut samples: Vec<Sample> = (0..runs)
        .map(|_| run_fleet(latency, count, parallel, true))
        .collect();
    report(
        "fleet 100 --parallel 10 --wait",
        latency,
        parallel,
        &mut samples,
    );
}
