//! A fast path for the body of one `[[templates]]` entry (its `key = value` lines, without the
//! header): read straight from `toml_parser`'s events into a [`Template`], without the spanned,
//! hashed document table that `toml::from_str` builds first (a large part of a 100k-template
//! overlay's first load: 1.28 s → 0.88 s with this path, BENCHMARKS.md).
//!
//! It takes only what it reads exactly as `toml` does: plain keys, scalars, arrays and inline
//! tables. Anything else — a dotted key, a table header, a date-time, a repeated key, a syntax
//! error, a value `Template` refuses — gives `None`, and the caller parses the entry with `toml`,
//! whose value or error is then the one used. So this path can make a load faster, never
//! different (the tests below compare both readers over the same bodies).
//!
//! Shared with `build.rs` (through `#[path]`): `std`, `serde`, `toml_parser` and the schema only.

use super::schema::Template;
use serde::de::value::{Error, MapDeserializer, SeqDeserializer};
use serde::de::{Deserialize, Deserializer, IntoDeserializer, Visitor};
use std::borrow::Cow;
use toml_parser::decoder::ScalarKind;
use toml_parser::lexer::Token;
use toml_parser::parser::{Event, EventKind, RecursionGuard, ValidateWhitespace};
use toml_parser::{ParseError, Source};

/// How deep arrays and inline tables may nest (what `toml` allows).
const DEPTH: u32 = 80;

/// Reads entry bodies one after another, its token and event buffers reused from one to the
/// next.
#[derive(Default)]
pub struct Reader {
    tokens: Vec<Token>,
    events: Vec<Event>,
}

impl Reader {
    /// The template an entry's body describes, when this fast path can read it; `None` sends
    /// the caller to `toml`.
    pub fn template(&mut self, body: &str) -> Option<Template> {
        let source = Source::new(body);
        self.tokens.clear();
        self.tokens.extend(source.lex());
        self.events.clear();
        let mut error: Option<ParseError> = None;
        {
            let mut checked = ValidateWhitespace::new(&mut self.events, source);
            let mut guarded = RecursionGuard::new(&mut checked, DEPTH);
            toml_parser::parser::parse_document(&self.tokens, &mut guarded, &mut error);
        }
        if error.is_some() {
            return None;
        }
        let mut walk = Walk {
            events: &self.events,
            at: 0,
            source,
            error: None,
        };
        let pairs = walk.table(None)?;
        if walk.error.is_some() {
            return None;
        }
        Template::deserialize(Val::Table(pairs)).ok()
    }
}

/// A value as read: strings borrow the body where they hold no escape.
#[derive(Debug)]
enum Val<'i> {
    Str(Cow<'i, str>),
    Int(Cow<'i, str>, u32),
    Float(Cow<'i, str>),
    Bool(bool),
    Array(Vec<Val<'i>>),
    Table(Vec<(Cow<'i, str>, Val<'i>)>),
}

/// A cursor over the events of one body.
struct Walk<'e, 'i> {
    events: &'e [Event],
    at: usize,
    source: Source<'i>,
    /// A decoding error (an invalid escape, a malformed number).
    error: Option<ParseError>,
}

impl<'i> Walk<'_, 'i> {
    /// The next event that is not white space, a comment or a line end, without taking it.
    fn peek(&mut self) -> Option<EventKind> {
        while let Some(e) = self.events.get(self.at) {
            match e.kind() {
                EventKind::Whitespace | EventKind::Comment | EventKind::Newline => self.at += 1,
                kind => return Some(kind),
            }
        }
        None
    }

    /// Take the next significant event.
    fn take(&mut self) -> Option<(EventKind, Event)> {
        let kind = self.peek()?;
        let event = self.events[self.at];
        self.at += 1;
        Some((kind, event))
    }

    /// `key = value` pairs up to `close` (the end of the body when `None`). A dotted key, a
    /// header or a repeated key is not for this path.
    fn table(&mut self, close: Option<EventKind>) -> Option<Vec<(Cow<'i, str>, Val<'i>)>> {
        let mut pairs: Vec<(Cow<'i, str>, Val<'i>)> = Vec::new();
        loop {
            let Some((kind, event)) = self.take() else {
                return close.is_none().then_some(pairs);
            };
            match kind {
                k if Some(k) == close => return Some(pairs),
                EventKind::ValueSep if close.is_some() => continue,
                EventKind::SimpleKey => {
                    let raw = self.source.get(event)?;
                    let mut key = Cow::Borrowed("");
                    raw.decode_key(&mut key, &mut self.error);
                    if self.take()?.0 != EventKind::KeyValSep {
                        return None;
                    }
                    let value = self.value()?;
                    if pairs.iter().any(|(k, _)| *k == key) {
                        return None;
                    }
                    pairs.push((key, value));
                }
                _ => return None,
            }
        }
    }

    fn value(&mut self) -> Option<Val<'i>> {
        let (kind, event) = self.take()?;
        match kind {
            EventKind::Scalar => {
                let raw = self.source.get(event)?;
                let mut text = Cow::Borrowed("");
                match raw.decode_scalar(&mut text, &mut self.error) {
                    ScalarKind::String => Some(Val::Str(text)),
                    ScalarKind::Boolean(b) => Some(Val::Bool(b)),
                    ScalarKind::Float => Some(Val::Float(text)),
                    ScalarKind::Integer(radix) => Some(Val::Int(text, radix.value())),
                    ScalarKind::DateTime => None,
                }
            }
            EventKind::ArrayOpen => {
                let mut items = Vec::new();
                loop {
                    match self.peek()? {
                        EventKind::ArrayClose => {
                            self.at += 1;
                            return Some(Val::Array(items));
                        }
                        EventKind::ValueSep => self.at += 1,
                        _ => items.push(self.value()?),
                    }
                }
            }
            EventKind::InlineTableOpen => self
                .table(Some(EventKind::InlineTableClose))
                .map(Val::Table),
            _ => None,
        }
    }
}

impl<'de> Val<'de> {
    fn unexpected(&self) -> &'static str {
        match self {
            Val::Str(_) => "a string",
            Val::Int(..) => "an integer",
            Val::Float(_) => "a float",
            Val::Bool(_) => "a boolean",
            Val::Array(_) => "an array",
            Val::Table(_) => "a table",
        }
    }
}

