//! Moving a whole store to another backend (`state migrate`): every table, row by row with its
//! id, in one transaction on the destination; then both sides are counted and checksummed table
//! by table, and the copy stands only when every figure agrees. The source is only read.
//!
//! Checksums are SHA-256 over each table's rows in id order, every value written with its kind
//! (text, integer, IEEE-754 bits, NULL), so two backends that hold the same data give the same
//! sums whatever their column types.

use super::columns::{placeholders, Value, NODE_COLUMNS};
use super::sql::{query_int, Db};
use crate::error::bad_input;
use anyhow::anyhow;
use sha2::{Digest, Sha256};

/// Rows per `INSERT` while copying (well under both backends' parameter limits).
const BATCH_ROWS: usize = 500;

/// One table's figures.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableSum {
    pub table: &'static str,
    pub rows: u64,
    pub checksum: String,
}

/// The tables a store holds, their columns (id first) and their order.
pub fn tables() -> Vec<(&'static str, String, &'static str)> {
    vec![
        ("nodes", format!("id, {NODE_COLUMNS}"), "id"),
        ("node_states", "id, node_id, state, since".into(), "id"),
        (
            "events",
            "id, time, deploy_id, action, outcome, state, message, machine, username".into(),
            "id",
        ),
        (
            "cleanups",
            "id, provider, account, node_ref, deploy_id, what, work, recorded_at, attempts, last_error, done_at"
                .into(),
            "id",
        ),
        ("expiries", "deploy_id, expires_at".into(), "deploy_id"),
    ]
}

/// The number of rows in each table, and of live nodes.
pub fn counts(db: &dyn Db) -> anyhow::Result<Vec<(&'static str, i64)>> {
    let mut out = Vec::new();
    for (table, _, _) in tables() {
        out.push((
            table,
            query_int(db, &format!("SELECT COUNT(*) FROM {table}"), &[])?,
        ));
    }
    let live = "SELECT COUNT(*) FROM nodes WHERE deleted_at IS NULL";
    out.insert(1, ("live_nodes", query_int(db, live, &[])?));
    Ok(out)
}

/// Count and checksum every table.
pub fn summarize(db: &dyn Db) -> anyhow::Result<Vec<TableSum>> {
    tables()
        .into_iter()
        .map(|(table, columns, order)| {
            let mut hash = Sha256::new();
            let mut rows = 0u64;
            let sql = format!("SELECT {columns} FROM {table} ORDER BY {order}");
            db.query_each(&sql, &[], &mut |row| {
                rows += 1;
                for v in &row {
                    hash_value(&mut hash, v);
                }
                hash.update(b"\n");
                Ok(())
            })?;
            Ok(TableSum {
                table,
                rows,
                checksum: hex(&hash.finalize()),
            })
        })
        .collect()
}

fn hash_value(hash: &mut Sha256, v: &Value) {
    match v {
        Value::Null => hash.update(b"N;"),
        Value::Int(i) => hash.update(format!("I{i};").as_bytes()),
        Value::Real(f) => hash.update(format!("R{:016x};", f.to_bits()).as_bytes()),
        Value::Text(s) => {
            hash.update(format!("T{}:", s.len()).as_bytes());
            hash.update(s.as_bytes());
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Copy every row of `src` into the empty store `dst`, in one transaction on `dst`, and verify
/// by counts and checksums. A destination that already holds anything is refused (exit 2).
pub fn copy(src: &dyn Db, dst: &dyn Db) -> anyhow::Result<Vec<TableSum>> {
    let held: u64 = summarize(dst)?.iter().map(|t| t.rows).sum();
    if held > 0 {
        return Err(bad_input(format!(
            "the destination {} already holds {held} rows — migrate into an empty store (a new file, or a new database)",
            dst.describe()
        )));
    }
    super::sql::write(dst, || {
        for (table, columns, order) in tables() {
            copy_table(src, dst, table, &columns, order)?;
        }
        dst.reset_ids()
    })?;
    let before = summarize(src)?;
    let after = summarize(dst)?;
    for (a, b) in before.iter().zip(&after) {
        if a != b {
            return Err(anyhow!(
                "the copy of {} differs from the source ({} rows, checksum {} vs {} rows, checksum {}) — the destination {} is incomplete; empty it and migrate again",
                a.table,
                a.rows,
                a.checksum,
                b.rows,
                b.checksum,
                dst.describe()
            ));
        }
    }
    Ok(after)
}

fn copy_table(
    src: &dyn Db,
    dst: &dyn Db,
    table: &str,
    columns: &str,
    order: &str,
) -> anyhow::Result<()> {
    let width = columns.split(", ").count();
    let mut batch: Vec<Value> = Vec::with_capacity(BATCH_ROWS * width);
    let flush = |batch: &mut Vec<Value>| -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let rows = (0..batch.len() / width)
            .map(|r| format!("({})", placeholders(r * width + 1, width)))
            .collect::<Vec<_>>()
            .join(", ");
        dst.exec(
            &format!("INSERT INTO {table}({columns}) VALUES {rows}"),
            batch,
        )?;
        batch.clear();
        Ok(())
    };
    let sql = format!("SELECT {columns} FROM {table} ORDER BY {order}");
    src.query_each(&sql, &[], &mut |row| {
        batch.extend(row);
        if batch.len() >= BATCH_ROWS * width {
            flush(&mut batch)?;
        }
        Ok(())
    })?;
    flush(&mut batch)
}
