//! Credentials: the file (modes, refusal, atomic replace), precedence, the three ways to give a
//! key, `provider show|verify|remove`, and a grep over everything a full scenario leaves behind
//! for the secrets it used.
//!
//! Verification runs against a tiny local who-am-I server answering like DigitalOcean's
//! `GET /v2/account` (bearer token; 401 `{"id":"unauthorized","message":…}`; 429 with
//! `Retry-After`).

use crate::support::{capsule, Capsule, Output};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Test keys: distinctive, so that a grep for them (or a 5-character prefix) finds only leaks.
const GOOD: &str = "qX7wGOODtoken0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8";
const BAD: &str = "zR4kBADtoken9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const PIPED: &str = "pJ2mPIPEDtoken1122334455667788990011223344";

fn om(args: &[&str]) -> Vec<String> {
    std::iter::once("openmesh")
        .chain(args.iter().copied())
        .map(String::from)
        .collect()
}

fn file_of(c: &Capsule) -> PathBuf {
    c.home().join("credentials.toml")
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
fn chmod(p: &Path, m: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
}

#[track_caller]
fn code(c: &Capsule, args: &[&str], want: i32) -> Output {
    let out = c.run_args(&om(args));
    assert_eq!(
        out.code, want,
        "capsule {args:?} exited {} (wanted {want})\n--- stdout\n{}\n--- stderr\n{}",
        out.code, out.stdout, out.stderr
    );
    out
}

/// `provider show digitalocean -o json`'s token field.
fn token_field(c: &Capsule) -> serde_json::Value {
    let doc = code(c, &["provider", "show", "digitalocean", "-o", "json"], 0).json();
    doc["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "token")
        .unwrap()
        .clone()
}

// ---- a who-am-I server ----------------------------------------------------------------------

struct Whoami {
    url: String,
    hits: Arc<AtomicUsize>,
}

/// Serves `GET /v2/account`: 429 for the first `throttled` requests, then 200 for `Bearer good`
/// and 401 otherwise.
fn whoami(good: &str, throttled: usize) -> Whoami {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
    let port = server.server_addr().to_ip().expect("ip").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let want = format!("Bearer {good}");
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let auth = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("Authorization"))
                .map(|h| h.value.as_str().to_string())
                .unwrap_or_default();
            let (status, body) = if req.method() != &tiny_http::Method::Get
                || req.url() != "/v2/account"
            {
                (
                    404,
                    r#"{"id":"not_found","message":"The resource you were accessing could not be found."}"#,
                )
            } else if n < throttled {
                (
                    429,
                    r#"{"id":"too_many_requests","message":"API Rate limit exceeded."}"#,
                )
            } else if auth == want {
                (
                    200,
                    r#"{"account":{"uuid":"b6fc48a1","email":"ops@example.com","status":"active","droplet_limit":25}}"#,
                )
            } else {
                (
                    401,
                    r#"{"id":"unauthorized","message":"Unable to authenticate you"}"#,
                )
            };
            let json = tiny_http::Header::from_bytes("Content-Type", "application/json").unwrap();
            let mut resp = tiny_http::Response::from_string(body)
                .with_status_code(status)
                .with_header(json);
            if status == 429 {
                resp = resp.with_header(tiny_http::Header::from_bytes("Retry-After", "0").unwrap());
            }
            let _ = req.respond(resp);
        }
    });
    Whoami {
        url: format!("http://127.0.0.1:{port}"),
        hits,
    }
}

