//! Catalog loading: parse every file strictly, merge the layers, build the typed catalog and
//! validate it, with every error located at `file:line:col`.
//!
//! Merge rules (documented in the README):
//! - Files in a folder `<provider>/` belong to that provider; a file elsewhere may name its
//!   provider with `[provider] id = …` (or a template with `provider = …`).
//! - Entities are keyed: a provider by `id`, a region by `id` within its provider, a credential
//!   field by `name`, a template by its global `id`, a rate by `currency`; `[api]` and
//!   `[bootstrap]` are single tables.
//! - A later layer (`--catalog DIR` over the embedded catalog) patches an entity with the same
//!   key: tables merge key by key, any other value (a number, a string, a list) replaces the old
//!   one. A new key adds an entity. Within one layer a key may be defined only once.
//!
//! Shared with `build.rs` (through `#[path]`): `std`, `serde`, `toml`, `toml_parser`, `toml_edit`,
//! `minijinja`, `memchr`.

use super::diagnostic::{closest, locate, Diagnostic, Diagnostics, Seg, SourceFile};
use super::model::{Catalog, ProviderEntry};
use super::schema::{Api, Bootstrap, FileDoc, ProviderMeta, Rate, Template};
use super::validate::{validate, Entity, Problem};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// Where an entity (or a patch of it) was written: a file and the key path of its table.
#[derive(Debug, Clone)]
struct Origin {
    file: usize,
    path: Vec<Seg>,
    /// Top-level keys this origin set; `None` = a complete definition (every key).
    keys: Option<Vec<String>>,
}

impl Origin {
    fn sets(&self, key: &str) -> bool {
        self.keys
            .as_ref()
            .is_none_or(|ks| ks.iter().any(|k| k == key))
    }
}

/// One keyed entity under construction.
#[derive(Debug, Clone, Default)]
struct Acc {
    table: toml::Table,
    origins: Vec<Origin>,
}

#[derive(Default)]
struct Merge {
    providers: BTreeMap<String, Acc>,
    regions: BTreeMap<(String, String), Acc>,
    region_order: Vec<(String, String)>,
    credentials: BTreeMap<(String, String), Acc>,
    credential_order: Vec<(String, String)>,
    /// Templates in definition order, typed from the start (catalogs can hold 100k of them),
    /// and where each id sits. They stay in this vector until they are the catalog's.
    templates: Vec<Template>,
    template_index: std::collections::HashMap<String, usize>,
    /// Where each template was defined: its file and its index among the file's
    /// `[[templates]]` (the origin, without an allocation per template).
    template_defs: Vec<(usize, usize)>,
    /// The patches of templates from later layers, by position in `templates`.
    template_patches: std::collections::HashMap<usize, Vec<Origin>>,
    apis: BTreeMap<String, Acc>,
    rates: BTreeMap<String, Acc>,
    bootstrap: Option<Acc>,
    diags: Vec<Diagnostic>,
}

/// Load a catalog from files given in layer order (embedded first, overlay last).
pub fn load_files(files: &[SourceFile]) -> Result<Catalog, Diagnostics> {
    let mut m = Merge::default();
    for (i, file) in files.iter().enumerate() {
        m.add_file(files, i, file);
    }
    if !m.diags.is_empty() {
        return Err(Diagnostics(m.diags));
    }
    m.build(files)
}

/// Files this large that hold nothing but `[[templates]]` are parsed one entry at a time, so
/// memory holds one entry's syntax tree rather than the whole file's.
const CHUNKED_PARSE_BYTES: usize = 256 * 1024;

/// The header of a `[[templates]]` entry, alone on its line.
const HEADER_LINE: &str = "[[templates]]\n";

