//! Rendering: the only place that formats tables, JSON, CSV and colour.
//!
//! Commands hand over [`Row`]s (each the documented JSON of one item, made from a `Serialize`
//! struct, plus what only a table needs) and the columns a table or CSV shows. JSON output is
//! the rows' data, pretty-printed; CSV writes the columns' raw values; tables format values for
//! people. The renderer knows no domain word and guesses nothing from a key's name: every
//! column declares its [`Kind`] (money included), a column that needs domain text (a GPU as
//! `1× A100`) brings its own [`Column::text`] function, and a key `--columns` names that no
//! command declared reads as its plain text.

use crate::cli::OutputFormat;
use crate::messages;
use colored::Colorize;
use serde_json::Value;
use std::io::{self, Write};
use unicode_width::UnicodeWidthStr;

/// How a column's value reads in a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// A USD amount, small amounts with more digits (`$0.0089`, `$48.00`).
    Usd,
    /// An amount in the currency whose ISO code is at this other key of the row (`€0.0120`).
    Money(&'static str),
    /// A number, trailing zeros trimmed.
    Num,
    /// A list, joined with `, ` (`;` in CSV).
    List,
    /// A status word: never cut to fit, and coloured on a terminal by the style's
    /// [`Style::status_tone`].
    Status,
    /// An RFC 3339 timestamp, read as an age in tables (`3h ago`); JSON and CSV keep the timestamp.
    Age,
}

/// One column of a listing.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub header: &'static str,
    /// Key in the row object; nested keys with `.` (`gpu.model`).
    pub key: &'static str,
    pub kind: Kind,
    /// 0: always shown; higher numbers are dropped first when a table does not fit the terminal.
    pub priority: u8,
    /// The value `--quiet` prints, one per line (else the first column's).
    pub ident: bool,
    /// How a non-null value reads in a table and in CSV, when the command knows better than the
    /// plain text of the value (an object).
    pub text: Option<fn(&Value) -> String>,
    /// Shown unless `--columns` chooses; an extra column (`false`) only declares how a key
    /// reads when `--columns` asks for it.
    pub shown: bool,
}

/// How a word reads on a terminal: the renderer has colours, not words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    /// Green: all is well.
    Good,
    /// Yellow: in between, or worth a look.
    Warn,
    /// Red: failed or gone wrong.
    Bad,
    /// Dimmed: over and done with.
    Faint,
}

pub const fn col(header: &'static str, key: &'static str, kind: Kind) -> Column {
    Column {
        header,
        key,
        kind,
        priority: 1,
        ident: false,
        text: None,
        shown: true,
    }
}

/// One row of a listing: the item's documented JSON, plus what only a table needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Row {
    /// The item as its JSON schema has it (JSON and YAML output are exactly this).
    pub data: Value,
    /// Cells a table or CSV shows that are no part of the JSON (a rate's text, a detail line),
    /// by column key.
    pub cells: serde_json::Map<String, Value>,
    /// Drawn in colour in a table (the cheapest offer, a total).
    pub highlight: bool,
    /// What `--quiet` prints for the row (a reference such as `PROVIDER:ID`), instead of the
    /// ident column's value.
    pub id: Option<String>,
}

impl Row {
    /// The row of a documented item.
    pub fn of<T: serde::Serialize + ?Sized>(item: &T) -> Row {
        Row::from(serde_json::to_value(item).unwrap_or(Value::Null))
    }

    /// Draw this row in colour in a table.
    pub fn highlighted(mut self, on: bool) -> Row {
        self.highlight = on;
        self
    }

    /// The reference `--quiet` prints.
    pub fn with_id(mut self, id: impl Into<String>) -> Row {
        self.id = Some(id.into());
        self
    }

    /// A table- and CSV-only cell (a text, a count).
    pub fn with_cell(mut self, key: &str, value: impl Into<Value>) -> Row {
        self.cells.insert(key.to_string(), value.into());
        self
    }