impl Whoami {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

// ---- the file --------------------------------------------------------------------------------

#[cfg(unix)]
#[test]
fn configure_writes_0600_file_in_0700_directory() {
    let base = tempfile::tempdir().unwrap();
    let home = base.path().join("fresh").join("home");
    let c = capsule().env("CAPSULE_HOME", home.to_str().unwrap());
    let out = code(
        &c,
        &["provider", "configure", "digitalocean", "--api-key", GOOD],
        0,
    );
    let file = home.join("credentials.toml");
    assert!(
        out.stdout.contains(&file.display().to_string()),
        "names the file: {}",
        out.stdout
    );
    assert!(!out.stdout.contains(GOOD) && !out.stderr.contains(GOOD));
    assert_eq!(mode(&home), 0o700, "home directory");
    assert_eq!(mode(&file), 0o600, "credentials file");
    let text = fs::read_to_string(&file).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    assert_eq!(doc["digitalocean"]["token"].as_str(), Some(GOOD));
}

#[cfg(unix)]
#[test]
fn an_open_home_directory_is_tightened() {
    let c = capsule();
    chmod(c.home(), 0o755);
    code(
        &c,
        &["provider", "configure", "digitalocean", "--api-key", GOOD],
        0,
    );
    assert_eq!(mode(c.home()), 0o700);
}

#[cfg(unix)]
#[test]
fn a_file_others_can_read_is_refused_with_the_fix() {
    let c = capsule();
    code(
        &c,
        &["provider", "configure", "digitalocean", "--api-key", GOOD],
        0,
    );
    let file = file_of(&c);
    chmod(&file, 0o644);
    let want = format!(
        "capsule: credentials file {f} is readable by others (mode 0644) — run: chmod 600 {f}\n",
        f = file.display()
    );
    for args in [
        &["provider", "show", "digitalocean"][..],
        &["provider", "configure", "digitalocean", "--api-key", BAD],
        &["provider", "verify"],
        &["provider", "remove", "digitalocean"],
    ] {
        let out = code(&c, args, 2);
        assert_eq!(out.stderr, want, "{args:?}");
    }
    // Nothing was changed by the refused configure.
    chmod(&file, 0o600);
    assert!(fs::read_to_string(&file).unwrap().contains(GOOD));
    assert_eq!(token_field(&c)["source"], "file");
}

#[cfg(unix)]
#[test]
fn a_crash_between_write_and_rename_keeps_the_old_file() {
    let c = capsule();
    code(
        &c,
        &["provider", "configure", "digitalocean", "--api-key", GOOD],
        0,
    );
    let before = fs::read(file_of(&c)).unwrap();

    // Abort after the new content is written and synced to the temp file, before the rename.
    let crashing = capsule()
        .env("CAPSULE_HOME", c.home().to_str().unwrap())
        .env("CAPSULE_TEST_CRASH", "credentials-before-rename");
    let out = crashing.run_args(&om(&[
        "provider",
        "configure",
        "digitalocean",
        "--api-key",
        BAD,
    ]));
    assert_ne!(out.code, 0, "the hook aborts the process");
    assert_eq!(
        fs::read(file_of(&c)).unwrap(),
        before,
        "the old file is intact"
    );
    let leftovers: Vec<PathBuf> = fs::read_dir(c.home())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "the crash left its temp file: {leftovers:?}"
    );
    assert_eq!(mode(&leftovers[0]), 0o600, "even the temp file is private");

    // The old credentials still resolve; the next write cleans up and takes over the lock.
    assert_eq!(
        token_field(&c)["value"],
        format!("{}…(redacted)", &GOOD[..4])
    );
    code(
        &c,
        &["provider", "configure", "digitalocean", "--api-key", PIPED],
        0,
    );
    let names: Vec<String> = fs::read_dir(c.home())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["credentials.toml".to_string()],
        "no temp or lock file is left"
    );
    assert!(fs::read_to_string(file_of(&c)).unwrap().contains(PIPED));
}

/// The lock is the OS's: a writer waits while another process holds it, and goes on once it is
/// released; there is no lock file to take over.
#[cfg(unix)]
#[test]
fn a_held_lock_makes_a_second_process_wait() {
    let c = capsule();
    code(
        &c,
        &["provider", "configure", "digitalocean", "--api-key", GOOD],
        0,
    );
    let held = fs::File::open(c.home()).unwrap();
    held.lock().unwrap();
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            code(
                &c,
                &["provider", "configure", "vultr", "--api-key", PIPED],
                0,
            );
        });
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert!(
            !fs::read_to_string(file_of(&c)).unwrap().contains(PIPED),
            "nothing is written while another process holds the lock"
        );
        held.unlock().unwrap();
        writer.join().unwrap();
    });
    let text = fs::read_to_string(file_of(&c)).unwrap();
    assert!(
        text.contains(GOOD) && text.contains(PIPED),
        "both tables are kept"
    );
}

#[test]
fn concurrent_configures_lose_no_table() {
    let c = capsule();
    let providers = ["digitalocean", "vultr", "linode", "hivelocity"];
    for round in 0..3 {
        std::thread::scope(|scope| {
            for p in providers {
                let c = &c;
                scope.spawn(move || {
                    let key = format!("{p}{round}key0123456789abcdef");
                    code(c, &["provider", "configure", p, "--api-key", &key], 0);
                });
            }
        });
        let doc: toml::Table = fs::read_to_string(file_of(&c)).unwrap().parse().unwrap();
        for p in providers {
            let table = doc
                .get(p)
                .and_then(|t| t.as_table())
                .unwrap_or_else(|| panic!("{p} lost in round {round}"));
            let value = table.values().next().and_then(|v| v.as_str()).unwrap();
            assert_eq!(value, format!("{p}{round}key0123456789abcdef"));
        }
    }
}

