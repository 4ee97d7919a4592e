//! Semantic checks of a merged catalog: pure functions from a `Catalog` to problems, each naming
//! the entity and field it is about (the loader turns that into `file:line:col`).
//!
//! Shared with `build.rs` (through `#[path]`): `std`, `serde`, `minijinja`, `regex` only.

use super::cores::on_cores;
use super::diagnostic::{closest, Seg};
use super::model::{Catalog, ProviderEntry};
use super::schema::{
    Api, Auth, ErrorShape, Field, LifecycleState, Operation, Template, XnodeBootstrap,
};
use std::collections::BTreeSet;

/// The entity a problem is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entity {
    Provider(String),
    Region(String, String),
    Credential(String, String),
    Template(String),
    Api(String),
    Rate(String),
    Bootstrap,
}

/// A validation problem: the entity, the key path inside it, and one sentence.
#[derive(Debug, Clone)]
pub struct Problem {
    pub entity: Entity,
    pub field: Vec<Seg>,
    pub message: String,
    /// Point at the key rather than its value (for "missing"/"unknown key" style problems).
    pub on_key: bool,
}

pub const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];
pub const REQUIRED_OPERATIONS: &[&str] =
    &["create", "list", "get", "start", "stop", "delete", "verify"];
const DEFAULT_RATIO: [f64; 2] = [600.0, 745.0];

/// The plan shape a price list may state (`[api.prices] specs`).
const PRICE_SPECS: &[&str] = &["cpu", "memory_gb", "storage_gb", "bandwidth_tb"];

struct Checker {
    out: Vec<Problem>,
}

impl Checker {
    fn push(&mut self, entity: &Entity, field: &[&str], message: String) {
        self.push_path(
            entity,
            field.iter().map(|k| Seg::Key((*k).to_string())).collect(),
            message,
        );
    }

    fn push_path(&mut self, entity: &Entity, field: Vec<Seg>, message: String) {
        self.out.push(Problem {
            entity: entity.clone(),
            field,
            message,
            on_key: false,
        });
    }

    /// Each name in `<table>.operations` must be an operation of `api` (`names`: its names,
    /// for the suggestion).
    fn operations_exist(
        &mut self,
        entity: &Entity,
        table: &str,
        operations: &[String],
        api: &Api,
        names: &[&str],
    ) {
        for (i, name) in operations.iter().enumerate() {
            if !api.operations.contains_key(name) {
                self.push_path(
                    entity,
                    vec![
                        Seg::Key(table.into()),
                        Seg::Key("operations".into()),
                        Seg::Index(i),
                    ],
                    unknown_msg("operation", name, names),
                );
            }
        }
    }

    fn required(&mut self, entity: &Entity, what: &str, field: &str, value: &str) {
        if value.trim().is_empty() {
            self.out.push(Problem {
                entity: entity.clone(),
                field: Vec::new(),
                message: format!("{what} is missing required key '{field}'"),
                on_key: true,
            });
        }
    }

    fn one_of(
        &mut self,
        entity: &Entity,
        field: &[&str],
        what: &str,
        value: &str,
        allowed: &[&str],
    ) {
        if !allowed.contains(&value) {
            let shown: Vec<&str> = allowed.iter().copied().filter(|a| !a.is_empty()).collect();
            let hint = match closest(value, shown.iter().copied()) {
                Some(s) => format!(" — did you mean '{s}'?"),
                None => format!(" — use one of: {}", shown.join(", ")),
            };
            self.push(
                entity,
                field,
                format!("{what} '{value}' is not valid{hint}"),
            );
        }
    }
}

/// Every problem of a merged catalog, in a stable order.
pub fn validate(catalog: &Catalog) -> Vec<Problem> {
    let mut c = Checker { out: Vec::new() };
    for p in &catalog.providers {
        check_provider(&mut c, catalog, p);
    }
    let templates: &[Template] = &catalog.templates;
    let repeated = repeated_ids(templates);
    // Templates are checked on every core, in runs whose problems join in catalog order.
    let runs: Vec<(&[Template], &[bool])> = templates
        .chunks(TEMPLATE_RUN)
        .zip(repeated.chunks(TEMPLATE_RUN))
        .collect();
    for problems in on_cores_resumed(&runs, |&(run, repeated)| {
        let mut c = Checker { out: Vec::new() };
        for (t, &again) in run.iter().zip(repeated) {
            if again {
                c.push(
                    &Entity::Template(t.id.clone()),
                    &["id"],
                    format!("duplicate template id '{}'", t.id),
                );
            }
            check_template(&mut c, catalog, t);
        }
        c.out
    }) {
        c.out.extend(problems);
    }
    for r in &catalog.rates {
        let e = Entity::Rate(r.currency.to_uppercase());
        if r.currency.len() != 3 || !r.currency.chars().all(|ch| ch.is_ascii_uppercase()) {
            c.push(
                &e,
                &["currency"],
                format!("currency '{}' is not an ISO 4217 code like EUR", r.currency),
            );
        }
        if !(r.usd.is_finite() && r.usd > 0.0 && r.usd < 10_000.0) {
            c.push(
                &e,
                &["usd"],
                format!("exchange rate {} is not a positive number of USD", r.usd),
            );
        }
        check_date(&mut c, &e, &["as_of"], &r.as_of);
    }
    if !catalog.bootstrap.user_data.is_empty() {
        if let Err(msg) = compile(&catalog.bootstrap.user_data) {
            c.push(
                &Entity::Bootstrap,
                &["user_data"],
                format!("the bootstrap template {msg}"),
            );
        } else if let Err(e) = render_bootstrap(
            &catalog.bootstrap.user_data,
            "xnode-01",
            "provider",
            "region",
            "template",
        ) {
            c.push(
                &Entity::Bootstrap,
                &["user_data"],
                format!("the bootstrap template fails on a sample node: {e}"),
            );
        }
    }
    if let Some(x) = &catalog.bootstrap.xnode {
        check_xnode(&mut c, x);
    }
    c.out
}