    /// The value a column shows: the data at its dotted key, else the table-only cell.
    pub fn get(&self, key: &str) -> &Value {
        let v = lookup(&self.data, key);
        if v.is_null() {
            if let Some(cell) = self.cells.get(key) {
                return cell;
            }
        }
        v
    }
}

impl From<Value> for Row {
    fn from(data: Value) -> Row {
        Row {
            data,
            ..Row::default()
        }
    }
}

/// Rows of plain JSON data.
pub fn rows_of(values: &[Value]) -> Vec<Row> {
    values.iter().cloned().map(Row::from).collect()
}

impl Column {
    /// Set the drop priority (0 never dropped; higher dropped first on a narrow terminal).
    pub const fn prio(mut self, priority: u8) -> Column {
        self.priority = priority;
        self
    }

    /// Mark the column whose values `--quiet` prints (and which is never dropped).
    pub const fn ident(mut self) -> Column {
        self.ident = true;
        self.priority = 0;
        self
    }

    /// Read non-null values with this function in tables and CSV.
    pub const fn text(mut self, text: fn(&Value) -> String) -> Column {
        self.text = Some(text);
        self
    }

    /// Shown only when `--columns` names it (the column declares how its key reads).
    pub const fn extra(mut self) -> Column {
        self.shown = false;
        self
    }
}

/// Output settings a renderer needs.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub format: OutputFormat,
    pub color: bool,
    /// The terminal's width when stdout is one; `None` (piped) means no width budget.
    pub width: Option<usize>,
    /// Every column, whatever the width.
    pub wide: bool,
    /// Header line (table) or header record (CSV).
    pub header: bool,
    /// Only the listing's ids, one per line.
    pub quiet: bool,
    /// The columns asked for with `--columns` (JSON key names, in order).
    pub columns: Option<&'static [String]>,
    /// The colour of a [`Kind::Status`] cell's word on a terminal: the commands know what
    /// their words mean, the renderer only has colours.
    pub status_tone: fn(&str) -> Tone,
}

impl Style {
    /// A style without a terminal: every column, a header, no colour.
    pub fn plain(format: OutputFormat) -> Style {
        Style {
            format,
            color: false,
            width: None,
            wide: false,
            header: true,
            quiet: false,
            columns: None,
            status_tone: |_| Tone::Plain,
        }
    }
}

/// A whole listing at once.
pub fn listing(
    out: &mut dyn Write,
    style: Style,
    columns: &[Column],
    rows: &[Row],
) -> io::Result<()> {
    let mut s = RowStream::new(out, style, columns)?;
    for row in rows {
        s.push_ref(row)?;
    }
    s.finish().map(|_| ())
}

/// The columns a listing shows: `--columns` (checked against the declared columns and the
/// row's keys) or the declared ones that are not extras. A key no column declares reads as
/// its plain text: the renderer guesses no kind from a name or a value.
fn chosen_columns(
    style: Style,
    declared: &[Column],
    sample: Option<&Row>,
) -> io::Result<Vec<Column>> {
    let Some(names) = style.columns else {
        return Ok(declared.iter().filter(|c| c.shown).copied().collect());
    };
    let mut known: Vec<&str> = declared.iter().map(|c| c.key).collect();
    if let Some(Value::Object(map)) = sample.map(|r| &r.data) {
        known.extend(map.keys().map(String::as_str));
    }
    let mut chosen = Vec::new();
    for name in names {
        let name: &'static str = name.as_str();
        if let Some(c) = declared.iter().find(|c| c.key == name) {
            chosen.push(Column { priority: 0, ..*c });
            continue;
        }
        let found =
            sample.is_none_or(|row| !lookup(&row.data, name).is_null() || has_key(&row.data, name));
        if !found {
            let msg = match crate::error::suggest(name, known.iter().copied()) {
                Some(s) => format!("unknown column '{name}' — did you mean '{s}'?"),
                None => format!(
                    "unknown column '{name}' — the columns are the JSON keys: {}",
                    known.join(", ")
                ),
            };
            return Err(io::Error::other(crate::error::Error::Usage {
                message: msg,
                hint: None,
            }));
        }
        chosen.push(col(name, name, Kind::Text).prio(0));
    }
    Ok(chosen)
}