#[test]
fn a_broken_file_is_located_but_never_quoted() {
    let c = capsule();
    code(
        &c,
        &["provider", "configure", "digitalocean", "--api-key", GOOD],
        0,
    );
    let file = file_of(&c);
    let text = fs::read_to_string(&file)
        .unwrap()
        .replace(&format!("\"{GOOD}\""), &format!("\"{GOOD}"));
    fs::write(&file, text).unwrap();
    let out = code(&c, &["provider", "show", "digitalocean"], 2);
    assert!(
        out.stderr.contains("is not valid TOML (line"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains(&GOOD[..5]), "{}", out.stderr);
}

#[test]
fn other_tables_and_comments_survive_a_rewrite() {
    let c = capsule();
    code(
        &c,
        &["provider", "configure", "digitalocean", "--api-key", GOOD],
        0,
    );
    let file = file_of(&c);
    let mut text = fs::read_to_string(&file).unwrap();
    text.push_str("\n# my old account\n[retired-cloud]\ntoken = \"kept\"\n");
    fs::write(&file, text).unwrap();
    code(
        &c,
        &["provider", "configure", "digitalocean", "--api-key", PIPED],
        0,
    );
    let text = fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("# my old account") && text.contains("[retired-cloud]"),
        "{text}"
    );
    assert!(text.contains(PIPED) && !text.contains(GOOD), "{text}");
}

// ---- precedence and input --------------------------------------------------------------------

#[test]
fn precedence_env_over_file_first_nonempty_env_wins() {
    let c = capsule();
    code(
        &c,
        &["provider", "configure", "digitalocean", "--api-key", GOOD],
        0,
    );
    let f = token_field(&c);
    assert_eq!(
        (f["source"].as_str(), f["env_var"].as_str()),
        (Some("file"), None)
    );
    assert_eq!(f["value"], "qX7w…(redacted)");

    let env = capsule()
        .env("CAPSULE_HOME", c.home().to_str().unwrap())
        .env("DIGITALOCEAN_TOKEN", "")
        .env("DIGITALOCEAN_ACCESS_TOKEN", BAD);
    let f = token_field(&env);
    assert_eq!(
        (f["source"].as_str(), f["env_var"].as_str()),
        (Some("env"), Some("DIGITALOCEAN_ACCESS_TOKEN"))
    );
    assert_eq!(f["value"], "zR4k…(redacted)");

    let both = capsule()
        .env("CAPSULE_HOME", c.home().to_str().unwrap())
        .env("DIGITALOCEAN_TOKEN", PIPED)
        .env("DIGITALOCEAN_ACCESS_TOKEN", BAD);
    assert_eq!(token_field(&both)["env_var"], "DIGITALOCEAN_TOKEN");
    let doc = code(
        &both,
        &["provider", "show", "digitalocean", "-o", "json"],
        0,
    )
    .json();
    assert_eq!(doc["configured"], "env");
}

#[test]
fn precedence_flag_over_env_when_verifying_before_saving() {
    let api = whoami(GOOD, 0);
    // The environment holds a bad key; the flag's good key must be the one sent.
    let c = capsule()
        .env("CAPSULE_ENDPOINT_DIGITALOCEAN", &api.url)
        .env("DIGITALOCEAN_TOKEN", BAD);
    let out = code(
        &c,
        &[
            "provider",
            "configure",
            "digitalocean",
            "--api-key",
            GOOD,
            "--verify",
        ],
        0,
    );
    assert!(
        out.stderr
            .contains("DIGITALOCEAN_TOKEN is set and overrides the stored token"),
        "{}",
        out.stderr
    );
    assert_eq!(api.hits(), 1);
    assert!(fs::read_to_string(file_of(&c)).unwrap().contains(GOOD));
}

#[test]
fn api_key_from_stdin() {
    let c = capsule().stdin(format!("{PIPED}\n"));
    let out = code(
        &c,
        &["provider", "configure", "digitalocean", "--api-key-stdin"],
        0,
    );
    assert!(!out.stdout.contains(PIPED));
    let doc: toml::Table = fs::read_to_string(file_of(&c)).unwrap().parse().unwrap();
    assert_eq!(
        doc["digitalocean"]["token"].as_str(),
        Some(PIPED),
        "trailing newline trimmed"
    );

    let empty = capsule().stdin("\n");
    let out = code(
        &empty,
        &["provider", "configure", "digitalocean", "--api-key-stdin"],
        2,
    );
    assert!(
        out.stderr.contains("--api-key-stdin read nothing"),
        "{}",
        out.stderr
    );
    assert!(!file_of(&empty).exists());
}