/// Templates checked by one worker at a time.
const TEMPLATE_RUN: usize = 8192;

/// For each template, whether an earlier one has the same id ignoring case.
fn repeated_ids(templates: &[Template]) -> Vec<bool> {
    let mut seen: std::collections::HashSet<std::borrow::Cow<'_, str>> =
        std::collections::HashSet::with_capacity(templates.len());
    templates
        .iter()
        .map(|t| {
            // An id with no upper-case letter is its own lower case: no copy.
            let lower = if t.id.is_ascii() && !t.id.bytes().any(|b| b.is_ascii_uppercase()) {
                std::borrow::Cow::Borrowed(t.id.as_str())
            } else {
                std::borrow::Cow::Owned(t.id.to_lowercase())
            };
            !seen.insert(lower)
        })
        .collect()
}

/// [`on_cores`], a worker's panic resumed here as if the work had run on this thread.
fn on_cores_resumed<I: Sync, T: Send>(items: &[I], work: impl Fn(&I) -> T + Sync) -> Vec<T> {
    on_cores(items, work).unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// `[bootstrap.xnode]`: every key present, every template compiles, every rule compiles.
fn check_xnode(c: &mut Checker, x: &XnodeBootstrap) {
    let e = Entity::Bootstrap;
    let what = "[bootstrap.xnode]";
    c.required(&e, what, "version", &x.version);
    c.required(&e, what, "installer_url", &x.installer_url);
    c.required(&e, what, "user_data", &x.user_data);
    c.required(&e, what, "owner.prefix", &x.owner.prefix);
    c.required(&e, what, "probe.manager_host", &x.probe.manager_host);
    c.required(&e, what, "probe.auth_location", &x.probe.auth_location);
    for (key, text) in [
        ("installer_url", &x.installer_url),
        ("user_data", &x.user_data),
        ("next_step", &x.next_step),
    ] {
        if let Err(msg) = compile(text) {
            c.push(
                &e,
                &["xnode", key],
                format!("the xnode {key} template does not compile: {msg}"),
            );
        }
    }
    for key in ["owner", "domain", "email", "version"] {
        match x.rules.get(key) {
            None => c.push(
                &e,
                &["xnode", "rules"],
                format!("[bootstrap.xnode.rules] has no rule for '{key}'"),
            ),
            Some(r) => {
                if let Err(err) = regex::Regex::new(&r.pattern) {
                    c.push(
                        &e,
                        &["xnode", "rules", key, "pattern"],
                        format!("the {key} pattern does not compile: {err}"),
                    );
                }
                if !(r.pattern.starts_with('^') && r.pattern.ends_with('$')) {
                    c.push(
                        &e,
                        &["xnode", "rules", key, "pattern"],
                        format!("the {key} pattern must be anchored with ^ and $"),
                    );
                }
            }
        }
    }
    if !(x.min_memory_gb.is_finite() && x.min_memory_gb >= 0.0) {
        c.push(
            &e,
            &["xnode", "min_memory_gb"],
            "min_memory_gb must be a number of GB".to_string(),
        );
    }
    if x.probe.https_port == 0 {
        c.push(
            &e,
            &["xnode", "probe", "https_port"],
            "probe.https_port must be a port number".to_string(),
        );
    }
}

fn check_provider(c: &mut Checker, catalog: &Catalog, p: &ProviderEntry) {
    if let Some(x) = &p.meta.xnode {
        let known = |op: &str| {
            p.api.operations.contains_key(op) || p.api.variants.values().any(|v| v.contains_key(op))
        };
        if !x.reinstall.is_empty() && !known(&x.reinstall) {
            let names: Vec<&str> = p.api.operations.keys().map(String::as_str).collect();
            c.push(
                &Entity::Provider(p.meta.id.clone()),
                &["xnode", "reinstall"],
                unknown_msg("operation", &x.reinstall, &names),
            );
        }
    }
    let m = &p.meta;
    let e = Entity::Provider(m.id.clone());
    let what = format!("provider '{}'", m.id);
    c.required(&e, &what, "name", &m.name);
    c.required(&e, &what, "currency", &m.currency);
    c.required(&e, &what, "prices_as_of", &m.prices_as_of);
    if m.kind.is_none() {
        c.required(&e, &what, "kind", "");
    }
    match m.status.state {
        None => c.push(
            &e,
            &["status"],
            format!("provider '{}' is missing required key 'status.state'", m.id),
        ),
        Some(LifecycleState::Active) => {}
        Some(state) => {
            if m.status.date.is_empty() || m.status.reason.is_empty() {
                c.push(
                    &e,
                    &["status"],
                    format!("a {state} provider needs status.date and status.reason"),
                );
            } else {
                check_date(c, &e, &["status", "date"], &m.status.date);
            }
        }
    }
    if !m.prices_as_of.is_empty() {
        check_date(c, &e, &["prices_as_of"], &m.prices_as_of);
    }
    if !m.currency.is_empty() && catalog.usd_rate(&m.currency).is_none() {
        c.push(
            &e,
            &["currency"],
            format!(
                "no exchange rate for '{}' — add [[rates]] currency = \"{}\"",
                m.currency, m.currency
            ),
        );
    }
    if !cap_hours_ok(m.monthly_cap_hours) {
        c.push(
            &e,
            &["monthly_cap_hours"],
            format!(
                "monthly_cap_hours {} is outside 0–745 — give hours, or \"none\" for no cap",
                m.monthly_cap_hours
            ),
        );
    }
    if let Some([lo, hi]) = m.monthly_ratio {
        if !(lo > 0.0 && lo <= hi && hi <= 1000.0) {
            c.push(
                &e,
                &["monthly_ratio"],
                format!("monthly_ratio [{lo}, {hi}] must be two increasing positive numbers"),
            );
        }
    }
    let slugs: Vec<&str> = p.regions.iter().map(|r| r.id.as_str()).collect();
    if p.regions.is_empty() {
        c.push(&e, &[], format!("provider '{}' has no [[regions]]", m.id));
    }
    if !m.default_region.is_empty() && p.region(&m.default_region).is_none() {
        c.push(
            &e,
            &["default_region"],
            unknown_msg("region", &m.default_region, &slugs),
        );
    }
    for r in &p.regions {
        let re = Entity::Region(m.id.clone(), r.id.clone());
        c.required(&re, &format!("region '{}'", r.id), "city", &r.city);
        c.required(
            &re,
            &format!("region '{}'", r.id),
            "continent",
            r.continent_name(),
        );
        if r.country.len() != 2 || !r.country.chars().all(|ch| ch.is_ascii_uppercase()) {
            c.push(
                &re,
                &["country"],
                format!("country '{}' is not an ISO 3166 code like US", r.country),
            );
        }
    }
    let keys = p.credentials.iter().filter(|f| f.api_key).count();
    if keys != 1 {
        c.push(&e, &[], format!("provider '{}' must mark exactly one [[credentials]] field api_key = true (found {keys})", m.id));
    }
    let regions = p.credentials.iter().filter(|f| f.region).count();
    if regions > 1 {
        c.push(
            &e,
            &[],
            format!(
                "provider '{}' marks {regions} [[credentials]] fields region = true — mark one",
                m.id
            ),
        );
    }
    for f in &p.credentials {
        let fe = Entity::Credential(m.id.clone(), f.name.clone());
        if f.region && f.secret {
            c.push(
                &fe,
                &["region"],
                format!(
                    "credential field '{}' is a region: it cannot be secret",
                    f.name
                ),
            );
        }
        if !f
            .name
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
        {
            c.push(
                &fe,
                &["name"],
                format!("credential field '{}' must be lower_snake_case", f.name),
            );
        }
        for var in &f.env {
            if var.is_empty()
                || !var
                    .chars()
                    .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_')
            {
                c.push(
                    &fe,
                    &["env"],
                    format!("environment variable '{var}' must be UPPER_SNAKE_CASE"),
                );
            }
        }
    }
    check_credential_sources(c, p);
    check_api(c, p);
}

/// `[[provider.credential_sources]]`: complete entries whose fields are the provider's
/// credential fields and whose key paths are well formed.
fn check_credential_sources(c: &mut Checker, p: &ProviderEntry) {
    let e = Entity::Provider(p.meta.id.clone());
    let declared: Vec<&str> = p.credentials.iter().map(|f| f.name.as_str()).collect();
    for (i, s) in p.meta.credential_sources.iter().enumerate() {
        let at = |key: &str| {
            vec![
                Seg::Key("credential_sources".into()),
                Seg::Index(i),
                Seg::Key(key.into()),
            ]
        };
        let mut problem = |key: &str, message: String| c.push_path(&e, at(key), message);
        if s.name.trim().is_empty() {
            problem(
                "name",
                "a credential source needs a name (what the file is)".into(),
            );
        }
        if s.format.is_none() {
            problem(
                "format",
                "a credential source needs format = \"ini\", \"yaml\" or \"json\"".into(),
            );
        }
        if s.paths.is_empty() && s.path_env.is_empty() {
            problem(
                "paths",
                "a credential source needs paths (or path_env) to find its file".into(),
            );
        }
        for path in &s.paths {
            if !(path.starts_with("~/") || path.starts_with("${") || path.starts_with('/')) {
                problem(
                    "paths",
                    format!("path '{path}' must start with ~/, ${{VAR}} or /"),
                );
            }
        }
        for var in s.path_env.iter().chain(&s.profile_env) {
            if var.is_empty()
                || !var
                    .chars()
                    .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_')
            {
                problem(
                    "profile_env",
                    format!("environment variable '{var}' must be UPPER_SNAKE_CASE"),
                );
            }
        }
        if s.fields.is_empty() {
            problem(
                "fields",
                "a credential source needs fields (credential field → key paths)".into(),
            );
        }
        if !s.profile_path.is_empty() && !s.profile_path.contains("{profile}") {
            problem("profile_path", "profile_path must contain {profile}".into());
        }
        for (table, map) in [("fields", &s.fields), ("default_fields", &s.default_fields)] {
            for (field, paths) in map {
                if !declared.contains(&field.as_str()) {
                    problem(table, unknown_msg("credential field", field, &declared));
                }
                if paths.is_empty() {
                    problem(
                        table,
                        format!("field '{field}' needs at least one key path"),
                    );
                }
                for path in paths {
                    if let Some(m) = key_path_problem(path) {
                        problem(table, m);
                    }
                }
            }
        }
        for (key, path) in [
            ("profile_key", &s.profile_key),
            ("profile_path", &s.profile_path),
        ] {
            if let Some(m) = key_path_problem(path) {
                problem(key, m);
            }
        }
    }
}

/// Why a credential source key path is malformed (`a//b`, `{user}`), if it is.
fn key_path_problem(path: &str) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    if path.split('/').any(|seg| seg.trim().is_empty()) {
        return Some(format!(
            "key path '{path}' has an empty key — write keys joined by '/'"
        ));
    }
    let rest = path.replace("{profile}", "");
    if rest.contains('{') || rest.contains('}') {
        return Some(format!(
            "key path '{path}' may only use the placeholder {{profile}}"
        ));
    }
    None
}

