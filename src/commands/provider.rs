//! `provider configure|show|verify|remove`: provider accounts.
//!
//! Reading and writing the credentials file is `credentials`'s job, calling the provider is the
//! driver's; this file parses the provider's field flags, prompts on a terminal, and hands rows to
//! `render`. No credential value is ever printed: secrets appear as `Secret::hint()` at most,
//! and no error message repeats what the user typed where it could be a key.

use crate::catalog::schema::CredentialField;
use crate::catalog::ProviderEntry;
use crate::cli::{ConfigureArgs, OutputFormat, ProviderCommand};
use crate::commands::stdout;
use crate::context::Ctx;
use crate::credentials::{self, field_flag, flag_of, join_and, Credentials, Resolved, Source};
use crate::driver::{Driver, DriverError, ErrorKind};
use crate::error::{bad_input, suggest};
use crate::messages;
use crate::render::{self, col, Column, Kind};
use anyhow::Context as _;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufRead as _, Read as _, Write as _};
use std::process::ExitCode;

pub fn run(ctx: &Ctx, cmd: ProviderCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ProviderCommand::Configure(args) => configure(ctx, &args),
        ProviderCommand::Show { name } => show(ctx, &name),
        ProviderCommand::Verify { names } => verify(ctx, &names),
        ProviderCommand::Remove { name } => remove(ctx, &name),
    }
}

// ---- lookups and safe echoes ----------------------------------------------------------------

/// The provider `name`, or "unknown provider … did you mean …" (exit 2).
fn provider<'a>(ctx: &'a Ctx, name: &str) -> anyhow::Result<&'a ProviderEntry> {
    if let Some(p) = ctx.catalog.provider(name) {
        return Ok(p);
    }
    let ids: Vec<&str> = ctx.catalog.providers.iter().map(|p| p.id()).collect();
    Err(match shown(name) {
        Some(word) => crate::error::unknown("provider", word, ids.iter().copied(), "providers"),
        None => bad_input(format!(
            "unknown provider (the name is not shown: it looks like a key) — valid: {}",
            ids.join(", ")
        )),
    })
}

/// User input that may be repeated in a message: short word-like text with a lower-case letter
/// and few digits. Anything else (an `AKIA…` id, a hex or UUID token) could be a key pasted in
/// the wrong place and is not echoed.
fn shown(word: &str) -> Option<&str> {
    let len = word.chars().count();
    let digits = word.chars().filter(char::is_ascii_digit).count();
    let ok = (1..=24).contains(&len)
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && word.chars().any(|c| c.is_ascii_lowercase())
        && digits * 3 <= len;
    ok.then_some(word)
}

fn valid_flags(p: &ProviderEntry) -> String {
    let mut flags: Vec<String> = p.credentials.iter().map(flag_of).collect();
    flags.extend(["--api-key-stdin", "--set FIELD=VALUE", "--verify"].map(String::from));
    flags.join(", ")
}

// ---- configure -------------------------------------------------------------------------------

/// What the command line gives for `configure`, after the trailing field flags are parsed.
#[derive(Default)]
struct Given {
    /// Field name → value.
    values: BTreeMap<String, String>,
    api_key_stdin: bool,
    verify: bool,
    /// `-v`/`-o` written after the field flags, where clap no longer sees them.
    verbose: u8,
    format: Option<OutputFormat>,
    /// `--account NAME` written after the field flags.
    account: Option<String>,
}

impl Given {
    fn put(
        &mut self,
        p: &ProviderEntry,
        field: &CredentialField,
        value: String,
    ) -> anyhow::Result<()> {
        let flag = flag_of(field);
        if value.is_empty() {
            return Err(bad_input(format!(
                "{flag} is empty — give the {} of {}",
                field.name,
                p.id()
            )));
        }
        if value.chars().any(char::is_control) {
            return Err(bad_input(format!(
                "the value of {flag} holds a line break or control character — pass the value alone"
            )));
        }
        if self.values.insert(field.name.clone(), value).is_some() {
            return Err(bad_input(format!(
                "{} of {} is given twice — give {flag} once",
                field.name,
                p.id()
            )));
        }
        Ok(())
    }
}

fn api_key_field(p: &ProviderEntry) -> anyhow::Result<&CredentialField> {
    p.credentials.iter().find(|f| f.api_key).ok_or_else(|| {
        bad_input(format!(
            "{} has no --api-key field — give its fields instead: {}",
            p.id(),
            valid_flags(p)
        ))
    })
}