#[test]
fn field_flags_and_set_are_parsed_against_the_catalog() {
    let c = capsule();
    // The api-key field answers to its own name too, in both spellings.
    code(
        &c,
        &["provider", "configure", "digitalocean", "--token", GOOD],
        0,
    );
    code(
        &c,
        &[
            "provider",
            "configure",
            "digitalocean",
            "--set",
            &format!("token={PIPED}"),
        ],
        0,
    );
    assert!(fs::read_to_string(file_of(&c)).unwrap().contains(PIPED));
    let out = code(
        &c,
        &["provider", "configure", "digitalocean", "--tokn", BAD],
        2,
    );
    assert_eq!(
        out.stderr,
        "capsule: digitalocean has no field flag '--tokn' — did you mean '--token'?\n"
    );
    let out = code(
        &c,
        &[
            "provider",
            "configure",
            "digitalocean",
            "--region-name",
            "x",
        ],
        2,
    );
    assert!(out.stderr.contains("valid: --api-key"), "{}", out.stderr);
    let out = code(
        &c,
        &[
            "provider",
            "configure",
            "digitalocean",
            "--api-key",
            GOOD,
            "--token",
            BAD,
        ],
        2,
    );
    assert!(out.stderr.contains("given twice"), "{}", out.stderr);
    assert!(!out.stderr.contains(&BAD[..5]) && !out.stderr.contains(&GOOD[..5]));
}

#[test]
fn a_missing_field_off_a_terminal_names_the_flag_and_the_variable() {
    let c = capsule();
    let out = code(&c, &["provider", "configure", "digitalocean"], 2);
    assert_eq!(
        out.stderr,
        "capsule: digitalocean needs token: pass --api-key KEY (or --api-key-stdin), or set DIGITALOCEAN_TOKEN\n"
    );
    assert!(!file_of(&c).exists());
}

#[test]
fn unknown_provider_gets_a_suggestion_and_keys_are_not_echoed() {
    let c = capsule();
    let out = code(
        &c,
        &["provider", "configure", "digitalocen", "--api-key", GOOD],
        2,
    );
    assert_eq!(
        out.stderr,
        "capsule: unknown provider 'digitalocen' — did you mean 'digitalocean'?\n"
    );
    code(&c, &["provider", "show", "digitaloc"], 2).stderr_has("did you mean 'digitalocean'?");
    // A key typed where the provider name goes is not repeated back.
    let out = code(&c, &["provider", "show", GOOD], 2);
    assert!(!out.stderr.contains(&GOOD[..5]), "{}", out.stderr);
    // Nor a key given without its flag.
    let out = code(
        &c,
        &["provider", "configure", "digitalocean", "--verify", GOOD],
        2,
    );
    assert!(out.stderr.contains("not shown"), "{}", out.stderr);
    assert!(!out.stderr.contains(&GOOD[..5]), "{}", out.stderr);
}

// ---- remove ----------------------------------------------------------------------------------

#[test]
fn configure_and_remove_speak_json() {
    let c = capsule();
    let doc = code(
        &c,
        &[
            "provider",
            "configure",
            "digitalocean",
            "--api-key",
            GOOD,
            "-o",
            "json",
        ],
        0,
    )
    .json();
    assert_eq!(doc["provider"], "digitalocean");
    assert_eq!(doc["stored"], serde_json::json!(["token"]));
    assert_eq!(doc["configured"], "file");
    assert_eq!(doc["verified"], false);
    assert_eq!(doc["file"], file_of(&c).display().to_string());
    let doc = code(&c, &["provider", "remove", "digitalocean", "-o", "json"], 0).json();
    assert_eq!(
        (doc["removed"].as_bool(), doc["provider"].as_str()),
        (Some(true), Some("digitalocean"))
    );
    let doc = code(&c, &["provider", "remove", "digitalocean", "-o", "json"], 0).json();
    assert_eq!(doc["removed"], false);
}

#[test]
fn remove_deletes_the_table_and_is_a_no_op_when_absent() {
    let c = capsule();
    code(
        &c,
        &["provider", "configure", "digitalocean", "--api-key", GOOD],
        0,
    );
    let out = code(&c, &["provider", "remove", "digitalocean"], 0);
    assert_eq!(
        out.stdout,
        format!(
            "removed the credentials of digitalocean from {}\n",
            file_of(&c).display()
        )
    );
    let text = fs::read_to_string(file_of(&c)).unwrap();
    assert!(
        !text.contains("[digitalocean]") && !text.contains(GOOD),
        "{text}"
    );
    assert_eq!(token_field(&c)["source"], "missing");
    let out = code(&c, &["provider", "remove", "digitalocean"], 0);
    assert_eq!(
        out.stdout,
        "digitalocean has no stored credentials — nothing to remove\n"
    );
    code(&c, &["provider", "remove", "digitalocen"], 2).stderr_has("did you mean 'digitalocean'?");
}