fn check_api(c: &mut Checker, p: &ProviderEntry) {
    let api: &Api = &p.api;
    let e = Entity::Api(p.meta.id.clone());
    let fields: Vec<&str> = p.credentials.iter().map(|f| f.name.as_str()).collect();
    if api.base_url.is_empty() {
        c.push(
            &e,
            &[],
            format!("provider '{}' has no [api] base_url", p.meta.id),
        );
        return;
    }
    template_ok(c, &e, &["base_url"], &api.base_url);
    if let Some(msg) = base_url_problem(&api.base_url) {
        c.push(&e, &["base_url"], msg);
    }
    if let Some(k) = &api.keys {
        for op in ["list_keys", "create_key"] {
            if !api.operations.contains_key(op) {
                c.push(
                    &e,
                    &["keys"],
                    format!("[api.keys] needs an `{op}` operation"),
                );
            }
        }
        if !k.id.starts_with('/') || !k.public_key.starts_with('/') {
            c.push(
                &e,
                &["keys"],
                "[api.keys] `id` and `public_key` are pointers starting with '/'".to_string(),
            );
        }
    }
    if api.secret_fields.iter().any(|f| f.trim().is_empty()) {
        c.push(
            &e,
            &["secret_fields"],
            "secret_fields names an empty field: give each answer field's name".to_string(),
        );
    }
    if api.auth == Auth::Missing {
        c.push(
            &e,
            &["auth"],
            "[api.auth] needs a scheme: bearer, header or sigv4".to_string(),
        );
    }
    for (k, v) in api.auth.credential_fields() {
        if v.is_empty() || !fields.contains(&v) {
            c.push(
                &e,
                &["auth", k],
                unknown_msg("credential field", v, &fields),
            );
        }
    }
    for (k, v) in match &api.auth {
        Auth::Header { header, .. } => vec![("header", header)],
        Auth::Sigv4 { service, .. } => vec![("service", service)],
        _ => vec![],
    } {
        if v.trim().is_empty() {
            c.push(
                &e,
                &["auth", k],
                format!(
                    "auth scheme '{}' needs a non-empty auth.{k}",
                    api.auth.scheme()
                ),
            );
        }
    }
    check_refusals(c, &e, &api.errors);
    // A raw value means one state: listed under two, the first in state order would win silently.
    let mut seen: std::collections::BTreeMap<String, &str> = Default::default();
    for (state, raws) in &api.status {
        if raws.is_empty() {
            c.push(
                &e,
                &["status", state.as_str()],
                format!("status.{state} lists no raw values"),
            );
        }
        for raw in raws {
            let norm: String = raw
                .chars()
                .filter(|c| *c != '-' && *c != '_')
                .flat_map(char::to_lowercase)
                .collect();
            if let Some(other) = seen.insert(norm, state.as_str()) {
                c.push(
                    &e,
                    &["status", state.as_str()],
                    format!(
                        "raw status '{raw}' is listed under both status.{other} and status.{state} — a raw value means one state"
                    ),
                );
            }
        }
    }
    let mb = api.limits.max_body_mb;
    if !(mb.is_finite() && (0.0..=1024.0).contains(&mb)) {
        c.push(
            &e,
            &["limits", "max_body_mb"],
            format!("limits.max_body_mb = {mb} must be between 0 (the default, 8 MB) and 1024"),
        );
    }
    if api.node.id == Field::default() {
        c.push(&e, &["node"], "api.node needs an id pointer".to_string());
    }
    let n = &api.node;
    for (name, f) in [
        ("id", &n.id),
        ("name", &n.name),
        ("status", &n.status),
        ("ipv4", &n.ipv4),
        ("created_at", &n.created_at),
        ("plan", &n.plan),
        ("region", &n.region),
        ("deploy_id", &n.deploy_id),
    ] {
        if let Some(msg) = field_problem(f) {
            c.push(&e, &["node", name], msg);
        }
    }
    if !api.tagging.tag.is_empty() {
        template_ok(c, &e, &["tagging", "tag"], &api.tagging.tag);
    }
    match api.tagging.parts() {
        Err(msg) => c.push(&e, &["tagging", "tag"], msg),
        Ok((prefix, _)) => {
            // A `~prefix` filter that picks the deploy tag out of a tag list must match the tag
            // capsule writes, or no node would ever be found again by its tag.
            if let Field::Pick(pick) = &api.node.deploy_id {
                if let Some(want) = pick.filter.get("").and_then(|v| v.strip_prefix('~')) {
                    if !prefix.starts_with(want) {
                        c.push(
                            &e,
                            &["node", "deploy_id"],
                            format!(
                                "the filter '~{want}' does not match the tags capsule writes ('{prefix}…', from tagging.tag) — make it '~{prefix}'"
                            ),
                        );
                    }
                }
            }
        }
    }
    for (k, v) in &api.headers {
        template_ok(c, &e, &["headers", k], v);
    }
    let names: Vec<&str> = api.operations.keys().map(String::as_str).collect();
    for req in REQUIRED_OPERATIONS {
        if !api.operations.contains_key(*req) {
            c.push(
                &e,
                &["operations"],
                format!("provider '{}' has no operation '{req}'", p.meta.id),
            );
        }
    }
    for (name, op) in &api.operations {
        check_operation(c, &e, &["operations", name], op, &names);
    }
    if let Some(prices) = &api.prices {
        if prices.operations.is_empty() && !api.operations.contains_key("prices") {
            c.push(
                &e,
                &["prices"],
                "[api.prices] needs an operation named 'prices'".to_string(),
            );
        }
        c.operations_exist(&e, "prices", &prices.operations, api, &names);
        if prices.plan == Field::default() || prices.hourly == Field::default() {
            c.push(
                &e,
                &["prices"],
                "[api.prices] needs at least plan and hourly".to_string(),
            );
        }
    }
    check_step_cycles(c, &e, api);
    if let Some(prices) = &api.prices {
        if let Some(av) = &prices.availability {
            if !api.operations.contains_key(&av.operation) {
                c.push(
                    &e,
                    &["prices", "availability", "operation"],
                    unknown_msg("operation", &av.operation, &names),
                );
            }
        }
        for k in prices.specs.keys().chain(prices.spec_divisors.keys()) {
            c.one_of(&e, &["prices", "specs"], "spec", k, PRICE_SPECS);
        }
        for (op, variant) in &prices.variants {
            if !api.operations.contains_key(op) {
                c.push(
                    &e,
                    &["prices", "variants", op],
                    unknown_msg("operation", op, &names),
                );
            }
            if !api.variants.contains_key(variant) {
                c.push(
                    &e,
                    &["prices", "variants", op],
                    format!("[api.prices] variants names '{variant}', which [api.variants] does not define"),
                );
            }
        }
    }
    if let Some(lk) = &api.plan_lookup {
        if lk.operations.is_empty() || lk.id.is_empty() || lk.region.is_empty() {
            c.push(
                &e,
                &["plan_lookup"],
                "[api.plan_lookup] needs operations, id and region".to_string(),
            );
        }
        c.operations_exist(&e, "plan_lookup", &lk.operations, api, &names);
    }
    for (variant, ops) in &api.variants {
        for (name, op) in ops {
            if !api.operations.contains_key(name) {
                c.push(
                    &e,
                    &["variants", variant, name],
                    unknown_msg("operation", name, &names),
                );
            }
            check_operation(c, &e, &["variants", variant, name], op, &names);
        }
    }
}

