//! Issue 9, the HTTP layer against hostile servers (`support::hostile`), through the CLI:
//! redirects (1), unreadable answers (3), deep XML and JSON (4), a token echoed across the
//! excerpt's cut (6), endless and huge bodies (7), next links to other hosts (8), listings cut
//! off (13), terminal escapes from providers (16) and `Retry-After` past the deadline (17).
//! Every test fails without its fix; none measures time.

use crate::support::hostile::{Hostile, Reply, Seen};
use crate::support::{capsule, Capsule, Output};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "hOsTiLe7TOKENq9w8e7r6t5y4u3i2o1p0aZsXdCfVgBhN";
const ACCESS_KEY: &str = "AKIAHOSTILEQ7Z3K9W2X";
const SECRET_KEY: &str = "hOsTiLeSECRETwJalrK7MDENGbPxRfiCYzQ9xK3m";

fn om(args: &[&str]) -> Vec<String> {
    std::iter::once("openmesh")
        .chain(args.iter().copied())
        .map(String::from)
        .collect()
}

/// capsule with DigitalOcean pointed at `server`.
fn digitalocean(server: &Hostile) -> Capsule {
    capsule()
        .env("CAPSULE_ENDPOINT_DIGITALOCEAN", server.url())
        .env("DIGITALOCEAN_TOKEN", TOKEN)
}

/// capsule with AWS EC2 pointed at `server`.
fn aws(server: &Hostile) -> Capsule {
    capsule()
        .env("CAPSULE_ENDPOINT_AWS", server.url())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
}

#[track_caller]
fn run(cli: &Capsule, args: &[&str], want: i32) -> Output {
    let out = cli.run_args(&om(args));
    assert_eq!(
        out.code, want,
        "capsule {args:?} exited {} (wanted {want})\n--- stdout\n{}\n--- stderr\n{}",
        out.code, out.stdout, out.stderr
    );
    assert!(
        !out.stderr.contains("internal error") && !out.stderr.contains("panicked"),
        "{}",
        out.stderr
    );
    assert_no_secret(&out);
    out
}

#[track_caller]
fn assert_no_secret(out: &Output) {
    for s in [TOKEN, SECRET_KEY] {
        // Any 12-character piece of a secret is a leak.
        for start in 0..=s.len() - 12 {
            let piece = &s[start..start + 12];
            assert!(
                !out.stdout.contains(piece) && !out.stderr.contains(piece),
                "a piece of a secret leaked: {piece}\n--- stdout\n{}\n--- stderr\n{}",
                out.stdout,
                out.stderr
            );
        }
    }
}

/// A DigitalOcean droplet as the API shows it (OpenAPI `droplet`, the fields capsule reads).
fn droplet(id: u64, name: &str, tags: &[&str]) -> Value {
    json!({
        "id": id, "name": name, "status": "active", "memory": 1024, "vcpus": 1, "disk": 25,
        "created_at": "2026-11-30T10:00:00Z", "size_slug": "s-1vcpu-1gb",
        "networks": {"v4": [{"ip_address": "203.0.113.7", "netmask": "255.255.255.0",
                             "gateway": "203.0.113.1", "type": "public"}], "v6": []},
        "region": {"slug": "nyc1", "name": "New York 1"},
        "tags": tags,
    })
}

/// A droplet list page (OpenAPI `droplets_list`): `links.pages.next` when `next` is given.
fn page(droplets: Vec<Value>, next: Option<&str>, total: u64) -> String {
    let mut links = json!({});
    if let Some(n) = next {
        links = json!({"pages": {"next": n}});
    }
    json!({"droplets": droplets, "links": links, "meta": {"total": total}}).to_string()
}

