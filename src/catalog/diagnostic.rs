//! Located catalog errors: `catalog/aws/templates.toml:12:9: message — did you mean 'x'?`
//! followed by the offending line and carets.
//!
//! Shared with `build.rs` (through `#[path]`): `std` and `toml_edit` only.

use std::fmt;
use std::ops::Range;

/// One catalog file: its display path and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path as shown in messages (`catalog/aws/api.toml`, `/tmp/over/prices.toml`).
    pub path: String,
    pub text: String,
    /// Folder name when the file sits in a provider folder.
    pub folder: Option<String>,
    /// 0 = embedded catalog, 1 = the `--catalog` overlay.
    pub layer: u8,
}

/// An error at a place in a catalog file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub path: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
    /// The source line and the span under it, for the snippet.
    pub snippet: Option<(String, usize, usize)>,
}

impl Diagnostic {
    /// A diagnostic at a byte span of a file.
    pub fn at(
        file: &SourceFile,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Diagnostic {
        let span = span.unwrap_or(0..0);
        let (line, col) = line_col(&file.text, span.start);
        let line_start = floor_char_boundary(&file.text, span.start.min(file.text.len()));
        let line_start = file.text[..line_start].rfind('\n').map_or(0, |i| i + 1);
        let line_text = file.text[line_start..]
            .split('\n')
            .next()
            .unwrap_or("")
            .trim_end_matches('\r');
        let width = {
            let end = span.end.min(file.text.len());
            let piece = file.text.get(span.start..end).unwrap_or("");
            let first = piece.split('\n').next().unwrap_or("");
            first.chars().take(SNIPPET_CHARS).count().max(1)
        };
        let (shown, shown_col) = window(line_text, col);
        Diagnostic {
            path: file.path.clone(),
            line,
            col,
            message: cap(message.into(), MESSAGE_CHARS),
            snippet: if file.text.is_empty() {
                None
            } else {
                Some((shown, shown_col, width))
            },
        }
    }

    /// The one-line form: `path:line:col: message`.
    pub fn headline(&self) -> String {
        format!("{}:{}:{}: {}", self.path, self.line, self.col, self.message)
    }

    /// The headline plus the source line with carets under the span.
    pub fn render(&self) -> String {
        let mut out = self.headline();
        if let Some((text, col, width)) = &self.snippet {
            let gutter = self.line.to_string();
            let pad = " ".repeat(gutter.len());
            let lead: String = text
                .chars()
                .take(col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let width = (*width).min(text.chars().count().saturating_sub(col - 1).max(1));
            out.push_str(&format!(
                "\n{pad} |\n{gutter} | {text}\n{pad} | {lead}{}",
                "^".repeat(width)
            ));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())
    }
}

/// Characters of a source line a snippet shows (a minified or hostile file can hold a 10 MB line).
pub const SNIPPET_CHARS: usize = 120;
/// Characters of a message (it may quote a value from the file).
pub const MESSAGE_CHARS: usize = 400;

/// At most [`SNIPPET_CHARS`] of `line` around 1-based column `col`, with `…` where it was cut;
/// the text and the column of the same character within it.
fn window(line: &str, col: usize) -> (String, usize) {
    let total = line.chars().count();
    if total <= SNIPPET_CHARS {
        return (line.trim_end_matches('\r').to_string(), col);
    }
    let start = col.saturating_sub(1).saturating_sub(SNIPPET_CHARS / 3);
    let start = start.min(total.saturating_sub(SNIPPET_CHARS));
    let mut out = String::new();
    let mut shown_col = col - start;
    if start > 0 {
        out.push('…');
        shown_col += 1;
    }
    out.extend(line.chars().skip(start).take(SNIPPET_CHARS));
    if start + SNIPPET_CHARS < total {
        out.push('…');
    }
    (out, shown_col)
}

/// `text` cut to `max` characters, with a note of how long it was.
fn cap(text: String, max: usize) -> String {
    let total = text.chars().count();
    if total <= max {
        return text;
    }
    let mut out: String = text.chars().take(max).collect();
    out.push_str(&format!("… ({total} characters)"));
    out
}

/// Several diagnostics: the error type of catalog loading.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&d.render())?;
        }
        if n > 1 {
            write!(f, "\n{n} errors in the catalog")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A step in a key path inside a TOML document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// The byte span of the value at `path` in a TOML document (or of the deepest prefix found).
/// With `key_span`, the span of the last key instead of its value.
pub fn locate(text: &str, path: &[Seg], key_span: bool) -> Option<Range<usize>> {
    let doc = toml_edit::Document::parse(text).ok()?;
    let mut item: &toml_edit::Item = doc.as_item();
    let mut best: Option<Range<usize>> = None;
    for (i, seg) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        match seg {
            Seg::Key(k) => {
                let table = item.as_table_like()?;
                let (key, next) = match table.get_key_value(k) {
                    Some(kv) => kv,
                    None => return best,
                };
                if last && key_span {
                    return key.span().or(best);
                }
                item = next;
                best = item_span(item).or_else(|| key.span()).or(best);
            }
            Seg::Index(n) => {
                let next = match item {
                    toml_edit::Item::ArrayOfTables(a) => a.get(*n).map(|t| (t.span(), t)),
                    _ => None,
                };
                if let Some((span, table)) = next {
                    best = span.or(best);
                    // Continue inside the table.
                    return locate_in_table(table, &path[i + 1..], key_span).or(best);
                }
                if let Some(arr) = item.as_array() {
                    match arr.get(*n) {
                        Some(v) => {
                            best = v.span().or(best);
                            // Inside an inline table (`before = [{ wait_for = … }]`): the key.
                            let mut cur = v;
                            for seg in &path[i + 1..] {
                                let Seg::Key(k) = seg else {
                                    return best;
                                };
                                let Some((key, next)) = cur
                                    .as_inline_table()
                                    .and_then(|t| t.get_key_value(k))
                                    .and_then(|(key, item)| Some((key, item.as_value()?)))
                                else {
                                    return best;
                                };
                                best = if key_span { key.span() } else { next.span() }
                                    .or_else(|| key.span())
                                    .or(best);
                                cur = next;
                            }
                            return best;
                        }
                        None => return best,
                    }
                }
                return best;
            }
        }
    }
    best
}

fn locate_in_table(table: &toml_edit::Table, path: &[Seg], key_span: bool) -> Option<Range<usize>> {
    let mut best = table.span();
    let mut cur: &dyn toml_edit::TableLike = table;
    for (i, seg) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        let Seg::Key(k) = seg else {
            return best;
        };
        let Some((key, item)) = cur.get_key_value(k) else {
            return best;
        };
        if last && key_span {
            return key.span().or(best);
        }
        best = item_span(item).or_else(|| key.span()).or(best);
        if last {
            return best;
        }
        match item.as_table_like() {
            Some(t) => cur = t,
            None => {
                if let (Some(Seg::Index(n)), Some(arr)) = (path.get(i + 1), item.as_array()) {
                    return arr.get(*n).and_then(|v| v.span()).or(best);
                }
                return best;
            }
        }
    }
    best
}