/// Parse one file strictly into its typed form; errors are located in the file. The file's
/// templates come apart from the rest, as runs (in file order) that are moved once into the
/// merge rather than joined first.
fn parse_doc(file: &SourceFile) -> Result<(FileDoc, Vec<Vec<Template>>), Diagnostic> {
    let text = &file.text;
    let chunkable = text.len() >= CHUNKED_PARSE_BYTES
        && memchr::memmem::find(text.as_bytes(), b"\"\"\"").is_none()
        && memchr::memmem::find(text.as_bytes(), b"'''").is_none()
        && only_template_headers(text);
    if !chunkable {
        let mut doc: FileDoc = toml::from_str(text).map_err(|e| toml_error(file, &e, 0))?;
        let templates = std::mem::take(&mut doc.templates);
        return Ok((doc, vec![templates]));
    }
    let mut starts: Vec<usize> = memchr::memmem::find_iter(text.as_bytes(), b"[[templates]]")
        .filter(|i| *i == 0 || text.as_bytes()[i - 1] == b'\n')
        .collect();
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    starts.push(text.len());
    // Entries are independent: parse contiguous runs of them on every core, then join in order.
    let spans: Vec<(usize, usize)> = starts.windows(2).map(|w| (w[0], w[1])).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let per = spans.len().div_ceil(threads).max(1);
    let brackets = memchr::memmem::Finder::new(b"[[");
    let parse_run = |run: &[(usize, usize)]| -> Result<Vec<Template>, Diagnostic> {
        let mut out = Vec::with_capacity(run.len());
        let mut reader = super::body::Reader::default();
        for &(a, b) in run {
            // An entry under a bare `[[templates]]` line is its body's table: parsed as one
            // template, without the document around it. A body with no `[[` (so no header, even
            // an indented one) and no multi-line string means the same alone as under its
            // header. It is read first by the event-driven fast path (`body.rs`), then by
            // `toml`; anything the body alone refuses is parsed again whole, and the error (or
            // value) is that one.
            let entry = &text[a..b];
            let body = entry
                .strip_prefix(HEADER_LINE)
                .filter(|body| brackets.find(body.as_bytes()).is_none());
            if let Some(body) = body {
                if let Some(t) = reader.template(body) {
                    out.push(t);
                    continue;
                }
                if let Ok(t) = toml::from_str::<Template>(body) {
                    out.push(t);
                    continue;
                }
            }
            let part: FileDoc = toml::from_str(entry).map_err(|e| toml_error(file, &e, a))?;
            out.extend(part.templates);
        }
        Ok(out)
    };
    let runs: Vec<&[(usize, usize)]> = spans.chunks(per).collect();
    let results = on_threads(&runs, |run| parse_run(run)).map_err(|n| {
        let (start, _) = runs[n].first().copied().unwrap_or((0, 0));
        Diagnostic::at(
            file,
            Some(start..start),
            "this part of the file could not be parsed (the parser failed unexpectedly) — please report it",
        )
    })?;
    let runs = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    Ok((FileDoc::default(), runs))
}

/// Whether every line whose first non-blank character is `[` is `[[templates]]` (the file
/// holds no other table). The same as testing each of `text.lines()`, without visiting the
/// lines that hold no `[`.
fn only_template_headers(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut after = 0; // lines before this offset are known
    for i in memchr::memchr_iter(b'[', bytes) {
        if i < after {
            continue;
        }
        let start = memchr::memrchr(b'\n', &bytes[..i]).map_or(0, |n| n + 1);
        let end = memchr::memchr(b'\n', &bytes[i..]).map_or(bytes.len(), |n| i + n);
        after = end;
        if text[start..i].trim_start().is_empty() && text[start..end].trim() != "[[templates]]" {
            return false;
        }
    }
    true
}

/// `work` on every item, one scoped thread each, results in input order. A worker that panics
/// is an error naming its item (never a silently missing result).
fn on_threads<I: Sync, T: Send>(
    items: &[I],
    work: impl Fn(&I) -> T + Sync,
) -> Result<Vec<T>, usize> {
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .iter()
            .map(|item| scope.spawn(move || work(item)))
            .collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(n, h)| h.join().map_err(|_| n))
            .collect()
    })
}

fn toml_error(file: &SourceFile, err: &toml::de::Error, offset: usize) -> Diagnostic {
    let raw = err
        .message()
        .trim()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let message = humanize_serde(&raw);
    // An unknown field: point at the key itself; a refused word in a list: at that element.
    let span = err.span().map(|r| {
        super::diagnostic::narrow_to_element(&file.text, r.start + offset..r.end + offset, &message)
    });
    Diagnostic::at(file, span, message)
}

/// Turn serde/toml wording into one clear sentence.
fn humanize_serde(raw: &str) -> String {
    if let Some(rest) = raw.strip_prefix("unknown field `") {
        let field = rest.split('`').next().unwrap_or("");
        let expected: Vec<&str> = rest
            .split('`')
            .skip(2)
            .step_by(2)
            .filter(|s| !s.is_empty())
            .collect();
        return match closest(field, expected.iter().copied()) {
            Some(s) => format!("unknown key '{field}' — did you mean '{s}'?"),
            None if expected.is_empty() => format!("unknown key '{field}'"),
            None => format!(
                "unknown key '{field}' — expected one of: {}",
                expected.join(", ")
            ),
        };
    }
    if let Some(rest) = raw.strip_prefix("unknown variant `") {
        let word = rest.split('`').next().unwrap_or("");
        let expected: Vec<&str> = rest.split('`').skip(2).step_by(2).collect();
        return match closest(word, expected.iter().copied()) {
            Some(s) => format!("'{word}' is not valid here — did you mean '{s}'?"),
            None => format!(
                "'{word}' is not valid here — use one of: {}",
                expected.join(", ")
            ),
        };
    }
    if let Some(rest) = raw.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or("");
        return format!("missing key '{field}' — add it to this table");
    }
    if let Some(rest) = raw.strip_prefix("invalid type: ") {
        return format!("wrong type: {rest}");
    }
    raw.to_string()
}