/// Steps and action polls must not loop back to an operation already running
/// (`poweron.after = [poweroff]`, `poweroff.after = [poweron]`): one cycle, one problem.
/// `[[api.errors.refusals]]`: each rule says what to match, by code only where codes are read.
fn check_refusals(c: &mut Checker, e: &Entity, shape: &ErrorShape) {
    for (i, r) in shape.refusals.iter().enumerate() {
        let at = |key: &str| {
            vec![
                Seg::Key("errors".into()),
                Seg::Key("refusals".into()),
                Seg::Index(i),
                Seg::Key(key.into()),
            ]
        };
        if r.codes
            .iter()
            .chain(&r.message_contains)
            .all(|s| s.trim().is_empty())
        {
            c.push_path(
                e,
                at("reason"),
                "a refusal rule needs `codes` or `message_contains` to match an answer by"
                    .to_string(),
            );
        }
        if !r.codes.is_empty() && shape.code.is_empty() {
            c.push_path(
                e,
                at("codes"),
                "a refusal rule matches `codes`, but [api.errors] has no `code` pointer to read them from"
                    .to_string(),
            );
        }
        if let Some(s) = r.status.iter().find(|s| !(400..600).contains(*s)) {
            c.push_path(
                e,
                at("status"),
                format!("refusal status {s} is not an HTTP error status (400–599)"),
            );
        }
    }
}

