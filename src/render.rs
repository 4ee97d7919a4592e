//! Rendering: the only place that formats tables, JSON, CSV and colour.
//!
//! Commands hand over rows as JSON objects (the documented JSON schema), plus the columns a
//! table or CSV shows. JSON output is the rows themselves, pretty-printed; CSV writes the
//! columns' raw values; tables format values for people.

use crate::cli::OutputFormat;
use colored::Colorize;
use serde_json::Value;
use std::io::{self, Write};

/// How a column's value reads in a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// A USD amount, small amounts with more digits (`$0.0089`, `$48.00`).
    Usd,
    /// A number, trailing zeros trimmed.
    Num,
    /// A list, joined with `, ` (`;` in CSV).
    List,
}

/// One column of a listing.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub header: &'static str,
    /// Key in the row object; nested keys with `.` (`gpu.model`).
    pub key: &'static str,
    pub kind: Kind,
}

pub const fn col(header: &'static str, key: &'static str, kind: Kind) -> Column {
    Column { header, key, kind }
}

/// Output settings a renderer needs.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub format: OutputFormat,
    pub color: bool,
}

/// Rows marked with `"_highlight": true` are drawn in colour in tables (and the key is removed
/// from JSON and CSV).
pub fn listing(
    out: &mut dyn Write,
    style: Style,
    columns: &[Column],
    rows: &[Value],
) -> io::Result<()> {
    // One write per buffer, not per line: stdout is line-buffered.
    let mut buffered = io::BufWriter::with_capacity(64 * 1024, out);
    listing_to(&mut buffered, style, columns, rows)?;
    buffered.flush()
}

fn listing_to(
    out: &mut dyn Write,
    style: Style,
    columns: &[Column],
    rows: &[Value],
) -> io::Result<()> {
    match style.format {
        OutputFormat::Json => {
            let clean: Vec<Public> = rows.iter().map(Public).collect();
            serde_json::to_writer_pretty(&mut *out, &clean)?;
            writeln!(out)
        }
        OutputFormat::Csv => write_csv(out, columns, rows),
        OutputFormat::Table => write_table(out, style.color, columns, rows),
    }
}

/// A listing written row by row: JSON and CSV go out as rows arrive (memory stays flat however
/// many rows there are); a table needs every row for its widths and is drawn at `finish`. The
/// output is byte-for-byte what [`listing`] writes for the same rows.
pub struct RowStream<'a> {
    out: io::BufWriter<&'a mut dyn Write>,
    style: Style,
    columns: &'a [Column],
    rows: usize,
    table: Vec<Value>,
}

