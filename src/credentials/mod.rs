//! Provider credentials: resolution, accounts and the credentials file.
//!
//! Owns `$CAPSULE_HOME/credentials.toml` and the rule that picks each credential field's value
//! for an account (`--account`, `CAPSULE_ACCOUNT`; `default` when none is named):
//!
//! - the `default` account: flag > environment (the catalog's variable names, first non-empty
//!   wins) > file;
//! - a named account: flag > file (that account's table) > environment, so that an account
//!   configured in capsule is never overridden by variables meant for another;
//! - then the files the provider's own tools keep (`[[provider.credential_sources]]`, read by
//!   [`external`]) fill the fields still empty — every one when a required field is missing,
//!   only the non-secret ones (a region) otherwise, so complete credentials are never mixed
//!   with another tool's secrets. The default account uses the profile those tools would use,
//!   a named account the profile of that name.
//!
//! The driver only ever sees a resolved [`Credentials`].
//!
//! The file holds one table per provider id; the default account's fields sit in it directly
//! (the layout from before accounts, read as it is), and each other account is a sub-table:
//!
//! ```toml
//! [digitalocean]
//! token = "dop_v1_…"
//!
//! [digitalocean.staging]
//! token = "dop_v1_…"
//!
//! [scaleway]
//! secret_key = "…"
//! project_id = "…"
//! ```
//!
//! It is written atomically ([`crate::atomic_file`]) under an OS lock on the directory, with
//! mode 0600 in a 0700 directory; a file that group or others can read is refused
//! with the `chmod` that fixes it. Comments and tables capsule does not know are kept.
//!
//! Nothing here prints, and no error message holds a credential value: a broken file is named
//! by line and column only, never quoted.

pub mod external;

use crate::catalog::schema::CredentialField;
use crate::catalog::ProviderEntry;
use crate::error::bad_input;
use crate::secret::Secret;
use crate::state::DEFAULT_ACCOUNT;
use anyhow::Context as _;
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// File name of the credentials file inside `$CAPSULE_HOME`.
pub const FILE_NAME: &str = "credentials.toml";

const HEADER: &str = "\
# capsule credentials: one table per provider id, one value per credential field; other
# accounts (`--account NAME`) are sub-tables such as [PROVIDER.NAME].
# Keep this file private (mode 0600). Written by `capsule openmesh provider configure|remove`.
";

/// Resolved credential fields of one provider, by catalog field name.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    values: BTreeMap<String, Secret>,
    /// Field names that are not secret (project id, default region): these reach templates.
    public: Vec<String>,
}

impl Credentials {
    pub fn new() -> Credentials {
        Credentials::default()
    }

    /// Set a field; `secret = false` makes it visible to request templates as `account.<name>`.
    pub fn set(&mut self, name: &str, value: Secret, secret: bool) {
        if !secret && !self.public.iter().any(|p| p == name) {
            self.public.push(name.to_string());
        }
        self.values.insert(name.to_string(), value);
    }

    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.values.get(name).filter(|v| !v.is_empty())
    }

    /// Non-secret fields, for request templates (`account.project_id`).
    pub fn public_fields(&self) -> BTreeMap<String, String> {
        self.public
            .iter()
            .filter_map(|n| {
                self.values
                    .get(n)
                    .map(|v| (n.clone(), v.expose().to_string()))
            })
            .collect()
    }

    /// Values of the secret fields, for scrubbing them out of messages.
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> + '_ {
        self.values
            .iter()
            .filter(|(n, v)| !v.is_empty() && !self.public.contains(n))
            .map(|(_, v)| v)
    }

    pub fn is_empty(&self) -> bool {
        self.values.values().all(Secret::is_empty)
    }
}

/// Where a field's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag (or stdin, or a prompt) of this invocation.
    Flag,
    /// This environment variable.
    Env(String),
    /// `credentials.toml`.
    File,
    /// A file of the provider's own tools ([`external`]).
    External {
        /// What the file is (`AWS shared credentials file`).
        name: String,
        file: PathBuf,
        /// The tool's word for a profile and the profile read (`context`, `prod`).
        profile: Option<(String, String)>,
    },
    Missing,
}

