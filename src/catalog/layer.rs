//! The refreshed catalog layer: what `catalog refresh` learnt from the providers' price lists,
//! kept in `$CAPSULE_HOME/catalog/layer.json` and used by every command by default.
//!
//! Layers, lowest first: the embedded catalog, this layer, then `--catalog DIR`.
//!
//! The file is pre-digested JSON: the refreshed templates as complete, validated objects and,
//! per provider, when and from where its prices came. A plain start-up deserializes it and
//! replaces the embedded templates with the same id (no TOML is parsed). The layer remembers a
//! digest of the embedded catalog it was validated against; when the binary's catalog changed
//! since, or an overlay is given, the layer goes through the TOML merge and validation instead
//! (as small patches: prices, regions), so it can never bypass validation.
//!
//! Writes are atomic: a temporary file in the same directory, synced, then renamed over the old
//! one. Nothing else in the directory is touched.

use super::diagnostic::SourceFile;
use super::schema::Template;
use super::Catalog;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Format version of `layer.json`; another version is ignored with a notice.
pub const VERSION: u32 = 1;

/// The refreshed layer as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Layer {
    pub version: u32,
    /// sha256 of the embedded catalog this layer was validated against.
    pub embedded_digest: String,
    /// Provider id → where and when its prices came from.
    pub providers: BTreeMap<String, Provenance>,
    /// Refreshed templates, complete (a template of the embedded catalog with its live price,
    /// regions and availability, or a plan the embedded catalog does not have).
    pub templates: Vec<Template>,
}

/// Where one provider's prices came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// RFC 3339 time of the refresh.
    pub refreshed_at: String,
    /// `YYYY-MM-DD` (the day of the refresh).
    pub prices_as_of: String,
    /// The requests the prices came from (`GET https://api.…/v2/sizes`).
    pub source: String,
}

/// `$CAPSULE_HOME/catalog`.
pub fn dir(home: &Path) -> PathBuf {
    home.join("catalog")
}

/// `$CAPSULE_HOME/catalog/layer.json`.
pub fn path(home: &Path) -> PathBuf {
    dir(home).join("layer.json")
}

/// Hex sha256 of a text (the embedded catalog's JSON).
pub fn digest(text: &str) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(text.as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// The stored layer: `Ok(None)` when there is none, `Err` with a sentence when it cannot be used.
pub fn read(home: &Path) -> Result<Option<Layer>, String> {
    let p = path(home);
    let bytes = match std::fs::read(&p) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", p.display())),
    };
    let layer: Layer = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not a catalog layer ({e})", p.display()))?;
    if layer.version != VERSION {
        return Err(format!(
            "{} has format version {}, this capsule reads {VERSION}",
            p.display(),
            layer.version
        ));
    }
    Ok(Some(layer))
}

/// Write the layer atomically ([`crate::atomic_file`]).
pub fn write(home: &Path, layer: &Layer) -> std::io::Result<()> {
    std::fs::create_dir_all(dir(home))?;
    crate::atomic_file::replace(&path(home), |f| {
        serde_json::to_writer(&mut *f, layer)?;
        f.write_all(b"\n")
    })
}

/// Apply a layer validated against this very embedded catalog: provenance onto the providers,
/// refreshed templates over the embedded ones. Templates of providers the catalog no longer
/// has are dropped.
pub fn apply(catalog: &mut Catalog, layer: &Layer) {
    for (id, prov) in &layer.providers {
        if let Some(p) = catalog.providers.iter_mut().find(|p| &p.meta.id == id) {
            p.meta.prices_as_of = prov.prices_as_of.clone();
            p.meta.prices_source = prov.source.clone();
            catalog
                .refreshed
                .insert(id.clone(), prov.refreshed_at.clone());
        }
    }
    let index: std::collections::HashMap<String, usize> = catalog
        .templates
        .iter()
        .enumerate()
        .map(|(i, t)| (t.id.clone(), i))
        .collect();
    for t in &layer.templates {
        if catalog.provider(&t.provider).is_none() {
            continue;
        }
        match index.get(&t.id) {
            Some(&i) => catalog.templates[i] = t.clone(),
            None => catalog.templates.push(t.clone()),
        }
    }
    sort_templates(&mut catalog.templates);
}

