//! The catalog reference (`docs/catalog.md`) and JSON Schema (`docs/catalog.schema.json`) are
//! generated from the catalog's serde types by `capsule openmesh catalog schema --write docs`;
//! these tests fail when the committed copies are stale.

use crate::support::capsule;
use std::path::Path;

const REGENERATE: &str = "cargo run -- openmesh catalog schema --write docs";

fn committed(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; run `{REGENERATE}`", path.display()))
}

#[test]
fn committed_schema_and_reference_are_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    capsule()
        .args([
            "openmesh",
            "catalog",
            "schema",
            "--write",
            out.to_str().unwrap(),
        ])
        .ok()
        .stdout_has("catalog.md");
    for name in ["catalog.schema.json", "catalog.md"] {
        let fresh = std::fs::read_to_string(out.join(name)).unwrap();
        assert!(
            fresh == committed(name),
            "docs/{name} is stale (the catalog types changed); regenerate it with `{REGENERATE}`"
        );
    }
}

#[test]
fn schema_is_printed_and_describes_every_top_level_table() {
    let out = capsule().args(["openmesh", "catalog", "schema"]).ok();
    assert_eq!(out.stdout, committed("catalog.schema.json"));
    let schema = out.json();
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown keys are errors"
    );
    let props = schema["properties"].as_object().unwrap();
    for table in [
        "provider",
        "regions",
        "credentials",
        "templates",
        "api",
        "rates",
        "bootstrap",
    ] {
        assert!(props.contains_key(table), "no top-level `{table}`");
        assert!(
            props[table]["description"].is_string(),
            "top-level `{table}` has no description"
        );
    }
    // Tagged enums keep their tag: each paging style and auth scheme is a separate form.
    let defs = &schema["$defs"];
    let styles: Vec<&str> = defs["Paging"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["properties"]["style"]["const"].as_str().unwrap())
        .collect();
    assert_eq!(styles, ["none", "page", "next_link", "cursor", "token"]);
    let md = committed("catalog.md");
    for needle in [
        "## `[provider]`",
        "## `[[templates]]`",
        "## `[api.operations.<name>.paging]`",
        "### `style = \"cursor\"`",
        "### `scheme = \"sigv4\"`",
        "| `monthly_cap_hours` |",
        "```toml\n[[templates]]",
    ] {
        assert!(md.contains(needle), "docs/catalog.md lacks {needle:?}");
    }
}

#[test]
fn write_into_a_file_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    capsule()
        .args([
            "openmesh",
            "catalog",
            "schema",
            "--write",
            file.to_str().unwrap(),
        ])
        .code(2)
        .stderr_has("is a file, not a directory");
}

#[test]
fn every_embedded_catalog_file_validates_against_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&committed("catalog.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("a valid JSON Schema");
    let files = capsule::catalog::embedded_files();
    assert!(files.len() > 20, "the embedded catalog has its files");
    for f in files {
        let doc: toml::Table = toml::from_str(&f.text).unwrap();
        let json = serde_json::to_value(&doc).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} does not match the schema:\n{}",
            f.path,
            errors.join("\n")
        );
    }
    // And the schema rejects what the loader rejects: an unknown key, a wrong paging style.
    for bad in [
        "[provider]\nid = \"x\"\nnmae = \"typo\"\n",
        "[api.operations.list]\npaging = { style = \"pages\", page_param = \"p\" }\n",
        "[[templates]]\nid = \"t\"\ncpu = \"two\"\n",
    ] {
        let doc: toml::Table = toml::from_str(bad).unwrap();
        let json = serde_json::to_value(&doc).unwrap();
        assert!(!validator.is_valid(&json), "the schema accepts {bad:?}");
    }
}