impl Source {
    /// `flag`, `env`, `file` or `missing`: the stable name in JSON output.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env(_) => "env",
            Source::File => "file",
            Source::External { .. } => "external",
            Source::Missing => "missing",
        }
    }

    /// The file and profile of an external source.
    pub fn external(&self) -> Option<(&Path, Option<&str>)> {
        match self {
            Source::External { file, profile, .. } => {
                Some((file.as_path(), profile.as_ref().map(|p| p.1.as_str())))
            }
            _ => None,
        }
    }

    pub fn env_var(&self) -> Option<&str> {
        match self {
            Source::Env(v) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Env(var) => write!(f, "env {var}"),
            Source::External {
                name,
                file,
                profile,
            } => {
                write!(f, "{name} {}", file.display())?;
                match profile {
                    Some((word, p)) => write!(f, " ({word} {p})"),
                    None => Ok(()),
                }
            }
            other => f.write_str(other.kind()),
        }
    }
}

/// One credential field with its resolved value.
#[derive(Debug, Clone)]
pub struct ResolvedField {
    pub field: CredentialField,
    pub value: Option<Secret>,
    pub source: Source,
}

impl ResolvedField {
    /// What users may see of the value: the value of a non-secret field, the `hint()` of a
    /// secret, `None` when missing.
    pub fn shown(&self) -> Option<String> {
        let v = self.value.as_ref()?;
        Some(if self.field.secret {
            v.hint()
        } else {
            v.expose().to_string()
        })
    }

    /// The `configure` flag that sets this field (`--api-key`, `--project-id`).
    pub fn flag(&self) -> String {
        flag_of(&self.field)
    }
}

/// All credential fields of one provider, resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub provider: String,
    /// The account resolved (`default` unless one was named).
    pub account: String,
    /// The credentials file consulted (it may not exist).
    pub file: PathBuf,
    /// In catalog order.
    pub fields: Vec<ResolvedField>,
}

impl Resolved {
    pub fn field(&self, name: &str) -> Option<&ResolvedField> {
        self.fields.iter().find(|f| f.field.name == name)
    }

    /// The values, for the driver.
    pub fn credentials(&self) -> Credentials {
        let mut creds = Credentials::new();
        for f in &self.fields {
            if let Some(v) = &f.value {
                creds.set(&f.field.name, v.clone(), f.field.secret);
            }
        }
        creds
    }

    /// Required fields that have no value.
    pub fn missing(&self) -> Vec<&ResolvedField> {
        self.fields
            .iter()
            .filter(|f| f.field.required && f.value.is_none())
            .collect()
    }

    pub fn is_complete(&self) -> bool {
        self.missing().is_empty()
    }

    /// `no` (a required field is missing), `env` (complete, and a required field comes from the
    /// environment), `external` (one comes from a file of the provider's own tools) or `file`.
    /// A provider without required fields counts as configured once any field has a value.
    pub fn configured(&self) -> &'static str {
        if !self.is_complete() {
            return "no";
        }
        let required: Vec<&ResolvedField> =
            self.fields.iter().filter(|f| f.field.required).collect();
        let considered: Vec<&ResolvedField> = if required.is_empty() {
            self.fields.iter().filter(|f| f.value.is_some()).collect()
        } else {
            required
        };
        if considered.is_empty() {
            "no"
        } else if considered
            .iter()
            .any(|f| matches!(f.source, Source::Env(_)))
        {
            "env"
        } else if considered
            .iter()
            .any(|f| matches!(f.source, Source::External { .. }))
        {
            "external"
        } else {
            "file"
        }
    }

    /// The error for incomplete credentials (`None` when complete): names each missing field,
    /// the flag that sets it and the environment variable that would supply it. Exit code 2.
    pub fn missing_error(&self) -> Option<anyhow::Error> {
        let missing: Vec<&CredentialField> = self.missing().into_iter().map(|f| &f.field).collect();
        if missing.is_empty() {
            return None;
        }
        Some(bad_input(missing_message(
            &self.provider,
            &self.account,
            &missing,
            false,
        )))
    }

    /// The external files that supplied values, each once, as `file (profile p)`.
    pub fn external_sources(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for f in &self.fields {
            if let Source::External { .. } = &f.source {
                let text = f.source.to_string();
                if !out.contains(&text) {
                    out.push(text);
                }
            }
        }
        out
    }
}