// ---- verify ----------------------------------------------------------------------------------

fn verify_row(out: &Output, provider: &str) -> serde_json::Value {
    out.json()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["provider"] == provider)
        .unwrap()
        .clone()
}

#[test]
fn verify_good_key() {
    let api = whoami(GOOD, 0);
    let c = capsule().env("CAPSULE_ENDPOINT_DIGITALOCEAN", &api.url);
    code(
        &c,
        &["provider", "configure", "digitalocean", "--api-key", GOOD],
        0,
    );
    let out = code(&c, &["provider", "verify", "digitalocean"], 0);
    assert!(
        out.stdout.contains("digitalocean") && out.stdout.contains("ok"),
        "{}",
        out.stdout
    );
    let out = code(&c, &["provider", "verify", "-o", "json"], 0);
    let row = verify_row(&out, "digitalocean");
    assert_eq!(
        (row["status"].as_str(), row["configured"].as_str()),
        (Some("ok"), Some("file"))
    );
    // Every other provider is listed as not configured, and not called.
    assert!(out
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["provider"] != "digitalocean")
        .all(|r| r["status"] == "not configured"));
    assert_eq!(api.hits(), 2);
}

#[test]
fn verify_bad_key_shows_the_providers_message_and_the_fix() {
    let api = whoami(GOOD, 0);
    let c = capsule().env("CAPSULE_ENDPOINT_DIGITALOCEAN", &api.url);
    code(
        &c,
        &["provider", "configure", "digitalocean", "--api-key", BAD],
        0,
    );
    let out = code(&c, &["provider", "verify", "-o", "json"], 1);
    let row = verify_row(&out, "digitalocean");
    assert_eq!(
        (row["status"].as_str(), row["error"].as_str()),
        (Some("failed"), Some("auth"))
    );
    let msg = row["message"].as_str().unwrap();
    assert!(msg.contains("Unable to authenticate you"), "{msg}");
    assert!(msg.contains(" — "), "a fix follows the message: {msg}");
    // The table gives the short reason; the provider's sentence and the fix go to stderr.
    let table = code(&c, &["provider", "verify"], 1);
    assert!(
        table.stdout.contains("failed") && table.stdout.contains("credentials rejected"),
        "{}",
        table.stdout
    );
    assert!(
        table
            .stderr
            .starts_with("capsule: digitalocean: Unable to authenticate you (HTTP 401"),
        "{}",
        table.stderr
    );
    assert!(
        table
            .stderr
            .contains("capsule openmesh provider configure digitalocean --api-key"),
        "{}",
        table.stderr
    );
    assert_eq!(
        table.stderr.lines().count(),
        1,
        "one line per failure: {}",
        table.stderr
    );
}

#[test]
fn verify_unreachable_endpoint() {
    let c = capsule()
        .env("CAPSULE_ENDPOINT_DIGITALOCEAN", "http://127.0.0.1:1")
        .env("DIGITALOCEAN_TOKEN", GOOD);
    let out = code(&c, &["provider", "verify", "digitalocean", "-o", "json"], 1);
    let row = verify_row(&out, "digitalocean");
    assert_eq!(
        (row["status"].as_str(), row["configured"].as_str()),
        (Some("failed"), Some("env"))
    );
    assert_eq!(row["error"], "network");
    assert!(!out.stdout.contains(&GOOD[..5]) && !out.stderr.contains(&GOOD[..5]));
}

#[test]
fn verify_retries_after_429() {
    let api = whoami(GOOD, 1);
    let c = capsule()
        .env("CAPSULE_ENDPOINT_DIGITALOCEAN", &api.url)
        .env("DIGITALOCEAN_TOKEN", GOOD);
    let out = code(&c, &["provider", "verify", "digitalocean", "-o", "json"], 0);
    assert_eq!(verify_row(&out, "digitalocean")["status"], "ok");
    assert_eq!(api.hits(), 2, "one 429, then the answer");
}

#[test]
fn verify_named_but_unconfigured_fails() {
    let c = capsule();
    let out = code(&c, &["provider", "verify", "digitalocean", "-o", "json"], 1);
    let row = verify_row(&out, "digitalocean");
    assert_eq!(row["status"], "missing");
    assert!(
        row["message"]
            .as_str()
            .unwrap()
            .contains("DIGITALOCEAN_TOKEN"),
        "{row}"
    );
    // With no names and nothing configured there is nothing to fail.
    code(&c, &["provider", "verify"], 0).stdout_has("no provider has credentials yet");
}