/// Values reach serde as `toml`'s deserializer gives them: integers as the narrowest of
/// i64/u64/i128/u128 that holds them, floats that overflow refused, an absent key as `None`
/// and a present one as `Some`, a string as a unit enum variant.
impl<'de> Deserializer<'de> for Val<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        use serde::de::Error as _;
        match self {
            Val::Str(Cow::Borrowed(s)) => visitor.visit_borrowed_str(s),
            Val::Str(Cow::Owned(s)) => visitor.visit_string(s),
            Val::Int(text, radix) => {
                if let Ok(v) = i64::from_str_radix(&text, radix) {
                    visitor.visit_i64(v)
                } else if let Ok(v) = u64::from_str_radix(&text, radix) {
                    visitor.visit_u64(v)
                } else if let Ok(v) = i128::from_str_radix(&text, radix) {
                    visitor.visit_i128(v)
                } else if let Ok(v) = u128::from_str_radix(&text, radix) {
                    visitor.visit_u128(v)
                } else {
                    Err(Error::custom("integer number overflowed"))
                }
            }
            Val::Float(text) => match text.parse::<f64>() {
                Ok(f) if f.is_finite() || text.contains("inf") => visitor.visit_f64(f),
                _ => Err(Error::custom("floating-point number overflowed")),
            },
            Val::Bool(b) => visitor.visit_bool(b),
            Val::Array(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter());
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            Val::Table(pairs) => {
                let mut map = MapDeserializer::new(pairs.into_iter());
                let value = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(value)
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        use serde::de::Error as _;
        match self {
            Val::Str(s) => visitor.visit_enum(s.into_deserializer()),
            // An enum written as a table: `toml`'s own reading (and error) applies.
            other => Err(Error::custom(format!(
                "wanted a string, found {}",
                other.unexpected()
            ))),
        }
    }

    serde::forward_to_deserialize_any! {
        bool u8 u16 u32 u64 u128 i8 i16 i32 i64 i128 f32 f64 char str string seq bytes byte_buf
        map unit ignored_any unit_struct tuple_struct tuple identifier struct
    }
}

impl<'de> IntoDeserializer<'de, Error> for Val<'de> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(body: &str) -> Option<Template> {
        Reader::default().template(body)
    }

    /// What `toml` makes of the same body, in a comparable form.
    fn both(body: &str) -> (Option<String>, Option<String>) {
        let fast = template(body).map(|t| format!("{t:?}"));
        let slow = toml::from_str::<Template>(body)
            .ok()
            .map(|t| format!("{t:?}"));
        (fast, slow)
    }

    /// The fast path reads `body` exactly as `toml` does.
    fn reads_the_same(body: &str) {
        let (fast, slow) = both(body);
        assert!(fast.is_some(), "the fast path gave up on:\n{body}");
        assert_eq!(fast, slow, "{body}");
    }

    /// The fast path leaves `body` to `toml` (which may accept or refuse it).
    fn leaves_to_toml(body: &str) {
        let (fast, _) = both(body);
        assert_eq!(fast, None, "{body}");
    }

    const PLAIN: &str = r#"id = "syn-0"