/// `scaleway needs secret_key and project_id: pass --api-key KEY and --project-id VALUE to
/// `capsule openmesh provider configure scaleway`, or set SCW_SECRET_KEY and
/// SCW_DEFAULT_PROJECT_ID`. `in_configure` leaves out the command (the user is running it).
/// A named account is named: `scaleway account 'prod' needs …` and `--account prod`.
pub fn missing_message(
    provider_id: &str,
    account: &str,
    missing: &[&CredentialField],
    in_configure: bool,
) -> String {
    let names: Vec<&str> = missing.iter().map(|f| f.name.as_str()).collect();
    let flags: Vec<String> = missing
        .iter()
        .map(|f| {
            if f.api_key {
                "--api-key KEY (or --api-key-stdin)".to_string()
            } else {
                format!("{} VALUE", flag_of(f))
            }
        })
        .collect();
    let (who, account_flag) = if account == DEFAULT_ACCOUNT {
        (provider_id.to_string(), String::new())
    } else {
        (
            format!("{provider_id} account '{account}'"),
            format!(" --account {account}"),
        )
    };
    let mut text = format!(
        "{who} needs {}: pass {}",
        join_and(&names),
        join_and(&flags)
    );
    if !in_configure {
        text.push_str(&format!(
            " to `capsule openmesh provider configure {provider_id}{account_flag}`"
        ));
    }
    let with_env: Vec<&&CredentialField> = missing.iter().filter(|f| !f.env.is_empty()).collect();
    let vars: Vec<&str> = with_env.iter().map(|f| f.env[0].as_str()).collect();
    if with_env.len() == missing.len() {
        text.push_str(&format!(", or set {}", join_and(&vars)));
    } else if !with_env.is_empty() {
        let each: Vec<String> = with_env
            .iter()
            .map(|f| format!("{} for {}", f.env[0], f.name))
            .collect();
        text.push_str(&format!(" (or set {})", join_and(&each)));
    }
    text
}

/// `a`, `a and b`, `a, b and c`.
pub(crate) fn join_and<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [rest @ .., last] => {
            format!(
                "{} and {}",
                rest.iter()
                    .map(|s| s.as_ref())
                    .collect::<Vec<_>>()
                    .join(", "),
                last.as_ref()
            )
        }
    }
}

/// The `configure` flag of a field: `--api-key` for the provider's main secret, else
/// `--<name>` with `_` → `-`.
pub fn flag_of(field: &CredentialField) -> String {
    if field.api_key {
        "--api-key".to_string()
    } else {
        field_flag(&field.name)
    }
}

/// `--<name>` with `_` → `-`, for any field (the api-key field answers to it too).
pub fn field_flag(name: &str) -> String {
    format!("--{}", name.replace('_', "-"))
}

/// Path of the credentials file under `home`.
pub fn path(home: &Path) -> PathBuf {
    home.join(FILE_NAME)
}

/// Resolve every credential field of `provider` for `account` (see the module docs for the
/// order). `flags` are field name → value. Errors only for an unreadable, unsafe or malformed
/// credentials file or file of the provider's own tools.
pub fn resolve(
    home: &Path,
    provider: &ProviderEntry,
    account: &str,
    flags: &BTreeMap<String, String>,
) -> anyhow::Result<Resolved> {
    resolve_with(home, provider, account, flags, &external::process_env)
}

/// [`resolve`] with the environment given (tests).
pub fn resolve_with(
    home: &Path,
    provider: &ProviderEntry,
    account: &str,
    flags: &BTreeMap<String, String>,
    env: external::Env,
) -> anyhow::Result<Resolved> {
    let file = path(home);
    let stored = read(&file)?
        .map(|doc| provider_values(&doc, &file, provider.id(), account))
        .transpose()?
        .unwrap_or_default();
    let store_first = account != DEFAULT_ACCOUNT;
    let fields = provider
        .credentials
        .iter()
        .map(|field| {
            let (value, source) = pick(field, flags, &stored, store_first, env);
            ResolvedField {
                field: field.clone(),
                value: value.map(Secret::new),
                source,
            }
        })
        .collect();
    let mut resolved = Resolved {
        provider: provider.id().to_string(),
        account: account.to_string(),
        file,
        fields,
    };
    // Complete credentials are never mixed with another tool's secrets; its settings (a
    // region) may still fill a gap.
    let secrets_too = !resolved.is_complete();
    fill_from_external(&mut resolved, provider, secrets_too, env)?;
    Ok(resolved)
}

