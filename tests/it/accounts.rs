//! Accounts: several per provider (`--account`, `CAPSULE_ACCOUNT`), each node acted on with its
//! own account's credentials; and the credentials users already keep for the providers' own
//! tools (AWS shared files and profiles, doctl, scw, linode-cli, vultr-cli), read from a
//! temporary HOME, with their precedence and their errors.

use crate::support::mock::{MockConfig, MockServer, Op, Provider};
use crate::support::{capsule, Capsule, Output};
use serde_json::Value;
use std::path::Path;

fn om(args: &[&str]) -> Vec<String> {
    std::iter::once("openmesh")
        .chain(args.iter().copied())
        .map(String::from)
        .collect()
}

#[track_caller]
fn run(cli: &Capsule, args: &[&str], want: i32) -> Output {
    let out = cli.run_args(&om(args));
    assert_eq!(
        out.code, want,
        "capsule {args:?} exited {} (wanted {want})\n--- stdout\n{}\n--- stderr\n{}",
        out.code, out.stdout, out.stderr
    );
    out
}

fn rows(out: &Output) -> Vec<Value> {
    match out.json() {
        Value::Array(a) => a,
        other => panic!("expected a JSON array, got {other}"),
    }
}

fn write(home: &Path, rel: &str, text: &str) {
    let path = home.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The endpoint override only: credentials come from elsewhere in these tests.
fn endpoint_only(mock: &MockServer) -> Capsule {
    let mut c = capsule();
    for (k, v) in mock.env() {
        if k.starts_with("CAPSULE_ENDPOINT_") || k.starts_with("AWS_ENDPOINT_URL") {
            c = c.env(&k, v);
        }
    }
    c
}

/// `provider show P -o json` → the field named `field`.
fn field(cli: &Capsule, args: &[&str], name: &str) -> Value {
    let doc = run(cli, args, 0).json();
    doc["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no field {name} in {doc}"))
}

const STAGING_TOKEN: &str = "staging-token-fedcba9876543210";

fn deploy(cli: &Capsule, name: &str, extra: &[&str]) {
    let mut args = vec![
        "deploy",
        "--provider",
        "digitalocean",
        "--template",
        "do-small",
        "--region",
        "nyc1",
        "--name",
        name,
        "--yes",
    ];
    args.extend_from_slice(extra);
    run(cli, &args, 0);
}

#[test]
fn two_accounts_on_one_provider_deploy_list_and_act_separately() {
    let mock = MockServer::start(
        Provider::DigitalOcean,
        MockConfig::default()
            .with_pending_polls(0)
            .with_other_account(STAGING_TOKEN),
    );
    // The default account comes from the environment; `staging` is stored in capsule.
    let mut cli = capsule();
    for (k, v) in mock.env() {
        cli = cli.env(&k, v);
    }
    run(
        &cli,
        &[
            "provider",
            "configure",
            "digitalocean",
            "--account",
            "staging",
            "--api-key",
            STAGING_TOKEN,
        ],
        0,
    );
    deploy(&cli, "web-main", &[]);
    deploy(&cli, "web-staging", &["--account", "staging"]);
    let creates = mock.requests_for(Op::Create);
    let bearer = |r: &crate::support::mock::Request| r.header("authorization").unwrap().to_string();
    assert_eq!(
        bearer(&creates[0]),
        format!("Bearer {}", mock.config().token)
    );
    assert_eq!(bearer(&creates[1]), format!("Bearer {STAGING_TOKEN}"));

    // The inventory records each node's account.
    let inv = rows(&run(&cli, &["inventory", "-o", "json"], 0));
    let account_of = |rows: &[Value], name: &str| {
        rows.iter()
            .find(|r| r["name"] == name)
            .map(|r| r["account"].as_str().unwrap_or("").to_string())
    };
    assert_eq!(account_of(&inv, "web-main").as_deref(), Some("default"));
    assert_eq!(account_of(&inv, "web-staging").as_deref(), Some("staging"));
    let table = run(&cli, &["inventory"], 0).stdout;
    assert!(table.lines().next().unwrap().contains("ACCOUNT"), "{table}");

    // `list` asks each account for its own nodes; `--account` asks one.
    let all = rows(&run(&cli, &["list", "-o", "json"], 0));
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(account_of(&all, "web-main").as_deref(), Some("default"));
    assert_eq!(account_of(&all, "web-staging").as_deref(), Some("staging"));
    let listing = run(&cli, &["list"], 0).stdout;
    assert!(
        listing.lines().next().unwrap().contains("ACCOUNT"),
        "{listing}"
    );
    let staging = rows(&run(
        &cli,
        &["list", "--account", "staging", "-o", "json"],
        0,
    ));
    let names: Vec<&str> = staging.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["web-staging"]);
    let env_named = cli_with(&cli, "CAPSULE_ACCOUNT", "staging");
    let staging_inv = rows(&run(&env_named, &["inventory", "-o", "json"], 0));
    assert_eq!(staging_inv.len(), 1, "{staging_inv:?}");

    // A node is acted on with its own account, whatever the command's account is.
    mock.clear_requests();
    run(&cli, &["status", "web-staging", "-o", "json"], 0);
    run(&cli, &["stop", "web-staging", "--yes"], 0);
    let main_named = cli_with(&cli, "CAPSULE_ACCOUNT", "default");
    run(&main_named, &["delete", "web-staging", "--yes"], 0);
    let reqs = mock.requests();
    assert!(!reqs.is_empty());
    for r in &reqs {
        assert_eq!(
            bearer(r),
            format!("Bearer {STAGING_TOKEN}"),
            "{} {}",
            r.method,
            r.path
        );
    }
    // The default account's node is untouched.
    assert!(mock.node_named("web-main").is_some());

    // An account with no credentials anywhere is named in the error, with the fix.
    let bare = endpoint_only(&mock);
    let out = run(
        &bare,
        &["list", "--account", "prod", "-p", "digitalocean"],
        2,
    );
    assert!(
        out.stderr
            .contains("digitalocean account 'prod' needs token")
            && out.stderr.contains("--account prod"),
        "{}",
        out.stderr
    );
    // A bad account name is refused before anything runs.
    let out = run(&cli, &["inventory", "--account", "a b"], 2);
    assert!(
        out.stderr.contains("account name 'a b' is not valid"),
        "{}",
        out.stderr
    );
}