/// The catalog's template order: provider, hourly price, id.
pub fn sort_templates(ts: &mut [Template]) {
    ts.sort_by(|a, b| {
        a.provider
            .cmp(&b.provider)
            .then(a.price_hourly.total_cmp(&b.price_hourly))
            .then_with(|| a.id.cmp(&b.id))
    });
}

/// The layer as TOML source files (one per provider, layer number `layer`), for the merge with
/// an overlay or a changed embedded catalog: templates the base already has become patches of
/// their refreshed keys only; new ones are complete.
pub fn source_files(layer: &Layer, base: &Catalog, home: &Path, n: u8) -> Vec<SourceFile> {
    let known: std::collections::HashSet<String> = base
        .templates
        .iter()
        .map(|t| t.id.to_ascii_lowercase())
        .collect();
    let mut by_provider: BTreeMap<&str, Vec<toml::Table>> = BTreeMap::new();
    for t in &layer.templates {
        let table = match known.contains(&t.id.to_ascii_lowercase()) {
            true => patch_of(
                t,
                base.templates
                    .iter()
                    .find(|b| b.id.eq_ignore_ascii_case(&t.id)),
            ),
            false => match toml::Value::try_from(t) {
                Ok(toml::Value::Table(mut tab)) => {
                    tab.remove("provider");
                    tab
                }
                _ => continue,
            },
        };
        by_provider.entry(&t.provider).or_default().push(table);
    }
    let mut ids: Vec<&str> = layer.providers.keys().map(String::as_str).collect();
    for id in by_provider.keys() {
        if !ids.contains(id) {
            ids.push(id);
        }
    }
    let shown = path(home).display().to_string();
    ids.into_iter()
        .map(|id| {
            let mut doc = toml::Table::new();
            if let Some(prov) = layer.providers.get(id) {
                let mut meta = toml::Table::new();
                meta.insert("prices_as_of".into(), prov.prices_as_of.clone().into());
                meta.insert("prices_source".into(), prov.source.clone().into());
                doc.insert("provider".into(), meta.into());
            }
            if let Some(ts) = by_provider.remove(id) {
                doc.insert(
                    "templates".into(),
                    toml::Value::Array(ts.into_iter().map(toml::Value::Table).collect()),
                );
            }
            SourceFile {
                path: format!("{shown} ({id})"),
                text: toml::to_string(&doc).unwrap_or_default(),
                folder: Some(id.to_string()),
                layer: n,
            }
        })
        .collect()
}

/// The keys a refresh sets on an existing template. The merge adds a patch's regional prices to
/// the base's, so a regional price the base has and the refresh does not is set back to the
/// refreshed base price: the refresh found no difference there, and nothing stale survives.
fn patch_of(t: &Template, base: Option<&Template>) -> toml::Table {
    let mut tab = toml::Table::new();
    tab.insert("id".into(), t.id.clone().into());
    tab.insert("price_hourly".into(), t.price_hourly.into());
    tab.insert("price_monthly".into(), t.price_monthly.into());
    tab.insert(
        "regions".into(),
        toml::Value::Array(t.regions.iter().cloned().map(toml::Value::from).collect()),
    );
    let stale = base
        .into_iter()
        .flat_map(|b| b.region_prices.keys())
        .filter(|k| !t.region_prices.contains_key(*k))
        .map(|k| (k.clone(), toml::Value::from(t.price_hourly)));
    let rp: toml::Table = t
        .region_prices
        .iter()
        .map(|(k, v)| (k.clone(), toml::Value::from(*v)))
        .chain(stale)
        .collect();
    if !rp.is_empty() {
        tab.insert("region_prices".into(), rp.into());
    }
    tab
}