fn has_key(row: &Value, key: &str) -> bool {
    let (parent, last) = match key.rsplit_once('.') {
        Some((p, l)) => (lookup(row, p), l),
        None => (row, key),
    };
    parent.as_object().is_some_and(|m| m.contains_key(last))
}

/// A row reduced to the chosen columns, in their order (the JSON and YAML of `--columns`).
fn project(row: &Row, columns: &[Column]) -> Value {
    let mut map = serde_json::Map::new();
    for c in columns {
        map.insert(c.key.to_string(), row.get(c.key).clone());
    }
    Value::Object(map)
}

/// The `--quiet` value of a row: its reference (one other commands take, such as
/// `PROVIDER:ID`), else the ident column, else the first column.
fn ident_of(row: &Row, columns: &[Column]) -> String {
    if let Some(id) = &row.id {
        return id.clone();
    }
    let c = columns.iter().find(|c| c.ident).or(columns.first());
    c.map(|c| plain_text(row, c, ";")).unwrap_or_default()
}

/// A column's value as plain text (CSV, `--quiet`): its own reading, else the raw text.
fn plain_text(row: &Row, c: &Column, sep: &str) -> String {
    match (row.get(c.key), c.text) {
        (Value::Null, _) => String::new(),
        (v, Some(text)) => text(v),
        (v, None) => raw_text(v, sep),
    }
}

/// A listing written row by row: JSON and CSV go out as rows arrive (memory stays flat however
/// many rows there are); a table needs every row for its widths and is drawn at `finish`. The
/// output is byte-for-byte what [`listing`] writes for the same rows.
pub struct RowStream<'a> {
    out: io::BufWriter<&'a mut dyn Write>,
    style: Style,
    declared: &'a [Column],
    /// The shown columns, known from the first row on (`--columns` is checked against it).
    columns: Option<Vec<Column>>,
    rows: usize,
    table: Vec<Row>,
}