impl Merge {
    fn add_file(&mut self, files: &[SourceFile], idx: usize, file: &SourceFile) {
        // Strict typed parse first: unknown keys and wrong types, located exactly.
        let (doc, runs) = match parse_doc(file) {
            Ok(d) => d,
            Err(d) => {
                self.diags.push(d);
                return;
            }
        };
        // The untyped table is needed for sections that merge key by key across files, and for
        // patches of existing templates (parsed at the first one); a file of new templates alone
        // is parsed once.
        let needs_table = doc.provider.is_some()
            || doc.api.is_some()
            || doc.bootstrap.is_some()
            || !doc.regions.is_empty()
            || !doc.credentials.is_empty()
            || !doc.rates.is_empty();
        let mut table = FileTable::default();
        if needs_table && table.get(file, &mut self.diags).is_none() {
            return;
        }
        let declared = doc
            .provider
            .as_ref()
            .map(|p| p.id.clone())
            .filter(|id| !id.is_empty());
        if let (Some(folder), Some(id)) = (&file.folder, &declared) {
            if folder != id {
                let span = locate(&file.text, &[key("provider"), key("id")], false);
                self.diags.push(Diagnostic::at(
                    file,
                    span,
                    format!("provider id '{id}' does not match its folder '{folder}' — rename one of them"),
                ));
                return;
            }
        }
        let owner = declared.clone().or_else(|| file.folder.clone());

        if let Some(toml::Value::Table(t)) = table.parsed().and_then(|t| t.get("provider")) {
            match &owner {
                Some(id) => {
                    let mut t = t.clone();
                    t.entry("id")
                        .or_insert_with(|| toml::Value::String(id.clone()));
                    self.put(
                        files,
                        Kind::Provider,
                        id.clone(),
                        t,
                        idx,
                        vec![key("provider")],
                    );
                }
                None => self.need_owner(file, "provider"),
            }
        }
        for (section, kind) in [("regions", Kind::Region), ("credentials", Kind::Credential)] {
            let Some(toml::Value::Array(items)) = table.parsed().and_then(|t| t.get(section))
            else {
                continue;
            };
            let Some(prov) = &owner else {
                self.need_owner(file, section);
                continue;
            };
            let id_key = if kind == Kind::Credential {
                "name"
            } else {
                "id"
            };
            for (n, item) in items.iter().enumerate() {
                let Some(t) = item.as_table() else { continue };
                let id = t
                    .get(id_key)
                    .and_then(toml::Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if id.is_empty() {
                    let span = locate(&file.text, &[key(section), Seg::Index(n)], false);
                    self.diags.push(Diagnostic::at(
                        file,
                        span,
                        format!("[[{section}]] entry has no {id_key}"),
                    ));
                    continue;
                }
                self.put(
                    files,
                    kind,
                    format!("{prov}\u{0}{id}"),
                    t.clone(),
                    idx,
                    vec![key(section), Seg::Index(n)],
                );
            }
        }
        let count: usize = runs.iter().map(Vec::len).sum();
        self.templates.reserve(count);
        self.template_defs.reserve(count);
        self.template_index.reserve(count);
        // Each run is admitted in place (a patch or a refused entry leaves it), then appended
        // whole: a template is moved once, in bulk.
        let mut n = 0;
        for mut run in runs {
            let mut kept = 0;
            run.retain_mut(|t| {
                let at = n;
                n += 1;
                let pos = self.templates.len() + kept;
                match self.admit(files, idx, t, at, pos, owner.as_deref()) {
                    Admit::New => {
                        kept += 1;
                        true
                    }
                    Admit::Refused => false,
                    Admit::Patch(i) => {
                        self.patch_template(files, idx, &mut table, at, i);
                        false
                    }
                }
            });
            self.templates.append(&mut run);
        }
        if let Some(toml::Value::Table(t)) = table.parsed().and_then(|t| t.get("api")) {
            match &owner {
                Some(p) => self.put(
                    files,
                    Kind::Api,
                    p.clone(),
                    t.clone(),
                    idx,
                    vec![key("api")],
                ),
                None => self.need_owner(file, "api"),
            }
        }
        if let Some(toml::Value::Array(items)) = table.parsed().and_then(|t| t.get("rates")) {
            for (n, item) in items.iter().enumerate() {
                let Some(t) = item.as_table() else { continue };
                let cur = t
                    .get("currency")
                    .and_then(toml::Value::as_str)
                    .unwrap_or("")
                    .to_uppercase();
                self.put(
                    files,
                    Kind::Rate,
                    cur,
                    t.clone(),
                    idx,
                    vec![key("rates"), Seg::Index(n)],
                );
            }
        }
        if let Some(toml::Value::Table(t)) = table.parsed().and_then(|t| t.get("bootstrap")) {
            self.put(
                files,
                Kind::Bootstrap,
                String::new(),
                t.clone(),
                idx,
                vec![key("bootstrap")],
            );
        }
    }

    /// Whether template `t`, entry `n` of file `idx`, is a new one (then indexed at `pos` and
    /// its origin recorded), a patch of the template at `i` from an earlier layer, or refused
    /// (with a diagnostic).
    fn admit(
        &mut self,
        files: &[SourceFile],
        idx: usize,
        t: &mut Template,
        n: usize,
        pos: usize,
        owner: Option<&str>,
    ) -> Admit {
        let file = &files[idx];
        if t.id.is_empty() {
            let span = locate(&file.text, &template_path(n), false);
            self.diags
                .push(Diagnostic::at(file, span, "[[templates]] entry has no id"));
            return Admit::Refused;
        }
        // One hash a template: the id's slot is looked up once, and filled when it is new.
        let i = match self.template_index.entry(t.id.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => *e.get(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                if t.provider.is_empty() {
                    match owner {
                        Some(p) => t.provider = p.to_string(),
                        None => {
                            let span = locate(&file.text, &template_path(n), false);
                            self.diags.push(Diagnostic::at(
                                file,
                                span,
                                format!("template '{}' has no provider — set provider = \"…\" or put the file in the provider's folder", t.id),
                            ));
                            return Admit::Refused;
                        }
                    }
                }
                slot.insert(pos);
                self.template_defs.push((idx, n));
                return Admit::New;
            }
        };
        let origins = self.template_origins(i);
        let Some(prev) = origins.iter().find(|o| files[o.file].layer == file.layer) else {
            return Admit::Patch(i);
        };
        let span = locate(&file.text, &template_path(n), false);
        let prev_file = &files[prev.file];
        let (line, _) = span_line(prev_file, &prev.path);
        self.diags.push(Diagnostic::at(
            file,
            span,
            format!(
                "duplicate template id '{}' — already defined at {}:{line}",
                t.id, prev_file.path
            ),
        ));
        Admit::Refused
    }

    /// Patch the template at `i` with entry `n` of file `idx`: only the keys the entry sets
    /// replace the earlier values.
    fn patch_template(
        &mut self,
        files: &[SourceFile],
        idx: usize,
        table: &mut FileTable,
        n: usize,
        i: usize,
    ) {
        let file = &files[idx];
        let Some(table) = table.get(file, &mut self.diags) else {
            return;
        };
        let patch = table
            .get("templates")
            .and_then(toml::Value::as_array)
            .and_then(|a| a.get(n))
            .and_then(toml::Value::as_table)
            .cloned()
            .unwrap_or_default();
        let value = &mut self.templates[i];
        let merged = toml::Value::try_from(&*value)
            .map_err(|e| e.to_string())
            .and_then(|v| {
                let mut base = match v {
                    toml::Value::Table(b) => b,
                    _ => toml::Table::new(),
                };
                deep_merge(&mut base, patch.clone());
                toml::Value::Table(base)
                    .try_into::<Template>()
                    .map_err(|e| e.message().to_string())
            });
        match merged {
            Ok(v) => {
                *value = v;
                self.template_patches.entry(i).or_default().push(Origin {
                    file: idx,
                    path: template_path(n),
                    keys: Some(patch.keys().cloned().collect()),
                });
            }
            Err(e) => {
                let span = locate(&file.text, &template_path(n), false);
                self.diags
                    .push(Diagnostic::at(file, span, humanize_serde(e.trim())));
            }
        }
    }

    /// Where the template at `i` was written: its definition, then its patches in order.
    fn template_origins(&self, i: usize) -> Vec<Origin> {
        let (file, n) = self.template_defs[i];
        let mut out = vec![Origin {
            file,
            path: template_path(n),
            keys: None,
        }];
        if let Some(patches) = self.template_patches.get(&i) {
            out.extend(patches.iter().cloned());
        }
        out
    }

    fn need_owner(&mut self, file: &SourceFile, section: &str) {
        let span = locate(&file.text, &[key(section)], true);
        self.diags.push(Diagnostic::at(
            file,
            span,
            format!("[{section}] needs a provider — put the file in catalog/<provider>/ or add [provider] id = \"…\""),
        ));
    }

    fn put(
        &mut self,
        files: &[SourceFile],
        kind: Kind,
        id: String,
        table: toml::Table,
        file: usize,
        path: Vec<Seg>,
    ) {
        let origin = Origin {
            file,
            path,
            keys: Some(table.keys().cloned().collect()),
        };
        let layer = files[file].layer;
        let slot = match kind {
            Kind::Provider => self.providers.get_mut(&id),
            Kind::Region => self.regions.get_mut(&split(&id)),
            Kind::Credential => self.credentials.get_mut(&split(&id)),
            Kind::Api => self.apis.get_mut(&id),
            Kind::Rate => self.rates.get_mut(&id),
            Kind::Bootstrap => self.bootstrap.as_mut(),
        };
        if let Some(acc) = slot {
            // Keyed entities may be defined once per layer; [provider], [api] and [bootstrap]
            // may be spread over several files of the same provider.
            let keyed = matches!(kind, Kind::Region | Kind::Credential | Kind::Rate);
            if keyed {
                if let Some(prev) = acc.origins.iter().find(|o| files[o.file].layer == layer) {
                    let f = &files[origin.file];
                    let span = locate(&f.text, &origin.path, false);
                    let shown = id.split('\u{0}').next_back().unwrap_or(&id).to_string();
                    let prev_file = &files[prev.file];
                    let (line, _) = span_line(prev_file, &prev.path);
                    self.diags.push(Diagnostic::at(
                        f,
                        span,
                        format!(
                            "duplicate {} id '{shown}' — already defined at {}:{line}",
                            kind.noun(),
                            prev_file.path
                        ),
                    ));
                    return;
                }
            }
            deep_merge(&mut acc.table, table);
            acc.origins.push(origin);
            return;
        }
        let acc = Acc {
            table,
            origins: vec![origin],
        };
        match kind {
            Kind::Provider => {
                self.providers.insert(id, acc);
            }
            Kind::Region => {
                let k = split(&id);
                self.region_order.push(k.clone());
                self.regions.insert(k, acc);
            }
            Kind::Credential => {
                let k = split(&id);
                self.credential_order.push(k.clone());
                self.credentials.insert(k, acc);
            }
            Kind::Api => {
                self.apis.insert(id, acc);
            }
            Kind::Rate => {
                self.rates.insert(id, acc);
            }
            Kind::Bootstrap => self.bootstrap = Some(acc),
        }
    }

    fn build(mut self, files: &[SourceFile]) -> Result<Catalog, Diagnostics> {
        let mut diags = Vec::new();
        let mut origins: std::collections::HashMap<Entity, Vec<Origin>> =
            std::collections::HashMap::new();
        let mut catalog = Catalog::default();

        for (id, acc) in &self.providers {
            let meta: ProviderMeta = typed(files, acc, &mut diags).unwrap_or_default();
            origins.insert(Entity::Provider(id.clone()), acc.origins.clone());
            let mut entry = ProviderEntry {
                meta,
                ..Default::default()
            };
            if let Some(api) = self.apis.get(id) {
                let mut api = api.clone();
                match super::schema::expand_operation_defaults(&mut api.table) {
                    Ok(()) => entry.api = typed::<Api>(files, &api, &mut diags).unwrap_or_default(),
                    Err(msg) => diags.push(at_key(files, &api, "operation_defaults", msg)),
                }
                origins.insert(Entity::Api(id.clone()), api.origins.clone());
            }
            catalog.providers.push(entry);
        }
        for (prov, api) in &self.apis {
            if !self.providers.contains_key(prov) {
                diags.push(missing_provider(files, &api.origins, prov));
            }
        }
        let mut sections = Sections {
            files,
            catalog: &mut catalog,
            origins: &mut origins,
            diags: &mut diags,
        };
        sections.attach(&self.region_order, &self.regions, Entity::Region, |p| {
            &mut p.regions
        });
        sections.attach(
            &self.credential_order,
            &self.credentials,
            Entity::Credential,
            |p| &mut p.credentials,
        );
        // The merge's vector becomes the catalog's: no template moves.
        catalog.templates = std::mem::take(&mut self.templates).into();
        for (cur, acc) in &self.rates {
            if let Some(r) = typed::<Rate>(files, acc, &mut diags) {
                catalog.rates.push(r);
            }
            origins.insert(Entity::Rate(cur.clone()), acc.origins.clone());
        }
        if let Some(acc) = &self.bootstrap {
            catalog.bootstrap = typed::<Bootstrap>(files, acc, &mut diags).unwrap_or_default();
            origins.insert(Entity::Bootstrap, acc.origins.clone());
        }
        if !diags.is_empty() {
            return Err(Diagnostics(diags));
        }

        let problems = validate(&catalog);
        if !problems.is_empty() {
            // Template origins are looked up only for the templates with a problem.
            let wanted: std::collections::HashSet<&str> = problems
                .iter()
                .filter_map(|p| match &p.entity {
                    Entity::Template(id) => Some(id.as_str()),
                    _ => None,
                })
                .collect();
            for (i, t) in catalog.templates.iter().enumerate() {
                if wanted.contains(t.id.as_str()) {
                    origins.insert(Entity::Template(t.id.clone()), self.template_origins(i));
                }
            }
            let diags = problems
                .into_iter()
                .map(|p| place(files, &origins, p))
                .collect();
            return Err(Diagnostics(diags));
        }
        // Sort a permutation by (provider, price, id), then move each template once.
        let provider_rank: std::collections::HashMap<&str, usize> = catalog
            .providers
            .iter()
            .enumerate()
            .map(|(i, p)| (p.meta.id.as_str(), i))
            .collect();
        // The sort keys sit beside each position (no lookups while sorting); ties of provider
        // and price, rare, compare ids.
        let mut keyed: Vec<(usize, f64, usize)> = catalog
            .templates
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    provider_rank
                        .get(t.provider.as_str())
                        .copied()
                        .unwrap_or(usize::MAX),
                    t.price_hourly,
                    i,
                )
            })
            .collect();
        {
            let ts = &catalog.templates;
            keyed.sort_unstable_by(|a, b| {
                a.0.cmp(&b.0)
                    .then(a.1.total_cmp(&b.1))
                    .then_with(|| ts[a.2].id.cmp(&ts[b.2].id))
            });
        }
        let order: Vec<usize> = keyed.into_iter().map(|k| k.2).collect();
        drop(provider_rank);
        apply_permutation(&mut catalog.templates, &order);
        Ok(catalog)
    }
}