#[test]
fn configure_verify_failure_saves_nothing() {
    let api = whoami(GOOD, 0);
    let c = capsule().env("CAPSULE_ENDPOINT_DIGITALOCEAN", &api.url);
    let out = code(
        &c,
        &[
            "provider",
            "configure",
            "digitalocean",
            "--api-key",
            BAD,
            "--verify",
        ],
        1,
    );
    assert!(
        out.stderr.contains("Unable to authenticate you")
            && out.stderr.contains("nothing was saved"),
        "{}",
        out.stderr
    );
    assert!(!file_of(&c).exists());
    code(
        &c,
        &[
            "provider",
            "configure",
            "digitalocean",
            "--api-key",
            GOOD,
            "--verify",
        ],
        0,
    )
    .stdout_has("(verified)");
}

// ---- no leaks --------------------------------------------------------------------------------

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_full_scenario_leaks_no_secret() {
    let api = whoami(GOOD, 1);
    let c = capsule().env("CAPSULE_ENDPOINT_DIGITALOCEAN", &api.url);
    let piped = capsule()
        .env("CAPSULE_HOME", c.home().to_str().unwrap())
        .env("CAPSULE_ENDPOINT_DIGITALOCEAN", &api.url)
        .stdin(format!("{PIPED}\n"));
    let with_env = capsule()
        .env("CAPSULE_HOME", c.home().to_str().unwrap())
        .env("CAPSULE_ENDPOINT_DIGITALOCEAN", &api.url)
        .env("DIGITALOCEAN_TOKEN", BAD);
    let mut outputs: Vec<Output> = Vec::new();
    let mut run = |who: &Capsule, args: &[&str]| outputs.push(who.run_args(&om(args)));
    run(
        &c,
        &[
            "provider",
            "configure",
            "digitalocean",
            "--api-key",
            BAD,
            "--verify",
        ],
    );
    run(
        &c,
        &[
            "-vv",
            "provider",
            "configure",
            "digitalocean",
            "--api-key",
            BAD,
            "--verify",
        ],
    );
    run(
        &piped,
        &["provider", "configure", "digitalocean", "--api-key-stdin"],
    );
    run(
        &c,
        &[
            "-vv",
            "provider",
            "configure",
            "digitalocean",
            "--api-key",
            GOOD,
            "--verify",
        ],
    );
    for format in ["table", "json", "csv"] {
        run(&c, &["provider", "show", "digitalocean", "-o", format]);
        run(
            &with_env,
            &["provider", "show", "digitalocean", "-o", format],
        );
        run(&c, &["-vv", "provider", "verify", "-o", format]);
        run(
            &with_env,
            &["-vv", "provider", "verify", "digitalocean", "-o", format],
        );
    }
    run(&c, &["-v", "provider", "verify"]);
    run(
        &c,
        &[
            "provider",
            "configure",
            "digitalocean",
            "--token",
            GOOD,
            "--bogus",
            BAD,
        ],
    );
    run(&c, &["provider", "configure", "digitalocean", BAD]);
    run(&c, &["provider", "show", GOOD]);
    run(&c, &["providers"]);
    run(&c, &["provider", "remove", "digitalocean"]);
    assert!(api.hits() >= 4, "the scenario reached the server");
    assert!(
        outputs.iter().any(|o| o.stderr.contains("/v2/account")),
        "-v logged the requests"
    );

    for secret in [GOOD, BAD, PIPED] {
        let prefix = &secret[..5];
        for (i, o) in outputs.iter().enumerate() {
            assert!(
                !o.stdout.contains(prefix),
                "run {i} stdout holds {prefix}…:\n{}",
                o.stdout
            );
            assert!(
                !o.stderr.contains(prefix),
                "run {i} stderr holds {prefix}…:\n{}",
                o.stderr
            );
        }
        for f in files_under(c.home()) {
            if f.file_name().is_some_and(|n| n == "credentials.toml") {
                continue;
            }
            let bytes = fs::read(&f).unwrap();
            assert!(
                !bytes.windows(5).any(|w| w == prefix.as_bytes()),
                "{} holds {prefix}…",
                f.display()
            );
        }
    }
}

// ---- concurrency and a provider only the catalog knows ----------------------------------------