/// The same home and environment, plus one variable.
fn cli_with(cli: &Capsule, key: &str, value: &str) -> Capsule {
    let mut c = capsule().env("CAPSULE_HOME", cli.home().to_str().unwrap());
    c = c.env("HOME", cli.home().to_str().unwrap());
    for (k, v) in cli.envs() {
        c = c.env(k, v);
    }
    c.env(key, value)
}

const AWS_CREDENTIALS: &str = "\
[default]
aws_access_key_id = AKIAWRONGWRONGWRONG1
aws_secret_access_key = wrongSecretKey/0000000000000000000000000

[ops]
aws_access_key_id = AKIAMOCKTEST00000001
aws_secret_access_key = mockSecretKey/0123456789+abcdefghijklmnopq
";

const AWS_CONFIG: &str = "\
[default]
region = us-east-1

[profile ops]
region = eu-west-1
output = json
";

#[test]
fn aws_profiles_are_read_from_the_shared_files() {
    let mock = MockServer::start(Provider::Aws, MockConfig::default().with_pending_polls(0));
    let cli = endpoint_only(&mock);
    write(cli.home(), ".aws/credentials", AWS_CREDENTIALS);
    write(cli.home(), ".aws/config", AWS_CONFIG);
    let ops = cli_with(&cli, "AWS_PROFILE", "ops");

    let key = field(
        &ops,
        &["provider", "show", "aws", "-o", "json"],
        "access_key_id",
    );
    assert_eq!(key["source"], "external");
    assert_eq!(key["profile"], "ops");
    assert!(
        key["source_file"]
            .as_str()
            .unwrap()
            .ends_with(".aws/credentials"),
        "{key}"
    );
    let region = field(&ops, &["provider", "show", "aws", "-o", "json"], "region");
    assert_eq!(
        (region["value"].as_str(), region["profile"].as_str()),
        (Some("eu-west-1"), Some("ops"))
    );
    assert!(
        region["source_file"]
            .as_str()
            .unwrap()
            .ends_with(".aws/config"),
        "{region}"
    );
    // The table names the files and the profile; no secret is shown.
    let table = run(&ops, &["provider", "show", "aws"], 0);
    assert!(
        table.stdout.contains(".aws/credentials (profile ops)"),
        "{}",
        table.stdout
    );
    assert!(!table.stdout.contains("mockSecretKey"), "{}", table.stdout);

    // The profile's keys sign the requests (the mock checks SigV4 with the real secret), and
    // its region is where a deploy goes when none is named.
    run(
        &ops,
        &[
            "deploy",
            "--provider",
            "aws",
            "--template",
            "aws-t3-micro",
            "--name",
            "edge",
            "--image",
            "ami-0abcdef1234567890",
            "--yes",
        ],
        0,
    );
    let inv = rows(&run(&ops, &["inventory", "-o", "json"], 0));
    assert_eq!(inv[0]["region"], "eu-west-1", "{inv:?}");
    assert_eq!(inv[0]["account"], "default");
    run(&ops, &["list", "-p", "aws", "-o", "json"], 0);

    // `--account ops` picks the same profile without AWS_PROFILE; the default profile's keys
    // are refused by the API.
    let listed = rows(&run(
        &cli,
        &["list", "-p", "aws", "--account", "ops", "-o", "json"],
        0,
    ));
    assert_eq!(listed.len(), 1, "{listed:?}");
    run(&cli, &["list", "-p", "aws"], 1);

    // AWS_SHARED_CREDENTIALS_FILE moves the file; AWS_REGION outranks the profile's region.
    std::fs::rename(
        cli.home().join(".aws/credentials"),
        cli.home().join("creds-elsewhere"),
    )
    .unwrap();
    let moved = cli_with(
        &ops,
        "AWS_SHARED_CREDENTIALS_FILE",
        cli.home().join("creds-elsewhere").to_str().unwrap(),
    );
    let moved = cli_with(&moved, "AWS_REGION", "us-west-2");
    let key = field(
        &moved,
        &["provider", "show", "aws", "-o", "json"],
        "secret_access_key",
    );
    assert!(
        key["source_file"]
            .as_str()
            .unwrap()
            .ends_with("creds-elsewhere"),
        "{key}"
    );
    let region = field(&moved, &["provider", "show", "aws", "-o", "json"], "region");
    assert_eq!(
        (region["source"].as_str(), region["value"].as_str()),
        (Some("env"), Some("us-west-2"))
    );
}