fn check_step_cycles(c: &mut Checker, e: &Entity, api: &Api) {
    use std::collections::BTreeMap;
    let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let all = api
        .operations
        .iter()
        .chain(api.variants.values().flat_map(|ops| ops.iter()));
    for (name, op) in all {
        let out = edges.entry(name.as_str()).or_default();
        for step in op.before.iter().chain(&op.after).chain(&op.cleanup) {
            if step.operation != *name {
                out.insert(step.operation.as_str());
            }
        }
        if let Some(a) = &op.action {
            if a.operation != *name {
                out.insert(a.operation.as_str());
            }
        }
    }
    // Depth-first search with colours; each back edge is a cycle, reported from its start.
    fn visit<'a>(
        n: &'a str,
        edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
        found: &mut Vec<Vec<&'a str>>,
    ) {
        state.insert(n, 1);
        stack.push(n);
        for &m in edges.get(n).into_iter().flatten() {
            match state.get(m).copied().unwrap_or(0) {
                0 => visit(m, edges, state, stack, found),
                1 => {
                    let from = stack.iter().position(|x| *x == m).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(m);
                    found.push(cycle);
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(n, 2);
    }
    let mut state = BTreeMap::new();
    let mut found = Vec::new();
    for &n in edges.keys() {
        if state.get(n).copied().unwrap_or(0) == 0 {
            visit(n, &edges, &mut state, &mut Vec::new(), &mut found);
        }
    }
    for cycle in found {
        c.push(
            e,
            &["operations", cycle[0]],
            format!(
                "operation steps form a cycle: {} — a step must not lead back to an operation already running",
                cycle.join(" → ")
            ),
        );
    }
}

fn check_operation(c: &mut Checker, e: &Entity, at: &[&str], op: &Operation, names: &[&str]) {
    fn sub<'a>(at: &[&'a str], k: &'a str) -> Vec<&'a str> {
        let mut v = at.to_vec();
        v.push(k);
        v
    }
    let path = |k: &'static str| sub(at, k);
    c.one_of(e, &path("method"), "method", &op.method, METHODS);
    if !op.path.starts_with('/') {
        c.push(
            e,
            &path("path"),
            format!("path '{}' must start with '/'", op.path),
        );
    }
    template_ok(c, e, &path("path"), &op.path);
    if !op.base_url.is_empty() {
        template_ok(c, e, &path("base_url"), &op.base_url);
    } else if !op.endpoint_env.is_empty() {
        c.push(
            e,
            &path("endpoint_env"),
            "endpoint_env applies to an operation with its own base_url — add base_url, or set api.endpoint_env".to_string(),
        );
    }
    for (k, v) in op.query.iter().chain(op.headers.iter()) {
        let mut p = at.to_vec();
        p.push(if op.query.contains_key(k) {
            "query"
        } else {
            "headers"
        });
        p.push(k);
        template_ok(c, e, &p, v);
    }
    if !op.body.is_empty() {
        template_ok(c, e, &path("body"), &op.body);
    }
    for s in &op.expect {
        if !(100..600).contains(s) {
            c.push(e, &path("expect"), format!("HTTP status {s} is not valid"));
        }
    }
    for (key, ptr) in op.paging.pointers() {
        if let Some(problem) = total_problem(ptr, key == "total") {
            c.push(
                e,
                &sub(&path("paging"), key),
                format!("paging `{key}` {problem}"),
            );
        }
    }
    let own = at.last().copied().unwrap_or("");
    for (list, steps) in [
        ("before", &op.before),
        ("after", &op.after),
        ("cleanup", &op.cleanup),
    ] {
        for step in steps {
            let target = step.operation.as_str();
            let why = if target == own {
                Some("its own operation")
            } else if target == "create" || target == "delete" {
                Some("an operation that creates or deletes servers")
            } else {
                None
            };
            if let Some(why) = why {
                c.push(
                    e,
                    &path(list),
                    format!(
                        "step '{target}' of operation '{own}' names {why} — a step may only run a read or a power action"
                    ),
                );
            }
        }
    }
    if let Some(a) = &op.action {
        if a.operation == own || a.operation == "create" || a.operation == "delete" {
            c.push(
                e,
                &path("action"),
                format!(
                    "action '{}' of operation '{own}' names its own operation or one that creates or deletes servers — name a read such as 'get'",
                    a.operation
                ),
            );
        }
    }
    // Each problem of a step is reported at its own key: `before[1].wait_for`, not `before`.
    for (list, steps) in [
        ("before", &op.before),
        ("after", &op.after),
        ("cleanup", &op.cleanup),
    ] {
        for (i, step) in steps.iter().enumerate() {
            let at_key = |k: &str| {
                let mut p: Vec<Seg> = at.iter().map(|s| Seg::Key((*s).to_string())).collect();
                p.push(Seg::Key(list.to_string()));
                p.push(Seg::Index(i));
                p.push(Seg::Key(k.to_string()));
                p
            };
            if list == "cleanup" {
                for (k, set) in [
                    ("wait_for", step.wait_for.is_some()),
                    ("unless", !step.unless.is_empty()),
                ] {
                    if set {
                        c.push_path(
                            e,
                            at_key(k),
                            format!(
                                "a cleanup step runs once the node is gone: `{k}` does not apply"
                            ),
                        );
                    }
                }
            }
            if !names.contains(&step.operation.as_str()) {
                c.push_path(
                    e,
                    at_key("operation"),
                    unknown_msg("operation", &step.operation, names),
                );
            }
            if !step.each.is_empty() && !step.each.starts_with('/') {
                c.push_path(
                    e,
                    at_key("each"),
                    format!("`each` pointer '{}' must start with '/'", step.each),
                );
            }
            if !step.when.is_empty() {
                if let Err(msg) = compile_expression(&step.when) {
                    c.push_path(
                        e,
                        at_key("when"),
                        format!("step condition `{}` does not compile: {msg}", step.when),
                    );
                }
            }
            for (var, ptr) in &step.save {
                if !ptr.starts_with('/') {
                    c.push_path(
                        e,
                        at_key("save"),
                        format!("`save` pointer '{ptr}' for `{var}` must start with '/'"),
                    );
                }
            }
        }
    }
    if let Some(a) = &op.action {
        if a.id.is_empty() || a.id.iter().any(|p| !p.starts_with('/')) {
            c.push(
                e,
                &path("action"),
                "`action.id` must be a pointer starting with '/' (or a list of them), e.g. \"/action/id\""
                    .to_string(),
            );
        }
        if !names.contains(&a.operation.as_str()) {
            c.push(
                e,
                &path("action"),
                unknown_msg("operation", &a.operation, names),
            );
        }
    }
}

fn check_template(c: &mut Checker, catalog: &Catalog, t: &Template) {
    // The entity is named once the template's problems are known: a sound template (nearly
    // all of 100k) allocates nothing here.
    let start = c.out.len();
    check_template_fields(c, catalog, t, &Entity::Template(String::new()));
    for p in &mut c.out[start..] {
        p.entity = Entity::Template(t.id.clone());
    }
}

fn check_template_fields(c: &mut Checker, catalog: &Catalog, t: &Template, e: &Entity) {
    let Some(p) = catalog.provider(&t.provider) else {
        let ids: Vec<&str> = catalog
            .providers
            .iter()
            .map(|p| p.meta.id.as_str())
            .collect();
        c.push(e, &["provider"], unknown_msg("provider", &t.provider, &ids));
        return;
    };
    if !t
        .id
        .chars()
        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '.')
    {
        c.push(
            e,
            &["id"],
            format!(
                "template id '{}' must be lower-case letters, digits, '-' or '.'",
                t.id
            ),
        );
    }
    for (field, value) in [("plan", &t.plan), ("name", &t.name)] {
        if value.trim().is_empty() {
            c.required(e, &format!("template '{}'", t.id), field, value);
        }
    }
    if t.cpu == 0 || t.cpu > 1024 {
        c.push(
            e,
            &["cpu"],
            format!("cpu {} must be between 1 and 1024", t.cpu),
        );
    }
    if !(t.memory_gb > 0.0 && t.memory_gb <= 32768.0) {
        c.push(
            e,
            &["memory_gb"],
            format!("memory_gb {} must be between 0 and 32768", t.memory_gb),
        );
    }
    if !(t.storage_gb >= 0.0 && t.storage_gb <= 1_000_000.0) {
        c.push(
            e,
            &["storage_gb"],
            format!("storage_gb {} must be zero or positive", t.storage_gb),
        );
    }
    if !(t.bandwidth_tb >= 0.0 && t.bandwidth_tb <= 100_000.0) {
        c.push(
            e,
            &["bandwidth_tb"],
            format!("bandwidth_tb {} must be zero or positive", t.bandwidth_tb),
        );
    }
    let price_ok = t.price_hourly.is_finite() && t.price_hourly > 0.0 && t.price_hourly < 10_000.0;
    if !price_ok {
        c.push(
            e,
            &["price_hourly"],
            format!("price_hourly {} must be a positive price", t.price_hourly),
        );
    }
    if !(t.price_monthly.is_finite() && t.price_monthly > 0.0) {
        c.push(
            e,
            &["price_monthly"],
            format!("price_monthly {} must be a positive price", t.price_monthly),
        );
    } else if price_ok {
        let [lo, hi] = p.meta.monthly_ratio.unwrap_or(DEFAULT_RATIO);
        let ratio = t.price_monthly / t.price_hourly;
        if ratio < lo - 1e-6 || ratio > hi + 1e-6 {
            c.push(
                e,
                &["price_monthly"],
                format!(
                    "price_monthly {} is {:.0}× price_hourly {}, outside {lo:.0}–{hi:.0}× — fix a price or set monthly_ratio on the provider",
                    t.price_monthly, ratio, t.price_hourly
                ),
            );
        }
    }
    if t.arch.is_none() {
        c.required(e, &format!("template '{}'", t.id), "arch", "");
    }
    let known = |slug: &str| p.regions.iter().any(|r| r.id == slug);
    let slugs = || -> Vec<&str> { p.regions.iter().map(|r| r.id.as_str()).collect() };
    if t.regions.is_empty() {
        c.push(
            e,
            &["regions"],
            format!("template '{}' lists no regions", t.id),
        );
    }
    // A short list is searched for a repeat; a long one keeps a set.
    let short = t.regions.len() <= 16;
    let mut seen = BTreeSet::new();
    for (i, r) in t.regions.iter().enumerate() {
        if !known(r) {
            c.push_path(
                e,
                vec![Seg::Key("regions".into()), Seg::Index(i)],
                unknown_msg(&format!("{} region", p.meta.id), r, &slugs()),
            );
        } else if (short && t.regions[..i].iter().any(|x| x == r)) || (!short && !seen.insert(r)) {
            c.push_path(
                e,
                vec![Seg::Key("regions".into()), Seg::Index(i)],
                format!("region '{r}' is listed twice"),
            );
        }
    }
    if let Some(h) = t.monthly_cap_hours {
        if !cap_hours_ok(h) {
            c.push(
                e,
                &["monthly_cap_hours"],
                format!(
                    "monthly_cap_hours {h} is outside 0–745 — give hours, or \"none\" for no cap"
                ),
            );
        }
    }
    for (r, price) in &t.region_prices {
        if !known(r) {
            c.push(
                e,
                &["region_prices", r],
                unknown_msg(&format!("{} region", p.meta.id), r, &slugs()),
            );
        }
        if !(price.is_finite() && *price > 0.0) {
            c.push(
                e,
                &["region_prices", r],
                format!("regional price {price} must be positive"),
            );
        }
    }
    let says_gpu = t.features.iter().any(|f| f.eq_ignore_ascii_case("gpu"));
    match &t.gpu {
        Some(g) => {
            if g.model.trim().is_empty() {
                c.push(
                    e,
                    &["gpu", "model"],
                    format!("GPU of template '{}' has no model", t.id),
                );
            }
            if g.count == 0 || g.count > 64 {
                c.push(
                    e,
                    &["gpu", "count"],
                    format!("GPU count {} must be between 1 and 64", g.count),
                );
            }
            if !(g.vram_gb > 0.0 && g.vram_gb <= 1024.0) {
                c.push(
                    e,
                    &["gpu", "vram_gb"],
                    format!("GPU vram_gb {} must be between 0 and 1024", g.vram_gb),
                );
            }
        }
        None if says_gpu => {
            c.push(
                e,
                &["features"],
                format!("template '{}' has the gpu feature but no [gpu] model", t.id),
            );
        }
        None => {}
    }
    if !t.api_variant.is_empty() && !p.api.variants.contains_key(&t.api_variant) {
        let names: Vec<&str> = p.api.variants.keys().map(String::as_str).collect();
        c.push(
            e,
            &["api_variant"],
            unknown_msg("api variant", &t.api_variant, &names),
        );
    }
}

