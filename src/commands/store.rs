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
use serde_json::{json, Map, Value};
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
    let mut doc = Map::new();
    doc.insert("backend".into(), json!(db.backend()));
    doc.insert("location".into(), json!(db.describe()));
    doc.insert("schema_version".into(), json!(db.schema_version()?));
    for (table, n) in copy::counts(db)? {
        doc.insert(table.into(), json!(n));
    }
    show(ctx, &Value::Object(doc))
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
    eprintln!(
        "capsule: copied {} to {}; counts and checksums match, the source is unchanged",
        source.describe(),
        destination.describe()
    );
    let tables: Vec<Value> = sums
        .iter()
        .map(|t| json!({"table": t.table, "rows": t.rows, "checksum": t.checksum}))
        .collect();
    let doc = json!({
        "from": source.describe(),
        "to": destination.describe(),
        "tables": tables,
    });
    show(ctx, &doc)
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

fn show(ctx: &Ctx, doc: &Value) -> anyhow::Result<ExitCode> {
    let pairs = flatten(doc);
    render::detail(&mut stdout(), ctx.style, &pairs, doc)?;
    Ok(ExitCode::SUCCESS)
}

/// The key/value rows of a table: nested tables as `tables.nodes`.
fn flatten(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Value::Object(map) = doc {
        for (k, v) in map {
            match v {
                Value::Array(items) => {
                    for item in items {
                        let name = item["table"].as_str().unwrap_or_default();
                        out.push((format!("{name} rows"), item["rows"].to_string()));
                        let sum = item["checksum"].as_str().unwrap_or_default();
                        out.push((format!("{name} checksum"), sum.to_string()));
                    }
                }
                Value::String(s) => out.push((k.clone(), s.clone())),
                other => out.push((k.clone(), other.to_string())),
            }
        }
    }
    out
}
