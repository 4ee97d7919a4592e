//! Credentials the user already keeps for a provider's own tools: the config files its official
//! CLI or SDK reads, declared per provider as `[[provider.credential_sources]]` in the catalog.
//!
//! Owns finding such a file (`~` and `${VAR}` in its paths, an environment variable naming it),
//! choosing the profile an account uses in it, parsing it (ini, YAML or JSON) and reading each
//! credential field by its key path. Which value wins over which is `credentials`'s rule, not
//! this file's.
//!
//! Nothing here prints, and no error quotes the file: a file that does not parse is named with
//! the line and column of the problem only, since the line may hold a key.

use crate::catalog::schema::{CredentialSource, SourceFormat};
use crate::error::bad_input;
use crate::state::DEFAULT_ACCOUNT;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A view of the environment: the value of a variable, `None` when unset or empty.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as an [`Env`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// What one source holds for an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The file read.
    pub file: PathBuf,
    /// The profile read, with the tool's word for it (`profile`, `context`); `None` for a file
    /// that holds a single set of credentials.
    pub profile: Option<(String, String)>,
    /// Credential field → value.
    pub values: BTreeMap<String, String>,
}

/// Read `source` for `account`. `Ok(None)` when there is no file, no such profile, or no value
/// of a declared field in it; an error (exit 2) when the file cannot be read or parsed.
pub fn read(source: &CredentialSource, account: &str, env: Env) -> anyhow::Result<Option<Found>> {
    let Some(file) = locate(source, env) else {
        return Ok(None);
    };
    let format = source.format.unwrap_or(SourceFormat::Ini);
    let doc = match load(&file, format, &source.name)? {
        Some(doc) => doc,
        None => return Ok(None),
    };
    let Some((profile, fields)) = profile_of(source, account, &doc, &file, env)? else {
        return Ok(None);
    };
    let name = profile.clone().unwrap_or_default();
    let mut values = BTreeMap::new();
    for (field, paths) in fields {
        for path in paths {
            if let Some(v) = lookup(&doc, path, &name, &file, &source.name)? {
                values.insert(field.clone(), v);
                break;
            }
        }
    }
    if values.is_empty() {
        return Ok(None);
    }
    Ok(Some(Found {
        file,
        profile: profile.map(|p| (source.profile_word.clone(), p)),
        values,
    }))
}

/// The file of a source: the first `path_env` variable set, else the first of `paths` that
/// exists.
pub fn locate(source: &CredentialSource, env: Env) -> Option<PathBuf> {
    if let Some(named) = source.path_env.iter().find_map(|v| env(v)) {
        return expand(&named, env);
    }
    source
        .paths
        .iter()
        .filter_map(|p| expand(p, env))
        .find(|p| p.is_file())
}

/// `~/x` → `$HOME/x`, `${VAR}/x` → the variable's value + `/x`; `None` when a variable it
/// needs is unset.
fn expand(path: &str, env: Env) -> Option<PathBuf> {
    if let Some(rest) = path.strip_prefix("~/") {
        return Some(Path::new(&env("HOME")?).join(rest));
    }
    if path == "~" {
        return env("HOME").map(PathBuf::from);
    }
    if let Some(rest) = path.strip_prefix("${") {
        let (var, tail) = rest.split_once('}')?;
        let base = env(var)?;
        return Some(PathBuf::from(format!("{base}{tail}")));
    }
    Some(PathBuf::from(path))
}

/// Read and parse a file into one tree (an ini file becomes sections of strings). `None` when
/// it vanished in between.
fn load(file: &Path, format: SourceFormat, what: &str) -> anyhow::Result<Option<Value>> {
    if !file.exists() {
        return Ok(None);
    }
    let text = crate::input_file::read_text(file, what, crate::input_file::MAX_CREDENTIALS)
        .map_err(|e| bad_input(format!("{e} — fix it, or move it away")))?;
    let located = |line: usize, col: usize| {
        bad_input(format!(
            "{what} {} is not valid {} (line {line}, column {col}) — fix that line, or move the file away",
            file.display(),
            format.as_str()
        ))
    };
    let doc = match format {
        SourceFormat::Json => {
            serde_json::from_str(&text).map_err(|e| located(e.line(), e.column()))?
        }
        SourceFormat::Yaml => serde_norway::from_str::<Value>(&text).map_err(|e| {
            let (line, col) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            located(line, col)
        })?,
        SourceFormat::Ini => ini_tree(&text).map_err(|e| located(e.line, e.col))?,
    };
    Ok(Some(doc))
}

