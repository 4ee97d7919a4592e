//! The catalog: embedded invariants, the read-only commands, overlays, and the golden errors of
//! broken overlay directories (`golden/catalog/<case>/overlay` → `<case>/stderr`, exit 2).

use crate::support::capsule;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn templates_json() -> Vec<Value> {
    // (issue 14: retired providers' templates are listed on request)
    let out = capsule()
        .args(["openmesh", "templates", "-o", "json", "--include-retired"])
        .ok();
    out.json().as_array().expect("array").clone()
}

#[test]
fn embedded_catalog_has_the_seed_counts() {
    let ts = templates_json();
    assert_eq!(ts.len(), 31, "31 templates");
    let mut by_provider: BTreeMap<String, usize> = BTreeMap::new();
    for t in &ts {
        *by_provider
            .entry(t["provider"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let want: BTreeMap<String, usize> = [
        ("aws", 4),
        ("digitalocean", 4),
        ("equinix-metal", 3),
        ("hivelocity", 4),
        ("linode", 6),
        ("scaleway", 6),
        ("vultr", 4),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(by_provider, want);
    let ids: BTreeSet<&str> = ts.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 31, "ids are unique");
    assert!(ids.contains("hive-large"), "the seed's hive-large exists");
}

#[test]
fn templates_json_has_the_documented_fields() {
    for t in templates_json() {
        for key in [
            "id",
            "provider",
            "plan",
            "name",
            "cpu",
            "memory_gb",
            "storage_gb",
            "bandwidth_tb",
            "price_hourly",
            "price_monthly",
            "currency",
            "gpu",
            "regions",
            "features",
            "arch",
        ] {
            assert!(t.get(key).is_some(), "template {} lacks {key}", t["id"]);
        }
        assert!(
            !t.as_object().unwrap().contains_key("_region_count"),
            "private keys stay out of JSON"
        );
        let gpu = &t["gpu"];
        assert!(
            gpu.is_null()
                || (gpu["model"].is_string()
                    && gpu["count"].is_u64()
                    && gpu["vram_gb"].is_number())
        );
    }
}

#[test]
fn five_gpu_templates() {
    let out = capsule()
        .args([
            "openmesh",
            "templates",
            "--gpu",
            "-o",
            "json",
            "--include-retired",
        ])
        .ok();
    let ts = out.json();
    let ts = ts.as_array().unwrap();
    assert_eq!(ts.len(), 5, "{ts:#?}");
    assert!(ts.iter().all(|t| t["gpu"]["model"]
        .as_str()
        .is_some_and(|m| m.starts_with("NVIDIA"))));
}

#[test]
fn template_regions_exist_in_their_provider() {
    let regions = capsule()
        .args(["openmesh", "regions", "-o", "json"])
        .ok()
        .json();
    let known: BTreeSet<(String, String)> = regions
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["provider"].as_str().unwrap().to_string(),
                r["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for t in templates_json() {
        for r in t["regions"].as_array().unwrap() {
            let key = (
                t["provider"].as_str().unwrap().to_string(),
                r.as_str().unwrap().to_string(),
            );
            assert!(
                known.contains(&key),
                "{key:?} of {} is not a region",
                t["id"]
            );
        }
    }
}

#[test]
fn providers_lists_seven_with_equinix_retired() {
    let out = capsule()
        .args(["openmesh", "providers", "-o", "json"])
        .ok()
        .json();
    let ps = out.as_array().unwrap();
    assert_eq!(ps.len(), 7);
    for p in ps {
        for key in [
            "id",
            "name",
            "kind",
            "status",
            "templates",
            "regions",
            "prices_as_of",
            "configured",
        ] {
            assert!(p.get(key).is_some(), "provider {} lacks {key}", p["id"]);
        }
    }
    let eq = ps.iter().find(|p| p["id"] == "equinix-metal").unwrap();
    assert_eq!(eq["status"], "retired");
    assert_eq!(eq["status_date"], "2026-06-30");
}

#[test]
fn filters_and_sorting() {
    let out = capsule()
        .args([
            "openmesh",
            "templates",
            "--min-cpu",
            "4",
            "--min-memory",
            "8",
            "--max-price",
            "0.2",
            "-o",
            "json",
        ])
        .ok()
        .json();
    let ts = out.as_array().unwrap();
    assert!(!ts.is_empty());
    let mut last = 0.0;
    for t in ts {
        assert!(t["cpu"].as_u64().unwrap() >= 4);
        assert!(t["memory_gb"].as_f64().unwrap() >= 8.0);
        let p = t["price_hourly_usd"].as_f64().unwrap();
        assert!(p <= 0.2 && p >= last, "sorted by price");
        last = p;
    }
    let one = capsule()
        .args([
            "openmesh",
            "templates",
            "--provider",
            "linode",
            "--limit",
            "2",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(one.as_array().unwrap().len(), 2);
    assert!(one
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["provider"] == "linode"));
    let eu = capsule()
        .args([
            "openmesh",
            "templates",
            "--continent",
            "europe",
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert!(eu
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["provider"] == "scaleway"));
    assert!(
        eu.as_array()
            .unwrap()
            .iter()
            .all(|t| t["provider"] != "hivelocity"),
        "hivelocity is US-only"
    );
    let arm = capsule()
        .args(["openmesh", "templates", "--arch", "arm64", "-o", "json"])
        .ok()
        .json();
    assert!(arm.as_array().unwrap().iter().all(|t| t["arch"] == "arm64"));
}

#[test]
fn csv_output_has_a_header_and_a_row_per_template() {
    let out = capsule()
        .args(["openmesh", "templates", "-o", "csv", "--include-retired"])
        .ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("id,provider,plan,name,cpu,memory_gb"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), 32);
}

#[test]
fn unknown_ids_suggest_and_exit_2() {
    capsule()
        .args(["openmesh", "template", "show", "hive-larg"])
        .code(2)
        .stderr_has("unknown template 'hive-larg' — did you mean 'hive-large'?");
    capsule()
        .args(["openmesh", "templates", "--provider", "hivelocty"])
        .code(2)
        .stderr_has("did you mean 'hivelocity'?");
    capsule()
        .args(["openmesh", "templates", "--region", "atlnta"])
        .code(2)
        .stderr_has("did you mean 'atlanta'?");
    capsule()
        .args(["openmesh", "compare", "do-small", "nope-nope-nope"])
        .code(2)
        .stderr_has("unknown template 'nope-nope-nope'");
}

#[test]
fn template_show_and_compare() {
    let t = capsule()
        .args(["openmesh", "template", "show", "hive-large", "-o", "json"])
        .ok()
        .json();
    assert_eq!(t["id"], "hive-large");
    assert_eq!(t["provider"], "hivelocity");
    let out = capsule()
        .args([
            "openmesh",
            "compare",
            "do-large",
            "hive-large",
            "-o",
            "json",
        ])
        .ok()
        .json();
    let rows = out.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let cheapest: Vec<&Value> = rows.iter().filter(|r| r["cheapest"] == true).collect();
    assert_eq!(cheapest.len(), 1);
    assert_eq!(cheapest[0]["id"], "do-large");
    let table = capsule()
        .args(["openmesh", "compare", "do-large", "hive-large"])
        .ok();
    table.stdout_has("do-large (cheapest)");
}

#[test]
fn a_three_line_overlay_changes_one_price() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("price.toml"),
        "[[templates]]\nid = \"do-small\"\nprice_hourly = 0.009\n",
    )
    .unwrap();
    let out = capsule()
        .args([
            "openmesh",
            "template",
            "show",
            "do-small",
            "-o",
            "json",
            "--catalog",
            dir.path().to_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(out["price_hourly"], 0.009);
    assert_eq!(out["cpu"], 1, "the rest of the template is kept");
    // The same overlay through the environment.
    let out = capsule()
        .args(["openmesh", "template", "show", "do-small", "-o", "json"])
        .env("CAPSULE_CATALOG", dir.path().to_str().unwrap())
        .ok()
        .json();
    assert_eq!(out["price_hourly"], 0.009);
}

#[test]
fn an_overlay_adds_a_template_and_a_provider() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("digitalocean");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(
        p.join("extra.toml"),
        "[[templates]]\nid = \"do-tiny\"\nplan = \"s-1vcpu-512mb-10gb\"\nname = \"Basic 512 MB\"\ncpu = 1\nmemory_gb = 0.5\nstorage_gb = 10\nbandwidth_tb = 0.5\nprice_hourly = 0.00595\nprice_monthly = 4.0\narch = \"x86_64\"\nregions = [\"nyc1\"]\n",
    )
    .unwrap();
    // A new provider: a copy of an existing one under another name, via export.
    let export = tempfile::tempdir().unwrap();
    capsule()
        .args([
            "openmesh",
            "catalog",
            "export",
            export.path().to_str().unwrap(),
        ])
        .ok();
    let newp = dir.path().join("acme");
    std::fs::create_dir_all(&newp).unwrap();
    let prov = std::fs::read_to_string(export.path().join("digitalocean/provider.toml")).unwrap();
    std::fs::write(
        newp.join("provider.toml"),
        prov.replace("id = \"digitalocean\"", "id = \"acme\"")
            .replace("name = \"DigitalOcean\"", "name = \"Acme Cloud\""),
    )
    .unwrap();
    std::fs::copy(
        export.path().join("digitalocean/api.toml"),
        newp.join("api.toml"),
    )
    .unwrap();
    std::fs::write(
        newp.join("templates.toml"),
        "[[templates]]\nid = \"acme-1\"\nplan = \"a1\"\nname = \"Acme 1\"\ncpu = 2\nmemory_gb = 2\nstorage_gb = 20\nbandwidth_tb = 1\nprice_hourly = 0.002\nprice_monthly = 1.4\narch = \"x86_64\"\nregions = [\"nyc1\"]\n",
    )
    .unwrap();
    let cat = dir.path().to_str().unwrap();
    let ts = capsule()
        .args([
            "openmesh",
            "templates",
            "-o",
            "json",
            "--catalog",
            cat,
            "--include-retired",
        ])
        .ok()
        .json();
    let ids: Vec<&str> = ts
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 33);
    assert_eq!(ids[0], "acme-1", "the cheapest first");
    assert!(ids.contains(&"do-tiny"));
    let ps = capsule()
        .args(["openmesh", "providers", "-o", "json", "--catalog", cat])
        .ok()
        .json();
    assert_eq!(ps.as_array().unwrap().len(), 8);
    capsule()
        .args(["openmesh", "catalog", "validate", cat])
        .ok()
        .stdout_has("8 providers, 33 templates");
}

#[test]
fn export_writes_a_catalog_that_validates_to_the_same_templates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    capsule().args(["openmesh", "catalog", "export", d]).ok();
    capsule()
        .args(["openmesh", "catalog", "validate", d])
        .ok()
        .stdout_has("7 providers, 31 templates");
    let a = capsule()
        .args(["openmesh", "templates", "-o", "json"])
        .ok()
        .stdout;
    let b = capsule()
        .args(["openmesh", "templates", "-o", "json", "--catalog", d])
        .ok()
        .stdout;
    assert_eq!(
        a, b,
        "an exported catalog layered over the embedded one changes nothing"
    );
}

#[test]
fn missing_catalog_directory_is_bad_input() {
    capsule()
        .args([
            "openmesh",
            "templates",
            "--catalog",
            "/nonexistent/capsule-catalog",
        ])
        .code(2)
        .stderr_has("does not exist");
}

fn golden_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/golden/catalog")
}

