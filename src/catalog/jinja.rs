//! The one minijinja setup every catalog template runs under, at build time, in validation and
//! in the driver: a fuel budget, a recursion limit, an output-size cap and the `shell_quote` and
//! `int_if_digits` filters.
//!
//! Catalog templates are code from a file anyone can pass with `--catalog`, so a render is
//! bounded: a loop that never ends runs out of fuel, and output past [`MAX_OUTPUT`] stops the
//! render. Both fail with a message that names the limit.
//!
//! Shared with `build.rs` (through `#[path]`): `std`, `serde` and `minijinja` only.

use minijinja::{Environment, Error, ErrorKind, Value};
use std::io;

/// Instructions one render may run. The embedded templates use a few thousand; a loop over a
/// hundred thousand items does not fit.
pub const FUEL: u64 = 2_000_000;
/// Bytes one render may produce (request bodies carry user data of at most a few hundred KB).
pub const MAX_OUTPUT: usize = 4 * 1024 * 1024;
/// Nesting of macro calls, includes and recursive loops.
pub const RECURSION_LIMIT: usize = 120;

/// A fresh environment with the limits and the filters every catalog template may use.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    env.add_filter("shell_quote", shell_quote);
    env.add_filter("int_if_digits", int_if_digits);
    // `namespace()` is the one way a loop can carry a growing value from one iteration to the
    // next (doubling a string 40 times takes 40 steps of fuel); no catalog template needs it.
    env.remove_global("namespace");
    env
}

/// Quote a value for a POSIX shell as one word: `'…'`, with each `'` written `'\''`.
/// Inside single quotes nothing is special to `sh` — not `$`, backquotes, `\` nor newlines.
pub fn shell_quote(value: Value) -> String {
    let text = match value.as_str() {
        Some(s) => s.to_string(),
        None if value.is_undefined() || value.is_none() => String::new(),
        None => value.to_string(),
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for ch in text.chars() {
        if ch == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(ch);
        }
    }
    out.push('\'');
    out
}

/// A text made only of ASCII digits (`"612"`) as the integer it spells, so a JSON body sends
/// `612` where an API wants a number; any other value (a number, a word such as `BM-2020-3`, an
/// empty text, none, digits past the 64-bit range) is returned unchanged.
pub fn int_if_digits(value: Value) -> Value {
    match value.as_str() {
        Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<u64>().map_or(value.clone(), Value::from)
        }
        _ => value,
    }
}

/// Why a render failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderError {
    pub message: String,
    /// A limit stopped it (fuel, output size or recursion), whatever the values were.
    pub limit: bool,
}

impl std::fmt::Display for RenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Compile and render `source` in `env` with the output capped at [`MAX_OUTPUT`] bytes.
pub fn render<S: serde::Serialize>(
    env: &Environment<'_>,
    source: &str,
    ctx: S,
) -> Result<String, RenderError> {
    let tpl = env.template_from_str(source).map_err(|e| RenderError {
        message: describe(&e),
        limit: false,
    })?;
    let mut sink = Capped {
        buf: Vec::new(),
        limit: MAX_OUTPUT,
        over: false,
    };
    match tpl.render_captured_to(ctx, &mut sink) {
        Ok(_) => Ok(String::from_utf8_lossy(&sink.buf).into_owned()),
        Err(_) if sink.over => Err(RenderError {
            message: format!(
                "the template's output passed the {} MB limit",
                MAX_OUTPUT / (1024 * 1024)
            ),
            limit: true,
        }),
        Err(e) => Err(RenderError {
            limit: e.kind() == ErrorKind::OutOfFuel
                || (e.kind() == ErrorKind::InvalidOperation
                    && e.to_string().contains("recursion limit")),
            message: describe(&e),
        }),
    }
}

/// A one-line description of a minijinja error; the limits are named in plain words.
pub fn describe(e: &Error) -> String {
    if e.kind() == ErrorKind::OutOfFuel {
        return format!(
            "the template ran out of fuel (more than {FUEL} steps) — a loop is too long or never ends"
        );
    }
    let mut msg = e.to_string();
    if let Some(d) = e.detail() {
        if !msg.contains(d) {
            msg = format!("{msg}: {d}");
        }
    }
    msg
}

/// An `io::Write` that refuses to grow past its limit.
struct Capped {
    buf: Vec<u8>,
    limit: usize,
    over: bool,
}

