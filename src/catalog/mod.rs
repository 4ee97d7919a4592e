//! The catalog: all provider knowledge, embedded at build time and optionally layered with a
//! `--catalog DIR` overlay.
//!
//! `build.rs` validates `catalog/` with the same loader (`load.rs`, `validate.rs`) and writes
//! the merged result as JSON, so a plain start-up deserializes one pre-digested document and
//! parses no TOML. With an overlay, the embedded TOML files and the overlay's are merged and
//! validated, once: the result is kept in a cache keyed by the content of every input
//! (`cache.rs`), so later commands with the same overlay read one binary document. Its
//! templates are decoded when first read, and `templates` can answer from the entry's query
//! index (`index.rs`) decoding only the few it lists.

pub mod body;
pub mod cache;
pub mod cores;
pub mod diagnostic;
pub mod index;
pub mod jinja;
pub mod layer;
pub mod load;
pub mod model;
pub mod schema;
pub mod validate;

pub use model::*;

use crate::error::bad_input;
use diagnostic::{Diagnostics, SourceFile};
use include_dir::{include_dir, Dir};
use std::path::{Path, PathBuf};

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/catalog");
static DIGESTED: &str = include_str!(concat!(env!("OUT_DIR"), "/catalog.json"));

/// The effective catalog: embedded, with `overlay` layered over it when given.
pub fn load(overlay: Option<&Path>) -> anyhow::Result<Catalog> {
    match overlay {
        None => embedded(),
        Some(dir) => {
            let mut files = embedded_files();
            files.extend(dir_files(dir, 1)?);
            load::load_files(&files).map_err(catalog_error)
        }
    }
}

/// The effective catalog for a command: embedded, then the refreshed layer in `home` (unless
/// `embedded_only`), then `overlay`. The second value holds notices for stderr (a refreshed
/// layer that cannot be used is ignored, never fatal).
///
/// The embedded catalog, alone or with a layer validated against it, is pre-digested JSON.
/// Anything else goes through the TOML merge and validation once, and then comes from the
/// content-keyed [`cache`].
pub fn load_layered(
    home: &Path,
    overlay: Option<&Path>,
    embedded_only: bool,
) -> anyhow::Result<(Catalog, Vec<String>)> {
    let mut notes = Vec::new();
    let stored = if embedded_only {
        None
    } else {
        match layer::read(home) {
            Ok(l) => l,
            Err(e) => {
                notes.push(format!(
                    "{e} — the refreshed prices are ignored; {}",
                    crate::error::Hint::RefreshCatalog
                ));
                None
            }
        }
    };
    if overlay.is_none() {
        match stored {
            None => return Ok((embedded()?, notes)),
            Some(s) if s.embedded_digest == layer::digest(DIGESTED) => {
                let mut cat = embedded()?;
                layer::apply(&mut cat, &s);
                return Ok((cat, notes));
            }
            Some(s) => return merged(home, None, Some(&s), notes),
        }
    }
    let overlay = overlay.map(|dir| (dir, if stored.is_some() { 2 } else { 1 }));
    merged(home, overlay, stored.as_ref(), notes)
}

/// The TOML merge of the embedded catalog, `stored` and the overlay directory (with its layer
/// number), through the cache. A hit reads no overlay file into memory: each one is hashed as
/// a stream. A miss reads them, and keys the entry by the texts it actually merged (a file
/// changed in between gives the entry the new text's key, never the old one's).
fn merged(
    home: &Path,
    overlay: Option<(&Path, u8)>,
    stored: Option<&layer::Layer>,
    mut notes: Vec<String>,
) -> anyhow::Result<(Catalog, Vec<String>)> {
    let base = || -> anyhow::Result<cache::KeyBuilder> {
        let mut key = cache::KeyBuilder::default();
        key.part(DIGESTED.as_bytes());
        key.part(layer::path(home).as_os_str().as_encoded_bytes());
        match stored {
            // What was read, not the file now: the layer may have been replaced since.
            Some(l) => key.part(&serde_json::to_vec(l)?),
            None => key.part(b"no layer"),
        };
        Ok(key)
    };
    let paths = match overlay {
        Some((dir, _)) => overlay_paths(dir)?,
        None => Vec::new(),
    };
    let streamed = (|| -> anyhow::Result<cache::Key> {
        let mut key = base()?;
        if let Some((dir, layer)) = overlay {
            for p in &paths {
                let rel = p.strip_prefix(dir).unwrap_or(p);
                let digest = cache::file_digest(p)?;
                key.source(
                    &p.display().to_string(),
                    folder_of(rel).as_deref(),
                    layer,
                    digest,
                );
            }
        }
        Ok(key.finish())
    })();
    // A file that cannot be read now is reported by the full load below.
    if let Some(hit) = streamed.ok().and_then(|k| cache::read(home, &k)) {
        notes.extend(hit.notes);
        return Ok((hit.catalog, notes));
    }
    let files = match overlay {
        Some((dir, layer)) => read_files(dir, &paths, layer)?,
        None => Vec::new(),
    };
    let mut key = base()?;
    for f in &files {
        key.source(
            &f.path,
            f.folder.as_deref(),
            f.layer,
            cache::text_digest(&f.text),
        );
    }
    let key = key.finish();
    // The files move into the merge: a 25 MB overlay is not copied.
    let (catalog, found) = merge(home, files, stored)?;
    let entry = cache::Entry {
        catalog,
        notes: found,
    };
    cache::write(home, &key, &entry);
    // The entry just written answers this command as it will answer the next ones (one path
    // for a first load and a cached one): a query reads its index and decodes only the
    // templates it lists, from pages still in the page cache, where the built catalog would
    // be scanned whole. The built catalog is freed on a thread of its own, off the command's
    // path. An entry that cannot be read back (an unwritable cache) leaves the built one in
    // use.
    if let Some(written) = cache::read(home, &key) {
        std::thread::spawn(move || drop(entry));
        notes.extend(written.notes);
        return Ok((written.catalog, notes));
    }
    notes.extend(entry.notes);
    Ok((entry.catalog, notes))
}