/// An overlay catalog with `acme`, a copy of DigitalOcean under another id and other variables.
fn acme_catalog() -> tempfile::TempDir {
    let export = tempfile::tempdir().unwrap();
    code(
        &capsule(),
        &["catalog", "export", export.path().to_str().unwrap()],
        0,
    );
    let dir = tempfile::tempdir().unwrap();
    let acme = dir.path().join("acme");
    fs::create_dir_all(&acme).unwrap();
    let prov = fs::read_to_string(export.path().join("digitalocean/provider.toml")).unwrap();
    let prov = prov
        .replace("id = \"digitalocean\"", "id = \"acme\"")
        .replace("name = \"DigitalOcean\"", "name = \"Acme Cloud\"")
        .replace("DIGITALOCEAN_ACCESS_TOKEN", "ACME_LEGACY_TOKEN")
        .replace("DIGITALOCEAN_TOKEN", "ACME_TOKEN");
    fs::write(acme.join("provider.toml"), prov).unwrap();
    let api = fs::read_to_string(export.path().join("digitalocean/api.toml")).unwrap();
    fs::write(
        acme.join("api.toml"),
        api.replace("DIGITALOCEAN_API_URL", "ACME_API_URL"),
    )
    .unwrap();
    fs::write(
        acme.join("templates.toml"),
        "[[templates]]\nid = \"acme-1\"\nplan = \"a1\"\nname = \"Acme 1\"\ncpu = 2\nmemory_gb = 2\nstorage_gb = 20\n\
         bandwidth_tb = 1\nprice_hourly = 0.002\nprice_monthly = 1.4\narch = \"x86_64\"\nregions = [\"nyc1\"]\n",
    )
    .unwrap();
    dir
}