/// The `page` query parameter of a request path (1 when absent).
fn page_no(path: &str) -> u64 {
    path.split_once('?')
        .map_or("", |(_, q)| q)
        .split('&')
        .find_map(|kv| kv.strip_prefix("page="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

fn account() -> Reply {
    Reply::json(
        200,
        json!({"account": {"droplet_limit": 25, "email": "a@example.com", "uuid": "x",
                "email_verified": true, "status": "active"}})
        .to_string(),
    )
}

// ---- 1: redirects ---------------------------------------------------------------------------

#[test]
fn a_redirect_is_an_error_and_no_key_leaves() {
    let thief = Hostile::start(|_| Reply::json(200, "{}"));
    let target = format!("http://127.0.0.1:{}/steal", thief.port());
    for (provider, env_key, path) in [
        ("hivelocity", "HIVELOCITY_API_KEY", "/api/v2/profile/"),
        ("digitalocean", "DIGITALOCEAN_TOKEN", "/v2/account"),
    ] {
        for status in [301u16, 302, 307, 308] {
            let t = target.clone();
            let server = Hostile::start(move |_| Reply::status(status, &[("Location", &t)], ""));
            let endpoint = format!("CAPSULE_ENDPOINT_{}", provider.to_uppercase());
            let cli = capsule().env(&endpoint, server.url()).env(env_key, TOKEN);
            let out = run(&cli, &["provider", "verify", provider], 1);
            assert!(
                out.stderr.contains("redirect") && out.stderr.contains(&target),
                "{provider} {status}: the error names the redirect and its target:\n{}",
                out.stderr
            );
            let out = run(&cli, &["list", "--provider", provider], 1);
            assert!(out.stderr.contains(&target), "{}", out.stderr);
            assert!(
                server.requests().iter().any(|r| r.path.starts_with(path)),
                "{:?}",
                server.requests()
            );
        }
    }
    assert!(
        thief.requests().is_empty(),
        "a redirect took a request (and its key) elsewhere: {:?}",
        thief.requests()
    );
}

#[test]
fn a_redirect_on_create_is_an_error_and_creates_nothing_elsewhere() {
    let thief = Hostile::start(|_| Reply::json(202, "{}"));
    let target = format!("http://127.0.0.1:{}/v2/droplets", thief.port());
    let server = Hostile::start(move |r| match r.method.as_str() {
        "POST" => Reply::status(307, &[("Location", &target)], ""),
        _ => Reply::json(200, page(vec![], None, 0)),
    });
    let cli = digitalocean(&server);
    let out = run(
        &cli,
        &[
            "deploy",
            "--provider",
            "digitalocean",
            "--template",
            "do-small",
            "--name",
            "redir-1",
            "--yes",
        ],
        1,
    );
    assert!(out.stderr.contains("redirect"), "{}", out.stderr);
    assert!(thief.requests().is_empty(), "{:?}", thief.requests());
}

// ---- 3: unreadable answers ------------------------------------------------------------------

#[test]
fn an_unreadable_listing_is_an_error_not_an_empty_list() {
    let deep_json = format!("{{\"droplets\": {}{}}}", "[".repeat(200), "]".repeat(200));
    let bodies: Vec<(&str, String)> = vec![
        (
            "truncated JSON",
            r#"{"droplets": [{"id": 1, "name": "web"#.to_string(),
        ),
        (
            "an HTML proxy page",
            "<html><body><h1>502 Bad Gateway</h1></body></html>".to_string(),
        ),
        ("{}", "{}".to_string()),
        ("JSON deeper than 128", deep_json),
        ("an empty body", String::new()),
        (
            "a list at the wrong place",
            r#"{"servers": []}"#.to_string(),
        ),
    ];
    for (what, body) in bodies {
        let b = body.clone();
        let server = Hostile::start(move |r| {
            if r.path.starts_with("/v2/droplets") {
                Reply::json(200, b.clone())
            } else {
                account()
            }
        });
        let cli = digitalocean(&server);
        let out = run(
            &cli,
            &["list", "--provider", "digitalocean", "-o", "json"],
            1,
        );
        assert!(
            out.stderr.contains("digitalocean") && out.stderr.contains("`list` answer"),
            "{what}: names the provider and the answer:\n{}",
            out.stderr
        );
        assert!(out.stdout.trim().is_empty() || out.stdout.trim() == "[]");
    }
    // Bad XML from EC2.
    let server = Hostile::start(|_| {
        Reply::status(
            200,
            &[("Content-Type", "text/xml")],
            "<?xml version=\"1.0\"?><DescribeInstancesResponse><reservationSet><item>",
        )
    });
    let out = run(&aws(&server), &["list", "--provider", "aws"], 1);
    assert!(
        out.stderr.contains("aws") && out.stderr.contains("invalid XML"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_get_without_the_node_is_an_error_not_deleted() {
    for body in ["{}", "<html>maintenance</html>", r#"{"droplet": "#] {
        let server = Hostile::start(move |_| Reply::json(200, body));
        let out = run(
            &digitalocean(&server),
            &["status", "digitalocean:3164444", "-o", "json"],
            1,
        );
        assert!(
            out.stderr.contains("`get` answer"),
            "{body}: {}",
            out.stderr
        );
        assert!(!out.stdout.contains("deleted"), "{}", out.stdout);
    }
}

/// A server whose droplet list answers as `mode` says: a node is deployed first, then the
/// listing goes bad and `sync --forget --yes` must neither succeed nor forget the node.
fn sync_server(
    bad_list: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
) -> (Hostile, Arc<Mutex<bool>>) {
    let bad = Arc::new(Mutex::new(false));
    let b = bad.clone();
    let created: Arc<Mutex<Option<Value>>> = Arc::default();
    let server = Hostile::start(move |r| {
        let path = r.path.split('?').next().unwrap_or_default();
        match (r.method.as_str(), path) {
            ("GET", "/v2/account") => account(),
            ("POST", "/v2/droplets") => {
                let req: Value = serde_json::from_str(&r.body).unwrap_or_default();
                let tags: Vec<&str> = req["tags"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let d = droplet(3164444, req["name"].as_str().unwrap_or(""), &tags);
                *created.lock().unwrap() = Some(d.clone());
                Reply::json(202, json!({"droplet": d}).to_string())
            }
            ("GET", "/v2/droplets") if *b.lock().unwrap() => bad_list(r),
            ("GET", "/v2/droplets") => {
                let all: Vec<Value> = created.lock().unwrap().iter().cloned().collect();
                let n = all.len() as u64;
                Reply::json(200, page(all, None, n))
            }
            ("GET", p) if p.starts_with("/v2/droplets/") => match &*created.lock().unwrap() {
                Some(d) => Reply::json(200, json!({"droplet": d}).to_string()),
                None => Reply::json(404, r#"{"id":"not_found","message":"not found"}"#),
            },
            _ => Reply::json(404, r#"{"id":"not_found","message":"not found"}"#),
        }
    });
    (server, bad)
}

#[track_caller]
fn sync_keeps_the_node(name: &str, bad_list: impl Fn(&Seen) -> Reply + Send + Sync + 'static) {
    let (server, bad) = sync_server(bad_list);
    let cli = digitalocean(&server);
    run(
        &cli,
        &[
            "deploy",
            "--provider",
            "digitalocean",
            "--template",
            "do-small",
            "--name",
            name,
            "--yes",
        ],
        0,
    );
    run(&cli, &["sync", "--provider", "digitalocean"], 0);
    *bad.lock().unwrap() = true;
    run(&cli, &["sync", "--provider", "digitalocean"], 1);
    let out = run(
        &cli,
        &["sync", "--provider", "digitalocean", "--forget", "--yes"],
        1,
    );
    assert!(out.stderr.contains("digitalocean"), "{}", out.stderr);
    let inv = run(&cli, &["inventory", "--all", "-o", "json"], 0);
    let rows: Value = serde_json::from_str(&inv.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("{name} recorded: {rows}"));
    assert_ne!(
        row["status"], "deleted",
        "a failed listing forgot {name}: {row}"
    );
}

#[test]
fn sync_never_forgets_nodes_over_an_unreadable_listing() {
    sync_keeps_the_node("sync-empty-obj", |_| Reply::json(200, "{}"));
    sync_keeps_the_node("sync-html", |_| {
        Reply::status(
            200,
            &[("Content-Type", "text/html")],
            "<html><body>Service Unavailable</body></html>",
        )
    });
    sync_keeps_the_node("sync-truncated", |_| {
        Reply::json(200, r#"{"droplets": [], "links": {"#)
    });
}

#[test]
fn sync_never_forgets_nodes_over_a_listing_cut_off() {
    // The same next link again and again, with a total that says there is much more.
    sync_keeps_the_node("sync-loop", |_| {
        Reply::json(
            200,
            page(
                vec![],
                Some("https://api.digitalocean.com/v2/droplets?page=2&per_page=200"),
                1_000_000_000,
            ),
        )
    });
}

// ---- 4: deep XML ----------------------------------------------------------------------------

/// `levels` nested `<a>` elements inside an EC2 answer, streamed without building it.
fn deep_xml(root: &'static str, levels: usize) -> impl FnMut() -> Option<Vec<u8>> + Send {
    let mut step = 0;
    move || {
        step += 1;
        const PER: usize = 100_000;
        let opens = levels / PER;
        match step {
            1 => Some(format!("<?xml version=\"1.0\"?><{root}><reservationSet>").into_bytes()),
            s if s <= 1 + opens => Some("<a>".repeat(PER).into_bytes()),
            s if s <= 1 + 2 * opens => Some("</a>".repeat(PER).into_bytes()),
            s if s == 2 + 2 * opens => Some(format!("</reservationSet></{root}>").into_bytes()),
            _ => None,
        }
    }
}

/// A catalog overlay raising EC2's body cap so that a 14 MB answer is read and converted.
fn big_body_overlay() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("aws")).unwrap();
    std::fs::write(
        dir.path().join("aws/api.toml"),
        "[api.limits]\nmax_body_mb = 64\n",
    )
    .unwrap();
    dir
}

#[test]
fn two_million_levels_of_xml_are_an_error_not_a_crash() {
    let overlay = big_body_overlay();
    // In a listing.
    let server = Hostile::start(|_| {
        Reply::chunked(
            200,
            "text/xml",
            deep_xml("DescribeInstancesResponse", 2_000_000),
        )
    });
    let cli = aws(&server).env("CAPSULE_CATALOG", overlay.path().to_str().unwrap());
    let out = run(&cli, &["list", "--provider", "aws"], 1);
    assert!(
        out.stderr.contains("deeper than 128"),
        "a clear error:\n{}",
        out.stderr
    );
    // In an error body.
    let server =
        Hostile::start(|_| Reply::chunked(400, "text/xml", deep_xml("Response", 2_000_000)));
    let cli = aws(&server).env("CAPSULE_CATALOG", overlay.path().to_str().unwrap());
    let out = run(&cli, &["list", "--provider", "aws"], 1);
    assert!(out.stderr.contains("aws"), "{}", out.stderr);
    // With the default cap the same answer is refused before it is read in full.
    let server = Hostile::start(|_| {
        Reply::chunked(
            200,
            "text/xml",
            deep_xml("DescribeInstancesResponse", 2_000_000),
        )
    });
    let out = run(&aws(&server), &["list", "--provider", "aws"], 1);
    assert!(out.stderr.contains("larger than 8 MB"), "{}", out.stderr);
}

#[test]
fn two_million_levels_of_json_are_an_error_not_a_crash() {
    let server = Hostile::start(|_| {
        let mut step = 0;
        Reply::chunked(200, "application/json", move || {
            step += 1;
            match step {
                1 => Some(b"{\"droplets\": ".to_vec()),
                2..=21 => Some("[".repeat(100_000).into_bytes()),
                22..=41 => Some("]".repeat(100_000).into_bytes()),
                42 => Some(b"}".to_vec()),
                _ => None,
            }
        })
    });
    let out = run(
        &digitalocean(&server),
        &["list", "--provider", "digitalocean"],
        1,
    );
    assert!(out.stderr.contains("recursion limit"), "{}", out.stderr);
}

// ---- 6: a token echoed across the cut -------------------------------------------------------

#[test]
fn an_echoed_token_is_scrubbed_before_the_excerpt_is_cut() {
    // Plain-text error bodies (no JSON message to read): the token straddles the 200-character
    // excerpt, and the 2000-character `-vv` body log.
    for (pad, verbose) in [(190usize, false), (1990, true)] {
        let server = Hostile::start(move |r| {
            let echoed = r
                .header("authorization")
                .unwrap_or_default()
                .trim_start_matches("Bearer ")
                .to_string();
            Reply::status(
                400,
                &[("Content-Type", "text/plain")],
                format!("{}{echoed} is not welcome here", "x".repeat(pad)),
            )
        });
        let cli = digitalocean(&server);
        let mut args = vec!["list", "--provider", "digitalocean"];
        if verbose {
            args.push("-vv");
        }
        let out = run(&cli, &args, 1);
        assert!(out.stderr.contains("(redacted)"), "{}", out.stderr);
        assert!(!out.stderr.contains(&TOKEN[..8]), "{}", out.stderr);
    }
}

// ---- 7: unbounded bodies --------------------------------------------------------------------

#[test]
fn an_endless_body_is_cut_at_the_cap() {
    let server = Hostile::start(|_| Reply::endless(200, "application/json", b' '));
    let out = run(
        &digitalocean(&server),
        &["list", "--provider", "digitalocean"],
        1,
    );
    assert!(
        out.stderr.contains("larger than 8 MB") && out.stderr.contains("max_body_mb"),
        "{}",
        out.stderr
    );
    // An endless XML answer, in every region at once.
    let server = Hostile::start(|_| Reply::endless(200, "text/xml", b' '));
    let out = run(&aws(&server), &["list", "--provider", "aws"], 1);
    assert!(out.stderr.contains("larger than 8 MB"), "{}", out.stderr);
}

#[test]
fn a_declared_200_mb_body_is_refused_unread() {
    let server = Hostile::start(|_| {
        // Announces 200 MB and sends 1 KB: capsule must not wait for (or allocate) the rest.
        let mut bytes = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 209715200\r\n\r\n".to_vec();
        bytes.extend_from_slice(&[b' '; 1024]);
        Reply::Raw(bytes)
    });
    let out = run(
        &digitalocean(&server),
        &["list", "--provider", "digitalocean"],
        1,
    );
    assert!(out.stderr.contains("larger than 8 MB"), "{}", out.stderr);
}

#[test]
fn the_catalog_may_raise_the_cap() {
    // 9 MB of valid JSON: refused by default, read with `limits.max_body_mb = 16`.
    let body = format!(
        "{{\"droplets\": [], \"pad\": \"{}\", \"links\": {{}}, \"meta\": {{\"total\": 0}}}}",
        "x".repeat(9 << 20)
    );
    let b = Arc::new(body);
    let server = Hostile::start(move |_| Reply::json(200, b.as_bytes()));
    let out = run(
        &digitalocean(&server),
        &["list", "--provider", "digitalocean"],
        1,
    );
    assert!(out.stderr.contains("larger than 8 MB"), "{}", out.stderr);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("digitalocean")).unwrap();
    std::fs::write(
        dir.path().join("digitalocean/api.toml"),
        "[api.limits]\nmax_body_mb = 16\n",
    )
    .unwrap();
    let cli = digitalocean(&server).env("CAPSULE_CATALOG", dir.path().to_str().unwrap());
    run(
        &cli,
        &["list", "--provider", "digitalocean", "-o", "json"],
        0,
    );
}

#[test]
fn an_absurd_body_cap_is_refused_by_validation() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("digitalocean")).unwrap();
    std::fs::write(
        dir.path().join("digitalocean/api.toml"),
        "[api.limits]\nmax_body_mb = 1e9\n",
    )
    .unwrap();
    let out = capsule().run_args(&om(&["catalog", "validate", dir.path().to_str().unwrap()]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("max_body_mb"), "{}", out.stderr);
}

// ---- 8: next links --------------------------------------------------------------------------

#[test]
fn next_links_stay_on_the_apis_origin() {
    let thief = Hostile::start(|_| Reply::json(200, page(vec![], None, 0)));
    for next in [
        format!("http://127.0.0.1:{}/v2/droplets?page=2", thief.port()),
        // A downgrade of the API's own host.
        "http://api.digitalocean.com/v2/droplets?page=2".to_string(),
        "https://api.digitalocean.com:8443/v2/droplets?page=2".to_string(),
        "https://evil.example/v2/droplets?page=2".to_string(),
    ] {
        let n = next.clone();
        let server = Hostile::start(move |_| {
            Reply::json(200, page(vec![droplet(1, "a", &["capsule"])], Some(&n), 2))
        });
        let out = run(
            &digitalocean(&server),
            &["list", "--provider", "digitalocean"],
            1,
        );
        assert!(
            out.stderr.contains("another address") && out.stderr.contains(&next[..20]),
            "{next}: {}",
            out.stderr
        );
        assert_eq!(server.requests().len(), 1, "{next}");
    }
    assert!(thief.requests().is_empty(), "{:?}", thief.requests());
    // The API's own origin, absolute (as DigitalOcean sends it) or relative, is followed.
    let server = Hostile::start(|r| {
        if page_no(&r.path) == 3 {
            Reply::json(200, page(vec![droplet(3, "c", &["capsule"])], None, 3))
        } else if page_no(&r.path) == 2 {
            Reply::json(
                200,
                page(
                    vec![droplet(2, "b", &["capsule"])],
                    Some("/v2/droplets?page=3"),
                    3,
                ),
            )
        } else {
            Reply::json(
                200,
                page(
                    vec![droplet(1, "a", &["capsule"])],
                    Some("https://api.digitalocean.com/v2/droplets?page=2&per_page=200"),
                    3,
                ),
            )
        }
    });
    let out = run(
        &digitalocean(&server),
        &["list", "--provider", "digitalocean", "-o", "json"],
        0,
    );
    let rows: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3, "{rows}");
}

// ---- 13: listings cut off -------------------------------------------------------------------

#[test]
fn a_listing_that_stops_early_is_an_error() {
    // A repeated next link, with meta.total = 1e9.
    let server = Hostile::start(|_| {
        Reply::json(
            200,
            page(
                vec![droplet(1, "a", &["capsule"])],
                Some("https://api.digitalocean.com/v2/droplets?page=2&per_page=200"),
                1_000_000_000,
            ),
        )
    });
    let out = run(
        &digitalocean(&server),
        &["list", "--provider", "digitalocean"],
        1,
    );
    assert!(
        out.stderr.contains("stopped early") && out.stderr.contains("came back twice"),
        "{}",
        out.stderr
    );
    // An endless run of distinct next links.
    let server = Hostile::start(|r| {
        let n = page_no(&r.path);
        let next = format!("/v2/droplets?page={}&per_page=200", n + 1);
        Reply::json(200, page(vec![], Some(&next), 1_000_000_000))
    });
    let out = run(
        &digitalocean(&server),
        &["list", "--provider", "digitalocean"],
        1,
    );
    assert!(
        out.stderr.contains("did not end after 1000 pages"),
        "{}",
        out.stderr
    );
    assert_eq!(server.requests().len(), 1000);
    // Cursor paging (Vultr): the same cursor again, and an endless run of fresh ones.
    for endless in [false, true] {
        let count = Arc::new(Mutex::new(0u64));
        let c = count.clone();
        let server = Hostile::start(move |_| {
            let mut n = c.lock().unwrap();
            *n += 1;
            let cursor = if endless {
                format!("c{}", *n)
            } else {
                "c1".to_string()
            };
            Reply::json(
                200,
                json!({"instances": [], "bare_metals": [], "meta": {"total": 1_000_000_000u64,
                        "links": {"next": cursor, "prev": ""}}})
                .to_string(),
            )
        });
        let cli = capsule()
            .env("CAPSULE_ENDPOINT_VULTR", server.url())
            .env("VULTR_API_KEY", TOKEN);
        let out = run(&cli, &["list", "--provider", "vultr"], 1);
        let want = if endless {
            "did not end after 1000 pages"
        } else {
            "same page token twice"
        };
        assert!(out.stderr.contains(want), "{}", out.stderr);
    }
}

// ---- 16: terminal escapes -------------------------------------------------------------------

#[test]
fn provider_text_reaches_the_terminal_without_control_characters() {
    let evil = "ev\u{1b}[2J\u{1b}]0;pwned\u{7}il\u{9b}31m\r\n\u{202e}x";
    let server = Hostile::start(move |r| {
        if r.path.starts_with("/v2/droplets/") {
            Reply::json(
                500,
                json!({"id": "server_error\u{1b}[5m", "message": format!("boom {evil}")})
                    .to_string(),
            )
        } else {
            Reply::json(200, page(vec![droplet(1, evil, &["capsule"])], None, 1))
        }
    });
    let cli = digitalocean(&server);
    let out = run(&cli, &["list", "--provider", "digitalocean", "--all"], 0);
    assert!(out.stdout.contains("evil"), "{}", out.stdout);
    let out2 = run(&cli, &["status", "digitalocean:1"], 1);
    assert!(out2.stderr.contains("boom evil"), "{}", out2.stderr);
    for text in [&out.stdout, &out.stderr, &out2.stdout, &out2.stderr] {
        assert!(
            !text
                .chars()
                .any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
            "a control character reached the terminal: {text:?}"
        );
    }
}

#[test]
fn a_csv_header_with_escapes_is_reported_without_them() {
    let cli = capsule();
    let file = cli.home().join("nodes.csv");
    std::fs::write(&file, "name,\u{1b}[31mprovider\u{1b}]0;owned\u{7}\n").unwrap();
    let out = cli.run_args(&om(&["inventory", "import", file.to_str().unwrap()]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        !out.stderr.chars().any(|c| c.is_control() && c != '\n'),
        "a control character reached the terminal: {:?}",
        out.stderr
    );
}

// ---- 17: Retry-After and the request deadline -----------------------------------------------

#[test]
fn retry_after_past_the_deadline_fails_at_once_and_says_why() {
    let server = Hostile::start(|_| {
        Reply::status(
            429,
            &[
                ("Retry-After", "99999"),
                ("Content-Type", "application/json"),
            ],
            r#"{"id":"too_many_requests","message":"API Rate limit exceeded."}"#,
        )
    });
    let out = run(
        &digitalocean(&server),
        &["list", "--provider", "digitalocean"],
        1,
    );
    assert!(
        out.stderr.contains("Retry-After") && out.stderr.contains("--request-timeout"),
        "{}",
        out.stderr
    );
    assert_eq!(
        server.requests().len(),
        1,
        "no retry that cannot finish in time"
    );
}

#[test]
fn a_wait_of_a_few_seconds_is_announced() {
    let hits = Arc::new(Mutex::new(0));
    let h = hits.clone();
    let server = Hostile::start(move |_| {
        let mut n = h.lock().unwrap();
        *n += 1;
        if *n == 1 {
            Reply::status(
                429,
                &[("Retry-After", "3"), ("Content-Type", "application/json")],
                r#"{"id":"too_many_requests","message":"API Rate limit exceeded."}"#,
            )
        } else {
            Reply::json(200, page(vec![], None, 0))
        }
    });
    let out = run(
        &digitalocean(&server),
        &["list", "--provider", "digitalocean"],
        0,
    );
    assert!(
        out.stderr
            .contains("waiting 3 s for digitalocean (Retry-After)"),
        "{}",
        out.stderr
    );
}