/// Where a word the deserializer refused stands inside an array: the error of a closed word
/// in a list (`unless = ["stopped", "stoped"]`) comes with the span of the whole array, so the
/// span is narrowed to the first element whose string is the word the message quotes
/// (`… 'stoped' …`). Any other span, or a word no element holds, is returned unchanged.
pub fn narrow_to_element(text: &str, span: Range<usize>, message: &str) -> Range<usize> {
    let Some(word) = message.split('\'').nth(1) else {
        return span;
    };
    let Some(piece) = text.get(span.clone()) else {
        return span;
    };
    if !piece.starts_with('[') {
        return span;
    }
    // Parsed as a one-key document, which keeps every element's span.
    const KEY: &str = "x = ";
    let Ok(doc) = toml_edit::Document::parse(format!("{KEY}{piece}")) else {
        return span;
    };
    let found = doc
        .get("x")
        .and_then(|item| item.as_array())
        .and_then(|arr| {
            arr.iter()
                .find(|v| v.as_str() == Some(word))
                .and_then(|v| v.span())
        });
    match found {
        Some(inner) if inner.start >= KEY.len() => {
            span.start + inner.start - KEY.len()..span.start + inner.end - KEY.len()
        }
        _ => span,
    }
}

fn item_span(item: &toml_edit::Item) -> Option<Range<usize>> {
    match item {
        toml_edit::Item::Value(v) => v.span(),
        toml_edit::Item::Table(t) => t.span(),
        toml_edit::Item::ArrayOfTables(a) => a.span(),
        toml_edit::Item::None => None,
    }
}

/// The closest candidate to `word`, for "did you mean" hints.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // Nothing long is a typo of an id, and the edit distance costs length × length.
    if word.len() > 256 {
        return None;
    }
    let w = word.to_lowercase();
    let limit = w.chars().count().max(3) / 3 + 1;
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = strsim::levenshtein(&w, &c.to_lowercase());
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_word_in_a_list_is_pointed_at_itself() {
        let text = r#"unless = ["stopped", "stoped"]"#;
        let whole = 9..text.len();
        let narrowed = narrow_to_element(
            text,
            whole.clone(),
            "unknown state 'stoped' — did you mean 'stopped'?",
        );
        assert_eq!(&text[narrowed], "\"stoped\"");
        // Not an array, or a word no element holds: unchanged.
        assert_eq!(
            narrow_to_element(text, 0..6, "unknown state 'stoped'"),
            0..6
        );
        assert_eq!(
            narrow_to_element(text, whole.clone(), "unknown state 'other'"),
            whole
        );
    }

    #[test]
    fn a_long_line_is_shown_in_part_around_the_error() {
        let line = format!("x = \"{}\" # {}", "a".repeat(5_000_000), "b".repeat(100));
        let at = line.find('#').unwrap();
        let file = SourceFile {
            path: "big.toml".into(),
            text: format!("[t]\n{line}\n"),
            folder: None,
            layer: 1,
        };
        let d = Diagnostic::at(&file, Some(4 + at..4 + at + 1), "m".repeat(1_000_000));
        assert_eq!((d.line, d.col), (2, at + 1));
        let text = d.render();
        assert!(text.len() < 2_000, "{} bytes", text.len());
        assert!(text.contains("… (1000000 characters)"), "{text}");
        // The caret still sits under the `#`.
        let lines: Vec<&str> = text.lines().collect();
        let src = lines[2];
        let carets = lines[3];
        let src_col = src.chars().position(|c| c == '#').unwrap();
        let caret_col = carets.chars().position(|c| c == '^').unwrap();
        assert_eq!(src_col, caret_col, "{src}\n{carets}");
    }
}