/// Fill the fields still empty (only non-secret ones unless `secrets_too`) from the provider's
/// own tools' files, the first source that has a field winning.
fn fill_from_external(
    resolved: &mut Resolved,
    provider: &ProviderEntry,
    secrets_too: bool,
    env: external::Env,
) -> anyhow::Result<()> {
    let wanted = |f: &ResolvedField| f.value.is_none() && (secrets_too || !f.field.secret);
    if !resolved.fields.iter().any(wanted) {
        return Ok(());
    }
    for source in &provider.meta.credential_sources {
        if !source
            .fields
            .keys()
            .chain(source.default_fields.keys())
            .any(|name| resolved.field(name).is_some_and(wanted))
        {
            continue;
        }
        let Some(found) = external::read(source, &resolved.account, env)? else {
            continue;
        };
        for f in resolved.fields.iter_mut().filter(|f| wanted(f)) {
            if let Some(v) = found.values.get(&f.field.name) {
                f.value = Some(Secret::new(v.clone()));
                f.source = Source::External {
                    name: source.name.clone(),
                    file: found.file.clone(),
                    profile: found.profile.clone(),
                };
            }
        }
    }
    Ok(())
}

fn pick(
    field: &CredentialField,
    flags: &BTreeMap<String, String>,
    stored: &BTreeMap<String, String>,
    store_first: bool,
    env: external::Env,
) -> (Option<String>, Source) {
    if let Some(v) = flags.get(&field.name).filter(|v| !v.is_empty()) {
        return (Some(v.clone()), Source::Flag);
    }
    let from_file = stored
        .get(&field.name)
        .filter(|v| !v.is_empty())
        .map(|v| (Some(v.clone()), Source::File));
    if store_first {
        if let Some(found) = from_file {
            return found;
        }
    }
    for var in &field.env {
        if let Some(v) = env(var) {
            return (Some(v), Source::Env(var.clone()));
        }
    }
    from_file.unwrap_or((None, Source::Missing))
}

/// Environment and file values of `provider`'s fields for `account` (no flags). Missing fields
/// are simply absent; errors only for a bad credentials file.
pub fn load(home: &Path, provider: &ProviderEntry, account: &str) -> anyhow::Result<Credentials> {
    Ok(resolve(home, provider, account, &BTreeMap::new())?.credentials())
}

/// Like [`load`], but every required field must have a value; the error names the missing
/// fields and how to set them (exit 2).
pub fn require(
    home: &Path,
    provider: &ProviderEntry,
    account: &str,
) -> anyhow::Result<Credentials> {
    let resolved = resolve(home, provider, account, &BTreeMap::new())?;
    match resolved.missing_error() {
        Some(e) => Err(e),
        None => Ok(resolved.credentials()),
    }
}

/// `no`, `file`, `env` or `external`: see [`Resolved::configured`].
pub fn configured(
    home: &Path,
    provider: &ProviderEntry,
    account: &str,
) -> anyhow::Result<&'static str> {
    Ok(resolve(home, provider, account, &BTreeMap::new())?.configured())
}

/// Store `values` (field name → value) for `account` of `provider_id`, keeping its other
/// fields, its other accounts and every other table. Returns the file written.
pub fn save(
    home: &Path,
    provider_id: &str,
    account: &str,
    values: &BTreeMap<String, String>,
) -> anyhow::Result<PathBuf> {
    update(home, |doc, file| {
        let table = account_table_mut(doc, file, provider_id, account)?;
        for (k, v) in values {
            table.insert(k, toml_edit::value(v.as_str()));
        }
        Ok(())
    })?;
    Ok(path(home))
}

/// Remove `account` of `provider_id` (the provider's table goes when nothing is left in it).
/// `Ok(false)` when there was nothing stored (nothing is written then).
pub fn remove(home: &Path, provider_id: &str, account: &str) -> anyhow::Result<bool> {
    let file = path(home);
    let has = match read(&file)? {
        Some(doc) => stored_accounts_in(&doc, provider_id)
            .iter()
            .any(|a| a == account),
        None => false,
    };
    if !has {
        return Ok(false);
    }
    update(home, |doc, _| {
        let Some(table) = doc.get_mut(provider_id).and_then(|i| i.as_table_like_mut()) else {
            return Ok(());
        };
        if account == DEFAULT_ACCOUNT {
            let fields: Vec<String> = table
                .iter()
                .filter(|(_, item)| item.is_value())
                .map(|(k, _)| k.to_string())
                .collect();
            for k in fields {
                table.remove(&k);
            }
        } else {
            table.remove(account);
        }
        if table.is_empty() {
            doc.remove(provider_id);
        }
        Ok(())
    })?;
    Ok(true)
}

/// Provider ids that have a table in the file (known to the catalog or not).
pub fn stored_providers(home: &Path) -> anyhow::Result<Vec<String>> {
    Ok(read(&path(home))?
        .map(|doc| doc.iter().map(|(k, _)| k.to_string()).collect())
        .unwrap_or_default())
}

