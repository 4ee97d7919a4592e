//! `state info` and `state migrate`: where the node record lives, and moving it between a
//! SQLite file and a PostgreSQL server a team shares.
//!
//! Locations are shown without passwords (`PgUrl::redacted`).

use super::stdout;
use crate::cli::StateCommand;
use crate::context::Ctx;
use crate::error::bad_input;
use crate::render;
use crate::state::{self, copy, Location};
use serde::Serialize;
use std::process::ExitCode;

pub fn run(ctx: &Ctx, cmd: StateCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StateCommand::Info => info(ctx),
        StateCommand::Migrate { to } => migrate(ctx, &to),
    }
}

/// `state info`: backend, location, schema version and counts.
fn info(ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let location = state::location(&ctx.home)?;
    let store = state::open_at(&location)?;
    let db = store.db();
    let doc = Info {
        backend: db.backend(),
        location: db.describe(),
        schema_version: db.schema_version()?,
        counts: Counts(copy::counts(db)?),
    };
    let mut pairs = vec![
        ("backend".to_string(), doc.backend.to_string()),
        ("location".to_string(), doc.location.clone()),
        ("schema_version".to_string(), doc.schema_version.to_string()),
    ];
    pairs.extend(
        doc.counts
            .0
            .iter()
            .map(|(t, n)| (t.to_string(), n.to_string())),
    );
    render::detail(&mut stdout(), ctx.style, &pairs, &doc)?;
    Ok(ExitCode::SUCCESS)
}

/// `state info -o json` (`golden/schema/state-info.json`): the store, and a count per table.
#[derive(Debug, Serialize)]
struct Info {
    backend: &'static str,
    location: String,
    schema_version: i64,
    #[serde(flatten)]
    counts: Counts,
}

/// Rows per table, as keys of their own, in the tables' order.
#[derive(Debug)]
struct Counts(Vec<(&'static str, i64)>);

impl Serialize for Counts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(table, n)| (table, n)))
    }
}

/// `state migrate --to URL|FILE`: copy this store into an empty one, verified.
fn migrate(ctx: &Ctx, to: &str) -> anyhow::Result<ExitCode> {
    let from = state::location(&ctx.home)?;
    let to = Location::parse(to)?;
    if same_place(&from, &to) {
        return Err(bad_input(format!(
            "--to names the store this command already uses ({}) — give another file or database",
            to.describe()
        )));
    }
    if let Location::File(path) = &from {
        if !path.is_file() {
            return Err(bad_input(format!(
                "there is no state store at {} to migrate — deploy or import something first",
                path.display()
            )));
        }
    }
    let source = state::open_at(&from)?;
    let destination = state::open_at(&to)?;
    let sums = copy::copy(source.db(), destination.db())?;
    crate::messages::info(format_args!(
        "copied {} to {}; counts and checksums match, the source is unchanged",
        source.describe(),
        destination.describe()
    ));
    let doc = Migrated {
        from: source.describe(),
        to: destination.describe(),
        tables: &sums,
    };
    let mut pairs = vec![
        ("from".to_string(), doc.from.clone()),
        ("to".to_string(), doc.to.clone()),
    ];
    for t in doc.tables {
        pairs.push((format!("{} rows", t.table), t.rows.to_string()));
        pairs.push((format!("{} checksum", t.table), t.checksum.clone()));
    }
    render::detail(&mut stdout(), ctx.style, &pairs, &doc)?;
    Ok(ExitCode::SUCCESS)
}

/// `state migrate -o json` (`golden/schema/state-migrate.json`): what was copied where, with
/// each table's row count and checksum.
#[derive(Debug, Serialize)]
struct Migrated<'a> {
    from: String,
    to: String,
    tables: &'a [copy::TableSum],
}

fn same_place(a: &Location, b: &Location) -> bool {
    match (a, b) {
        (Location::File(x), Location::File(y)) => {
            x == y || matches!((x.canonicalize(), y.canonicalize()), (Ok(x), Ok(y)) if x == y)
        }
        (Location::Server(x), Location::Server(y)) => x.redacted() == y.redacted(),
        _ => false,
    }
}