impl<'a> RowStream<'a> {
    pub fn new(
        out: &'a mut dyn Write,
        style: Style,
        columns: &'a [Column],
    ) -> io::Result<RowStream<'a>> {
        Ok(RowStream {
            // One write per buffer, not per line: stdout is line-buffered.
            out: io::BufWriter::with_capacity(64 * 1024, out),
            style,
            declared: columns,
            columns: None,
            rows: 0,
            table: Vec::new(),
        })
    }

    fn columns_for(&mut self, sample: Option<&Row>) -> io::Result<Vec<Column>> {
        if self.columns.is_none() {
            let cols = chosen_columns(self.style, self.declared, sample)?;
            if self.style.format == OutputFormat::Csv && self.style.header && !self.style.quiet {
                let mut w = csv::Writer::from_writer(&mut self.out);
                w.write_record(cols.iter().map(|c| c.key)).map_err(csv_io)?;
                w.flush()?;
            }
            self.columns = Some(cols);
        }
        Ok(self.columns.clone().unwrap_or_default())
    }

    pub fn push(&mut self, row: Row) -> io::Result<()> {
        if !self.style.quiet
            && matches!(self.style.format, OutputFormat::Table | OutputFormat::Yaml)
        {
            self.columns_for(Some(&row))?;
            self.table.push(row);
            self.rows += 1;
            return Ok(());
        }
        self.push_ref(&row)
    }

    fn push_ref(&mut self, row: &Row) -> io::Result<()> {
        let columns = self.columns_for(Some(row))?;
        if self.style.quiet {
            let id = ident_of(row, &columns);
            writeln!(self.out, "{id}")?;
            self.rows += 1;
            return Ok(());
        }
        match self.style.format {
            OutputFormat::Table | OutputFormat::Yaml => self.table.push(row.clone()),
            OutputFormat::Csv => {
                let mut w = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(&mut self.out);
                w.write_record(columns.iter().map(|c| plain_text(row, c, ";")))
                    .map_err(csv_io)?;
                w.flush()?;
            }
            OutputFormat::Json => {
                // serde_json's pretty array layout: `[`, rows indented by two, `,` between.
                self.out
                    .write_all(if self.rows == 0 { b"[\n" } else { b",\n" })?;
                let text = if self.style.columns.is_some() {
                    serde_json::to_string_pretty(&project(row, &columns))?
                } else {
                    serde_json::to_string_pretty(&row.data)?
                };
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
        let columns = self.columns_for(None)?;
        if self.style.quiet {
            self.out.flush()?;
            return Ok(self.rows);
        }
        match self.style.format {
            OutputFormat::Table => {
                let hidden = write_table(&mut self.out, self.style, &columns, &self.table)?;
                self.out.flush()?;
                // After the table, so that it reads as a footnote.
                if hidden > 0 {
                    messages::info(format!(
                        "{hidden} columns hidden to fit the terminal — --wide shows them all"
                    ));
                }
            }
            OutputFormat::Yaml => {
                let text = if self.style.columns.is_some() {
                    let rows: Vec<Value> =
                        self.table.iter().map(|r| project(r, &columns)).collect();
                    serde_norway::to_string(&rows)
                } else {
                    let rows: Vec<&Value> = self.table.iter().map(|r| &r.data).collect();
                    serde_norway::to_string(&rows)
                }
                .map_err(io::Error::other)?;
                self.out.write_all(text.as_bytes())?;
            }
            OutputFormat::Json if self.rows == 0 => self.out.write_all(b"[]\n")?,
            OutputFormat::Json => self.out.write_all(b"\n]\n")?,
            OutputFormat::Csv => {}
        }
        self.out.flush()?;
        Ok(self.rows)
    }
}

/// A single object: its documented JSON (or YAML) as the struct serializes, otherwise a
/// two-column key/value table (or CSV) of the text `pairs` the command made from the same
/// struct.
pub fn detail<T: serde::Serialize + ?Sized>(
    out: &mut dyn Write,
    style: Style,
    pairs: &[(String, String)],
    json: &T,
) -> io::Result<()> {
    let mut buffered = io::BufWriter::with_capacity(16 * 1024, out);
    detail_to(&mut buffered, style, pairs, json)?;
    buffered.flush()
}

fn detail_to<T: serde::Serialize + ?Sized>(
    out: &mut dyn Write,
    style: Style,
    pairs: &[(String, String)],
    json: &T,
) -> io::Result<()> {
    match style.format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, json)?;
            writeln!(out)
        }
        OutputFormat::Yaml => {
            let text = serde_norway::to_string(json).map_err(io::Error::other)?;
            out.write_all(text.as_bytes())
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

/// The value at a dotted key.
pub fn lookup<'a>(row: &'a Value, key: &str) -> &'a Value {
    let mut cur = row;
    for part in key.split('.') {
        cur = cur.get(part).unwrap_or(&Value::Null);
    }
    cur
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

/// An amount with its currency's symbol: `$0.0089`, `€0.0120`; other codes follow the number.
pub fn money(amount: f64, currency: &str) -> String {
    let symbol = match currency.to_ascii_uppercase().as_str() {
        "USD" | "" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "JPY" => "¥",
        _ => "",
    };
    let text = usd(amount);
    if symbol.is_empty() {
        format!("{} {currency}", &text[1..])
    } else {
        text.replacen('$', symbol, 1)
    }
}