/// Render the bootstrap user data for one node, under the shared limits.
pub fn render_bootstrap(
    source: &str,
    name: &str,
    provider: &str,
    region: &str,
    template: &str,
) -> Result<String, super::jinja::RenderError> {
    let env = super::jinja::environment();
    super::jinja::render(
        &env,
        source,
        minijinja::context! { name => name, provider => provider, region => region, template => template },
    )
}

fn check_date(c: &mut Checker, e: &Entity, field: &[&str], date: &str) {
    if let Err(why) = crate::date::calendar_date(date) {
        c.push(e, field, why);
    }
}

/// What is wrong with a paging pointer: a JSON pointer (`/meta/total`) or, for a count, a
/// response header as `header:Name`. `None` when it is fine or empty (not read).
fn total_problem(spec: &str, header_ok: bool) -> Option<String> {
    if spec.is_empty() || spec.starts_with('/') {
        return None;
    }
    match spec.strip_prefix("header:") {
        Some(_) if !header_ok => Some(format!(
            "'{spec}' must be a pointer starting with '/' (only `total` may name a header)"
        )),
        Some(name) => {
            let name = name.trim();
            let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            if name.is_empty() || !name.bytes().all(token) {
                Some(format!(
                    "'{spec}' does not name a header — write `header:` and a header name, e.g. header:X-Total-Count"
                ))
            } else {
                None
            }
        }
        None => Some(format!(
            "'{spec}' must be a pointer starting with '/' (or `header:Name` for a count)"
        )),
    }
}