fn field_by_flag<'a>(p: &'a ProviderEntry, name: &str) -> Option<&'a CredentialField> {
    let wanted = name.replace('_', "-");
    p.credentials
        .iter()
        .find(|f| f.name.replace('_', "-") == wanted)
}

fn unknown_field(p: &ProviderEntry, flag_name: &str) -> anyhow::Error {
    let flags: Vec<String> = p.credentials.iter().map(|f| field_flag(&f.name)).collect();
    let typed = format!("--{flag_name}");
    match shown(flag_name) {
        Some(_) => match suggest(&typed, flags.iter().map(String::as_str)) {
            Some(s) => bad_input(format!(
                "{} has no field flag '{typed}' — did you mean '{s}'?",
                p.id()
            )),
            None => bad_input(format!(
                "{} has no field flag '{typed}' — valid: {}",
                p.id(),
                valid_flags(p)
            )),
        },
        None => bad_input(format!(
            "{} has no such field flag (not shown: it looks like a key) — valid: {}",
            p.id(),
            valid_flags(p)
        )),
    }
}

/// Global options that clap cannot see once the field flags began and that `configure` cannot
/// honour there.
const LATE_GLOBALS: &[&str] = &[
    "--color",
    "--catalog",
    "--connect-timeout",
    "--request-timeout",
];

/// `-v`, `-vv`, `--verbose` → the count.
fn verbosity(tok: &str) -> Option<u8> {
    if tok == "--verbose" {
        return Some(1);
    }
    let vs = tok.strip_prefix('-')?;
    (!vs.is_empty() && vs.len() < 8 && vs.chars().all(|c| c == 'v')).then_some(vs.len() as u8)
}

fn output_format(text: &str) -> anyhow::Result<OutputFormat> {
    match text {
        "table" => Ok(OutputFormat::Table),
        "json" => Ok(OutputFormat::Json),
        "csv" => Ok(OutputFormat::Csv),
        "yaml" => Ok(OutputFormat::Yaml),
        _ => Err(bad_input("--output takes table, json, csv or yaml")),
    }
}

/// Parse `--api-key`, `--set`, `--verify` and the provider's `--<field> VALUE` flags.
fn parse_given(p: &ProviderEntry, args: &ConfigureArgs) -> anyhow::Result<Given> {
    let mut given = Given {
        api_key_stdin: args.api_key_stdin,
        verify: args.verify,
        ..Given::default()
    };
    if let Some(key) = &args.api_key {
        given.put(p, api_key_field(p)?, key.clone())?;
    }
    for pair in &args.set {
        set_pair(p, &mut given, pair)?;
    }
    let mut it = args.extra.iter();
    while let Some(tok) = it.next() {
        if tok == "--" {
            continue;
        }
        if let Some(n) = verbosity(tok) {
            given.verbose = given.verbose.saturating_add(n);
            continue;
        }
        if tok == "-y" || tok == "--yes" {
            continue;
        }
        if tok == "-o" || tok == "--output" {
            let v = it
                .next()
                .ok_or_else(|| bad_input("--output takes table, json or csv"))?;
            given.format = Some(output_format(v)?);
            continue;
        }
        if let Some(v) = tok
            .strip_prefix("--output=")
            .or_else(|| tok.strip_prefix("-o"))
        {
            given.format = Some(output_format(v.trim_start_matches('='))?);
            continue;
        }
        let head = tok.split('=').next().unwrap_or("");
        if LATE_GLOBALS.contains(&head) {
            return Err(bad_input(format!(
                "put {head} before the provider name, e.g. `capsule openmesh provider configure {head} … {} --api-key …`",
                p.id()
            )));
        }
        let Some(rest) = tok.strip_prefix("--") else {
            return Err(bad_input(format!(
                "unexpected argument after {} (not shown: it may be a key) — give fields as --field VALUE; valid: {}",
                p.id(),
                valid_flags(p)
            )));
        };
        let (name, inline) = match rest.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (rest, None),
        };
        let mut value = |flag: &str| -> anyhow::Result<String> {
            match inline.clone().or_else(|| it.next().cloned()) {
                Some(v) => Ok(v),
                None => Err(bad_input(format!(
                    "{flag} needs a value, e.g. `{flag} VALUE`"
                ))),
            }
        };
        match name {
            "api-key" => {
                let v = value("--api-key")?;
                given.put(p, api_key_field(p)?, v)?;
            }
            "api-key-stdin" | "verify" if inline.is_some() => {
                return Err(bad_input(format!(
                    "--{name} takes no value — write just --{name}"
                )));
            }
            "api-key-stdin" => given.api_key_stdin = true,
            "account" => {
                let v = value("--account")?;
                if let Some(problem) = crate::state::names::account_problem(&v) {
                    return Err(bad_input(format!("--account: {problem}")));
                }
                given.account = Some(v);
            }
            "verify" => given.verify = true,
            "set" => {
                let v = value("--set")?;
                set_pair(p, &mut given, &v)?;
            }
            other => {
                let field = field_by_flag(p, other).ok_or_else(|| unknown_field(p, other))?;
                let v = value(&field_flag(&field.name))?;
                given.put(p, field, v)?;
            }
        }
    }
    Ok(given)
}

