//! Team state over TLS against the real test server (`support::pg`), which serves a self-signed
//! certificate for 127.0.0.1 and admits its `tls_only` role over TLS only: `sslmode=require`
//! encrypts, `verify-full` checks the certificate (trusted through `sslrootcert`, refused
//! without it), `disable` is turned away by that role, and the password never shows.

use crate::support::{capsule, pg};

fn state(url: &str, args: &[&str]) -> crate::support::Output {
    let mut all = vec!["openmesh", "--state", url];
    all.extend_from_slice(args);
    capsule().run_args(&all)
}

#[test]
fn require_encrypts_and_verify_full_checks_the_certificate() {
    let server = pg::server();
    let base = server.tls_database();
    let ca = server.ca_file();

    // Plain text: the role is admitted over TLS only, so the server turns it away.
    let plain = state(&format!("{base}?sslmode=disable"), &["state", "info"]);
    assert_eq!(plain.code, 1, "{}", plain.stderr);
    assert!(!plain.stderr.contains(pg::TLS_PASSWORD), "{}", plain.stderr);

    // require: encrypted, the self-signed certificate is not checked; a write goes through.
    let require = format!("{base}?sslmode=require");
    let info = state(&require, &["state", "info", "-o", "json"]);
    assert_eq!(info.code, 0, "{}", info.stderr);
    let csv = "deploy_id,name,provider,template,plan,region,status,raw_status,price_hourly,price_monthly,currency,ipv4,created_at,started_at,stopped_at,deleted_at
t1,over-tls,digitalocean,do-small,s-1vcpu-1gb,nyc1,running,active,0.00893,6,USD,203.0.113.7,2024-05-01T00:00:00Z,2024-05-01T00:01:00Z,,
";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nodes.csv");
    std::fs::write(&file, csv).unwrap();
    let import = state(&require, &["inventory", "import", file.to_str().unwrap()]);
    assert_eq!(import.code, 0, "{}", import.stderr);

    // verify-full with the server's certificate as the root: trusted, and it reads the write.
    let verified = format!("{base}?sslmode=verify-full&sslrootcert={}", ca.display());
    let listed = state(&verified, &["inventory", "-o", "json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert_eq!(listed.json()[0]["name"], "over-tls", "{}", listed.stdout);

    // verify-full with only the public roots: the self-signed certificate is refused, exit 1.
    let untrusted = state(&format!("{base}?sslmode=verify-full"), &["state", "info"]);
    assert_eq!(untrusted.code, 1, "{}", untrusted.stderr);
    assert!(
        untrusted
            .stderr
            .contains("certificate is not trusted: add sslrootcert=PATH"),
        "{}",
        untrusted.stderr
    );
    for out in [&info, &import, &listed, &untrusted] {
        assert!(!out.stderr.contains(pg::TLS_PASSWORD), "{}", out.stderr);
        assert!(!out.stdout.contains(pg::TLS_PASSWORD), "{}", out.stdout);
    }

    // A sslrootcert that is not a certificate file: bad input, exit 2, naming the file.
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let bad = state(
        &format!("{base}?sslmode=verify-full&sslrootcert={}", junk.display()),
        &["state", "info"],
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("junk.pem holds no PEM certificate"),
        "{}",
        bad.stderr
    );
}