/// Each broken overlay fails with exactly its recorded message (set UPDATE_GOLDEN=1 to rewrite).
#[test]
fn broken_overlays_fail_with_located_errors() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(golden_root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 12, "at least 12 broken catalogs");
    let mut failures = Vec::new();
    for case in cases {
        let out = capsule()
            .args(["openmesh", "templates", "--catalog", "overlay"])
            .cwd(&case)
            .run();
        let expected_path = case.join("stderr");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&expected_path, &out.stderr).unwrap();
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if out.code != 2 || out.stderr != expected || !out.stdout.is_empty() {
            failures.push(format!(
                "{}: exit {} (want 2)\n--- got stderr\n{}--- want stderr\n{}",
                case.display(),
                out.code,
                out.stderr,
                expected
            ));
        }
        // `catalog validate` reports the same error.
        let v = capsule()
            .args(["openmesh", "catalog", "validate", "overlay"])
            .cwd(&case)
            .run();
        if v.code != 2 || v.stderr != expected {
            failures.push(format!(
                "{}: `catalog validate` differs:\n{}",
                case.display(),
                v.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A large generated catalog is parsed entry by entry; an error deep inside is still located at
/// its exact line in the file.
#[test]
fn large_overlay_errors_keep_exact_locations() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    capsule()
        .args(["openmesh", "catalog", "generate", d, "--templates", "3000"])
        .ok();
    let path = dir.path().join("synthetic/templates.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.len() > 256 * 1024, "big enough for the chunked parse");
    capsule()
        .args(["openmesh", "catalog", "validate", d])
        .ok()
        .stdout_has("3031 templates");
    let needle = "id = \"syn-2500\"\n";
    let at = text.find(needle).unwrap() + needle.len();
    let broken = format!("{}cpu_count = 4\n{}", &text[..at], &text[at..]);
    let line = broken[..at].matches('\n').count() + 1;
    std::fs::write(&path, broken).unwrap();
    let out = capsule()
        .args(["openmesh", "catalog", "validate", d])
        .code(2);
    out.stderr_has(&format!(
        "synthetic/templates.toml:{line}:1: unknown key 'cpu_count'"
    ));
}

/// The cache entries a home holds (`$CAPSULE_HOME/cache/catalog-*.bin`).
fn cache_entries(home: &std::path::Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(home.join("cache")) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    v.sort();
    v
}

/// An overlay is merged and validated once, then read from a cache keyed by its content: a
/// changed byte is seen at once, and a damaged entry is ignored and rewritten.
#[test]
fn an_overlay_is_cached_by_content_never_stale() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let c = capsule();
    c.run_args(&["openmesh", "catalog", "generate", d, "--templates", "2000"]);
    let show = |id: &str| {
        let out = c.run_args(&[
            "openmesh",
            "template",
            "show",
            id,
            "-o",
            "json",
            "--catalog",
            d,
        ]);
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(out.stderr, "", "nothing to say about the cache");
        out.json()
    };
    let first = show("syn-1500");
    let entries = cache_entries(c.home());
    assert_eq!(entries.len(), 1, "{entries:?}");
    // A miss writes a new file (a rename): the same inode afterwards means the entry was used.
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let stored = inode(&entries[0]);
    assert_eq!(show("syn-1500"), first, "the cached catalog is the same");
    assert_eq!(inode(&entries[0]), stored, "read, not rewritten");
    // One byte of the overlay changes (a price digit): the change shows at once.
    let path = dir.path().join("synthetic/templates.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let at = text.find("id = \"syn-1500\"").unwrap();
    let price = at + text[at..].find("price_hourly = ").unwrap();
    // The last digit of the price.
    let digit = price + text[price..].find('\n').unwrap() - 1;
    let flip = |b: u8| if b == b'7' { b'8' } else { b'7' };
    let original = text.clone().into_bytes();
    let mut bytes = text.into_bytes();
    bytes[digit] = flip(bytes[digit]);
    std::fs::write(&path, &bytes).unwrap();
    let changed = show("syn-1500");
    assert_ne!(changed["price_hourly"], first["price_hourly"]);
    assert_eq!(changed["cpu"], first["cpu"]);
    assert_eq!(
        cache_entries(c.home()).len(),
        2,
        "a new entry for the new content"
    );
    // Damaged entries (flipped bytes, truncated, garbage) are ignored, then rewritten.
    for (n, e) in cache_entries(c.home()).iter().enumerate() {
        let mut b = std::fs::read(e).unwrap();
        match n {
            0 => b.truncate(b.len() / 2),
            _ => {
                let mid = b.len() / 2;
                b[mid] ^= 0xff;
            }
        }
        std::fs::write(e, b).unwrap();
    }
    assert_eq!(show("syn-1500"), changed);
    std::fs::write(&path, &original).unwrap();
    assert_eq!(show("syn-1500"), first);
    std::fs::write(&entries[0], b"not a cache entry").unwrap();
    assert_eq!(show("syn-1500"), first);
    assert_ne!(std::fs::read(&entries[0]).unwrap(), b"not a cache entry");
}

/// `catalog refresh` reads the live price list and writes only the changes as an overlay.
#[test]
fn refresh_writes_changed_prices_as_an_overlay() {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    let handle = std::thread::spawn(move || {
        // One page of sizes: a price drop for do-small, do-medium unchanged, an unknown slug.
        let req = server.recv().unwrap();
        let auth = req
            .headers()
            .iter()
            .find(|h| h.field.equiv("Authorization"))
            .map(|h| h.value.to_string());
        let path = req.url().to_string();
        let body = serde_json::json!({
            "sizes": [
                {"slug": "s-1vcpu-1gb", "price_hourly": 0.00744, "price_monthly": 5.0},
                {"slug": "s-2vcpu-4gb", "price_hourly": 0.03571, "price_monthly": 24.0},
                {"slug": "c-32", "price_hourly": 1.0, "price_monthly": 672.0}
            ],
            "links": {}, "meta": {"total": 3}
        });
        req.respond(tiny_http::Response::from_string(body.to_string()))
            .unwrap();
        (auth, path)
    });
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("prices");
    let rows = capsule()
        .args([
            "openmesh",
            "catalog",
            "refresh",
            "--provider",
            "digitalocean",
            "--out",
            out.to_str().unwrap(),
            "-o",
            "json",
        ])
        .env("CAPSULE_ENDPOINT_DIGITALOCEAN", &url)
        .env("DIGITALOCEAN_TOKEN", "refresh-token-123")
        .ok()
        .json();
    let (auth, path) = handle.join().unwrap();
    assert_eq!(auth.as_deref(), Some("Bearer refresh-token-123"));
    assert!(path.starts_with("/v2/sizes"), "{path}");
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "only the changed template: {rows:?}");
    assert_eq!(rows[0]["template"], "do-small");
    assert_eq!(rows[0]["price_hourly"], 0.00744);
    let t = capsule()
        .args([
            "openmesh",
            "template",
            "show",
            "do-small",
            "-o",
            "json",
            "--catalog",
            out.to_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(t["price_hourly"], 0.00744);
    assert_eq!(t["price_monthly"], 5.0);
    let medium = capsule()
        .args([
            "openmesh",
            "template",
            "show",
            "do-medium",
            "-o",
            "json",
            "--catalog",
            out.to_str().unwrap(),
        ])
        .ok()
        .json();
    assert_eq!(medium["price_monthly"], 24.0);
    let written = std::fs::read_to_string(out.join("digitalocean/prices.toml")).unwrap();
    assert!(written.contains("prices_as_of"), "{written}");
    assert!(
        !written.contains("refresh-token"),
        "no secret in the overlay"
    );
}

#[test]
fn refresh_of_a_provider_without_a_price_api_says_so() {
    // Every active provider of the catalog has a price list now: `acme`, a copy of DigitalOcean
    // without `[api.prices]`, stands for one that has none.
    let export = tempfile::tempdir().unwrap();
    capsule()
        .args([
            "openmesh",
            "catalog",
            "export",
            export.path().to_str().unwrap(),
        ])
        .ok();
    let dir = tempfile::tempdir().unwrap();
    let acme = dir.path().join("acme");
    std::fs::create_dir_all(&acme).unwrap();
    let read =
        |f: &str| std::fs::read_to_string(export.path().join("digitalocean").join(f)).unwrap();
    let prov = read("provider.toml")
        .replace("id = \"digitalocean\"", "id = \"acme\"")
        .replace("DIGITALOCEAN_ACCESS_TOKEN", "ACME_LEGACY_TOKEN")
        .replace("DIGITALOCEAN_TOKEN", "ACME_TOKEN");
    std::fs::write(acme.join("provider.toml"), prov).unwrap();
    // Every line of the `[api.prices…]` tables left out.
    let mut in_prices = false;
    let api: String = read("api.toml")
        .replace("DIGITALOCEAN_API_URL", "ACME_API_URL")
        .lines()
        .filter(|l| {
            if l.starts_with('[') {
                in_prices = l.starts_with("[api.prices]") || l.starts_with("[api.prices.");
            }
            !in_prices
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(!api.contains("[api.prices"));
    std::fs::write(acme.join("api.toml"), api).unwrap();
    std::fs::write(
        acme.join("templates.toml"),
        "[[templates]]\nid = \"acme-1\"\nplan = \"a1\"\nname = \"Acme 1\"\ncpu = 2\nmemory_gb = 2\nstorage_gb = 20\n\
         bandwidth_tb = 1\nprice_hourly = 0.002\nprice_monthly = 1.4\narch = \"x86_64\"\nregions = [\"nyc1\"]\n",
    )
    .unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let out = capsule()
        .args([
            "openmesh",
            "--catalog",
            dir.path().to_str().unwrap(),
            "catalog",
            "refresh",
            "--provider",
            "acme",
            "--out",
            out_dir.path().to_str().unwrap(),
        ])
        .env("ACME_TOKEN", "t")
        .code(1);
    out.stderr_has("acme: not refreshed: its catalog describes no price list API");
}

/// An endpoint override with a path (`HCLOUD_ENDPOINT`-style `http://host:port/prefix`) is a
/// whole base URL: every request goes to that prefix + the API's path, and a next-page link to
/// the real API's origin is moved under the same prefix.
#[test]
fn an_endpoint_override_with_a_path_prefixes_every_request() {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}", server.server_addr().to_ip().unwrap());
    let handle = std::thread::spawn(move || {
        let mut paths = Vec::new();
        for page in 1..=2 {
            let req = server.recv().unwrap();
            paths.push(req.url().to_string());
            let body = if page == 1 {
                serde_json::json!({
                    "sizes": [{"slug": "s-1vcpu-1gb", "price_hourly": 0.00744, "price_monthly": 5.0}],
                    "links": {"pages": {"next": "https://api.digitalocean.com/v2/sizes?page=2&per_page=200"}},
                })
            } else {
                serde_json::json!({
                    "sizes": [{"slug": "s-2vcpu-4gb", "price_hourly": 0.03, "price_monthly": 20.0}],
                    "links": {},
                })
            };
            req.respond(tiny_http::Response::from_string(body.to_string()))
                .unwrap();
        }
        paths
    });
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("prices");
    let rows = capsule()
        .args([
            "openmesh",
            "catalog",
            "refresh",
            "--provider",
            "digitalocean",
            "--out",
            out.to_str().unwrap(),
            "-o",
            "json",
        ])
        .env(
            "CAPSULE_ENDPOINT_DIGITALOCEAN",
            format!("{url}/gateway/do/"),
        )
        .env("DIGITALOCEAN_TOKEN", "refresh-token-123")
        .ok()
        .json();
    let paths = handle.join().unwrap();
    assert!(paths[0].starts_with("/gateway/do/v2/sizes?"), "{paths:?}");
    assert_eq!(paths[1], "/gateway/do/v2/sizes?page=2&per_page=200");
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "both pages were read: {rows:?}");
}

/// An overlay makes the create follow every action its answer lists (`links.actions[*].id`, a
/// list-valued `action.id`): the deploy fetches the create action from the mock until it is
/// completed, and only then reports the node.
#[test]
fn an_overlay_makes_create_follow_every_action_it_lists() {
    use crate::support::mock::{MockConfig, MockServer, Op, Provider};
    let mock = MockServer::start(
        Provider::DigitalOcean,
        MockConfig::default().with_pending_polls(1),
    );
    let overlay = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(overlay.path().join("digitalocean")).unwrap();
    std::fs::write(
        overlay.path().join("digitalocean/actions.toml"),
        r#"[api.operations.create.action]
id = ["/links/actions/*/id", "/links/actions/0/id"]
operation = "action"
status = "/action/status"
done = ["completed"]
failed = ["errored"]
"#,
    )
    .unwrap();
    let mut cli = capsule().env("CAPSULE_CATALOG", overlay.path().to_str().unwrap());
    for (k, v) in mock.env() {
        cli = cli.env(&k, v);
    }
    cli.args([
        "openmesh",
        "deploy",
        "--provider",
        "digitalocean",
        "--template",
        "do-small",
        "--region",
        "nyc1",
        "--name",
        "acts-1",
        "--yes",
    ])
    .ok();
    let polls = mock.requests_for(Op::Poll);
    assert!(!polls.is_empty(), "the create action was fetched");
    let created = mock.requests_for(Op::Create);
    assert_eq!(created.len(), 1);
    let action_paths: std::collections::BTreeSet<String> =
        polls.iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        action_paths.len(),
        1,
        "one action, listed twice, followed once: {action_paths:?}"
    );
    assert!(
        polls.iter().all(|r| r.seq > created[0].seq),
        "polled after the create"
    );
}