/// An ini file as `{section: {key: value}}`; keys before any section sit at the top.
fn ini_tree(text: &str) -> Result<Value, ini::ParseError> {
    let opts = ini::ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        ..ini::ParseOption::default()
    };
    let parsed = ini::Ini::load_from_str_opt(text, opts)?;
    let mut root = serde_json::Map::new();
    for (section, props) in parsed.iter() {
        let pairs = props
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())));
        match section {
            None => root.extend(pairs),
            Some(name) => {
                let entry = root
                    .entry(name.to_string())
                    .or_insert_with(|| Value::Object(serde_json::Map::new()));
                if let Value::Object(map) = entry {
                    map.extend(pairs);
                }
            }
        }
    }
    Ok(Value::Object(root))
}

/// Credential field → key paths.
type FieldPaths = BTreeMap<String, Vec<String>>;

/// The profile `account` uses in this file, and the field paths that apply to it; `None` when
/// the account has no profile here.
fn profile_of<'a>(
    source: &'a CredentialSource,
    account: &str,
    doc: &Value,
    file: &Path,
    env: Env,
) -> anyhow::Result<Option<(Option<String>, &'a FieldPaths)>> {
    let default_account = account == DEFAULT_ACCOUNT;
    if source.profile_path.is_empty() {
        // One set of credentials: it is the default account's.
        let fields = if source.default_fields.is_empty() {
            &source.fields
        } else {
            &source.default_fields
        };
        return Ok(default_account.then_some((None, fields)));
    }
    let profile = if default_account {
        let from_env = source.profile_env.iter().find_map(|v| env(v));
        let from_file = match (&from_env, source.profile_key.is_empty()) {
            (None, false) => lookup(doc, &source.profile_key, "", file, &source.name)?,
            _ => None,
        };
        from_env
            .or(from_file)
            .or_else(|| Some(source.default_profile.clone()).filter(|p| !p.is_empty()))
    } else {
        Some(account.to_string())
    };
    let Some(profile) = profile else {
        return Ok(None);
    };
    let is_default = profile == source.default_profile;
    if !is_default && !exists(doc, &source.profile_path, &profile) {
        return Ok(None);
    }
    let fields = if is_default && !source.default_fields.is_empty() {
        &source.default_fields
    } else {
        &source.fields
    };
    Ok(Some((Some(profile), fields)))
}

/// The keys of a key path, `{profile}` replaced (after splitting, so a `/` in a profile name
/// stays one key).
fn keys(path: &str, profile: &str) -> Vec<String> {
    path.split('/')
        .map(|k| k.replace("{profile}", profile))
        .collect()
}

fn walk<'v>(doc: &'v Value, path: &str, profile: &str) -> Option<&'v Value> {
    keys(path, profile)
        .iter()
        .try_fold(doc, |node, key| node.as_object()?.get(key))
}

fn exists(doc: &Value, path: &str, profile: &str) -> bool {
    walk(doc, path, profile).is_some_and(|v| !v.is_null())
}