/// The accounts of `provider_id` the file holds: `default` when its table has fields of its
/// own, then each sub-table.
pub fn stored_accounts(home: &Path, provider_id: &str) -> anyhow::Result<Vec<String>> {
    Ok(read(&path(home))?
        .map(|doc| stored_accounts_in(&doc, provider_id))
        .unwrap_or_default())
}

fn stored_accounts_in(doc: &toml_edit::DocumentMut, provider_id: &str) -> Vec<String> {
    let Some(table) = doc.get(provider_id).and_then(|i| i.as_table_like()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if table.iter().any(|(_, item)| item.is_value()) {
        out.push(DEFAULT_ACCOUNT.to_string());
    }
    out.extend(
        table
            .iter()
            .filter(|(_, item)| item.is_table_like())
            .map(|(k, _)| k.to_string()),
    );
    out
}

// ---- reading -------------------------------------------------------------------------------

/// The parsed file, `None` when it does not exist. Refuses a file others can read.
fn read(file: &Path) -> anyhow::Result<Option<toml_edit::DocumentMut>> {
    let meta = match fs::metadata(file) {
        Ok(m) => m,
        // No file, or a home that does not exist as a directory: nothing is stored.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(None)
        }
        Err(e) => {
            return Err(bad_input(format!(
                "cannot read credentials file {}: {e} — check the permissions of it and of CAPSULE_HOME",
                file.display()
            )))
        }
    };
    check_private(file, &meta)?;
    if !meta.is_file() {
        return Err(bad_input(format!(
            "credentials file {} is not a regular file — move it away and configure again",
            file.display()
        )));
    }
    // Unreadable, too large or not UTF-8: an error naming the file, never "not configured".
    let text =
        crate::input_file::read_text(file, "credentials file", crate::input_file::MAX_CREDENTIALS)
            .map_err(|e| {
                bad_input(format!(
            "{e} — fix it, or remove it and run `capsule openmesh provider configure` again"
        ))
            })?;
    let doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        // Never the parser's message: it quotes the offending line, which may hold a key.
        let (line, col) = e.span().map_or((1, 1), |s| line_col(&text, s.start));
        bad_input(format!(
            "credentials file {} is not valid TOML (line {line}, column {col}) — fix that line, or remove the file and configure again",
            file.display()
        ))
    })?;
    Ok(Some(doc))
}