/// What is wrong with a field reader: every pointer is empty (the value itself) or starts
/// with '/'; a `where` value is a text, `!text` (not equal) or `~prefix` (starts with), and the
/// two marks do not combine.
fn field_problem(f: &Field) -> Option<String> {
    let pointer = |p: &str, what: &str| {
        (!p.is_empty() && !p.starts_with('/'))
            .then(|| format!("{what} '{p}' must start with '/' (or be empty: the value itself)"))
    };
    match f {
        Field::Pointer(p) => pointer(p, "pointer"),
        Field::First(all) => all.iter().find_map(field_problem),
        Field::Pick(pick) => pointer(&pick.list, "`list` pointer")
            .or_else(|| pointer(&pick.value, "`value` pointer"))
            .or_else(|| {
                pick.filter.iter().find_map(|(k, v)| {
                    pointer(k, "`where` pointer").or_else(|| {
                        if v.starts_with("!~") || v.starts_with("~!") {
                            Some(format!(
                                "`where` value '{v}' combines '!' and '~' — write `!text` (not equal) or `~prefix` (starts with)"
                            ))
                        } else if v == "~" {
                            Some("`where` value '~' needs a prefix after the '~' (`~capsule-`)".to_string())
                        } else {
                            None
                        }
                    })
                })
            }),
    }
}

fn unknown_msg(what: &str, word: &str, candidates: &[&str]) -> String {
    match closest(word, candidates.iter().copied()) {
        Some(s) => format!("unknown {what} '{word}' — did you mean '{s}'?"),
        None if candidates.is_empty() => format!("unknown {what} '{word}'"),
        None => format!(
            "unknown {what} '{word}' — expected one of: {}",
            candidates.join(", ")
        ),
    }
}