/// The text at a key path: a string, or a number or boolean as text; `None` when absent, null
/// or empty. A table or list there is an error naming the key path.
fn lookup(
    doc: &Value,
    path: &str,
    profile: &str,
    file: &Path,
    what: &str,
) -> anyhow::Result<Option<String>> {
    let text = match walk(doc, path, profile) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(_) => {
            return Err(bad_input(format!(
                "{what} {}: `{}` should be a single value, not a table or list — fix the file, or move it away",
                file.display(),
                keys(path, profile).join(".")
            )))
        }
    };
    Ok(Some(text).filter(|t| !t.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned().filter(|v| !v.is_empty())
    }

    fn paths(list: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        list.iter()
            .map(|(f, ps)| (f.to_string(), ps.iter().map(|p| p.to_string()).collect()))
            .collect()
    }

    fn contexts_source() -> CredentialSource {
        CredentialSource {
            name: "tool config".into(),
            format: Some(SourceFormat::Yaml),
            paths: vec!["~/.config/tool/config.yaml".into()],
            profile_word: "context".into(),
            profile_env: vec!["TOOL_CONTEXT".into()],
            profile_key: "context".into(),
            default_profile: "default".into(),
            profile_path: "auth-contexts/{profile}".into(),
            fields: paths(&[("token", &["auth-contexts/{profile}"])]),
            default_fields: paths(&[("token", &["access-token"])]),
            ..CredentialSource::default()
        }
    }

    fn home_with(file: &str, text: &str) -> tempfile::TempDir {
        let home = tempfile::tempdir().unwrap();
        let path = home.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
        home
    }

    #[test]
    fn contexts_pick_the_account_the_env_or_the_file() {
        let home = home_with(
            ".config/tool/config.yaml",
            "access-token: tok-default\nauth-contexts:\n  prod: tok-prod\n  team: tok-team\ncontext: team\n",
        );
        let h = home.path().to_str().unwrap();
        let s = contexts_source();
        let token = |account: &str, env: &[(&str, &str)]| {
            let mut all = vec![("HOME", h)];
            all.extend_from_slice(env);
            read(&s, account, &env_of(&all))
                .unwrap()
                .map(|f| (f.values["token"].clone(), f.profile.unwrap().1))
        };
        assert_eq!(
            token("default", &[]),
            Some(("tok-team".into(), "team".into()))
        );
        assert_eq!(
            token("default", &[("TOOL_CONTEXT", "prod")]),
            Some(("tok-prod".into(), "prod".into()))
        );
        assert_eq!(
            token("default", &[("TOOL_CONTEXT", "default")]),
            Some(("tok-default".into(), "default".into()))
        );
        assert_eq!(
            token("prod", &[("TOOL_CONTEXT", "team")]),
            Some(("tok-prod".into(), "prod".into()))
        );
        // An account the file has no profile for gets nothing, never the default's token.
        assert_eq!(token("staging", &[]), None);
    }

    #[test]
    fn ini_sections_and_a_path_from_the_environment() {
        let home = home_with(
            "elsewhere/creds",
            "[default]\nkey_id = K1\nsecret = S1\n\n[ops]\nkey_id = K2\nsecret = S2\n",
        );
        let file = home.path().join("elsewhere/creds");
        let s = CredentialSource {
            name: "shared credentials file".into(),
            format: Some(SourceFormat::Ini),
            paths: vec!["~/.tool/credentials".into()],
            path_env: vec!["TOOL_CREDENTIALS_FILE".into()],
            profile_word: "profile".into(),
            profile_env: vec!["TOOL_PROFILE".into()],
            default_profile: "default".into(),
            profile_path: "{profile}".into(),
            fields: paths(&[
                ("access_key_id", &["{profile}/key_id"]),
                ("secret", &["{profile}/secret"]),
            ]),
            ..CredentialSource::default()
        };
        let env = env_of(&[
            ("HOME", home.path().to_str().unwrap()),
            ("TOOL_CREDENTIALS_FILE", file.to_str().unwrap()),
            ("TOOL_PROFILE", "ops"),
        ]);
        let found = read(&s, "default", &env).unwrap().unwrap();
        assert_eq!(found.file, file);
        assert_eq!(found.values["access_key_id"], "K2");
        let found = read(
            &s,
            "default",
            &env_of(&[("TOOL_CREDENTIALS_FILE", file.to_str().unwrap())]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(found.values["secret"], "S1");
        // Without the variable the default path is looked at, and it does not exist.
        let none = read(
            &s,
            "default",
            &env_of(&[("HOME", home.path().to_str().unwrap())]),
        )
        .unwrap();
        assert_eq!(none, None);
    }

    #[test]
    fn a_broken_file_is_named_never_quoted() {
        let home = home_with(".config/tool/config.yaml", "access-token: [sekrit-value\n");
        let env = env_of(&[("HOME", home.path().to_str().unwrap())]);
        let e = read(&contexts_source(), "default", &env).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("config.yaml is not valid YAML (line"),
            "{text}"
        );
        assert!(!text.contains("sekrit"), "{text}");
        assert_eq!(crate::error::exit_code(&e), 2);
    }

    #[test]
    fn paths_expand_home_and_variables() {
        let env = env_of(&[("HOME", "/h"), ("XDG_CONFIG_HOME", "/x")]);
        assert_eq!(expand("~/.a/b", &env), Some(PathBuf::from("/h/.a/b")));
        assert_eq!(
            expand("${XDG_CONFIG_HOME}/t/c", &env),
            Some(PathBuf::from("/x/t/c"))
        );
        assert_eq!(expand("${UNSET_VAR}/t", &env), None);
        assert_eq!(expand("/etc/t", &env), Some(PathBuf::from("/etc/t")));
    }
}