#[cfg(unix)]
fn check_private(file: &Path, meta: &fs::Metadata) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(bad_input(format!(
            "credentials file {f} is readable by others (mode {mode:04o}) — run: chmod 600 {f}",
            f = file.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_file: &Path, _meta: &fs::Metadata) -> anyhow::Result<()> {
    Ok(())
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The values of `account` of `provider_id` as strings (numbers and booleans are accepted as
/// their text): the table's own fields for the default account, a sub-table for another.
fn provider_values(
    doc: &toml_edit::DocumentMut,
    file: &Path,
    provider_id: &str,
    account: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let Some(item) = doc.get(provider_id) else {
        return Ok(BTreeMap::new());
    };
    let table = item
        .as_table_like()
        .ok_or_else(|| not_a_table(file, provider_id))?;
    let (table, at) = if account == DEFAULT_ACCOUNT {
        if table.contains_key(DEFAULT_ACCOUNT) {
            return Err(bad_input(format!(
                "credentials file {}: the default account of {provider_id} is its own fields, not [{provider_id}.{DEFAULT_ACCOUNT}] — move them up into [{provider_id}]",
                file.display()
            )));
        }
        (table, provider_id.to_string())
    } else {
        let at = format!("{provider_id}.{account}");
        match table.get(account) {
            None => return Ok(BTreeMap::new()),
            Some(sub) => (
                sub.as_table_like().ok_or_else(|| not_a_table(file, &at))?,
                at,
            ),
        }
    };
    let mut out = BTreeMap::new();
    for (key, item) in table.iter() {
        let text = match item.as_value() {
            Some(toml_edit::Value::String(s)) => s.value().clone(),
            Some(toml_edit::Value::Integer(i)) => i.value().to_string(),
            Some(toml_edit::Value::Float(f)) => f.value().to_string(),
            Some(toml_edit::Value::Boolean(b)) => b.value().to_string(),
            // Another account's table, beside the default account's fields.
            None if item.is_table_like() && account == DEFAULT_ACCOUNT => continue,
            _ => {
                return Err(bad_input(format!(
                    "credentials file {}: `{at}.{key}` must be a string — fix it, or run `capsule openmesh provider configure {provider_id}` again",
                    file.display()
                )))
            }
        };
        out.insert(key.to_string(), text);
    }
    Ok(out)
}

fn not_a_table(file: &Path, at: &str) -> anyhow::Error {
    let provider_id = at.split('.').next().unwrap_or(at);
    bad_input(format!(
        "credentials file {}: `{at}` must be a table ([{at}]) — fix it, or run `capsule openmesh provider remove {provider_id}`",
        file.display()
    ))
}

/// The table `account`'s fields go in, created when missing.
fn account_table_mut<'a>(
    doc: &'a mut toml_edit::DocumentMut,
    file: &Path,
    provider_id: &str,
    account: &str,
) -> anyhow::Result<&'a mut dyn toml_edit::TableLike> {
    if !doc.contains_key(provider_id) {
        let mut t = toml_edit::Table::new();
        // Only a sub-table of it may be written: no empty `[provider]` header then.
        t.set_implicit(true);
        doc.insert(provider_id, toml_edit::Item::Table(t));
    }
    let table = doc
        .get_mut(provider_id)
        .and_then(|i| i.as_table_like_mut())
        .ok_or_else(|| not_a_table(file, provider_id))?;
    if account == DEFAULT_ACCOUNT {
        return Ok(table);
    }
    let at = format!("{provider_id}.{account}");
    if !table.contains_key(account) {
        table.insert(account, toml_edit::Item::Table(toml_edit::Table::new()));
    }
    table
        .get_mut(account)
        .and_then(|i| i.as_table_like_mut())
        .ok_or_else(|| not_a_table(file, &at))
}

// ---- writing -------------------------------------------------------------------------------

/// Read-modify-write under the lock, then replace the file atomically.
fn update(
    home: &Path,
    change: impl FnOnce(&mut toml_edit::DocumentMut, &Path) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    ensure_private_dir(home)?;
    let file = path(home);
    let _lock = Lock::acquire(home, &file, Lock::WAIT)?;
    clean_stale_temps(home);
    let mut doc = read(&file)?.unwrap_or_default();
    change(&mut doc, &file)?;
    let mut text = doc.to_string();
    if !text.starts_with(HEADER) {
        text = format!("{HEADER}\n{}", text.trim_start_matches('\n'));
    }
    write_atomic(&file, text.as_bytes())
}

/// Create `home` with mode 0700, or tighten it to 0700.
fn ensure_private_dir(home: &Path) -> anyhow::Result<()> {
    let fix = || {
        format!(
            "cannot create {} — create it yourself with: mkdir -m 700 -p {}",
            home.display(),
            home.display()
        )
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !home.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(home)
                .with_context(fix)?;
        }
        let meta = fs::metadata(home).with_context(fix)?;
        if meta.permissions().mode() & 0o077 != 0 {
            fs::set_permissions(home, fs::Permissions::from_mode(0o700)).with_context(|| {
                format!(
                    "{} is open to others and cannot be tightened — run: chmod 700 {}",
                    home.display(),
                    home.display()
                )
            })?;
        }
    }
    #[cfg(not(unix))]
    fs::create_dir_all(home).with_context(fix)?;
    Ok(())
}

/// Prefix of temp files: `.credentials.toml.<random>.tmp` ([`crate::atomic_file`]).
const TEMP_PREFIX: &str = ".credentials.toml.";

fn write_atomic(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    crate::atomic_file::replace(file, |out| out.write_all(bytes))
        .with_context(|| format!("cannot write credentials file {}", file.display()))
}

/// 0600 whatever the umask.
#[cfg(test)]
fn set_private(p: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(p, fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = p;
    Ok(())
}

/// Test hook (the `dev` feature): `CAPSULE_TEST_CRASH=<point>` aborts the process at that point,
/// to prove that a crash between write and rename leaves the old file intact.
#[doc(hidden)]
pub fn crash_point(point: &str) {
    #[cfg(feature = "dev")]
    if std::env::var_os("CAPSULE_TEST_CRASH").is_some_and(|v| v == point) {
        std::process::abort();
    }
    #[cfg(not(feature = "dev"))]
    let _ = point;
}

/// Remove temp files left by a crashed writer. Runs under the lock, so no live writer owns one.
fn clean_stale_temps(home: &Path) {
    let Ok(entries) = fs::read_dir(home) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(TEMP_PREFIX) && name.ends_with(crate::atomic_file::TEMP_SUFFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The OS lock (`flock`) of a read-modify-write: held on `$CAPSULE_HOME` itself, which is never
/// replaced, so there is no lock file to judge stale. The kernel releases it when the holder
/// ends, however it ends; two writers can never both hold it.
struct Lock {
    _held: fs::File,
}

impl Lock {
    const WAIT: Duration = Duration::from_secs(10);

    fn acquire(home: &Path, file: &Path, wait: Duration) -> anyhow::Result<Lock> {
        let cannot = || format!("cannot lock credentials file {}", file.display());
        let handle = Lock::handle(home).with_context(cannot)?;
        let deadline = Instant::now() + wait;
        loop {
            match handle.try_lock() {
                Ok(()) => return Ok(Lock { _held: handle }),
                Err(fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(anyhow::anyhow!(
                        "credentials file {} is locked by another capsule — wait for it to finish, then run the command again",
                        file.display()
                    ));
                }
                Err(fs::TryLockError::Error(e)) => return Err(e).with_context(cannot),
            }
        }
    }

    #[cfg(unix)]
    fn handle(home: &Path) -> std::io::Result<fs::File> {
        fs::File::open(home)
    }

    /// A directory cannot be opened as a file here: a lock file beside the credentials, kept.
    #[cfg(not(unix))]
    fn handle(home: &Path) -> std::io::Result<fs::File> {
        fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(home.join(".credentials.lock"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_exclusive_until_dropped() {
        let home = tempfile::tempdir().unwrap();
        let file = home.path().join(FILE_NAME);
        let first = Lock::acquire(home.path(), &file, Duration::ZERO).unwrap();
        let busy = Lock::acquire(home.path(), &file, Duration::from_millis(50))
            .err()
            .expect("a second writer waits, then gives up")
            .to_string();
        assert!(busy.contains("is locked by another capsule"), "{busy}");
        drop(first);
        Lock::acquire(home.path(), &file, Duration::ZERO).expect("free again");
    }

    fn field(
        name: &str,
        secret: bool,
        required: bool,
        env: &[&str],
        api_key: bool,
    ) -> CredentialField {
        CredentialField {
            name: name.into(),
            description: String::new(),
            secret,
            required,
            env: env.iter().map(|s| s.to_string()).collect(),
            api_key,
            region: false,
        }
    }

    fn provider() -> ProviderEntry {
        let mut p = ProviderEntry::default();
        p.meta.id = "acme".into();
        p.credentials = vec![
            field(
                "token",
                true,
                true,
                &["CAPSULE_UNIT_ACME_TOKEN_UNSET"],
                true,
            ),
            field("project_id", false, true, &[], false),
            field("region", false, false, &[], false),
        ];
        p
    }

    #[test]
    fn save_resolve_remove_round_trip() {
        let home = tempfile::tempdir().unwrap();
        let home = home.path().join("h");
        let p = provider();
        assert_eq!(configured(&home, &p, DEFAULT_ACCOUNT).unwrap(), "no");
        let mut v = BTreeMap::new();
        v.insert("token".to_string(), "tok-1234567890abcdef".to_string());
        v.insert("project_id".to_string(), "proj-1".to_string());
        save(&home, "acme", DEFAULT_ACCOUNT, &v).unwrap();
        let r = resolve(&home, &p, DEFAULT_ACCOUNT, &BTreeMap::new()).unwrap();
        assert_eq!(r.configured(), "file");
        assert_eq!(
            r.field("token").unwrap().shown().unwrap(),
            "tok-…(redacted)"
        );
        assert_eq!(r.field("project_id").unwrap().shown().unwrap(), "proj-1");
        assert_eq!(
            r.credentials()
                .public_fields()
                .get("project_id")
                .map(String::as_str),
            Some("proj-1")
        );
        let mut flags = BTreeMap::new();
        flags.insert("project_id".to_string(), "proj-2".to_string());
        let r = resolve(&home, &p, DEFAULT_ACCOUNT, &flags).unwrap();
        assert_eq!(r.field("project_id").unwrap().source, Source::Flag);
        assert!(remove(&home, "acme", DEFAULT_ACCOUNT).unwrap());
        assert!(!remove(&home, "acme", DEFAULT_ACCOUNT).unwrap());
        assert_eq!(configured(&home, &p, DEFAULT_ACCOUNT).unwrap(), "no");
    }

    #[test]
    fn missing_error_names_flag_and_env() {
        let home = tempfile::tempdir().unwrap();
        let err = require(home.path(), &provider(), DEFAULT_ACCOUNT)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "acme needs token and project_id: pass --api-key KEY (or --api-key-stdin) and \
             --project-id VALUE to `capsule openmesh provider configure acme` \
             (or set CAPSULE_UNIT_ACME_TOKEN_UNSET for token)"
        );
        let p = provider();
        let token = &p.credentials[0];
        assert_eq!(
            missing_message("acme", DEFAULT_ACCOUNT, &[token], true),
            "acme needs token: pass --api-key KEY (or --api-key-stdin), or set CAPSULE_UNIT_ACME_TOKEN_UNSET"
        );
    }

    #[test]
    fn parse_errors_never_quote_the_file() {
        let home = tempfile::tempdir().unwrap();
        let file = path(home.path());
        fs::write(&file, "[acme]\ntoken = \"supersecretvalue\n").unwrap();
        set_private(&file).unwrap();
        let err = resolve(home.path(), &provider(), DEFAULT_ACCOUNT, &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(!err.contains("supersecret"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    fn set(home: &Path, account: &str, token: &str) {
        let mut v = BTreeMap::new();
        v.insert("token".to_string(), token.to_string());
        v.insert("project_id".to_string(), format!("proj-{account}"));
        save(home, "acme", account, &v).unwrap();
    }

    fn token_of(home: &Path, account: &str, env: external::Env) -> (String, String) {
        let r = resolve_with(home, &provider(), account, &BTreeMap::new(), env).unwrap();
        let f = r.field("token").unwrap();
        (
            f.value
                .as_ref()
                .map_or(String::new(), |v| v.expose().to_string()),
            f.source.kind().to_string(),
        )
    }

    #[test]
    fn accounts_are_kept_apart_and_the_old_layout_is_the_default_account() {
        let home = tempfile::tempdir().unwrap();
        let file = path(home.path());
        // The layout from before accounts.
        fs::write(&file, "[acme]\ntoken = \"tok-old\"\nproject_id = \"p\"\n").unwrap();
        set_private(&file).unwrap();
        let no_env = |_: &str| None;
        assert_eq!(token_of(home.path(), DEFAULT_ACCOUNT, &no_env).0, "tok-old");
        set(home.path(), "staging", "tok-staging");
        assert_eq!(token_of(home.path(), DEFAULT_ACCOUNT, &no_env).0, "tok-old");
        assert_eq!(token_of(home.path(), "staging", &no_env).0, "tok-staging");
        assert_eq!(token_of(home.path(), "prod", &no_env).1, "missing");
        let text = fs::read_to_string(&file).unwrap();
        let doc: toml::Table = text.parse().unwrap();
        assert_eq!(doc["acme"]["token"].as_str(), Some("tok-old"));
        assert_eq!(
            doc["acme"]["staging"]["token"].as_str(),
            Some("tok-staging")
        );
        assert_eq!(
            stored_accounts(home.path(), "acme").unwrap(),
            ["default", "staging"]
        );
        // The environment wins for the default account, not over a named account's own table.
        let env = |k: &str| (k == "CAPSULE_UNIT_ACME_TOKEN_UNSET").then(|| "tok-env".to_string());
        assert_eq!(token_of(home.path(), DEFAULT_ACCOUNT, &env).1, "env");
        assert_eq!(token_of(home.path(), "staging", &env).0, "tok-staging");
        assert_eq!(token_of(home.path(), "prod", &env).1, "env");
        // Removing the default account keeps the other; removing both drops the table.
        assert!(remove(home.path(), "acme", DEFAULT_ACCOUNT).unwrap());
        assert_eq!(token_of(home.path(), "staging", &no_env).0, "tok-staging");
        assert_eq!(stored_accounts(home.path(), "acme").unwrap(), ["staging"]);
        assert!(remove(home.path(), "acme", "staging").unwrap());
        assert!(!fs::read_to_string(&file).unwrap().contains("acme"));
    }

    #[test]
    fn a_named_account_is_named_in_the_missing_error() {
        let p = provider();
        let token = &p.credentials[0];
        assert_eq!(
            missing_message("acme", "prod", &[token], false),
            "acme account 'prod' needs token: pass --api-key KEY (or --api-key-stdin) to \
             `capsule openmesh provider configure acme --account prod`, or set CAPSULE_UNIT_ACME_TOKEN_UNSET"
        );
    }

    #[test]
    fn joins() {
        assert_eq!(join_and(&["a"]), "a");
        assert_eq!(join_and(&["a", "b", "c"]), "a, b and c");
    }
}
