//! `inventory export` / `inventory import`: the node records as CSV or JSON.
//!
//! # Columns
//! [`COLUMNS`], in this order, one row per node (deleted ones included), ordered by
//! `recorded_at` then `deploy_id`:
//!
//! | column | meaning |
//! |---|---|
//! | `deploy_id` | capsule's deploy id (required; the key an import updates by) |
//! | `group_id` | fleet id (empty: the deploy id) |
//! | `name` | node name (required; unique among live nodes) |
//! | `provider` | catalog provider id (required) |
//! | `account` | credentials account the node belongs to (empty: `default`) |
//! | `provider_id` | the provider's id for the node (empty until created) |
//! | `template`, `plan`, `region` | catalog template, provider plan, region slug (template and region required) |
//! | `api_variant` | catalog API variant (usually empty) |
//! | `status` | creating, pending, running, stopped, deleting, deleted, error (required) |
//! | `raw_status` | the provider's own status word |
//! | `ipv4` | public IPv4 address |
//! | `price_hourly`, `price_monthly` | prices paid, in `currency` (required, ≥ 0) |
//! | `currency` | ISO 4217 code (required) |
//! | `prices_as_of` | date of the catalog prices |
//! | `recorded_at`, `created_at`, `started_at`, `stopped_at`, `deleted_at`, `updated_at` | RFC 3339 times |
//!
//! Empty cells are "none". Numbers are written in their shortest exact form and times in UTC
//! with whole seconds, so export → import → export is byte-identical. JSON is an array with one
//! object per line, keyed by the same names.
//!
//! Import reads everything first and reports every bad cell as `FILE:ROW:COLUMN: message`
//! (ROW is the line the record starts on; the header is line 1); only a clean file reaches the
//! store, in one transaction.

use super::columns::node_values;
use super::model::{NodeFilter, NodeRecord, NodeStatus, DEFAULT_ACCOUNT};
use super::time;
use super::Store;
use crate::error::Hint;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Write};

/// Export columns, in order.
pub const COLUMNS: [&str; 23] = [
    "deploy_id",
    "group_id",
    "name",
    "provider",
    "account",
    "provider_id",
    "template",
    "plan",
    "region",
    "api_variant",
    "status",
    "raw_status",
    "ipv4",
    "price_hourly",
    "price_monthly",
    "currency",
    "prices_as_of",
    "recorded_at",
    "created_at",
    "started_at",
    "stopped_at",
    "deleted_at",
    "updated_at",
];

/// How many timestamp columns close [`COLUMNS`] (`recorded_at` to `updated_at`).
const TIMES: usize = 6;

/// Columns an import file must have (`plan` too: a resumed create sends it to the provider).
pub const REQUIRED: [&str; 10] = [
    "deploy_id",
    "name",
    "provider",
    "template",
    "plan",
    "region",
    "status",
    "price_hourly",
    "price_monthly",
    "currency",
];

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

/// The catalog's vocabulary an import is checked against, as plain data (the store knows no
/// catalog): the same checks a deploy makes on the values it records.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// Provider ids, each with its region slugs.
    pub providers: Vec<(String, Vec<String>)>,
    /// Template id → provider id.
    pub templates: HashMap<String, String>,
    /// Currencies with an exchange rate.
    pub currencies: Vec<String>,
}

/// Characters that make a spreadsheet read a cell as a formula (CSV injection).
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether a cell needs the `'` guard: it starts (after any `'` already there) with a formula
/// character. Counting existing quotes keeps the guard reversible for every value.
fn needs_guard(cell: &str) -> bool {
    cell.trim_start_matches('\'')
        .starts_with(FORMULA_START.as_slice())
}

/// A cell as CSV export writes it: `'` before a value a spreadsheet would run as a formula.
pub fn guard_cell(cell: String) -> String {
    if needs_guard(&cell) {
        format!("'{cell}")
    } else {
        cell
    }
}

/// The inverse of [`guard_cell`], applied by CSV import.
pub fn unguard_cell(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_guard(cell) => rest,
        _ => cell,
    }
}

/// A node's cells in [`COLUMNS`] order: its values in the store's column order (the same list),
/// as text, NULL empty.
pub fn cells(n: &NodeRecord) -> Vec<String> {
    use super::columns::Value as Column;
    node_values(n)
        .into_iter()
        .map(|v| match v {
            Column::Null => String::new(),
            Column::Int(i) => i.to_string(),
            Column::Real(f) => f.to_string(),
            Column::Text(s) => s,
        })
        .collect()
}

