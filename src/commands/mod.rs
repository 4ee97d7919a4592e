//! Orchestration: one file per command group. Commands gather data from `catalog`, `select`,
//! `driver` and `state`, and hand it to `render`; they choose no exit code themselves except by
//! returning `ExitCode` for partial failures.

pub mod bulk;
pub mod catalog;
pub mod cleanup;
pub mod cost;
pub mod deploy;
pub mod expiry;
pub mod failover;
pub mod history;
pub mod inventory;
pub mod nodes;
pub mod provider;
pub mod report;
pub mod ssh;
pub mod sshkeys;
pub mod store;
pub mod sync;
pub mod xnode;

use crate::cli::{Cli, Command, TopCommand};
use crate::context::Ctx;
use std::process::ExitCode;

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = cli.global;
    let om = match cli.command {
        TopCommand::Completions { shell } => {
            // The registration script calls `COMPLETE=<shell> capsule -- …` as the user types,
            // so candidates (template ids, providers, regions, node names) are always current.
            let name = shell.name();
            let shells = clap_complete::env::Shells::builtins();
            let completer = shells
                .completer(name)
                .ok_or_else(|| anyhow::anyhow!("no completion support for {name}"))?;
            let mut script = Vec::new();
            completer.write_registration(
                "COMPLETE",
                "capsule",
                "capsule",
                "capsule",
                &mut script,
            )?;
            std::io::Write::write_all(&mut stdout(), &script)?;
            return Ok(ExitCode::SUCCESS);
        }
        TopCommand::Man { dir } => {
            use clap::CommandFactory;
            std::fs::create_dir_all(&dir).map_err(|e| {
                crate::error::bad_input(format!("cannot create {}: {e}", dir.display()))
            })?;
            clap_mangen::generate_to(Cli::command(), &dir)?;
            let n = std::fs::read_dir(&dir)?
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "1"))
                .count();
            std::io::Write::write_all(
                &mut stdout(),
                format!("wrote {n} man pages to {}\n", dir.display()).as_bytes(),
            )?;
            return Ok(ExitCode::SUCCESS);
        }
        TopCommand::Openmesh(om) => *om,
    };
    let Some(command) = om.command else {
        std::io::Write::write_all(&mut stdout(), GETTING_STARTED.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    };
    // Validating a directory must not require the effective catalog to load.
    if let Command::Catalog(crate::cli::CatalogCommand::Validate { dir }) = &command {
        return catalog::validate_dir(dir, global.output);
    }
    let ctx = Ctx::new(&global)?;
    let result = dispatch(&ctx, command);
    // The process ends next; the OS frees a large catalog faster than dropping it piece by piece.
    std::mem::forget(ctx);
    result
}

fn dispatch(ctx: &Ctx, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Providers => catalog::providers(ctx),
        Command::Provider(cmd) => provider::run(ctx, cmd),
        Command::Templates(filter) => catalog::templates(ctx, &filter),
        Command::Template(crate::cli::TemplateCommand::Show { id }) => {
            catalog::template_show(ctx, &id)
        }
        Command::Regions(args) => catalog::regions(ctx, &args),
        Command::Compare(args) if args.chart => {
            report::compare_chart(ctx, &args.ids, args.include_retired)
        }
        Command::Compare(args) => catalog::compare(ctx, &args.ids, args.include_retired),
        Command::Catalog(cmd) => catalog::catalog_command(ctx, cmd),
        Command::Deploy(args) => deploy::deploy(ctx, &args),
        Command::List(args) => nodes::list(ctx, &args),
        Command::Status(args) if args.probe => xnode::status_probe(ctx, &args),
        Command::Status(args) => nodes::status(ctx, &args.node),
        Command::Reinstall(args) => xnode::reinstall(ctx, &args),
        Command::Start(args) => bulk::run(ctx, &args, crate::driver::Lifecycle::Start),
        Command::Stop(args) => bulk::run(ctx, &args, crate::driver::Lifecycle::Stop),
        Command::Delete(args) => bulk::run(ctx, &args, crate::driver::Lifecycle::Delete),
        Command::Inventory(args) => inventory::run(ctx, args),
        Command::History(args) => history::run(ctx, args),
        Command::Cost(args) => cost::run(ctx, &args),
        Command::Sync(args) => sync::run(ctx, &args),
        Command::Reap(args) => expiry::reap(ctx, &args),
        Command::Ssh(args) => ssh::run(ctx, &args),
        Command::Report(args) => report::html(ctx, &args),
        Command::State(cmd) => store::run(ctx, cmd),
    }
}

/// What `capsule openmesh` alone prints.
const GETTING_STARTED: &str = "\
capsule openmesh: see every provider's server templates side by side, deploy the cheapest that
fits, and keep a record of every node.

Getting started:
  capsule openmesh providers                        the providers, their prices and status
  capsule openmesh templates --min-cpu 4            templates that fit, cheapest first
  capsule openmesh provider configure NAME --api-key-stdin
                                                    store an API key (see `provider show NAME`)
  capsule openmesh deploy --min-cpu 4 --min-memory 8 --budget 0.10 --dry-run
                                                    what would be deployed, and why
  capsule openmesh inventory                        the nodes capsule has recorded

Every command has examples in its help: capsule openmesh help COMMAND
";

/// `provider: message` for a provider's failure, without repeating the provider when the
/// message already starts with it (driver errors do).
pub fn provider_failure(id: &str, what: &str, msg: &str) -> String {
    let msg = msg.strip_prefix(&format!("{id}: ")).unwrap_or(msg);
    format!("{id}: {what}: {msg}")
}

/// Standard output, locked, for a command's results.
pub fn stdout() -> std::io::StdoutLock<'static> {
    std::io::stdout().lock()
}

/// Whether a listing's rows belong to an account other than `default`: then tables show an
/// `account` column (JSON always has the key).
pub fn accounts_in_use(rows: &[crate::render::Row]) -> bool {
    rows.iter().any(|r| {
        r.data["account"]
            .as_str()
            .is_some_and(|a| a != crate::state::DEFAULT_ACCOUNT)
    })
}

/// An error and its causes on one line (`deploy failed: PROVIDER: …`), a cause whose text an
/// earlier part already holds left out: the sentence the binary prints, and `sync`'s note on
/// an account it could not list.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// The progress of a fan-out over `len` `noun`s: a bar only on a terminal, for table output
/// and more than one item.
pub(crate) fn progress(ctx: &Ctx, len: usize, noun: &str) -> crate::engine::Progress {
    crate::engine::Progress::new(
        ctx.interactive && ctx.format() == crate::cli::OutputFormat::Table,
        len,
        noun,
    )
}

/// The colour of a status word in a table (node states, outcomes, sync findings, provider
/// states): running green, stopped yellow, error red, deleted dimmed.
pub(crate) fn status_tone(word: &str) -> crate::render::Tone {
    use crate::render::Tone;
    match word {
        "running" | "active" | "ok" | "created" | "adopted" | "in_sync" => Tone::Good,
        "pending" | "stopped" | "stopping" | "starting" | "deleting" | "provisioning" | "drift"
        | "in_doubt" | "orphan" | "ghost" => Tone::Warn,
        "error" | "failed" | "retired" | "rejected" => Tone::Bad,
        "deleted" => Tone::Faint,
        _ => Tone::Plain,
    }
}