fn template_ok(c: &mut Checker, e: &Entity, field: &[&str], source: &str) {
    if let Err(msg) = compile(source) {
        c.push(e, field, format!("template {msg}"));
    }
}

/// Whether a minijinja expression compiles (step conditions).
pub fn compile_expression(source: &str) -> Result<(), String> {
    let env = minijinja::Environment::new();
    env.compile_expression(source).map(|_| ()).map_err(|e| {
        e.detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.kind().to_string())
    })
}

/// Compile a minijinja template the way the driver does, and try it with no values so that a
/// loop that cannot finish or an output past the size cap is caught before any request. The
/// error completes "template …": `does not compile: …` or `fails with no values: …`.
pub fn compile(source: &str) -> Result<(), String> {
    let mut env = super::jinja::environment();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
    env.template_from_str(source).map(|_| ()).map_err(|e| {
        let detail = e
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| e.kind().to_string());
        match e.line() {
            Some(l) if source.contains('\n') => {
                format!("does not compile: {detail} (template line {l})")
            }
            _ => format!("does not compile: {detail}"),
        }
    })?;
    match super::jinja::render(&env, source, ()) {
        Err(e) if e.limit => Err(format!("fails with no values: {}", e.message)),
        _ => Ok(()),
    }
}

/// Whether `base_url` keeps to https, or plain http to a loopback host (the rule
/// `CAPSULE_ENDPOINT_*` follows); the problem otherwise.
fn base_url_problem(url: &str) -> Option<String> {
    let lower = url.trim().to_ascii_lowercase();
    if lower.starts_with("https://") {
        return None;
    }
    if let Some(rest) = lower.strip_prefix("http://") {
        let host = if let Some(v6) = rest.strip_prefix('[') {
            v6.split(']').next().unwrap_or("")
        } else {
            rest.split([':', '/', '?', '#']).next().unwrap_or("")
        };
        let loopback = host == "localhost"
            || host == "::1"
            || (host.starts_with("127.")
                && host.split('.').count() == 4
                && host.split('.').all(|p| p.parse::<u8>().is_ok()));
        if loopback {
            return None;
        }
        return Some(format!(
            "base_url '{url}' uses plain http to a non-loopback host — use https, or http only to 127.0.0.1, ::1 or localhost"
        ));
    }
    Some(format!(
        "base_url '{url}' does not start with https:// — use https (or http to a loopback host)"
    ))
}

/// A monthly cap is 0 (not declared), 1–745 hours, or infinite (`"none"`: no cap).
fn cap_hours_ok(h: f64) -> bool {
    h == f64::INFINITY || (0.0..=745.0).contains(&h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::schema::Pick;

    #[test]
    fn template_problems_over_many_runs_keep_catalog_order() {
        let mut catalog = crate::catalog::embedded().unwrap();
        let base = catalog.templates[0].clone();
        let n = TEMPLATE_RUN * 3 + 5;
        let mut ts: Vec<Template> = (0..n)
            .map(|i| {
                let mut t = base.clone();
                t.id = format!("many-{i}");
                t
            })
            .collect();
        ts[10].cpu = 0;
        ts[TEMPLATE_RUN * 2 + 1].id = "MANY-3".into(); // many-3 again, in another run
        ts[TEMPLATE_RUN * 2 + 1].cpu = 0;
        ts[n - 1].regions.push(base.regions[0].clone()); // a region listed twice
        catalog.templates = ts.into();
        let got: Vec<(Entity, String)> = validate(&catalog)
            .into_iter()
            .map(|p| (p.entity, p.message))
            .collect();
        let t = |id: &str| Entity::Template(id.to_string());
        assert_eq!(
            got,
            vec![
                (t("many-10"), "cpu 0 must be between 1 and 1024".to_string()),
                (t("MANY-3"), "duplicate template id 'MANY-3'".to_string()),
                (
                    t("MANY-3"),
                    "template id 'MANY-3' must be lower-case letters, digits, '-' or '.'"
                        .to_string()
                ),
                (t("MANY-3"), "cpu 0 must be between 1 and 1024".to_string()),
                (
                    t(&format!("many-{}", n - 1)),
                    format!("region '{}' is listed twice", base.regions[0])
                ),
            ]
        );
    }

    #[test]
    fn a_checking_worker_that_panics_panics_the_check() {
        let items: Vec<u32> = (0..64).collect();
        assert_eq!(on_cores_resumed(&items, |n| n * 2)[63], 126);
        let failed = std::panic::catch_unwind(|| {
            on_cores_resumed(&items, |&n| {
                assert!(n != 63, "the last part fails");
                n
            })
        });
        assert!(failed.is_err());
    }

    #[test]
    fn where_filters_and_pointers_are_checked() {
        let pick = |k: &str, v: &str| {
            Field::Pick(Pick {
                list: "/tags".into(),
                filter: [(k.to_string(), v.to_string())].into_iter().collect(),
                value: String::new(),
            })
        };
        assert_eq!(field_problem(&pick("", "~capsule-")), None);
        assert_eq!(field_problem(&pick("/type", "!private")), None);
        assert!(field_problem(&pick("/type", "!~x"))
            .unwrap()
            .contains("combines"));
        assert!(field_problem(&pick("", "~")).unwrap().contains("prefix"));
        assert!(field_problem(&pick("type", "public"))
            .unwrap()
            .contains("'type'"));
        let first = Field::First(vec![
            Field::Pointer("/a".into()),
            Field::Pointer("b".into()),
        ]);
        assert!(field_problem(&first).unwrap().contains("'b'"));
    }

    #[test]
    fn header_forms_are_checked() {
        assert_eq!(total_problem("header:X-Total-Count", true), None);
        assert_eq!(total_problem("/meta/total", true), None);
        assert!(total_problem("header:X Total", true).is_some());
        assert!(total_problem("header:", true).is_some());
        assert!(total_problem("header:X-Next", false).is_some());
        assert!(total_problem("meta/total", true).is_some());
    }
}