/// Stream the nodes `filter` selects to `out`; returns how many were written.
pub fn export(
    store: &dyn Store,
    filter: &NodeFilter,
    format: Format,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let mut count = 0u64;
    match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(COLUMNS)?;
            store.for_each_node(filter, &mut |n| {
                w.write_record(cells(&n).into_iter().map(guard_cell))?;
                count += 1;
                Ok(())
            })?;
            w.flush()?;
        }
        Format::Json => {
            let mut w = std::io::BufWriter::new(out);
            w.write_all(b"[")?;
            store.for_each_node(filter, &mut |n| {
                w.write_all(if count == 0 { b"\n" } else { b",\n" })?;
                serde_json::to_writer(&mut w, &n)?;
                count += 1;
                Ok(())
            })?;
            w.write_all(if count == 0 { b"]\n" } else { b"\n]\n" })?;
            w.flush()?;
        }
    }
    Ok(count)
}

/// A bad cell in an import file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub file: String,
    /// Line the record starts on (CSV) or object number (JSON); 1 is the CSV header.
    pub row: u64,
    /// Column name, or the 1-based field number for fields beyond the header.
    pub column: String,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.column.is_empty() {
            write!(f, "{}:{}: {}", self.file, self.row, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.row, self.column, self.message
            )
        }
    }
}

/// A parsed import: the records, each with the row it came from.
pub type Parsed = Vec<(u64, NodeRecord)>;