/// What [`Merge::admit`] made of a template entry.
enum Admit {
    New,
    Patch(usize),
    Refused,
}

/// A file's untyped table, parsed when first needed (once; a failure is reported once).
#[derive(Default)]
struct FileTable {
    table: Option<toml::Table>,
    failed: bool,
}

impl FileTable {
    fn get(&mut self, file: &SourceFile, diags: &mut Vec<Diagnostic>) -> Option<&toml::Table> {
        if self.table.is_none() && !self.failed {
            match toml::from_str(&file.text) {
                Ok(t) => self.table = Some(t),
                Err(e) => {
                    self.failed = true;
                    diags.push(toml_error(file, &e, 0));
                }
            }
        }
        self.table.as_ref()
    }

    /// The table, if it was parsed.
    fn parsed(&self) -> Option<&toml::Table> {
        self.table.as_ref()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Provider,
    Region,
    Credential,
    Api,
    Rate,
    Bootstrap,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Provider => "provider",
            Kind::Region => "region",
            Kind::Credential => "credential",
            Kind::Api => "api",
            Kind::Rate => "rate",
            Kind::Bootstrap => "bootstrap",
        }
    }
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

/// The key path of a file's `n`-th `[[templates]]` entry.
fn template_path(n: usize) -> Vec<Seg> {
    vec![key("templates"), Seg::Index(n)]
}