#[test]
fn doctl_contexts_are_read() {
    let mock = MockServer::start(
        Provider::DigitalOcean,
        MockConfig::default().with_pending_polls(0),
    );
    let cli = endpoint_only(&mock);
    let good = mock.config().token.clone();
    write(
        cli.home(),
        ".config/doctl/config.yaml",
        &format!("access-token: dop_v1_wrongwrongwrong\nauth-contexts:\n  work: {good}\ncontext: work\noutput: text\n"),
    );
    let token = field(
        &cli,
        &["provider", "show", "digitalocean", "-o", "json"],
        "token",
    );
    assert_eq!(
        (token["source"].as_str(), token["profile"].as_str()),
        (Some("external"), Some("work"))
    );
    run(&cli, &["list", "-o", "json"], 0);
    // DIGITALOCEAN_CONTEXT picks another context, as doctl's own variable does.
    let other = cli_with(&cli, "DIGITALOCEAN_CONTEXT", "default");
    let token = field(
        &other,
        &["provider", "show", "digitalocean", "-o", "json"],
        "token",
    );
    assert_eq!(token["profile"], "default");
    run(&other, &["list"], 1);
}

#[test]
fn scw_profiles_are_read() {
    let cli = capsule();
    write(
        cli.home(),
        ".config/scw/config.yaml",
        "access_key: SCWROOTROOTROOTROOT1\nsecret_key: 11111111-1111-1111-1111-111111111111\n\
         default_project_id: 22222222-2222-2222-2222-222222222222\nactive_profile: team\n\
         profiles:\n  team:\n    secret_key: 33333333-3333-3333-3333-333333333333\n",
    );
    let args = ["provider", "show", "scaleway", "-o", "json"];
    let secret = field(&cli, &args, "secret_key");
    assert_eq!(
        (secret["source"].as_str(), secret["profile"].as_str()),
        (Some("external"), Some("team"))
    );
    assert_eq!(secret["value"], "3333…(redacted)");
    // A profile takes what it lacks from the top level, as scw does.
    let project = field(&cli, &args, "project_id");
    assert_eq!(project["value"], "22222222-2222-2222-2222-222222222222");
    let root = cli_with(&cli, "SCW_PROFILE", "default");
    assert_eq!(
        field(&root, &args, "secret_key")["value"],
        "1111…(redacted)"
    );
    // An account without a profile of its name gets nothing from the file.
    let named = field(
        &cli,
        &[
            "provider",
            "show",
            "scaleway",
            "--account",
            "ops",
            "-o",
            "json",
        ],
        "secret_key",
    );
    assert_eq!(named["source"], "missing");
}