impl<'a> RowStream<'a> {
    pub fn new(
        out: &'a mut dyn Write,
        style: Style,
        columns: &'a [Column],
    ) -> io::Result<RowStream<'a>> {
        let mut s = RowStream {
            out: io::BufWriter::with_capacity(64 * 1024, out),
            style,
            columns,
            rows: 0,
            table: Vec::new(),
        };
        if style.format == OutputFormat::Csv {
            let mut w = csv::Writer::from_writer(&mut s.out);
            w.write_record(columns.iter().map(|c| c.key))
                .map_err(csv_io)?;
            w.flush()?;
        }
        Ok(s)
    }

    pub fn push(&mut self, row: Value) -> io::Result<()> {
        match self.style.format {
            OutputFormat::Table => self.table.push(row),
            OutputFormat::Csv => {
                let mut w = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(&mut self.out);
                w.write_record(
                    self.columns
                        .iter()
                        .map(|c| raw_text(lookup(&row, c.key), ";")),
                )
                .map_err(csv_io)?;
                w.flush()?;
            }
            OutputFormat::Json => {
                // serde_json's pretty array layout: `[`, rows indented by two, `,` between.
                self.out
                    .write_all(if self.rows == 0 { b"[\n" } else { b",\n" })?;
                let text = serde_json::to_string_pretty(&Public(&row))?;
                for (i, line) in text.lines().enumerate() {
                    if i > 0 {
                        self.out.write_all(b"\n")?;
                    }
                    self.out.write_all(b"  ")?;
                    self.out.write_all(line.as_bytes())?;
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Close the listing; the number of rows.
    pub fn finish(mut self) -> io::Result<usize> {
        match self.style.format {
            OutputFormat::Table => {
                write_table(&mut self.out, self.style.color, self.columns, &self.table)?
            }
            OutputFormat::Json if self.rows == 0 => self.out.write_all(b"[]\n")?,
            OutputFormat::Json => self.out.write_all(b"\n]\n")?,
            OutputFormat::Csv => {}
        }
        self.out.flush()?;
        Ok(self.rows)
    }
}

/// A single object: JSON as is, otherwise a two-column key/value table (or CSV).
pub fn detail(
    out: &mut dyn Write,
    style: Style,
    pairs: &[(String, String)],
    json: &Value,
) -> io::Result<()> {
    let mut buffered = io::BufWriter::with_capacity(16 * 1024, out);
    detail_to(&mut buffered, style, pairs, json)?;
    buffered.flush()
}

fn detail_to(
    out: &mut dyn Write,
    style: Style,
    pairs: &[(String, String)],
    json: &Value,
) -> io::Result<()> {
    match style.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &Public(json))?;
            writeln!(out)
        }
        OutputFormat::Csv => {
            let mut w = csv::Writer::from_writer(&mut *out);
            w.write_record(["field", "value"]).map_err(csv_io)?;
            for (k, v) in pairs {
                w.write_record([k, v]).map_err(csv_io)?;
            }
            w.flush()
        }
        OutputFormat::Table => {
            let width = pairs
                .iter()
                .map(|(k, _)| k.chars().count())
                .max()
                .unwrap_or(0);
            for (k, v) in pairs {
                let v = crate::error::printable(v);
                let key = format!("{k:width$}");
                let key = if style.color {
                    key.bold().to_string()
                } else {
                    key
                };
                writeln!(out, "{key}  {v}")?;
            }
            Ok(())
        }
    }
}

/// A row as JSON without its private (`_`-prefixed) keys, serialized in place (no copy).
struct Public<'a>(&'a Value);

impl serde::Serialize for Public<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.0 {
            Value::Object(map) => {
                let public = map.iter().filter(|(k, _)| !k.starts_with('_'));
                let mut m = serializer.serialize_map(Some(public.clone().count()))?;
                for (k, v) in public {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
            other => other.serialize(serializer),
        }
    }
}

/// The value at a dotted key.
pub fn lookup<'a>(row: &'a Value, key: &str) -> &'a Value {
    let mut cur = row;
    for part in key.split('.') {
        cur = cur.get(part).unwrap_or(&Value::Null);
    }
    cur
}

fn write_csv(out: &mut dyn Write, columns: &[Column], rows: &[Value]) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(columns.iter().map(|c| c.key))
        .map_err(csv_io)?;
    for row in rows {
        w.write_record(columns.iter().map(|c| raw_text(lookup(row, c.key), ";")))
            .map_err(csv_io)?;
    }
    w.flush()
}

fn csv_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// Plain text of a value: strings as is, null empty, lists joined.
pub fn raw_text(v: &Value, sep: &str) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| raw_text(i, sep))
            .collect::<Vec<_>>()
            .join(sep),
        Value::Object(map) => {
            // A GPU-like object reads as "count× model".
            if let (Some(model), Some(count)) = (map.get("model"), map.get("count")) {
                format!("{}× {}", count, raw_text(model, sep))
            } else {
                v.to_string()
            }
        }
        other => other.to_string(),
    }
}

/// `$0.0089` below ten cents, `$1.500` below ten dollars, `$48.00` above.
pub fn usd(amount: f64) -> String {
    if amount == 0.0 {
        "$0".to_string()
    } else if amount.abs() < 0.1 {
        format!("${amount:.4}")
    } else if amount.abs() < 10.0 {
        format!("${amount:.3}")
    } else {
        format!("${amount:.2}")
    }
}

