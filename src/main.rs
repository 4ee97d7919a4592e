//! The `capsule` binary: parse, run, map the outcome to an exit code. Nothing else.

use clap::Parser;
use std::process::ExitCode;

// The catalog load allocates per template (100k in a large overlay): mimalloc's per-thread
// free lists make that and the parse workers' allocations cheaper than glibc's malloc
// (BENCHMARKS.md, "The first load").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` of mimalloc's `mimalloc.h` (the same in its v2 and v3), which
/// libmimalloc-sys 0.1.49 does not name.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // A bug must still read as one line, never as a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        capsule::messages::error(format!("internal error ({what}{at}) — please report it; nothing else was changed after this point"));
    }));
    // `COMPLETE=bash capsule -- …`: a shell asking for completions (see `capsule completions`).
    clap_complete::CompleteEnv::with_factory(<capsule::cli::Cli as clap::CommandFactory>::command)
        .complete();
    let cli = match capsule::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if !e.use_stderr() {
                // --help and --version.
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if let Some(text) = redacted_usage_error(&e) {
                eprintln!("{text}");
            } else {
                let _ = e.print();
            }
            return ExitCode::from(2);
        }
    };
    if cli.streams_price_lists() {
        // Freed memory goes back to the system at once, not after mimalloc's default 10 ms: a
        // refresh frees each price-list page as it reads the next, and with the delay its peak
        // RSS was 1.5× glibc's (without it, the same). Other commands keep the delay: a short
        // command reusing its freed pages was faster with it (the refreshed 30k-offer listing
        // 26 ms against 40 ms). BENCHMARKS.md, "The first load, branch `fl2`".
        // SAFETY: sets one integer option; mimalloc's options are safe to set at any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
    }
    match capsule::commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            // Errors carry text from providers and files: `messages` lets no terminal escape
            // through (line by line: a diagnostic may span lines on purpose).
            capsule::messages::error(capsule::commands::one_line(&err));
            ExitCode::from(capsule::error::exit_code(&err))
        }
    }
}

/// clap quotes a stray argument back; a stray argument may be a pasted key, so it is not
/// repeated unless it looks like a flag.
fn redacted_usage_error(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::UnknownArgument {
        return None;
    }
    let arg = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => return None,
    };
    if arg.starts_with('-') {
        return None;
    }
    Some(
        "error: unexpected extra argument (not shown: it could be a secret)\n\nFor more information, try '--help'."
            .to_string(),
    )
}

/// A closed pipe (`capsule … | head`) is not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