/// Merge and validate: the layer as patches over the embedded files, the overlay last. A layer
/// that no longer fits this capsule's catalog is left out with a notice.
fn merge(
    home: &Path,
    overlay: Vec<SourceFile>,
    stored: Option<&layer::Layer>,
) -> anyhow::Result<(Catalog, Vec<String>)> {
    let Some(stored) = stored else {
        let mut files = embedded_files();
        files.extend(overlay);
        return Ok((load::load_files(&files).map_err(catalog_error)?, Vec::new()));
    };
    let base = embedded()?;
    let mut files = embedded_files();
    files.extend(layer::source_files(stored, &base, home, 1));
    let with_layer_only = files.len();
    let overlay_given = !overlay.is_empty();
    files.extend(overlay);
    match load::load_files(&files) {
        Ok(mut cat) => {
            mark_refreshed(&mut cat, stored);
            Ok((cat, Vec::new()))
        }
        Err(d) => {
            // Is it the layer (stale against this capsule's catalog) or the overlay?
            if load::load_files(&files[..with_layer_only]).is_ok() {
                return Err(catalog_error(d));
            }
            let note = format!(
                "the refreshed catalog {} no longer fits this capsule's catalog and is ignored — {}",
                layer::path(home).display(),
                crate::error::Hint::RefreshCatalog
            );
            let cat = if overlay_given {
                let overlay = files.split_off(with_layer_only);
                let mut files = embedded_files();
                files.extend(overlay);
                load::load_files(&files).map_err(catalog_error)?
            } else {
                base
            };
            Ok((cat, vec![note]))
        }
    }
}

fn mark_refreshed(cat: &mut Catalog, stored: &layer::Layer) {
    for (id, prov) in &stored.providers {
        if cat.provider(id).is_some() {
            cat.refreshed.insert(id.clone(), prov.refreshed_at.clone());
        }
    }
}

/// sha256 of the embedded catalog (what a refreshed layer is validated against).
pub fn embedded_digest() -> String {
    layer::digest(DIGESTED)
}

/// The embedded catalog, from the build's pre-digested JSON.
pub fn embedded() -> anyhow::Result<Catalog> {
    Ok(serde_json::from_str(DIGESTED)?)
}