/// A number without trailing zeros (`8`, `0.5`).
pub fn num(v: f64) -> String {
    // -0.0 (a sum of nothing, a rounding) reads as 0.
    let v = if v == 0.0 { 0.0 } else { v };
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A table cell: provider text (node names, statuses) passes through
/// [`crate::error::printable`] here.
fn cell_text(v: &Value, kind: Kind) -> String {
    crate::error::printable(&match (kind, v) {
        (_, Value::Null) => "-".to_string(),
        (Kind::Usd, Value::Number(n)) => usd(n.as_f64().unwrap_or(0.0)),
        (Kind::Num, Value::Number(n)) => num(n.as_f64().unwrap_or(0.0)),
        (Kind::List, Value::Array(a)) if a.is_empty() => "-".to_string(),
        (_, v) => raw_text(v, ", "),
    })
}

fn write_table(
    out: &mut dyn Write,
    color: bool,
    columns: &[Column],
    rows: &[Value],
) -> io::Result<()> {
    use prettytable::{format, Cell, Row, Table};
    let mut table = Table::new();
    let fmt = format::FormatBuilder::new()
        .column_separator(' ')
        .borders(' ')
        .padding(0, 1)
        .build();
    table.set_format(fmt);
    table.set_titles(Row::new(
        columns
            .iter()
            .map(|c| {
                let h = c.header.to_uppercase();
                Cell::new(&if color { h.bold().to_string() } else { h })
            })
            .collect(),
    ));
    for row in rows {
        let highlight = color
            && row
                .get("_highlight")
                .and_then(Value::as_bool)
                .unwrap_or(false);
        table.add_row(Row::new(
            columns
                .iter()
                .map(|c| {
                    let text = cell_text(lookup(row, c.key), c.kind);
                    let text = if highlight {
                        text.green().bold().to_string()
                    } else {
                        text
                    };
                    let cell = Cell::new(&text);
                    if matches!(c.kind, Kind::Usd | Kind::Num) {
                        cell.style_spec("r")
                    } else {
                        cell
                    }
                })
                .collect(),
        ));
    }
    if rows.is_empty() {
        return Ok(());
    }
    table.print(out).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const COLS: &[Column] = &[
        col("id", "id", Kind::Text),
        col("$/h", "price", Kind::Usd),
        col("tags", "tags", Kind::List),
    ];

    fn render(format: OutputFormat, rows: &[Value]) -> String {
        let mut buf = Vec::new();
        listing(
            &mut buf,
            Style {
                format,
                color: false,
            },
            COLS,
            rows,
        )
        .unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn csv_quotes_and_joins() {
        let rows = [json!({"id": "a,b", "price": 0.5, "tags": ["x", "y"]})];
        assert_eq!(
            render(OutputFormat::Csv, &rows),
            "id,price,tags\n\"a,b\",0.5,x;y\n"
        );
    }

    #[test]
    fn json_drops_private_keys() {
        let rows = [json!({"id": "a", "_highlight": true})];
        assert_eq!(
            render(OutputFormat::Json, &rows),
            "[\n  {\n    \"id\": \"a\"\n  }\n]\n"
        );
    }

    #[test]
    fn table_formats_money() {
        let out = render(
            OutputFormat::Table,
            &[json!({"id": "a", "price": 0.00893, "tags": []})],
        );
        assert!(out.contains("$0.0089"), "{out}");
        assert!(out.contains("ID"), "{out}");
    }

    #[test]
    fn a_stream_writes_what_a_listing_writes() {
        let rows = [
            json!({"id": "a,b", "price": 0.5, "tags": ["x", "y"], "_highlight": true}),
            json!({"id": "c", "price": 0.00893, "tags": [], "nested": {"k": [1, 2]}}),
        ];
        for format in [OutputFormat::Json, OutputFormat::Csv, OutputFormat::Table] {
            for n in [0, 1, 2] {
                let style = Style {
                    format,
                    color: false,
                };
                let mut whole = Vec::new();
                listing(&mut whole, style, COLS, &rows[..n]).unwrap();
                let mut streamed = Vec::new();
                let mut s = RowStream::new(&mut streamed, style, COLS).unwrap();
                for r in &rows[..n] {
                    s.push(r.clone()).unwrap();
                }
                assert_eq!(s.finish().unwrap(), n);
                assert_eq!(
                    String::from_utf8(streamed).unwrap(),
                    String::from_utf8(whole).unwrap(),
                    "{format:?} with {n} rows"
                );
            }
        }
    }

    #[test]
    fn usd_precision() {
        assert_eq!(usd(0.00893), "$0.0089");
        assert_eq!(usd(1.5), "$1.500");
        assert_eq!(usd(48.0), "$48.00");
    }
}
