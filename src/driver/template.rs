//! Request templates (minijinja) in three flavours:
//! - body: every `{{ value }}` is JSON-encoded (strings quoted, lists as arrays, none → null), so a
//!   user value cannot change the structure of the request;
//! - path: every value is percent-encoded as one path segment;
//! - plain: values printed as they are (query and header values, base URLs, text bodies).
//!
//! Contexts are plain JSON objects built by the driver; secrets are never put in them.
//! All three start from the shared catalog environment (`catalog::jinja`): fuel, recursion and
//! output limits, and the `shell_quote` filter.

use super::form;
use crate::catalog::jinja;
use minijinja::{AutoEscape, Environment, Value};

/// The three template environments.
pub struct Renderer {
    body: Environment<'static>,
    path: Environment<'static>,
    plain: Environment<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new()
    }
}

impl Renderer {
    pub fn new() -> Renderer {
        let mut body = jinja::environment();
        body.set_auto_escape_callback(|_| AutoEscape::Json);
        let mut path = jinja::environment();
        path.set_auto_escape_callback(|_| AutoEscape::None);
        path.set_formatter(|out, _state, value| {
            if value.is_undefined() || value.is_none() {
                return Ok(());
            }
            let s = match value.as_str() {
                Some(s) => s.to_string(),
                None => value.to_string(),
            };
            out.write_str(&form::encode(&s))
                .map_err(minijinja::Error::from)
        });
        let mut plain = jinja::environment();
        plain.set_auto_escape_callback(|_| AutoEscape::None);
        plain.set_formatter(|out, state, value| {
            // none prints as nothing, like undefined, so `{{ user_data }}` can be empty.
            minijinja::escape_formatter(
                out,
                state,
                if value.is_none() {
                    &Value::UNDEFINED
                } else {
                    value
                },
            )
        });
        Renderer { body, path, plain }
    }

    /// Evaluate a condition (a minijinja expression) over the context: its truthiness.
    pub fn truthy(&self, expr: &str, ctx: &serde_json::Value) -> Result<bool, String> {
        let e = self
            .plain
            .compile_expression(expr)
            .map_err(|e| e.to_string())?;
        e.eval(Value::from_serialize(ctx))
            .map(|v| v.is_true())
            .map_err(|e| e.to_string())
    }

    /// Render a JSON body template (values JSON-encoded).
    pub fn body(&self, src: &str, ctx: &serde_json::Value) -> Result<String, String> {
        render(&self.body, src, ctx)
    }

    /// Render a path template (values percent-encoded as path segments).
    pub fn path(&self, src: &str, ctx: &serde_json::Value) -> Result<String, String> {
        render(&self.path, src, ctx)
    }

    /// Render a plain template (query values, headers, base URL, text bodies).
    pub fn plain(&self, src: &str, ctx: &serde_json::Value) -> Result<String, String> {
        render(&self.plain, src, ctx)
    }
}

fn render(
    env: &Environment<'static>,
    src: &str,
    ctx: &serde_json::Value,
) -> Result<String, String> {
    if !src.contains("{{") && !src.contains("{%") && !src.contains("{#") {
        return Ok(src.to_string());
    }
    jinja::render(env, src, Value::from_serialize(ctx)).map_err(|e| e.message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_values_are_json_encoded() {
        let r = Renderer::new();
        let ctx = json!({
            "name": "a\",\"size\":\"x",
            "keys": ["k1", "k2"],
            "ud": null,
            "n": 3,
            "managed_tag": "capsule",
            "tag": "capsule-1"
        });
        let out = r
            .body(
                r#"{"name": {{ name }}, "size": "s-1", "keys": {{ keys }}, "ud": {{ ud }}, "n": {{ n }}, "tags": {{ [managed_tag, tag] }}{% if ud %}, "x": 1{% endif %}}"#,
                &ctx,
            )
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["name"], "a\",\"size\":\"x");
        assert_eq!(v["size"], "s-1");
        assert_eq!(v["keys"], json!(["k1", "k2"]));
        assert_eq!(v["ud"], serde_json::Value::Null);
        assert_eq!(v["n"], 3);
        assert_eq!(v["tags"], json!(["capsule", "capsule-1"]));
        assert!(v.get("x").is_none());
    }

    #[test]
    fn path_values_are_segment_escaped() {
        let r = Renderer::new();
        let ctx = json!({"id": "../a b/c?d#e", "n": 42, "missing": null});
        assert_eq!(
            r.path("/v2/droplets/{{ id }}", &ctx).unwrap(),
            "/v2/droplets/..%2Fa%20b%2Fc%3Fd%23e"
        );
        assert_eq!(
            r.path("/x/{{ n }}/{{ missing }}{{ nothing }}", &ctx)
                .unwrap(),
            "/x/42/"
        );
    }

    #[test]
    fn plain_values_as_is() {
        let r = Renderer::new();
        let ctx = json!({"region": "us-east-1", "t": null, "account": {"project_id": "p1"}});
        assert_eq!(
            r.plain("https://compute.{{ region }}.example.com", &ctx)
                .unwrap(),
            "https://compute.us-east-1.example.com"
        );
        assert_eq!(r.plain("{{ t }}", &ctx).unwrap(), "");
        assert_eq!(r.plain("{{ account.project_id }}", &ctx).unwrap(), "p1");
        assert!(r.body("{{ broken", &ctx).is_err());
    }

    #[test]
    fn every_flavour_is_bounded() {
        let r = Renderer::new();
        let ctx = json!({});
        let spin =
            "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}";
        let blow = "{% for a in range(100000) %}{{ 'x' * 100000 }}{% endfor %}";
        for src in [spin, blow] {
            for out in [r.body(src, &ctx), r.path(src, &ctx), r.plain(src, &ctx)] {
                let err = out.unwrap_err();
                assert!(err.contains("fuel") || err.contains("MB limit"), "{err}");
            }
        }
    }
}