#[test]
fn linode_cli_and_vultr_cli_configs_are_read() {
    let linode = MockServer::start(
        Provider::Linode,
        MockConfig::default().with_pending_polls(0),
    );
    let cli = endpoint_only(&linode);
    let good = linode.config().token.clone();
    write(
        cli.home(),
        ".config/linode-cli",
        &format!("[DEFAULT]\ndefault-user = alice\n\n[alice]\ntoken = {good}\nregion = us-east\n\n[bob]\ntoken = bobs-token\n"),
    );
    let token = field(&cli, &["provider", "show", "linode", "-o", "json"], "token");
    assert_eq!(
        (token["source"].as_str(), token["profile"].as_str()),
        (Some("external"), Some("alice"))
    );
    run(&cli, &["list", "-p", "linode", "-o", "json"], 0);
    let bob = field(
        &cli,
        &[
            "provider",
            "show",
            "linode",
            "--account",
            "bob",
            "-o",
            "json",
        ],
        "token",
    );
    assert_eq!(bob["profile"], "bob");

    let vultr = MockServer::start(Provider::Vultr, MockConfig::default().with_pending_polls(0));
    let cli = endpoint_only(&vultr);
    write(
        cli.home(),
        ".vultr-cli.yaml",
        &format!("api-key: {}\n", vultr.config().token),
    );
    let key = field(
        &cli,
        &["provider", "show", "vultr", "-o", "json"],
        "api_key",
    );
    assert_eq!(key["source"], "external");
    assert!(key["source_file"]
        .as_str()
        .unwrap()
        .ends_with(".vultr-cli.yaml"));
    assert_eq!(key["profile"], Value::Null);
    run(&cli, &["list", "-p", "vultr", "-o", "json"], 0);
    // A file with one set of credentials serves the default account only.
    let named = field(
        &cli,
        &[
            "provider",
            "show",
            "vultr",
            "--account",
            "ops",
            "-o",
            "json",
        ],
        "api_key",
    );
    assert_eq!(named["source"], "missing");
}

#[test]
fn precedence_store_env_and_external_files() {
    let cli = capsule();
    write(
        cli.home(),
        ".vultr-cli.yaml",
        "api-key: FROMFILEFROMFILEFROMFILE\n",
    );
    let show = ["provider", "show", "vultr", "-o", "json"];
    assert_eq!(field(&cli, &show, "api_key")["source"], "external");
    let env = cli_with(&cli, "VULTR_API_KEY", "FROMENVFROMENVFROMENV1");
    assert_eq!(field(&env, &show, "api_key")["source"], "env");
    // The default account: environment, then capsule's file, then the tool's file.
    run(
        &cli,
        &[
            "provider",
            "configure",
            "vultr",
            "--api-key",
            "STOREDSTOREDSTORED01",
        ],
        0,
    );
    assert_eq!(field(&cli, &show, "api_key")["source"], "file");
    assert_eq!(field(&env, &show, "api_key")["source"], "env");
    // A named account: capsule's own table, then the environment, then the tool's file.
    let named = [
        "provider",
        "show",
        "vultr",
        "--account",
        "team",
        "-o",
        "json",
    ];
    assert_eq!(field(&env, &named, "api_key")["source"], "env");
    run(
        &cli,
        &[
            "provider",
            "configure",
            "vultr",
            "--account",
            "team",
            "--api-key",
            "TEAMTEAMTEAMTEAM0001",
        ],
        0,
    );
    let f = field(&env, &named, "api_key");
    assert_eq!(
        (f["source"].as_str(), f["value"].as_str()),
        (Some("file"), Some("TEAM…(redacted)"))
    );
    let doc = run(&cli, &["provider", "show", "vultr", "-o", "json"], 0).json();
    assert_eq!(doc["accounts"], serde_json::json!(["default", "team"]));
    // Removing the named account leaves the default one.
    run(
        &cli,
        &["provider", "remove", "vultr", "--account", "team"],
        0,
    );
    assert_eq!(field(&cli, &show, "api_key")["source"], "file");
    assert_eq!(field(&cli, &named, "api_key")["source"], "missing");
}

#[test]
fn a_malformed_external_file_is_named_never_quoted() {
    let cli = capsule();
    write(
        cli.home(),
        ".config/doctl/config.yaml",
        "access-token: [dop_v1_sekrit0123456789\n",
    );
    for args in [
        &["provider", "show", "digitalocean"][..],
        &["list", "-p", "digitalocean"][..],
    ] {
        let out = run(&cli, args, 2);
        assert!(
            out.stderr
                .contains(".config/doctl/config.yaml is not valid YAML (line"),
            "{}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("sekrit") && !out.stdout.contains("sekrit"),
            "{}",
            out.stderr
        );
    }
    write(
        cli.home(),
        ".aws/credentials",
        "[default\naws_secret_access_key = sekritsekrit\n",
    );
    let out = run(&cli, &["provider", "show", "aws"], 2);
    assert!(
        out.stderr
            .contains(".aws/credentials is not valid ini (line"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("sekrit"), "{}", out.stderr);
}