impl io::Write for Capped {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            self.over = true;
            return Err(io::Error::other("template output limit reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    /// The error of rendering `source` (with no variables), which must fail.
    fn refused(source: &str) -> RenderError {
        render(&environment(), source, context! {}).unwrap_err()
    }

    #[test]
    fn shell_quote_forms_one_word() {
        assert_eq!(shell_quote(Value::from("a b")), "'a b'");
        assert_eq!(shell_quote(Value::from("it's")), "'it'\\''s'");
        assert_eq!(shell_quote(Value::from(())), "''");
        assert_eq!(shell_quote(Value::from(42)), "'42'");
    }

    #[test]
    fn int_if_digits_turns_only_digit_texts_into_numbers() {
        let env = environment();
        let r = |v: serde_json::Value| {
            render(
                &env,
                "{{ v | int_if_digits | tojson }}",
                context! { v => v },
            )
            .unwrap()
        };
        assert_eq!(r(serde_json::json!("612")), "612");
        assert_eq!(r(serde_json::json!("007")), "7");
        assert_eq!(r(serde_json::json!(42)), "42");
        assert_eq!(r(serde_json::json!("BM-2020-3")), "\"BM-2020-3\"");
        assert_eq!(r(serde_json::json!("12a")), "\"12a\"");
        assert_eq!(r(serde_json::json!("-5")), "\"-5\"");
        assert_eq!(r(serde_json::json!("")), "\"\"");
        assert_eq!(r(serde_json::json!(null)), "null");
        assert_eq!(
            r(serde_json::json!("99999999999999999999999")),
            "\"99999999999999999999999\""
        );
    }

    /// Source a file of `NAME=<quoted>` lines with `/bin/sh` in a scratch directory: nothing may
    /// run, and each value must come back byte for byte.
    #[test]
    fn shell_quoted_values_are_inert_when_sourced() {
        let hostile = [
            "it's",
            "$(touch pwned)",
            "`touch pwned`",
            "a\ntouch pwned\nb",
            "'; touch pwned; '",
            "\"$(touch pwned)\"",
            "${IFS}touch${IFS}pwned",
            "\\'$(touch pwned)",
            "",
        ];
        let dir = tempfile::tempdir().unwrap();
        let env = environment();
        for (i, v) in hostile.iter().enumerate() {
            let file = dir.path().join(format!("node{i}"));
            let text = render(&env, "V={{ v | shell_quote }}\n", context! { v => v }).unwrap();
            std::fs::write(&file, text).unwrap();
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(". \"$1\" && printf %s \"$V\"")
                .arg("sh")
                .arg(&file)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "{v:?}: {:?}", out);
            assert_eq!(String::from_utf8_lossy(&out.stdout), *v);
            assert!(!dir.path().join("pwned").exists(), "{v:?} ran a command");
        }
    }

    /// The embedded bootstrap stays far inside the budget (measured: printed with --nocapture).
    #[test]
    fn the_embedded_bootstrap_uses_little_fuel() {
        let catalog = crate::catalog::embedded().unwrap();
        let env = environment();
        let tpl = env.template_from_str(&catalog.bootstrap.user_data).unwrap();
        let ctx = context! { name => "xnode-01", provider => "p", region => "r", template => "t" };
        let captured = tpl.render_captured(ctx).unwrap();
        let (used, _) = captured.state().fuel_levels().unwrap();
        println!("bootstrap fuel: {used} of {FUEL}");
        assert!(used < FUEL / 100, "{used}");
    }

    #[test]
    fn nested_loops_run_out_of_fuel() {
        let err = refused(
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
        );
        assert!(err.limit);
        let err = err.message;
        assert!(err.contains("ran out of fuel"), "{err}");
    }

    #[test]
    fn output_is_capped() {
        let err = refused("{% for a in range(1000) %}{{ 'x' * 100000 }}{% endfor %}");
        assert!(err.limit);
        assert!(err.message.contains("MB limit"), "{err}");
    }

    #[test]
    fn namespace_is_not_available() {
        let err = refused("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}");
        assert!(!err.limit);
        assert!(err.message.contains("namespace"), "{err}");
    }

    #[test]
    fn deep_macro_recursion_is_refused() {
        let err = refused("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
        assert!(err.limit, "{err}");
        assert!(err.message.contains("recursion"), "{err}");
    }
}