fn split(id: &str) -> (String, String) {
    let mut it = id.splitn(2, '\u{0}');
    (
        it.next().unwrap_or("").to_string(),
        it.next().unwrap_or("").to_string(),
    )
}

fn span_line(file: &SourceFile, path: &[Seg]) -> (usize, usize) {
    let span = locate(&file.text, path, false).unwrap_or(0..0);
    super::diagnostic::line_col(&file.text, span.start)
}

/// Reorder in place so that `v[k]` becomes the old `v[order[k]]`: one swap per element along
/// each cycle, no second buffer.
fn apply_permutation<T>(v: &mut [T], order: &[usize]) {
    let mut done = vec![false; v.len()];
    for start in 0..v.len() {
        if done[start] {
            continue;
        }
        let mut j = start;
        loop {
            done[j] = true;
            let k = order[j];
            if k == start {
                break;
            }
            v.swap(j, k);
            j = k;
        }
    }
}

/// Tables merge key by key; anything else replaces. A table that names its variant (`paging =
/// { style = … }`, `[api.auth] scheme = …`) replaces the old one whole: the keys of one variant
/// mean nothing in another.
fn deep_merge(base: &mut toml::Table, patch: toml::Table) {
    for (k, v) in patch {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(p))
                if !p.contains_key("style") && !p.contains_key("scheme") =>
            {
                deep_merge(b, p)
            }
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn typed<T: DeserializeOwned>(
    files: &[SourceFile],
    acc: &Acc,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    match toml::Value::Table(acc.table.clone()).try_into::<T>() {
        Ok(v) => Some(v),
        Err(e) => {
            let o = acc.origins.last()?;
            let f = &files[o.file];
            diags.push(Diagnostic::at(
                f,
                locate(&f.text, &o.path, false),
                humanize_serde(e.message().trim()),
            ));
            None
        }
    }
}

/// A diagnostic at `key` of the entity, in the latest file that set it.
fn at_key(files: &[SourceFile], acc: &Acc, key: &str, message: String) -> Diagnostic {
    let o = acc
        .origins
        .iter()
        .rev()
        .find(|o| o.sets(key))
        .or(acc.origins.last())
        .expect("an entity has an origin");
    let f = &files[o.file];
    let mut path = o.path.clone();
    path.push(Seg::Key(key.to_string()));
    Diagnostic::at(f, locate(&f.text, &path, true), message)
}

/// What [`Merge::build`] fills while it attaches a provider's keyed sections.
struct Sections<'a> {
    files: &'a [SourceFile],
    catalog: &'a mut Catalog,
    origins: &'a mut std::collections::HashMap<Entity, Vec<Origin>>,
    diags: &'a mut Vec<Diagnostic>,
}

