//! A real PostgreSQL 15 for the tests: one server per test binary, one database per test.
//!
//! The server is made with `initdb` and started with `pg_ctl` in a temporary directory, on a
//! free loopback port, with password (SCRAM) authentication, so the tests exercise the same
//! login path a team's server does. `initdb` refuses to run as root, so as root it runs as the
//! `postgres` user. A watchdog stops the server (`pg_ctl stop -m immediate`) and removes its
//! directory as soon as the test process is gone, however it ended: a failed test, a panic or
//! a kill leave no server behind.
//!
//! Missing binaries fail the test with the package to install: CI installs `postgresql`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The superuser's password on the test server.
pub const PASSWORD: &str = "capsule-test-pw";

/// A role the server admits over TLS only (`hostnossl … reject`), with this password.
pub const TLS_ROLE: &str = "tls_only";
pub const TLS_PASSWORD: &str = "capsule-tls-pw";

/// Where Debian's PostgreSQL 15 puts its server binaries.
const BIN_DIRS: [&str; 2] = ["/usr/lib/postgresql/15/bin", "/usr/local/pgsql/bin"];

/// The running test server.
pub struct Server {
    pub port: u16,
    dir: PathBuf,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// The shared server, started on first use. Panics with the reason when it cannot start.
pub fn server() -> &'static Server {
    match SERVER.get_or_init(start) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

/// A fresh, empty database on the shared server; its URL (password included).
pub fn fresh_database() -> String {
    let s = server();
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    );
    s.psql("postgres", &format!("CREATE DATABASE {name}"));
    s.url(&name)
}

impl Server {
    /// The URL of a database on this server.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    /// Run SQL with `psql` as the superuser; its output. Panics when it fails.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = Command::new(bin_dir().join("psql"))
            .args(["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", database, "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed on {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's self-signed certificate (for `127.0.0.1` and `localhost`), as a PEM file:
    /// the `sslrootcert` that makes `verify-full` trust it.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("server.crt")
    }

    /// A fresh database owned by [`TLS_ROLE`]; its URL without `sslmode` (password included).
    pub fn tls_database(&self) -> String {
        let name = format!(
            "tls{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::SeqCst)
        );
        self.psql(
            "postgres",
            &format!("CREATE DATABASE {name} OWNER {TLS_ROLE}"),
        );
        format!(
            "postgres://{TLS_ROLE}:{TLS_PASSWORD}@127.0.0.1:{}/{name}",
            self.port
        )
    }
}

fn bin_dir() -> PathBuf {
    BIN_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("initdb").is_file())
        .unwrap_or_else(|| PathBuf::from(BIN_DIRS[0]))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command that runs a server binary, as `postgres` when this process is root.
fn as_server_user(program: &str) -> Command {
    let path = bin_dir().join(program);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        // Somewhere the server's user may stand (not root's home).
        c.current_dir(std::env::temp_dir());
        c
    } else {
        Command::new(path)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn run(mut c: Command, what: &str) -> Result<(), String> {
    let out = c.output().map_err(|e| format!("cannot run {what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn start() -> Result<Server, String> {
    let bin = bin_dir();
    if !bin.join("initdb").is_file() || !bin.join("pg_ctl").is_file() {
        return Err(format!(
            "the PostgreSQL tests need PostgreSQL 15's server binaries in {} — install them with `apt-get install postgresql` (.ci/run does)",
            bin.display()
        ));
    }
    let dir = std::env::temp_dir().join(format!("capsule-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if is_root() {
        run(
            {
                let mut c = Command::new("chown");
                c.args(["postgres:postgres"]).arg(&dir);
                c
            },
            "chown of the test server's directory",
        )?;
    }
    let data = dir.join("data");
    let pwfile = dir.join("pw");
    std::fs::write(&pwfile, PASSWORD).map_err(|e| e.to_string())?;
    if is_root() {
        let _ = Command::new("chown").arg("postgres").arg(&pwfile).status();
    }
    let mut init = as_server_user("initdb");
    init.arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "-A", "scram-sha-256", "--no-sync"])
        .args(["-E", "UTF8", "--locale=C.UTF-8"])
        .arg(format!("--pwfile={}", pwfile.display()));
    run(init, "initdb")?;
    // TLS: a self-signed certificate for the loopback address, and one role that may log in
    // over TLS only, so a test can tell an encrypted connection from a plain one.
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .map_err(|e| format!("cannot make the test server's certificate: {e}"))?;
    let (crt, key) = (dir.join("server.crt"), dir.join("server.key"));
    std::fs::write(&crt, cert.pem()).map_err(|e| e.to_string())?;
    std::fs::write(&key, key_pair.serialize_pem()).map_err(|e| e.to_string())?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
    }
    if is_root() {
        let _ = Command::new("chown")
            .arg("postgres")
            .arg(&crt)
            .arg(&key)
            .status();
    }
    let hba = data.join("pg_hba.conf");
    let rules =
        std::fs::read_to_string(&hba).map_err(|e| format!("cannot read pg_hba.conf: {e}"))?;
    std::fs::write(
        &hba,
        format!("hostnossl all {TLS_ROLE} all reject\n{rules}"),
    )
    .map_err(|e| format!("cannot write pg_hba.conf: {e}"))?;
    let port = free_port();
    // The watchdog: once this test process is gone, stop the server and remove its files.
    let watchdog = format!(
        "cd /tmp; while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         {stop} -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        stop = stop_command(),
        data = data.display(),
        dir = dir.display()
    );
    Command::new("sh")
        .args(["-c", &watchdog])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the test server's watchdog: {e}"))?;
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=200 -c ssl=on -c ssl_cert_file={} \
         -c ssl_key_file={}",
        dir.display(),
        crt.display(),
        key.display()
    );
    let mut ctl = as_server_user("pg_ctl");
    ctl.arg("-D")
        .arg(&data)
        .args(["-o", &options, "-w", "-t", "60", "-l"])
        .arg(dir.join("server.log"))
        .arg("start")
        .stdin(Stdio::null());
    run(ctl, "pg_ctl start").map_err(|e| {
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        format!("{e}\n--- server log\n{log}")
    })?;
    let server = Server { port, dir };
    server.psql(
        "postgres",
        &format!("CREATE ROLE {TLS_ROLE} LOGIN PASSWORD '{TLS_PASSWORD}'"),
    );
    Ok(server)
}

/// The shell words that run `pg_ctl` as the server's user.
fn stop_command() -> String {
    let pg_ctl = bin_dir().join("pg_ctl");
    if is_root() {
        format!("runuser -u postgres -- '{}'", pg_ctl.display())
    } else {
        format!("'{}'", pg_ctl.display())
    }
}
