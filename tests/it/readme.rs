//! The README's examples run: every offline command of the tour and the main command.

use crate::support::capsule;
use std::path::Path;

/// `capsule openmesh …` lines of the README's code blocks that need no provider account.
fn offline_examples() -> Vec<Vec<String>> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let mut out = Vec::new();
    let mut in_code = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let cmd = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = cmd.strip_prefix("capsule openmesh ") else {
            continue;
        };
        let words: Vec<String> = rest.split_whitespace().map(str::to_string).collect();
        let offline = matches!(
            words.first().map(String::as_str),
            Some("providers" | "templates" | "template" | "regions" | "compare" | "catalog")
        ) || (words.first().map(String::as_str) == Some("deploy")
            && words.iter().any(|w| w == "--dry-run"));
        // `catalog refresh` needs a provider account.
        let offline = offline && !cmd.contains("refresh");
        if offline && !cmd.contains('…') && !cmd.contains('>') && !cmd.contains('&') {
            out.push(words);
        }
    }
    out
}

#[test]
fn readme_offline_examples_run() {
    let examples = offline_examples();
    assert!(
        examples.len() >= 9,
        "the tour has offline examples: {examples:?}"
    );
    // Examples that write (`catalog export ./out`) or read (`catalog validate ./my-catalog`)
    // relative paths run in a scratch directory where ./my-catalog is an exported catalog.
    let cwd = tempfile::tempdir().unwrap();
    let mine = cwd.path().join("my-catalog");
    capsule()
        .args(["openmesh", "catalog", "export", mine.to_str().unwrap()])
        .ok();
    for words in examples {
        let mut args = vec!["openmesh".to_string()];
        args.extend(words);
        let out = capsule().args(&args).cwd(cwd.path()).run();
        assert_eq!(
            out.code,
            0,
            "README example `capsule {}` failed:\n{}",
            args.join(" "),
            out.stderr
        );
        assert!(
            !out.stdout.trim().is_empty(),
            "`capsule {}` printed nothing",
            args.join(" ")
        );
    }
}

#[test]
fn readme_main_command_lists_31_templates() {
    // (issue 14: retired providers' templates are listed on request)
    let out = capsule()
        .args(["openmesh", "templates", "--include-retired"])
        .ok();
    // A header and one row per template.
    assert_eq!(out.stdout.lines().count(), 32, "{}", out.stdout);
}

/// `capsule … | head -1`: a closed pipe is not an error.
#[test]
fn a_closed_pipe_is_not_an_error() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_capsule"))
        .args(["openmesh", "templates", "-o", "json", "--catalog"])
        .arg(generate(home.path()))
        .env("CAPSULE_HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is dropped here: the pipe closes while capsule is still writing.
    let out = child.wait_with_output().unwrap();
    assert_eq!(first.trim(), "[");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A catalog big enough that its JSON listing outlives a pipe buffer.
fn generate(dir: &Path) -> std::path::PathBuf {
    let cat = dir.join("cat");
    capsule()
        .args([
            "openmesh",
            "catalog",
            "generate",
            cat.to_str().unwrap(),
            "--templates",
            "2000",
        ])
        .ok();
    cat
}

/// Completion scripts for every shell, and a closed pipe while writing one is not a panic.
#[test]
fn completions_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = capsule().args(["completions", shell]).ok();
        assert!(out.stdout.contains("capsule"), "{shell}");
    }
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_capsule"))
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