impl Sections<'_> {
    /// Type each accumulated `(provider, key)` section in `order` and push it onto its
    /// provider's list (chosen by `list`), recording its origins; a section whose provider is
    /// not declared is an error.
    fn attach<T: DeserializeOwned>(
        &mut self,
        order: &[(String, String)],
        accs: &BTreeMap<(String, String), Acc>,
        entity: fn(String, String) -> Entity,
        list: fn(&mut ProviderEntry) -> &mut Vec<T>,
    ) {
        for k in order {
            let acc = &accs[k];
            match self.catalog.providers.iter_mut().find(|p| p.meta.id == k.0) {
                Some(p) => {
                    if let Some(v) = typed::<T>(self.files, acc, self.diags) {
                        list(p).push(v);
                    }
                    self.origins
                        .insert(entity(k.0.clone(), k.1.clone()), acc.origins.clone());
                }
                None => self
                    .diags
                    .push(missing_provider(self.files, &acc.origins, &k.0)),
            }
        }
    }
}

fn missing_provider(files: &[SourceFile], origins: &[Origin], prov: &str) -> Diagnostic {
    let o = &origins[0];
    let f = &files[o.file];
    Diagnostic::at(
        f,
        locate(&f.text, &o.path, true),
        format!("no [provider] section defines '{prov}' — add provider.toml with [provider] id = \"{prov}\""),
    )
}