fn set_pair(p: &ProviderEntry, given: &mut Given, pair: &str) -> anyhow::Result<()> {
    let Some((name, value)) = pair.split_once('=') else {
        return Err(bad_input(format!(
            "--set takes FIELD=VALUE (the argument is not shown: it may be a key) — valid fields: {}",
            p.credentials.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
        )));
    };
    let field = field_by_flag(p, name.trim()).ok_or_else(|| unknown_field(p, name.trim()))?;
    given.put(p, field, value.to_string())
}

fn configure(ctx: &Ctx, args: &ConfigureArgs) -> anyhow::Result<ExitCode> {
    let p = provider(ctx, &args.name)?;
    let mut given = parse_given(p, args)?;
    let account = given.account.clone().unwrap_or_else(|| ctx.account.clone());
    let account = account.as_str();
    // The current state first: a bad credentials file is refused before anyone types a key.
    let current = credentials::resolve(&ctx.home, p, account, &BTreeMap::new())?;

    if given.api_key_stdin {
        let field = api_key_field(p)?;
        if given.values.contains_key(&field.name) {
            return Err(bad_input(
                "--api-key-stdin and --api-key both give the key — use one",
            ));
        }
        let key = read_stdin_key(p, field)?;
        given.put(p, field, key)?;
    }

    let nothing_given = given.values.is_empty();
    let mut missing: Vec<&CredentialField> = Vec::new();
    for field in &p.credentials {
        if given.values.contains_key(&field.name) {
            continue;
        }
        let have = current
            .field(&field.name)
            .and_then(|f| f.value.as_ref())
            .is_some();
        if ctx.interactive && (nothing_given || (field.required && !have)) {
            if let Some(v) = prompt(p, field, &current)? {
                given.put(p, field, v)?;
            } else if field.required && !have {
                missing.push(field);
            }
        } else if field.required && !have {
            missing.push(field);
        }
    }
    if !missing.is_empty() {
        return Err(bad_input(credentials::missing_message(
            p.id(),
            account,
            &missing,
            true,
        )));
    }
    if given.values.is_empty() && ctx.interactive {
        writeln!(stdout(), "nothing changed for {}", p.id())?;
        return Ok(ExitCode::SUCCESS);
    }
    if given.values.is_empty() {
        return Err(bad_input(format!(
            "nothing to store for {} — pass the fields to set, e.g. `capsule openmesh provider configure {} {}`",
            p.id(),
            p.id(),
            p.credentials.iter().find(|f| f.api_key).map_or_else(|| valid_flags(p), |_| "--api-key KEY".to_string())
        )));
    }

    let resolved = credentials::resolve(&ctx.home, p, account, &given.values)?;
    let mut verified = false;
    if given.verify {
        if let Some(e) = resolved.missing_error() {
            return Err(e);
        }
        let mut opts = ctx.driver_options()?;
        opts.verbose = opts.verbose.saturating_add(given.verbose);
        let rt = ctx.runtime()?;
        let outcome = rt.block_on(verify_one(p, resolved.credentials(), opts));
        match outcome {
            Ok(()) => {}
            // Bad input (an endpoint override, say) keeps its exit code 2.
            Err(Failure::Setup(e)) => {
                return Err(e.context(format!("nothing was saved for {}", p.id())))
            }
            Err(failure) => {
                return Err(anyhow::anyhow!(
                    "{}; nothing was saved",
                    failure.sentence(p, &resolved)
                ))
            }
        }
        verified = true;
    }

    let file = credentials::save(&ctx.home, p.id(), account, &given.values)?;
    let stored: Vec<&str> = given.values.keys().map(String::as_str).collect();
    // Environment variables still win over what the default account just stored: say so.
    let overridden: Vec<String> = p
        .credentials
        .iter()
        .filter(|f| account == crate::state::DEFAULT_ACCOUNT && given.values.contains_key(&f.name))
        .filter_map(|f| {
            f.env
                .iter()
                .find(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
                .map(|var| format!("{var} is set and overrides the stored {}", f.name))
        })
        .collect();
    let after = credentials::resolve(&ctx.home, p, account, &BTreeMap::new())?;
    let message = format!(
        "saved {} of {}{} to {}{}",
        join_and(&stored),
        p.id(),
        account_words(account),
        file.display(),
        if verified { " (verified)" } else { "" }
    );
    let pairs = vec![
        ("provider".to_string(), p.id().to_string()),
        ("account".to_string(), account.to_string()),
        ("stored".to_string(), stored.join(", ")),
        ("file".to_string(), file.display().to_string()),
        (
            "verified".to_string(),
            if verified { "yes" } else { "not checked" }.to_string(),
        ),
        ("configured".to_string(), after.configured().to_string()),
    ];
    let doc = Configured {
        provider: p.id(),
        account,
        stored: &stored,
        file: file.display().to_string(),
        verified,
        configured: after.configured(),
        notes: &overridden,
    };
    let style = render::Style {
        format: given.format.unwrap_or(ctx.format()),
        ..ctx.style
    };
    let mut out = stdout();
    if style.format == OutputFormat::Table {
        writeln!(out, "{message}")?;
        if let Some(e) = after.missing_error() {
            writeln!(out, "still missing: {e}")?;
        }
    } else {
        render::detail(&mut out, style, &pairs, &doc)?;
    }
    for note in &overridden {
        messages::note(note);
    }
    Ok(ExitCode::SUCCESS)
}

/// `--api-key-stdin`: the whole of stdin, trimmed; without echo when stdin is a terminal.
fn read_stdin_key(p: &ProviderEntry, field: &CredentialField) -> anyhow::Result<String> {
    use std::io::IsTerminal;
    let text = if std::io::stdin().is_terminal() {
        eprint!(
            "{} {} (input hidden): ",
            p.meta.name_or_id(),
            field.name.replace('_', " ")
        );
        rpassword::read_password().context("cannot read the key from the terminal")?
    } else {
        // Bounded: `< /dev/zero` must not fill the memory.
        let max = crate::input_file::MAX_CREDENTIALS;
        let mut buf = String::new();
        std::io::stdin()
            .take(max + 1)
            .read_to_string(&mut buf)
            .context("cannot read the key from stdin")?;
        if buf.len() as u64 > max {
            return Err(bad_input(format!(
                "--api-key-stdin read more than {} KB — pipe in the key alone",
                max / 1024
            )));
        }
        buf
    };
    let key = text.trim();
    if key.is_empty() {
        return Err(bad_input(format!(
            "--api-key-stdin read nothing — pipe the key in, e.g. `printf %s \"$KEY\" | capsule openmesh provider configure {} --api-key-stdin`",
            p.id()
        )));
    }
    if key.contains('\n') {
        return Err(bad_input(
            "--api-key-stdin read more than one line — pipe in the key alone",
        ));
    }
    Ok(key.to_string())
}

/// Ask for one field on the terminal: secrets without echo. `None` = Enter (keep / skip).
fn prompt(
    p: &ProviderEntry,
    field: &CredentialField,
    current: &Resolved,
) -> anyhow::Result<Option<String>> {
    let cur = current.field(&field.name);
    let keep = match cur.and_then(|f| f.shown().map(|s| (s, &f.source))) {
        Some((s, source)) => format!(" [{s} from {source}; Enter keeps it]"),
        None if field.required => String::new(),
        None => " [optional; Enter skips]".to_string(),
    };
    let what = if field.description.is_empty() {
        field.name.replace('_', " ")
    } else {
        format!("{} — {}", field.name.replace('_', " "), field.description)
    };
    let label = format!("{} {what}{keep}: ", p.meta.name_or_id());
    let answer = if field.secret {
        rpassword::prompt_password(&label).context("cannot read from the terminal")?
    } else {
        eprint!("{label}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read from the terminal")?;
        line
    };
    let answer = answer.trim().to_string();
    Ok((!answer.is_empty()).then_some(answer))
}

trait NameOrId {
    fn name_or_id(&self) -> &str;
}

impl NameOrId for crate::catalog::schema::ProviderMeta {
    fn name_or_id(&self) -> &str {
        if self.name.is_empty() {
            &self.id
        } else {
            &self.name
        }
    }
}

/// ` (account NAME)` for a named account, nothing for the default one.
fn account_words(account: &str) -> String {
    if account == crate::state::DEFAULT_ACCOUNT {
        String::new()
    } else {
        format!(" (account {account})")
    }
}

/// `provider configure -o json` (`golden/schema/provider-configure.json`).
#[derive(Debug, Serialize)]
struct Configured<'a> {
    provider: &'a str,
    account: &'a str,
    stored: &'a [&'a str],
    file: String,
    verified: bool,
    configured: &'static str,
    /// Environment variables that override what was stored.
    notes: &'a [String],
}