/// The embedded catalog's TOML files, in a stable order.
pub fn embedded_files() -> Vec<SourceFile> {
    let mut out = Vec::new();
    collect_embedded(&EMBEDDED, &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn collect_embedded(dir: &Dir<'static>, out: &mut Vec<SourceFile>) {
    for f in dir.files() {
        if f.path().extension().is_some_and(|e| e == "toml") {
            let rel = f.path();
            out.push(SourceFile {
                path: format!("catalog/{}", rel.display()),
                text: f.contents_utf8().unwrap_or_default().to_string(),
                folder: folder_of(rel),
                layer: 0,
            });
        }
    }
    for d in dir.dirs() {
        collect_embedded(d, out);
    }
}

/// The provider folder of a path relative to a catalog root (`aws/api.toml` → `aws`).
pub fn folder_of(rel: &Path) -> Option<String> {
    let mut comps = rel.components();
    let first = comps.next()?;
    comps.next()?;
    Some(first.as_os_str().to_string_lossy().into_owned())
}

/// Every `*.toml` under a directory, as layer `layer`.
pub fn dir_files(dir: &Path, layer: u8) -> anyhow::Result<Vec<SourceFile>> {
    read_files(dir, &overlay_paths(dir)?, layer)
}

/// Every `*.toml` under an overlay directory, which must exist.
fn overlay_paths(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Err(bad_input(format!(
            "catalog directory {} does not exist — pass a directory of .toml files to --catalog",
            dir.display()
        )));
    }
    walk(dir)
}

/// The files at `paths` under `dir`, as layer `layer`.
fn read_files(dir: &Path, paths: &[PathBuf], layer: u8) -> anyhow::Result<Vec<SourceFile>> {
    let mut out = Vec::new();
    for p in paths {
        let text =
            crate::input_file::read_text(p, "catalog file", crate::input_file::MAX_CATALOG_FILE)?;
        let rel = p.strip_prefix(dir).unwrap_or(p);
        out.push(SourceFile {
            path: p.display().to_string(),
            text,
            folder: folder_of(rel),
            layer,
        });
    }
    Ok(out)
}

/// Every `*.toml` under `dir`, sorted. Symbolic links are followed, but a link back to a
/// directory being walked is an error, and a directory reached twice is walked once.
fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut seen = std::collections::HashSet::new();
    let mut paths = Vec::new();
    let mut it = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .max_depth(32)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = it.next() {
        let entry = entry.map_err(|e| {
            let at = e
                .path()
                .map_or_else(|| dir.display().to_string(), |p| p.display().to_string());
            if let Some(ancestor) = e.loop_ancestor() {
                bad_input(format!(
                    "catalog directory {} has a symbolic link loop: {at} leads back to {} — remove the link",
                    dir.display(),
                    ancestor.display()
                ))
            } else {
                bad_input(format!("cannot read catalog directory {at}: {e}"))
            }
        })?;
        if entry.file_type().is_dir() {
            let canon = std::fs::canonicalize(entry.path()).map_err(|e| {
                bad_input(format!(
                    "cannot read catalog directory {}: {e}",
                    entry.path().display()
                ))
            })?;
            if !seen.insert(canon) {
                it.skip_current_dir();
            }
        } else if entry.path().extension().is_some_and(|e| e == "toml") {
            paths.push(entry.into_path());
        }
    }
    paths.sort();
    Ok(paths)
}

/// Catalog diagnostics are bad input (exit 2).
pub fn catalog_error(d: Diagnostics) -> anyhow::Error {
    crate::error::catalog_error(d.to_string())
}

/// Load `dir` over the embedded catalog without using it (for `catalog validate`).
pub fn validate_dir(dir: &Path) -> anyhow::Result<Catalog> {
    load(Some(dir))
}

/// Write a catalog out as TOML files that load and validate to the same catalog.
pub fn export(catalog: &Catalog, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    use schema::FileDoc;
    let mut written = Vec::new();
    // Written a provider at a time: only one provider's templates are copied at once.
    let mut write = |docs: Vec<(PathBuf, FileDoc)>| -> anyhow::Result<()> {
        for (rel, doc) in docs {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let body = toml::to_string(&doc)?;
            std::fs::write(
                &path,
                format!("# Exported by `capsule openmesh catalog export`.\n{body}"),
            )?;
            written.push(path);
        }
        Ok(())
    };
    for p in &catalog.providers {
        let id = &p.meta.id;
        let folder = PathBuf::from(id);
        let provider = FileDoc {
            provider: Some(p.meta.clone()),
            regions: p.regions.clone(),
            credentials: p.credentials.clone(),
            ..Default::default()
        };
        let templates = FileDoc {
            templates: catalog
                .templates
                .iter()
                .filter(|t| &t.provider == id)
                .cloned()
                .collect(),
            ..Default::default()
        };
        let api = FileDoc {
            api: Some(p.api.clone()),
            ..Default::default()
        };
        write(vec![
            (folder.join("provider.toml"), provider),
            (folder.join("templates.toml"), templates),
            (folder.join("api.toml"), api),
        ])?;
    }
    let rates = FileDoc {
        rates: catalog.rates.clone(),
        ..Default::default()
    };
    let bootstrap = FileDoc {
        bootstrap: Some(catalog.bootstrap.clone()),
        ..Default::default()
    };
    write(vec![
        (PathBuf::from("rates.toml"), rates),
        (PathBuf::from("bootstrap.toml"), bootstrap),
    ])?;
    Ok(written)
}