/// Turn a validation problem into a located diagnostic: the latest origin that set the field.
fn place(
    files: &[SourceFile],
    origins: &std::collections::HashMap<Entity, Vec<Origin>>,
    p: Problem,
) -> Diagnostic {
    // An entity without a file of its own (a provider with no [api]) is reported at its provider.
    let owner = match &p.entity {
        Entity::Api(id) | Entity::Region(id, _) | Entity::Credential(id, _) => {
            Some(Entity::Provider(id.clone()))
        }
        _ => None,
    };
    let list = origins
        .get(&p.entity)
        .or_else(|| owner.as_ref().and_then(|o| origins.get(o)));
    let Some(list) = list else {
        // Only happens for catalog-wide problems; point at the first file.
        return match files.first() {
            Some(f) => Diagnostic::at(f, None, p.message),
            None => Diagnostic {
                path: "catalog".into(),
                line: 1,
                col: 1,
                message: p.message,
                snippet: None,
            },
        };
    };
    let first_key = match p.field.first() {
        Some(Seg::Key(k)) => Some(k.as_str()),
        _ => None,
    };
    let origin = first_key
        .and_then(|k| list.iter().rev().find(|o| o.sets(k)))
        .unwrap_or_else(|| list.last().expect("an entity has an origin"));
    let f = &files[origin.file];
    let mut path = origin.path.clone();
    path.extend(p.field.iter().cloned());
    let span = if first_key.is_some_and(|k| origin.sets(k)) {
        locate(&f.text, &path, p.on_key)
    } else {
        locate(&f.text, &origin.path, false)
    };
    Diagnostic::at(f, span, p.message)
}

#[cfg(test)]
mod tests {
    use super::{apply_permutation, on_threads, only_template_headers, FileDoc, Template};

    #[test]
    fn template_headers_are_found_as_line_by_line() {
        let by_lines = |t: &str| {
            t.lines()
                .filter(|l| l.trim_start().starts_with('['))
                .all(|l| l.trim() == "[[templates]]")
        };
        for text in [
            "",
            "[[templates]]\nid = \"a\"\nregions = [\"x\", \"y\"]\n",
            "  [[templates]]  \r\nid = 1\n\n[[templates]]",
            "[[templates]]\n[provider]\n",
            "id = 1\n   [api]\n",
            "a = [1]\n\t[[templates]]\n[[templatesx]]\n",
            "[[templates]] # note\n",
            "x = \"[\"\n\u{3000}[[templates]]\n[",
        ] {
            assert_eq!(only_template_headers(text), by_lines(text), "{text:?}");
        }
    }