/// Read and check an import file against the catalog's vocabulary (a provider's case is
/// normalised to the catalog's). All bad cells are returned, in file order.
pub fn parse(
    input: &mut dyn Read,
    file: &str,
    format: Format,
    known: &Known,
) -> Result<Parsed, Vec<RowError>> {
    // A UTF-16 file (as some spreadsheets save "Unicode text") would read as garbled columns.
    let mut input = std::io::BufReader::new(input);
    let head = std::io::BufRead::fill_buf(&mut input).map_err(|e| {
        vec![RowError {
            file: file.to_string(),
            row: 1,
            column: String::new(),
            message: format!("cannot read the file: {e}"),
        }]
    })?;
    if let Some(enc) = crate::input_file::utf16_bom(head) {
        return Err(vec![RowError {
            file: file.to_string(),
            row: 1,
            column: String::new(),
            message: format!("the file is {enc} text — save it as UTF-8 and import again"),
        }]);
    }
    // Header-level problems stop here; row-level ones are collected with the cells' below.
    let (rows, mut errors) = match format {
        Format::Csv => csv_rows(&mut input, file)?,
        Format::Json => json_rows(&mut input, file)?,
    };
    let mut out = Vec::with_capacity(rows.len());
    let mut seen: HashMap<String, u64> = HashMap::new();
    let now = time::now();
    for (row, cells) in rows {
        let mut cx = Cx {
            file,
            row,
            errors: &mut errors,
        };
        if let Some(n) = record(&mut cx, &cells, known, &now) {
            if let Some(first) = seen.get(&n.deploy_id) {
                cx.err(
                    "deploy_id",
                    format!(
                        "deploy id '{}' appears again (first on row {first}) — list each node once",
                        n.deploy_id
                    ),
                );
            } else {
                seen.insert(n.deploy_id.clone(), row);
                out.push((row, n));
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        errors.sort_by_key(|e| e.row);
        Err(errors)
    }
}

/// Rows read, with the row-level errors met on the way.
type Rows = (Vec<(u64, Cells)>, Vec<RowError>);

/// Cells of one row by column name (absent columns are absent keys).
type Cells = HashMap<String, String>;

fn csv_rows(input: &mut dyn Read, file: &str) -> Result<Rows, Vec<RowError>> {
    let err = |row: u64, column: &str, message: String| RowError {
        file: file.to_string(),
        row,
        column: column.to_string(),
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    let mut records = reader.byte_records();
    let header = match records.next() {
        None => {
            return Err(vec![err(
                1,
                "",
                "the file is empty — expected a header line naming the columns".into(),
            )])
        }
        Some(Err(e)) => return Err(vec![csv_error(file, &e)]),
        Some(Ok(h)) => h,
    };
    let mut names: Vec<String> = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in header.iter().enumerate() {
        let name = String::from_utf8_lossy(raw)
            .trim()
            .trim_start_matches('\u{feff}')
            .to_string();
        if !COLUMNS.contains(&name.as_str()) {
            let hint = match crate::error::suggest(&name, COLUMNS) {
                Some(s) => Hint::DidYouMean(s.to_string()),
                None => Hint::UnknownColumn,
            };
            let col = if name.is_empty() {
                (i + 1).to_string()
            } else {
                super::names::shown(&name)
            };
            errors.push(err(1, &col, format!("unknown column — {hint}")));
        } else if names.contains(&name) {
            errors.push(err(1, &name, "the column appears twice — keep one".into()));
        }
        names.push(name);
    }
    for req in REQUIRED {
        if !names.iter().any(|n| n == req) {
            errors.push(err(
                1,
                req,
                format!("missing column — {}", Hint::MissingColumn),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut rows = Vec::new();
    for rec in records {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                errors.push(csv_error(file, &e));
                break;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        if rec.len() == 1 && rec.get(0).is_some_and(|f| f.is_empty()) {
            continue; // a blank line
        }
        if rec.len() < names.len() {
            errors.push(err(
                line,
                &names[rec.len()],
                format!(
                    "missing value — the row has {} fields, the header {}",
                    rec.len(),
                    names.len()
                ),
            ));
            continue;
        }
        if rec.len() > names.len() {
            errors.push(err(
                line,
                &(names.len() + 1).to_string(),
                format!(
                    "extra value — the row has {} fields, the header {}",
                    rec.len(),
                    names.len()
                ),
            ));
            continue;
        }
        let mut cells = Cells::with_capacity(names.len());
        let mut ok = true;
        for (name, raw) in names.iter().zip(rec.iter()) {
            match std::str::from_utf8(raw) {
                Ok(s) => {
                    cells.insert(name.clone(), unguard_cell(s).to_string());
                }
                Err(_) => {
                    errors.push(err(
                        line,
                        name,
                        "the value is not UTF-8 text — save the file as UTF-8".into(),
                    ));
                    ok = false;
                }
            }
        }
        if ok {
            rows.push((line, cells));
        }
    }
    Ok((rows, errors))
}

fn csv_error(file: &str, e: &csv::Error) -> RowError {
    let row = e.position().map_or(0, |p| p.line());
    let message = match e.kind() {
        csv::ErrorKind::Io(io) => format!("cannot read the file: {io}"),
        csv::ErrorKind::Utf8 { .. } => "the file is not UTF-8 text — save it as UTF-8".to_string(),
        _ => format!("not valid CSV: {e}"),
    };
    RowError {
        file: file.to_string(),
        row,
        column: String::new(),
        message,
    }
}

fn json_rows(input: &mut dyn Read, file: &str) -> Result<Rows, Vec<RowError>> {
    let one = |row: u64, column: &str, message: String| {
        vec![RowError {
            file: file.to_string(),
            row,
            column: column.to_string(),
            message,
        }]
    };
    let value: Value = serde_json::from_reader(std::io::BufReader::new(input)).map_err(|e| {
        one(
            e.line() as u64,
            &e.column().to_string(),
            format!("not valid JSON: {e}"),
        )
    })?;
    let Value::Array(items) = value else {
        return Err(one(
            1,
            "",
            "expected a JSON array of node objects, as `inventory export --format json` writes"
                .into(),
        ));
    };
    let mut rows = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let row = i as u64 + 1;
        let Value::Object(map) = item else {
            errors.extend(one(row, "", "expected a node object".into()));
            continue;
        };
        let before = errors.len();
        let mut cells = Cells::new();
        for (k, v) in map {
            if !COLUMNS.contains(&k.as_str()) {
                let hint = crate::error::suggest(&k, COLUMNS).map_or_else(
                    || "remove it".to_string(),
                    |s| format!("did you mean '{s}'?"),
                );
                errors.extend(one(
                    row,
                    &super::names::shown(&k),
                    format!("unknown field — {hint}"),
                ));
                continue;
            }
            let s = match v {
                Value::Null => String::new(),
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => {
                    errors.extend(one(
                        row,
                        &k,
                        format!(
                            "expected a string or a number, found {}",
                            super::names::shown(&other.to_string())
                        ),
                    ));
                    continue;
                }
            };
            cells.insert(k, s);
        }
        for req in REQUIRED {
            if !cells.contains_key(req) {
                errors.extend(one(
                    row,
                    req,
                    "missing field — every node object needs it".into(),
                ));
            }
        }
        if errors.len() == before {
            rows.push((row, cells));
        }
    }
    Ok((rows, errors))
}

/// Error collection for one row.
struct Cx<'a> {
    file: &'a str,
    row: u64,
    errors: &'a mut Vec<RowError>,
}

impl Cx<'_> {
    fn err(&mut self, column: &str, message: String) {
        self.errors.push(RowError {
            file: self.file.to_string(),
            row: self.row,
            column: column.to_string(),
            message,
        });
    }
}

fn get<'a>(cells: &'a Cells, column: &str) -> &'a str {
    cells.get(column).map_or("", String::as_str)
}

fn opt(cells: &Cells, column: &str) -> Option<String> {
    Some(get(cells, column))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn required(cx: &mut Cx, cells: &Cells, column: &str) -> Option<String> {
    let v = get(cells, column);
    if v.trim().is_empty() {
        cx.err(column, "empty — every node needs one".into());
        None
    } else {
        Some(v.to_string())
    }
}

fn price(cx: &mut Cx, cells: &Cells, column: &str) -> Option<f64> {
    let v = get(cells, column).trim();
    match v.parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Some(p),
        Ok(_) => {
            cx.err(
                column,
                format!(
                    "'{}' is not a price — write zero or a positive decimal like 0.0125",
                    super::names::shown(v)
                ),
            );
            None
        }
        Err(_) if v.is_empty() => {
            cx.err(column, "empty — write the price, 0 when free".into());
            None
        }
        Err(_) => {
            cx.err(
                column,
                format!(
                    "'{}' is not a number — write the price as a decimal like 0.0125",
                    super::names::shown(v)
                ),
            );
            None
        }
    }
}

fn when(cx: &mut Cx, cells: &Cells, column: &str) -> Result<Option<String>, ()> {
    let v = get(cells, column).trim();
    if v.is_empty() {
        return Ok(None);
    }
    match time::normalize(v) {
        Some(t) => Ok(Some(t)),
        None => {
            cx.err(
                column,
                format!(
                    "'{}' is not a date and time — write RFC 3339 like 2024-05-01T12:00:00Z",
                    super::names::shown(v)
                ),
            );
            Err(())
        }
    }
}

fn record(cx: &mut Cx, cells: &Cells, known: &Known, now: &str) -> Option<NodeRecord> {
    use super::names;
    let before = cx.errors.len();
    let deploy_id = required(cx, cells, "deploy_id").filter(|d| {
        let problem = names::deploy_id_problem("deploy id", d);
        problem.map(|m| cx.err("deploy_id", m)).is_none()
    });
    if let Some(g) = opt(cells, "group_id") {
        if let Some(m) = names::deploy_id_problem("group id", &g) {
            cx.err("group_id", m);
        }
    }
    if let Some(id) = opt(cells, "provider_id") {
        if let Some(m) = names::provider_id_problem(&id) {
            cx.err("provider_id", m);
        }
    }
    if let Some(a) = opt(cells, "account") {
        if let Some(m) = names::account_problem(&a) {
            cx.err("account", m);
        }
    }
    let name = required(cx, cells, "name").filter(|n| {
        let problem = names::name_problem(n);
        problem.map(|m| cx.err("name", m)).is_none()
    });
    let provider_ids: Vec<&str> = known.providers.iter().map(|(p, _)| p.as_str()).collect();
    let provider = required(cx, cells, "provider").and_then(|p| {
        let found = provider_ids
            .iter()
            .find(|k| k.eq_ignore_ascii_case(p.trim()))
            .map(|k| k.to_string());
        if found.is_none() {
            let hint = Hint::nearest(&p, provider_ids.iter().copied(), "providers");
            cx.err(
                "provider",
                format!("unknown provider '{}' — {hint}", names::shown(&p)),
            );
        }
        found
    });
    let template = required(cx, cells, "template").filter(|t| {
        let problem = match (known.templates.get(t.as_str()), &provider) {
            (None, _) => {
                let hint =
                    Hint::nearest(t, known.templates.keys().map(String::as_str), "templates");
                Some(format!("unknown template '{}' — {hint}", names::shown(t)))
            }
            (Some(owner), Some(p)) if owner != p => Some(format!(
                "template '{t}' belongs to {owner}, not {p} — fix the provider or the template"
            )),
            _ => None,
        };
        problem.map(|m| cx.err("template", m)).is_none()
    });
    let region = required(cx, cells, "region").filter(|r| {
        let Some(slugs) = provider
            .as_ref()
            .and_then(|p| known.providers.iter().find(|(k, _)| k == p))
            .map(|(_, s)| s)
        else {
            return true;
        };
        if slugs.iter().any(|s| s == r) {
            return true;
        }
        let hint = Hint::nearest(r, slugs.iter().map(String::as_str), "regions");
        cx.err(
            "region",
            format!(
                "unknown {} region '{}' — {hint}",
                provider.as_deref().unwrap_or(""),
                names::shown(r)
            ),
        );
        false
    });
    let plan = required(cx, cells, "plan");
    let status = required(cx, cells, "status").and_then(|s| {
        let parsed = NodeStatus::parse(&s);
        if parsed.is_none() {
            let names = NodeStatus::ALL.map(NodeStatus::as_str);
            let hint = match crate::error::suggest(&s, names) {
                Some(m) => format!("did you mean '{m}'?"),
                None => format!("use one of {}", names.join(", ")),
            };
            cx.err(
                "status",
                format!("unknown status '{}' — {hint}", names::shown(&s)),
            );
        }
        parsed
    });
    let ipv4 = opt(cells, "ipv4");
    if let Some(ip) = &ipv4 {
        if ip.parse::<std::net::Ipv4Addr>().is_err() {
            cx.err(
                "ipv4",
                format!(
                    "'{}' is not an IPv4 address — write it like 203.0.113.7, or leave it empty",
                    names::shown(ip)
                ),
            );
        }
    }
    let price_hourly = price(cx, cells, "price_hourly");
    let price_monthly = price(cx, cells, "price_monthly");
    let currency = required(cx, cells, "currency").and_then(|c| {
        let c = c.trim().to_string();
        if !(c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())) {
            cx.err(
                "currency",
                format!(
                    "'{}' is not a currency code — write an ISO 4217 code like USD or EUR",
                    names::shown(&c)
                ),
            );
            None
        } else if !known.currencies.contains(&c) {
            cx.err(
                "currency",
                format!(
                    "the catalog has no exchange rate for '{c}' — use one of {}",
                    known.currencies.join(", ")
                ),
            );
            None
        } else {
            Some(c)
        }
    });
    let mut times: [Option<String>; TIMES] = Default::default();
    for (slot, col) in times.iter_mut().zip(&COLUMNS[COLUMNS.len() - TIMES..]) {
        *slot = when(cx, cells, col).unwrap_or(None);
    }
    if cx.errors.len() > before {
        return None;
    }
    let [recorded_at, created_at, started_at, stopped_at, mut deleted_at, updated_at] = times;
    let (deploy_id, name, provider, template, region, status, plan) = (
        deploy_id?, name?, provider?, template?, region?, status?, plan?,
    );
    let recorded_at = recorded_at
        .or_else(|| created_at.clone())
        .unwrap_or_else(|| now.to_string());
    let updated_at = updated_at.unwrap_or_else(|| {
        [&created_at, &started_at, &stopped_at, &deleted_at]
            .into_iter()
            .flatten()
            .fold(recorded_at.clone(), |a, b| a.max(b.clone()))
    });
    match (status, &deleted_at) {
        (NodeStatus::Deleted, None) => deleted_at = Some(updated_at.clone()),
        (NodeStatus::Deleted | NodeStatus::Error, Some(_)) | (_, None) => {}
        (s, Some(_)) => {
            cx.err(
                "deleted_at",
                format!(
                    "set, but the status is {s} — clear deleted_at or set the status to deleted"
                ),
            );
            return None;
        }
    }
    Some(NodeRecord {
        group_id: opt(cells, "group_id").unwrap_or_else(|| deploy_id.clone()),
        deploy_id,
        name,
        provider,
        account: opt(cells, "account").unwrap_or_else(|| DEFAULT_ACCOUNT.to_string()),
        provider_id: opt(cells, "provider_id"),
        plan,
        template,
        region,
        api_variant: get(cells, "api_variant").to_string(),
        status,
        raw_status: get(cells, "raw_status").to_string(),
        ipv4,
        price_hourly: price_hourly?,
        price_monthly: price_monthly?,
        currency: currency?,
        prices_as_of: get(cells, "prices_as_of").to_string(),
        recorded_at,
        created_at,
        started_at,
        stopped_at,
        deleted_at,
        updated_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::columns::NODE_COLUMNS;

    #[test]
    fn the_export_columns_are_the_stores() {
        assert_eq!(COLUMNS.join(", "), NODE_COLUMNS);
    }

    #[test]
    fn the_timestamp_columns_close_the_list() {
        let (rest, times) = COLUMNS.split_at(COLUMNS.len() - TIMES);
        assert_eq!(times.first(), Some(&"recorded_at"));
        assert_eq!(times.last(), Some(&"updated_at"));
        assert!(times.iter().all(|c| c.ends_with("_at")), "{times:?}");
        assert!(!rest.iter().any(|c| c.ends_with("_at")), "{rest:?}");
    }
}