/// How long ago a timestamp was, in its largest whole unit (`45s ago`, `3h ago`, `12d ago`).
pub fn age(timestamp: &str, now: i64) -> String {
    let Some(then) = crate::state::time::unix(timestamp) else {
        return timestamp.to_string();
    };
    let secs = now - then;
    let (n, future) = (secs.unsigned_abs(), secs < 0);
    let text = match n {
        0..=59 => format!("{n}s"),
        60..=3599 => format!("{}m", n / 60),
        3600..=86_399 => format!("{}h", n / 3600),
        86_400..=5_183_999 => format!("{}d", n / 86_400),
        5_184_000..=63_071_999 => format!("{}mo", n / 2_592_000),
        _ => format!("{}y", n / 31_536_000),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// How a column's value reads in a table cell, now (a layout of its own, such as `compare`'s
/// templates-as-columns grid, reads its cells here).
pub fn cell(row: &Row, c: &Column) -> String {
    cell_text(row, c, crate::state::time::now_unix())
}

/// A table cell: provider text (node names, statuses) passes through
/// [`crate::error::printable`] here.
fn cell_text(row: &Row, c: &Column, now: i64) -> String {
    let v = row.get(c.key);
    crate::error::printable(&match (c.kind, v) {
        (_, Value::Null) => "-".to_string(),
        (_, v) if c.text.is_some() => c.text.map(|text| text(v)).unwrap_or_default(),
        (Kind::Usd, Value::Number(n)) => usd(n.as_f64().unwrap_or(0.0)),
        (Kind::Money(cur), Value::Number(n)) => money(
            n.as_f64().unwrap_or(0.0),
            row.get(cur).as_str().unwrap_or("USD"),
        ),
        (Kind::Num, Value::Number(n)) => num(n.as_f64().unwrap_or(0.0)),
        (Kind::List, Value::Array(a)) if a.is_empty() => "-".to_string(),
        (Kind::Age, Value::String(s)) => age(s, now),
        (_, v) => raw_text(v, ", "),
    })
}

/// A padded cell in its tone's colour.
fn paint_tone(tone: Tone, padded: String) -> String {
    match tone {
        Tone::Plain => padded,
        Tone::Good => padded.green().to_string(),
        Tone::Warn => padded.yellow().to_string(),
        Tone::Bad => padded.red().to_string(),
        Tone::Faint => padded.dimmed().to_string(),
    }
}

fn text_width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` cut to `width` columns, with `…` when cut.
fn truncate(s: &str, width: usize) -> String {
    if text_width(s) <= width {
        return s.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    for ch in s.chars() {
        let cw = unicode_width::UnicodeWidthChar::width(ch).unwrap_or(0);
        if w + cw + 1 > width {
            break;
        }
        out.push(ch);
        w += cw;
    }
    out.push('…');
    out
}

/// A table's line width for these column widths: a border space, each cell padded by one,
/// a space between cells, a border space.
fn line_width(widths: &[usize]) -> usize {
    widths.iter().sum::<usize>() + 2 * widths.len() + 1
}

/// Which columns fit `budget`: the highest priority numbers go first (the rightmost of equals),
/// never a priority-0 column. Returns the kept indexes.
fn fit_columns(columns: &[Column], widths: &[usize], budget: usize) -> Vec<usize> {
    let mut kept: Vec<usize> = (0..columns.len()).collect();
    loop {
        let w: Vec<usize> = kept.iter().map(|&i| widths[i]).collect();
        if line_width(&w) <= budget {
            return kept;
        }
        let victim = kept
            .iter()
            .enumerate()
            .filter(|(_, &i)| columns[i].priority > 0)
            .max_by_key(|(pos, &i)| (columns[i].priority, *pos))
            .map(|(pos, _)| pos);
        match victim {
            Some(pos) => {
                kept.remove(pos);
            }
            None => return kept,
        }
    }
}

/// Laid out as the table always was (a border space, cells padded by one, single spaces
/// between), measured on the plain text so colours never shift a column. On a terminal the
/// table fits its width: low-priority columns go first (unless `--wide`), then the widest text
/// columns are cut with `…`. Returns how many columns were left out.
fn write_table(
    out: &mut dyn Write,
    style: Style,
    columns: &[Column],
    rows: &[Row],
) -> io::Result<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    let now = crate::state::time::now_unix();
    let headers: Vec<String> = columns.iter().map(|c| c.header.to_uppercase()).collect();
    let mut cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| columns.iter().map(|c| cell_text(r, c, now)).collect())
        .collect();
    let width_of = |i: usize, cells: &[Vec<String>]| {
        // The header counts even when it is left out: `--no-header` rows line up the same.
        let head = text_width(&headers[i]);
        cells
            .iter()
            .map(|r| text_width(&r[i]))
            .max()
            .unwrap_or(0)
            .max(head)
    };
    let mut widths: Vec<usize> = (0..columns.len()).map(|i| width_of(i, &cells)).collect();
    let mut kept: Vec<usize> = (0..columns.len()).collect();
    let mut hidden = 0;
    if let Some(budget) = style.width.filter(|_| !style.wide) {
        if style.columns.is_none() {
            kept = fit_columns(columns, &widths, budget);
            hidden = columns.len() - kept.len();
        }
        // Still too wide: cut the widest text columns, no narrower than their header.
        loop {
            let w: Vec<usize> = kept.iter().map(|&i| widths[i]).collect();
            let over = line_width(&w).saturating_sub(budget);
            if over == 0 {
                break;
            }
            let widest = kept
                .iter()
                .copied()
                .filter(|&i| matches!(columns[i].kind, Kind::Text | Kind::List))
                .filter(|&i| widths[i] > text_width(&headers[i]).max(6))
                .max_by_key(|&i| widths[i]);
            let Some(i) = widest else { break };
            let floor = text_width(&headers[i]).max(6);
            let target = widths[i].saturating_sub(over).max(floor);
            for r in cells.iter_mut() {
                r[i] = truncate(&r[i], target);
            }
            widths[i] = width_of(i, &cells);
        }
    }
    let line = |texts: &[(usize, &str)], paint: &dyn Fn(usize, &str, String) -> String| {
        let mut s = String::from(" ");
        for (n, &(i, text)) in texts.iter().enumerate() {
            let pad = widths[i].saturating_sub(text_width(text));
            let right = matches!(columns[i].kind, Kind::Usd | Kind::Num | Kind::Money(_));
            let padded = if right {
                format!("{}{text}", " ".repeat(pad))
            } else {
                format!("{text}{}", " ".repeat(pad))
            };
            s.push_str(&paint(i, text, padded));
            s.push(' ');
            if n + 1 < texts.len() {
                s.push(' ');
            }
        }
        s.push(' ');
        s
    };
    if style.header {
        let texts: Vec<(usize, &str)> = kept.iter().map(|&i| (i, headers[i].as_str())).collect();
        let bold = |_: usize, _: &str, p: String| {
            if style.color {
                p.bold().to_string()
            } else {
                p
            }
        };
        writeln!(out, "{}", line(&texts, &bold))?;
    }
    for (row, texts) in rows.iter().zip(&cells) {
        let highlight = style.color && row.highlight;
        let texts: Vec<(usize, &str)> = kept.iter().map(|&i| (i, texts[i].as_str())).collect();
        let paint = |i: usize, text: &str, p: String| {
            if !style.color {
                p
            } else if highlight {
                p.green().bold().to_string()
            } else if matches!(columns[i].kind, Kind::Status) {
                paint_tone((style.status_tone)(text), p)
            } else {
                p
            }
        };
        writeln!(out, "{}", line(&texts, &paint))?;
    }
    Ok(hidden)
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
        let rows = rows_of(rows);
        listing(&mut buf, Style::plain(format), COLS, &rows).unwrap();
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
    fn json_is_the_data_alone() {
        let rows = [Row::from(json!({"id": "a"}))
            .highlighted(true)
            .with_id("p:a")
            .with_cell("note", "table only")];
        let mut buf = Vec::new();
        listing(&mut buf, Style::plain(OutputFormat::Json), COLS, &rows).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "[\n  {\n    \"id\": \"a\"\n  }\n]\n"
        );
        let mut quiet = Style::plain(OutputFormat::Table);
        quiet.quiet = true;
        let mut buf = Vec::new();
        listing(&mut buf, quiet, COLS, &rows).unwrap();
        assert_eq!(String::from_utf8(buf).unwrap(), "p:a\n");
    }

    #[test]
    fn status_cells_and_only_they_take_the_styles_tone() {
        static ASKED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        fn tone(word: &str) -> Tone {
            ASKED.lock().unwrap().push(word.to_string());
            Tone::Good
        }
        const TONED: &[Column] = &[
            col("state", "state", Kind::Status),
            col("note", "note", Kind::Text),
        ];
        let rows = rows_of(&[json!({"state": "running", "note": "stopped"})]);
        let mut style = Style::plain(OutputFormat::Table);
        style.status_tone = tone;
        let mut buf = Vec::new();
        listing(&mut buf, style, TONED, &rows).unwrap();
        // Without colour no word is looked up.
        assert!(ASKED.lock().unwrap().is_empty());
        style.color = true;
        listing(&mut Vec::new(), style, TONED, &rows).unwrap();
        assert_eq!(*ASKED.lock().unwrap(), ["running"]);
    }

    #[test]
    fn a_column_may_read_its_values_itself() {
        const GPU: &[Column] = &[col("gpu", "gpu", Kind::Text)
            .text(|v| format!("{}× {}", v["count"], v["model"].as_str().unwrap_or("")))];
        let rows = rows_of(&[
            json!({"gpu": {"model": "A100", "count": 2}}),
            json!({"gpu": null}),
        ]);
        let mut buf = Vec::new();
        listing(&mut buf, Style::plain(OutputFormat::Csv), GPU, &rows).unwrap();
        assert_eq!(String::from_utf8(buf).unwrap(), "gpu\n2× A100\n\"\"\n");
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
            Row::from(json!({"id": "a,b", "price": 0.5, "tags": ["x", "y"]})).highlighted(true),
            Row::from(json!({"id": "c", "price": 0.00893, "tags": [], "nested": {"k": [1, 2]}})),
        ];
        for format in [OutputFormat::Json, OutputFormat::Csv, OutputFormat::Table] {
            for n in [0, 1, 2] {
                let style = Style::plain(format);
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
    fn a_column_declares_its_kind_and_extras_wait_for_columns() {
        const DECLARED: &[Column] = &[
            col("id", "id", Kind::Text),
            col("$/h", "rate_usd", Kind::Usd).extra(),
        ];
        let rows = rows_of(&[json!({"id": "a", "rate_usd": 0.00893, "other_usd": 0.00893})]);
        let table = |columns: Option<&'static [String]>| {
            let mut style = Style::plain(OutputFormat::Table);
            style.columns = columns;
            let mut buf = Vec::new();
            listing(&mut buf, style, DECLARED, &rows).unwrap();
            String::from_utf8(buf).unwrap()
        };
        // The extra column waits for `--columns`.
        assert!(!table(None).contains("$/H"), "{}", table(None));
        let asked: &'static [String] = Box::leak(Box::new([
            "id".to_string(),
            "rate_usd".to_string(),
            "other_usd".to_string(),
        ]));
        let out = table(Some(asked));
        // Declared money reads as money; an undeclared key is its plain text, whatever its name.
        assert!(out.contains("$0.0089"), "{out}");
        assert!(out.contains("0.00893"), "{out}");
        assert_eq!(out.matches("$0.0089").count(), 1, "{out}");
    }

    #[test]
    fn usd_precision() {
        assert_eq!(usd(0.00893), "$0.0089");
        assert_eq!(usd(1.5), "$1.500");
        assert_eq!(usd(48.0), "$48.00");
    }
}