    #[test]
    fn a_worker_that_panics_is_an_error_not_a_missing_chunk() {
        let items = [1, 2, 3, 4];
        let ok = on_threads(&items, |n| n * 10).unwrap();
        assert_eq!(ok, vec![10, 20, 30, 40]);
        let failed = on_threads(&items, |&n| {
            assert!(n != 3, "worker {n} fails");
            n
        });
        assert_eq!(failed, Err(2));
    }

    #[test]
    fn a_large_overlay_patches_in_place_and_refuses_a_repeat() {
        use crate::catalog::diagnostic::SourceFile;
        let base = crate::catalog::embedded().unwrap();
        let first = base.templates[0].clone();
        let mut fresh = first.clone();
        fresh.provider = String::new();
        let doc = FileDoc {
            templates: (0..2000)
                .map(|i| {
                    let mut t = fresh.clone();
                    t.id = format!("big-{i}");
                    t
                })
                .collect(),
            ..Default::default()
        };
        let body = toml::to_string(&doc).unwrap();
        assert!(
            body.len() >= super::CHUNKED_PARSE_BYTES,
            "the file is parsed in runs"
        );
        let file = |text: String| SourceFile {
            path: "overlay/t.toml".into(),
            text,
            folder: Some(first.provider.clone()),
            layer: 1,
        };
        let patch = format!(
            "{body}\n[[templates]]\nid = \"{}\"\nname = \"Patched\"\n",
            first.id
        );
        let mut files = crate::catalog::embedded_files();
        files.push(file(patch.clone()));
        let cat = super::load_files(&files).unwrap();
        assert_eq!(cat.templates.len(), base.templates.len() + 2000);
        // An indented header is no split point: its entry holds two templates, both kept.
        let indented = body.replacen(
            "[[templates]]\nid = \"big-5\"",
            "  [[templates]]\nid = \"big-5\"",
            1,
        );
        assert_ne!(indented, body);
        files.push(file(indented));
        files.swap_remove(files.len() - 2);
        let two = super::load_files(&files).unwrap();
        assert_eq!(two.templates.len(), base.templates.len() + 2000);
        assert!(two.template("big-4").is_some() && two.template("big-5").is_some());
        files.pop();
        files.push(file(patch.clone()));
        assert_eq!(cat.template(&first.id).unwrap().name, "Patched");
        assert_eq!(cat.template(&first.id).unwrap().plan, first.plan);
        assert_eq!(cat.template("big-1999").unwrap().provider, first.provider);
        // The same id twice in the file: the second is refused, located at its entry.
        let again = format!("{patch}\n[[templates]]\nid = \"big-7\"\nname = \"Twice\"\n");
        let line = again.lines().count() - 2;
        files.pop();
        files.push(file(again));
        let err = super::load_files(&files).unwrap_err().to_string();
        assert!(
            err.contains(&format!("overlay/t.toml:{line}:"))
                && err
                    .contains("duplicate template id 'big-7' — already defined at overlay/t.toml:"),
            "{err}"
        );
    }

    #[test]
    fn an_entry_body_alone_reads_as_under_its_header() {
        let bodies = [
            "id = \"a\"\ncpu = 2\nregions = [\"x\", # note\n  \"y\"]\n\n",
            "id = 'b' # c\ngpu.count = 1\ngpu.model = \"L4\"\ngpu.vram_gb = 24\n",
            "id = \"c\"\ngpu = { count = 2, model = \"A\", vram_gb = 8.5 }\nregion_prices = { x = 0.5 }\n",
            "id = \"d\"\r\nfeatures = []\r\nmonthly_cap_hours = \"none\"\r\n",
            "# only a comment\n",
        ];
        for body in bodies {
            let alone: Template = toml::from_str(body).unwrap();
            let whole: FileDoc = toml::from_str(&format!("{}{body}", super::HEADER_LINE)).unwrap();
            assert_eq!(
                serde_json::to_string(&alone).unwrap(),
                serde_json::to_string(&whole.templates[0]).unwrap(),
                "{body:?}"
            );
        }
    }

    #[test]
    fn permutation_in_place() {
        let mut v = vec!['a', 'b', 'c', 'd', 'e'];
        apply_permutation(&mut v, &[3, 0, 4, 1, 2]);
        assert_eq!(v, vec!['d', 'a', 'e', 'b', 'c']);
        let mut w = vec![1, 2, 3];
        apply_permutation(&mut w, &[0, 1, 2]);
        assert_eq!(w, vec![1, 2, 3]);
    }
}