// ---- show ------------------------------------------------------------------------------------

const SHOW_COLUMNS: &[Column] = &[
    col("field", "field", Kind::Text),
    col("source", "source", Kind::Text),
    col("value", "value", Kind::Text),
    col("required", "required", Kind::Text),
    col("flag", "flag", Kind::Text),
];

fn show(ctx: &Ctx, name: &str) -> anyhow::Result<ExitCode> {
    let p = provider(ctx, name)?;
    let r = credentials::resolve(&ctx.home, p, &ctx.account, &BTreeMap::new())?;
    let mut out = stdout();
    if matches!(ctx.format(), OutputFormat::Json | OutputFormat::Yaml) {
        let doc = Account {
            provider: p.id(),
            account: &r.account,
            accounts: credentials::stored_accounts(&ctx.home, p.id())?,
            configured: r.configured(),
            file: r.file.display().to_string(),
            external: r.external_sources(),
            fields: r.fields.iter().map(AccountField::of).collect(),
        };
        render::detail(&mut out, ctx.style, &[], &doc)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<render::Row> = r
        .fields
        .iter()
        .map(|f| {
            render::Row::of(&FieldRow {
                field: &f.field.name,
                source: f.source.to_string(),
                value: f.shown(),
                required: if f.field.required { "yes" } else { "no" },
                flag: f.flag(),
            })
        })
        .collect();
    match ctx.format() {
        OutputFormat::Json | OutputFormat::Csv | OutputFormat::Yaml => {
            render::listing(&mut out, ctx.style, SHOW_COLUMNS, &rows)?
        }
        OutputFormat::Table => {
            render::listing(&mut out, ctx.style, SHOW_COLUMNS, &rows)?;
            if r.account != crate::state::DEFAULT_ACCOUNT {
                writeln!(out, "\naccount: {}", r.account)?;
            }
            for source in r.external_sources() {
                writeln!(out, "\nread from {source}")?;
            }
            match r.missing_error() {
                Some(e) => writeln!(out, "\nnot usable: {e}")?,
                None if r.configured() == "no" => writeln!(out, "\nnot configured")?,
                None => writeln!(
                    out,
                    "\nconfigured ({}); check it with `capsule openmesh provider verify {}`",
                    r.configured(),
                    p.id()
                )?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `provider show -o json` (`golden/schema/provider-show.json`): the account and where each
/// field's value comes from. A secret's value is its hint at most.
#[derive(Debug, Serialize)]
struct Account<'a> {
    provider: &'a str,
    account: &'a str,
    accounts: Vec<String>,
    configured: &'static str,
    file: String,
    external: Vec<String>,
    fields: Vec<AccountField<'a>>,
}

/// One credential field of [`Account`].
#[derive(Debug, Serialize)]
struct AccountField<'a> {
    name: &'a str,
    description: &'a str,
    secret: bool,
    required: bool,
    source: &'static str,
    env_var: Option<&'a str>,
    source_file: Option<String>,
    profile: Option<&'a str>,
    value: Option<String>,
    flag: String,
    env: &'a [String],
}

impl<'a> AccountField<'a> {
    fn of(f: &'a credentials::ResolvedField) -> AccountField<'a> {
        let external = f.source.external();
        AccountField {
            name: &f.field.name,
            description: &f.field.description,
            secret: f.field.secret,
            required: f.field.required,
            source: f.source.kind(),
            env_var: f.source.env_var(),
            source_file: external.map(|(file, _)| file.display().to_string()),
            profile: external.and_then(|(_, profile)| profile),
            value: f.shown(),
            flag: f.flag(),
            env: &f.field.env,
        }
    }
}

/// One field of the `provider show` table and CSV.
#[derive(Debug, Serialize)]
struct FieldRow<'a> {
    field: &'a str,
    source: String,
    value: Option<String>,
    required: &'static str,
    flag: String,
}

// ---- verify ----------------------------------------------------------------------------------

/// Why a verification did not pass.
enum Failure {
    /// `Driver::new` refused (a missing field, a bad endpoint override).
    Setup(anyhow::Error),
    Provider(DriverError),
    /// The verification stopped without a result (a bug).
    Lost(crate::engine::Lost),
}

impl Failure {
    /// One sentence: the provider's message and the fix.
    fn sentence(&self, p: &ProviderEntry, r: &Resolved) -> String {
        match self {
            Failure::Setup(e) => e.to_string(),
            // Only here is it known where the key came from: that makes the better fix.
            Failure::Provider(e) if e.kind == ErrorKind::Auth || e.hint.is_none() => {
                let mut e = e.clone();
                e.hint = Some(Box::new(fix_for(e.kind, p, r).into()));
                e.to_string()
            }
            Failure::Provider(e) => e.to_string(),
            Failure::Lost(e) => e.to_string(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Failure::Setup(_) => "setup",
            Failure::Provider(e) => e.kind.as_str(),
            Failure::Lost(_) => "internal",
        }
    }
}

/// What to do about a failed verification.
fn fix_for(kind: ErrorKind, p: &ProviderEntry, r: &Resolved) -> String {
    let id = p.id();
    match kind {
        ErrorKind::Auth => {
            let secrets = || {
                r.fields
                    .iter()
                    .filter(|f| f.field.secret && f.value.is_some())
            };
            let from_env: Vec<&str> = secrets().filter_map(|f| f.source.env_var()).collect();
            if !from_env.is_empty() {
                format!(
                    "check {} (the environment overrides the credentials file)",
                    join_and(&from_env)
                )
            } else if secrets().any(|f| f.source == Source::Flag) {
                "check the key you passed, and that it is active and allowed to read the account"
                    .to_string()
            } else {
                format!(
                    "store a valid key with `capsule openmesh provider configure {id} --api-key …`"
                )
            }
        }
        ErrorKind::Network => {
            // The URL itself is not repeated: it could carry a user:password part.
            let vars = std::iter::once(crate::driver::endpoint_env_name(id))
                .chain(p.api.endpoint_env.iter().cloned());
            match vars
                .into_iter()
                .find(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
            {
                Some(var) => format!("check that the endpoint {var} names is up, or unset {var}"),
                None => "check the network connection (and any proxy settings)".to_string(),
            }
        }
        ErrorKind::Timeout => {
            "the provider did not answer in time — retry, or raise --request-timeout".to_string()
        }
        ErrorKind::Throttled => {
            "the provider is rate limiting this account — wait a minute and retry".to_string()
        }
        _ => format!("retry later; `capsule openmesh -v provider verify {id}` shows the request"),
    }
}

async fn verify_one(
    p: &ProviderEntry,
    creds: Credentials,
    opts: crate::driver::DriverOptions,
) -> Result<(), Failure> {
    let driver = Driver::new(p, creds, opts).map_err(Failure::Setup)?;
    driver.verify().await.map_err(Failure::Provider)
}

/// Tables show a short reason per failure (the full sentences follow on stderr); JSON and CSV
/// carry the full message in the row.
const VERIFY_TABLE_COLUMNS: &[Column] = &[
    col("provider", "provider", Kind::Text),
    col("status", "status", Kind::Status),
    col("credentials", "configured", Kind::Text),
    col("detail", "_detail", Kind::Text),
];

const VERIFY_CSV_COLUMNS: &[Column] = &[
    col("provider", "provider", Kind::Text),
    col("status", "status", Kind::Text),
    col("credentials", "configured", Kind::Text),
    col("error", "error", Kind::Text),
    col("message", "message", Kind::Text),
];

/// One provider of `provider verify` (`golden/schema/provider-verify.json`).
#[derive(Debug, Serialize)]
struct Verified<'a> {
    provider: &'a str,
    status: &'static str,
    configured: &'static str,
    /// The failure's kind (`missing`, `auth`, …).
    error: Option<&'static str>,
    message: Option<String>,
}

/// A few words for a failure kind, for the table.
fn short_reason(kind: &str) -> &'static str {
    match kind {
        "missing" => "credentials missing",
        "auth" => "credentials rejected",
        "network" => "unreachable",
        "timeout" => "timed out",
        "throttled" => "rate limited",
        "refused" => "refused",
        "setup" => "cannot start",
        _ => "API error",
    }
}

fn verify(ctx: &Ctx, names: &[String]) -> anyhow::Result<ExitCode> {
    // Which providers, with their resolution: named ones, or every provider.
    let mut chosen: Vec<&ProviderEntry> = Vec::new();
    for name in names {
        let p = provider(ctx, name)?;
        if !chosen.iter().any(|c| c.id() == p.id()) {
            chosen.push(p);
        }
    }
    let explicit = !names.is_empty();
    if !explicit {
        chosen = ctx.catalog.providers.iter().collect();
    }
    let mut resolved: Vec<(&ProviderEntry, Resolved)> = Vec::new();
    for p in chosen {
        resolved.push((
            p,
            credentials::resolve(&ctx.home, p, &ctx.account, &BTreeMap::new())?,
        ));
    }
    let opts = ctx.driver_options()?;
    let to_check: Vec<&(&ProviderEntry, Resolved)> = resolved
        .iter()
        .filter(|(_, r)| r.configured() != "no")
        .collect();
    let outcomes: Vec<Result<(), Failure>> = if to_check.is_empty() {
        Vec::new()
    } else {
        let rt = ctx.runtime()?;
        // Every provider is verified at once (bounded); outcomes come back in order.
        let items: Vec<(ProviderEntry, Credentials)> = to_check
            .iter()
            .map(|(p, r)| ((*p).clone(), r.credentials()))
            .collect();
        let verified = rt.block_on(crate::engine::fan_out(
            items,
            crate::engine::DEFAULT_LIMIT,
            &crate::engine::Progress::hidden(),
            move |(p, creds)| {
                let opts = opts.clone();
                async move { verify_one(&p, creds, opts).await }
            },
        ));
        verified
            .into_iter()
            .map(|(_, r)| r.unwrap_or_else(|lost| Err(Failure::Lost(lost))))
            .collect()
    };
    let mut outcomes = outcomes.into_iter();

    let mut rows = Vec::new();
    let mut sentences: Vec<String> = Vec::new();
    let mut failed = 0usize;
    let mut bad_input = 0usize;
    for (p, r) in &resolved {
        let configured = r.configured();
        let (status, kind, message) = if configured == "no" {
            let msg = match r.missing_error() {
                Some(e) => e.to_string(),
                None => format!("run `capsule openmesh provider configure {}`", p.id()),
            };
            if explicit {
                failed += 1;
                ("missing", Some("missing"), Some(msg))
            } else {
                ("not configured", None, Some(not_configured_hint(p, r)))
            }
        } else {
            match outcomes.next() {
                Some(Ok(())) => ("ok", None, None),
                Some(Err(f)) => {
                    failed += 1;
                    // A bad endpoint override or a missing field is the user's input (exit 2).
                    if matches!(&f, Failure::Setup(e) if crate::error::exit_code(e) == 2) {
                        bad_input += 1;
                    }
                    ("failed", Some(f.kind()), Some(f.sentence(p, r)))
                }
                None => ("failed", Some("internal"), Some("no result".to_string())),
            }
        };
        let detail = match (kind, &message) {
            (Some(k), _) => short_reason(k).to_string(),
            (None, Some(m)) => m.clone(),
            (None, None) => "-".to_string(),
        };
        if kind.is_some() {
            if let Some(m) = &message {
                sentences.push(m.clone());
            }
        }
        rows.push(
            render::Row::of(&Verified {
                provider: p.id(),
                status,
                configured,
                error: kind,
                message,
            })
            .with_cell("_detail", detail),
        );
    }
    let columns = match ctx.format() {
        OutputFormat::Table => VERIFY_TABLE_COLUMNS,
        _ => VERIFY_CSV_COLUMNS,
    };
    let mut out = stdout();
    render::listing(&mut out, ctx.style, columns, &rows)?;
    out.flush()?;
    for sentence in &sentences {
        messages::info(sentence);
    }
    if !explicit
        && resolved.iter().all(|(_, r)| r.configured() == "no")
        && ctx.format() == OutputFormat::Table
    {
        writeln!(out, "\nno provider has credentials yet — run `capsule openmesh provider configure NAME --api-key KEY`")?;
    }
    Ok(if bad_input > 0 {
        ExitCode::from(2)
    } else if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The short line for a provider nobody configured: which variables would do, or the command.
fn not_configured_hint(p: &ProviderEntry, r: &Resolved) -> String {
    let missing = r.missing();
    let vars: Vec<&str> = missing
        .iter()
        .filter_map(|f| f.field.env.first().map(String::as_str))
        .collect();
    let cmd = format!("`capsule openmesh provider configure {}`", p.id());
    if !vars.is_empty() && vars.len() == missing.len() {
        format!("set {} or run {cmd}", join_and(&vars))
    } else {
        format!("run {cmd}")
    }
}

// ---- remove ----------------------------------------------------------------------------------

fn remove(ctx: &Ctx, name: &str) -> anyhow::Result<ExitCode> {
    // A table of a provider the catalog no longer has can still be removed.
    let stored = credentials::stored_providers(&ctx.home)?;
    let (id, p) = match ctx.catalog.provider(name) {
        Some(p) => (p.id().to_string(), Some(p)),
        None => match stored.iter().find(|s| s.as_str() == name) {
            Some(s) => (s.clone(), None),
            None => {
                return Err(provider(ctx, name)
                    .err()
                    .unwrap_or_else(|| bad_input("unknown provider")))
            }
        },
    };
    let account = ctx.account.as_str();
    let removed = credentials::remove(&ctx.home, &id, account)?;
    let file = credentials::path(&ctx.home);
    let mut out = stdout();
    if ctx.format() == OutputFormat::Table {
        if removed {
            writeln!(
                out,
                "removed the credentials of {id}{} from {}",
                account_words(account),
                file.display()
            )?;
        } else {
            writeln!(
                out,
                "{id}{} has no stored credentials — nothing to remove",
                account_words(account)
            )?;
        }
    } else {
        let pairs = vec![
            ("provider".to_string(), id.clone()),
            (
                "removed".to_string(),
                if removed { "yes" } else { "no" }.to_string(),
            ),
            ("file".to_string(), file.display().to_string()),
        ];
        let doc = Removed {
            provider: &id,
            account,
            removed,
            file: file.display().to_string(),
        };
        render::detail(&mut out, ctx.style, &pairs, &doc)?;
    }
    // The environment may still supply them.
    if let Some(p) = p {
        let r = credentials::resolve(&ctx.home, p, account, &BTreeMap::new())?;
        let vars: Vec<&str> = r.fields.iter().filter_map(|f| f.source.env_var()).collect();
        if !vars.is_empty() {
            messages::note(format!(
                "{} still {} credentials for {id} — unset {} to remove them",
                join_and(&vars),
                if vars.len() == 1 {
                    "supplies"
                } else {
                    "supply"
                },
                if vars.len() == 1 { "it" } else { "them" }
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `provider remove -o json` (`golden/schema/provider-remove.json`).
#[derive(Debug, Serialize)]
struct Removed<'a> {
    provider: &'a str,
    account: &'a str,
    removed: bool,
    file: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_word_like_input_is_echoed() {
        assert_eq!(shown("digitalocen"), Some("digitalocen"));
        assert_eq!(shown("project-idd"), Some("project-idd"));
        assert_eq!(shown("dop_v1_0123456789abcdef0123456789abcdef"), None);
        assert_eq!(shown("ABCDEFGHIJKLMNOP"), None);
        assert_eq!(shown("12345"), None);
        assert_eq!(shown("Cloudyy"), Some("Cloudyy"));
        assert_eq!(shown("AKIAIOSFODNN7EXAMPLE"), None);
        assert_eq!(shown("a1b2c3d4e5f6"), None);
    }
}