plan = "syn-plan-0"
name = "Synthetic 0"
cpu = 32
memory_gb = 128
storage_gb = 1280
bandwidth_tb = 1
price_hourly = 0.389490
price_monthly = 280.4328
arch = "x86_64"
regions = ["us-west-2"]
features = ["ssd"]
"#;

    #[test]
    fn a_generated_entry_reads_the_same() {
        reads_the_same(PLAIN);
        reads_the_same(&PLAIN.replace('\n', "\r\n"));
    }

    #[test]
    fn every_embedded_template_reads_the_same() {
        let mut n = 0;
        for file in crate::catalog::embedded_files() {
            let Ok(doc) = file.text.parse::<toml::Table>() else {
                continue;
            };
            let Some(toml::Value::Array(entries)) = doc.get("templates") else {
                continue;
            };
            for entry in entries.iter().filter_map(toml::Value::as_table) {
                // Each key on one line, tables inline (as a generated overlay writes them).
                let body: String = entry.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
                reads_the_same(&body);
                n += 1;
            }
        }
        assert!(n >= 31, "only {n} embedded templates were read");
    }

    #[test]
    fn values_of_every_form_read_the_same() {
        reads_the_same(
            "id = 'lit\\eral' # a comment\n\"name\" = \"esc\\u00e9\\t\\\"q\\\"\"\ncpu = 0x10\n\
             memory_gb = 1_024\nstorage_gb = 1e3\nbandwidth_tb = +inf\nprice_hourly = -0.0\n\
             price_monthly = 7\nbandwidth_unmetered = true\n\
             gpu = { model = \"H100\", count = 8, vram_gb = 80.0 }\n\
             region_prices = { a = 1.5, 'b-c' = 2 }\n\
             regions = [\n  \"x\", # first\n  'y',\n]\nfeatures = []\narch = \"arm64\"\n\
             monthly_cap_hours = \"none\"\n",
        );
        reads_the_same("cpu = 0o17\nmemory_gb = 0b101\nmonthly_cap_hours = 672\n");
        reads_the_same("id = \"\"\"multi\nline\"\"\"\nname = '''raw\\n\n'''\n");
        reads_the_same("");
        reads_the_same("# only a comment\n\n");
    }

    #[test]
    fn what_the_fast_path_cannot_read_goes_to_toml() {
        // Forms it does not take, which toml accepts.
        for body in ["gpu.count = 2\n", "[gpu]\ncount = 1\n"] {
            let (fast, slow) = both(body);
            assert_eq!(fast, None, "{body}");
            assert!(slow.is_some(), "toml refuses {body}");
        }
        // Bodies toml refuses: the fast path must not accept any of them.
        for body in [
            "id = \"a\"\nid = \"b\"\n",
            "cpu = 1.5\n",
            "cpu = -1\n",
            "unknown = 1\n",
            "gpu = { count = 1, count = 2 }\n",
            "gpu = { colour = \"red\" }\n",
            "arch = \"sparc\"\n",
            "arch = { x86_64 = 1 }\n",
            "id = \"bad \\q escape\"\n",
            "cpu = 99999999999999999999999999999999999999999\n",
            "memory_gb = 1e999\n",
            "id = 2024-01-01\n",
            "regions = [\"a\",,]\n",
            "id = \"unterminated\n",
            "cpu = 1 2\n",
            "= 1\n",
            "features = [1, \"a\"]\n",
            "price_hourly = \"cheap\"\n",
            "id = \"a\" \u{7}\n",
        ] {
            let (fast, slow) = both(body);
            assert_eq!(slow, None, "toml accepts {body}");
            assert_eq!(fast, None, "the fast path accepts {body}");
        }
        leaves_to_toml("[[templates]]\nid = \"a\"\n");
    }

    /// Every body one edit away from a sound one (a character removed, or one of TOML's
    /// special characters put in): whenever the fast path reads it, `toml` reads it the same.
    #[test]
    fn one_edit_away_the_fast_path_never_differs() {
        let body = format!(
            "{PLAIN}gpu = {{ model = \"A\\tB\", count = 1 }}\nregion_prices = {{ 'a' = 1 }}\n"
        );
        let mut read = 0;
        let mut checked = 0;
        let mut edits: Vec<String> = Vec::new();
        for (i, _) in body.char_indices() {
            let mut cut = body.clone();
            cut.remove(i);
            edits.push(cut);
            for c in [
                "\"", "'", "=", ",", "[", "]", "{", "}", ".", "#", "\n", "\\", "_", "0", "e", "x",
            ] {
                let mut put = body.clone();
                put.insert_str(i, c);
                edits.push(put);
            }
        }
        for edited in &edits {
            let (fast, slow) = both(edited);
            if fast.is_some() {
                read += 1;
                assert_eq!(fast, slow, "{edited}");
            }
            checked += 1;
        }
        // The check means something only if the fast path reads many of them.
        assert!(read * 10 > checked, "read {read} of {checked}");
    }

    #[test]
    fn nesting_beyond_the_limit_is_left_to_toml() {
        let deep = format!("regions = {}{}\n", "[".repeat(200), "]".repeat(200));
        leaves_to_toml(&deep);
    }
}
