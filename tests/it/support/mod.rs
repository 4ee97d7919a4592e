//! Test support: a builder that runs the `capsule` binary in its own temporary `CAPSULE_HOME`
//! and checks status, stdout and stderr in one call.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub mod fake_xnode;
pub mod hostile;
pub mod mock;
pub mod pg;

/// A `capsule` invocation under construction.
pub struct Capsule {
    home: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    cwd: Option<PathBuf>,
}

/// What a run produced.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A fresh invocation with an empty temporary `CAPSULE_HOME`.
pub fn capsule() -> Capsule {
    Capsule {
        home: tempfile::tempdir().expect("temp home"),
        args: Vec::new(),
        env: Vec::new(),
        stdin: None,
        cwd: None,
    }
}

/// Where a test's state lives: the whole state suite runs once against each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `$CAPSULE_HOME/state.db`, the default.
    Sqlite,
    /// A fresh database on the test binary's PostgreSQL server (`CAPSULE_STATE`).
    Postgres,
}

impl Backend {
    /// A fresh invocation with an empty home and, for PostgreSQL, an empty database.
    pub fn capsule(self) -> Capsule {
        match self {
            Backend::Sqlite => capsule(),
            Backend::Postgres => capsule().env("CAPSULE_STATE", pg::fresh_database()),
        }
    }
}

/// Turn test bodies `fn NAME(b: Backend)` into two tests each: `sqlite::NAME` and
/// `postgres::NAME`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::support::Backend::Sqlite)
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::support::Backend::Postgres)
                }
            )*
        }
    };
}

impl Capsule {
    /// The environment this invocation adds (for processes a test spawns itself).
    pub fn env_vars(&self) -> Vec<(String, String)> {
        self.env.clone()
    }

    /// Reuse this invocation's home for another run (state carries over).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.args = args.into_iter().map(|a| a.as_ref().to_string()).collect();
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<str>) -> Self {
        self.env.push((key.to_string(), value.as_ref().to_string()));
        self
    }

    /// The variables set with [`Capsule::env`], in order.
    pub fn envs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn stdin(mut self, input: impl AsRef<[u8]>) -> Self {
        self.stdin = Some(input.as_ref().to_vec());
        self
    }

    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cwd = Some(dir.to_path_buf());
        self
    }

    /// Run with the current arguments; the builder stays usable for further runs in the same home.
    pub fn run(&self) -> Output {
        self.run_args(&self.args)
    }

    /// Run other arguments in the same home and environment.
    pub fn run_args<S: AsRef<str>>(&self, args: &[S]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_capsule"));
        cmd.args(args.iter().map(|a| a.as_ref()));
        // A clean environment: nothing from the developer's shell leaks in.
        cmd.env_clear();
        cmd.env("PATH", std::env::var("PATH").unwrap_or_default());
        cmd.env("CAPSULE_HOME", self.home.path());
        cmd.env("HOME", self.home.path());
        cmd.env("NO_COLOR", "1");
        // Catalog prices age every day: outputs (and goldens) must not depend on today's date.
        // The tests of the stale-price notice set their own threshold (`live_catalog.rs`).
        cmd.env("CAPSULE_STALE_AFTER", "36500d");
        cmd.env("CAPSULE_POLL_INTERVAL_MS", "20");
        cmd.env("CAPSULE_BACKOFF_MS", "5");
        // The default bootstrap turns password logins off, so a deploy without a key is refused
        // unless `--no-ssh-key`; tests deploy keyless unless they set this to "" themselves.
        cmd.env("CAPSULE_NO_SSH_KEY", "1");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.stdout(Stdio::piped());
        cmd.stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn capsule");
        if let Some(input) = &self.stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(input).expect("write stdin");
        }
        let out = child.wait_with_output().expect("wait capsule");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Run and require exit code 0; returns the output.
    #[track_caller]
    pub fn ok(&self) -> Output {
        self.code(0)
    }

    /// Run and require an exit code; returns the output.
    #[track_caller]
    pub fn code(&self, code: i32) -> Output {
        let out = self.run();
        assert_eq!(
            out.code, code,
            "capsule {:?} exited {} (wanted {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.args, out.code, out.stdout, out.stderr
        );
        out
    }
}

impl Output {
    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}",
            self.stdout
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }
}

/// A capsule invocation wired to these mocks (their endpoints and credential variables).
pub fn against(mut c: Capsule, mocks: &[&mock::MockServer]) -> Capsule {
    for m in mocks {
        for (k, v) in m.env() {
            c = c.env(&k, v);
        }
    }
    c
}

/// Compare `actual` with `tests/it/golden/DIR/NAME`; `UPDATE_GOLDEN=1` rewrites the file.
#[track_caller]
pub fn golden(dir: &str, name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/golden")
        .join(dir)
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create golden dir");
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "output differs from {} (UPDATE_GOLDEN=1 rewrites it)",
        path.display()
    );
}