/// Two who-am-I servers that answer only once both have a request waiting: a sequential
/// `verify` gets a 400 after 5 s instead.
fn rendezvous_pair(good: &str) -> (String, String) {
    use std::sync::{Condvar, Mutex};
    let state = Arc::new((Mutex::new([false, false]), Condvar::new()));
    let mut urls = Vec::new();
    for me in 0..2 {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind");
        urls.push(format!(
            "http://127.0.0.1:{}",
            server.server_addr().to_ip().unwrap().port()
        ));
        let state = state.clone();
        let want = format!("Bearer {good}");
        std::thread::spawn(move || {
            for req in server.incoming_requests() {
                let (lock, cv) = &*state;
                let mut arrived = lock.lock().unwrap();
                arrived[me] = true;
                cv.notify_all();
                let (arrived, timeout) = cv
                    .wait_timeout_while(arrived, std::time::Duration::from_secs(5), |a| {
                        !(a[0] && a[1])
                    })
                    .unwrap();
                drop(arrived);
                let auth = req
                    .headers()
                    .iter()
                    .find(|h| h.field.equiv("Authorization"))
                    .map(|h| h.value.as_str().to_string());
                let (status, body) = if timeout.timed_out() {
                    (
                        400,
                        r#"{"id":"not_concurrent","message":"the other provider was not asked at the same time"}"#,
                    )
                } else if auth.as_deref() == Some(want.as_str()) {
                    (200, r#"{"account":{"uuid":"b6fc48a1","status":"active"}}"#)
                } else {
                    (
                        401,
                        r#"{"id":"unauthorized","message":"Unable to authenticate you"}"#,
                    )
                };
                let _ =
                    req.respond(tiny_http::Response::from_string(body).with_status_code(status));
            }
        });
    }
    (urls.remove(0), urls.remove(0))
}

#[test]
fn verify_asks_every_provider_at_once() {
    let cat = acme_catalog();
    let (do_url, acme_url) = rendezvous_pair(GOOD);
    let c = capsule()
        .env("CAPSULE_CATALOG", cat.path().to_str().unwrap())
        .env("CAPSULE_ENDPOINT_DIGITALOCEAN", &do_url)
        .env("CAPSULE_ENDPOINT_ACME", &acme_url)
        .env("ACME_TOKEN", GOOD);
    code(
        &c,
        &["provider", "configure", "digitalocean", "--api-key", GOOD],
        0,
    );
    let out = code(&c, &["provider", "verify", "-o", "json"], 0);
    assert_eq!(
        verify_row(&out, "digitalocean")["status"],
        "ok",
        "{}",
        out.stdout
    );
    let acme = verify_row(&out, "acme");
    assert_eq!(
        (acme["status"].as_str(), acme["configured"].as_str()),
        (Some("ok"), Some("env"))
    );
}

#[test]
fn a_catalog_only_provider_uses_its_own_variables() {
    let cat = acme_catalog();
    let c = capsule()
        .env("CAPSULE_CATALOG", cat.path().to_str().unwrap())
        .env("ACME_LEGACY_TOKEN", BAD);
    let doc = code(&c, &["provider", "show", "acme", "-o", "json"], 0).json();
    assert_eq!(doc["fields"][0]["env_var"], "ACME_LEGACY_TOKEN");
    let out = code(
        &capsule().env("CAPSULE_CATALOG", cat.path().to_str().unwrap()),
        &["provider", "configure", "acme"],
        2,
    );
    assert!(out.stderr.contains("or set ACME_TOKEN"), "{}", out.stderr);
}

// ---- prompts on a terminal -------------------------------------------------------------------

/// Run capsule on a pseudo-terminal (util-linux `script`), answering each prompt once it shows.
/// `None` when `script` is not installed.
fn on_a_terminal(home: &Path, args: &[&str], answers: &[(&str, &str)]) -> Option<(i32, String)> {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: util-linux `script` is not installed");
        return None;
    }
    let mut line = vec![
        env!("CARGO_BIN_EXE_capsule").to_string(),
        "openmesh".to_string(),
    ];
    line.extend(args.iter().map(|a| a.to_string()));
    let line: Vec<String> = line
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &line.join(" "), "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CAPSULE_HOME", home)
        .env("HOME", home)
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn script");
    let seen = Arc::new(Mutex::new(Vec::<u8>::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = seen.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    let mut from = 0;
    for (prompt, answer) in answers {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = String::from_utf8_lossy(&seen.lock().unwrap()[from..]).into_owned();
            if let Some(at) = text.find(prompt) {
                from += at + prompt.len();
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no prompt {prompt:?} in {text:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Let the program turn echo off before typing.
        std::thread::sleep(Duration::from_millis(300));
        stdin.write_all(format!("{answer}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    let status = child.wait().expect("wait script");
    drop(stdin);
    reader.join().unwrap();
    let text = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
    Some((status.code().unwrap_or(-1), text))
}

#[test]
fn a_missing_secret_is_prompted_for_without_echo() {
    let c = capsule();
    let Some((code_, text)) = on_a_terminal(
        c.home(),
        &["provider", "configure", "digitalocean"],
        &[("DigitalOcean token", GOOD)],
    ) else {
        return;
    };
    assert_eq!(code_, 0, "{text}");
    assert!(!text.contains(&GOOD[..5]), "the key was echoed: {text:?}");
    assert!(text.contains("saved token of digitalocean"), "{text}");
    let doc: toml::Table = fs::read_to_string(file_of(&c)).unwrap().parse().unwrap();
    assert_eq!(doc["digitalocean"]["token"].as_str(), Some(GOOD));
    // Again: the prompt shows the current key's hint, and Enter keeps it.
    let (code_, text) = on_a_terminal(
        c.home(),
        &["provider", "configure", "digitalocean"],
        &[("Enter keeps it", "")],
    )
    .unwrap();
    assert_eq!(code_, 0, "{text}");
    assert!(
        text.contains("qX7w…(redacted) from file") && text.contains("nothing changed"),
        "{text}"
    );
    assert!(fs::read_to_string(file_of(&c)).unwrap().contains(GOOD));
}

// ---- every provider at once, against the provider mocks ----------------------------------------

#[test]
fn verify_checks_every_configured_provider_against_its_api() {
    use crate::support::mock::{Fault, MockConfig, MockServer, Op, Provider};
    let mocks: Vec<MockServer> = Provider::ALL
        .iter()
        .map(|&p| {
            // DigitalOcean throttles once first: the retry is part of the check.
            let cfg = if p == Provider::DigitalOcean {
                MockConfig::default().with_faults([Fault::Status429])
            } else {
                MockConfig::default()
            };
            MockServer::start(p, cfg)
        })
        .collect();
    let mut c = capsule();
    for m in &mocks {
        for (k, v) in m.env() {
            c = c.env(&k, v);
        }
    }
    let out = code(&c, &["provider", "verify", "-o", "json"], 0);
    for m in &mocks {
        let row = verify_row(&out, m.provider().id());
        assert_eq!(
            (row["status"].as_str(), row["configured"].as_str()),
            (Some("ok"), Some("env")),
            "{row}"
        );
        assert!(!m.requests().is_empty(), "{} was asked", m.provider().id());
    }
    assert_eq!(mocks[0].count(Op::Verify), 2, "a 429, then the answer");

    // One spoiled key fails only its own row, with the provider's words; exit 1.
    let bad = c.env("LINODE_TOKEN", "wrongLINODEtoken00000000000000000000");
    let out = code(&bad, &["provider", "verify", "-o", "json"], 1);
    let rows = out.json();
    let failed: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "failed")
        .filter_map(|r| r["provider"].as_str())
        .collect();
    assert_eq!(failed, vec!["linode"]);
    let row = verify_row(&out, "linode");
    assert_eq!(row["error"], "auth");
    assert!(
        row["message"]
            .as_str()
            .unwrap()
            .contains("check LINODE_TOKEN"),
        "{row}"
    );
    assert!(
        out.stderr.starts_with("capsule: linode: "),
        "{}",
        out.stderr
    );
}
