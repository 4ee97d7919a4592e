//! Dynamic shell completion: the candidates clap_complete asks for while the user types
//! (`COMPLETE=bash capsule -- …`). Template ids, provider ids and region slugs come from the
//! effective catalog (embedded, or `CAPSULE_CATALOG` over it); node names from the state store.
//! A failure yields no candidates: completion never prints an error into a prompt.

use clap_complete::engine::CompletionCandidate;

fn catalog() -> Option<crate::catalog::Catalog> {
    let overlay = std::env::var_os("CAPSULE_CATALOG").filter(|v| !v.is_empty());
    crate::catalog::load(overlay.as_deref().map(std::path::Path::new)).ok()
}

/// Every template id, with its name as help.
pub fn template_ids() -> Vec<CompletionCandidate> {
    let Some(cat) = catalog() else {
        return Vec::new();
    };
    cat.templates
        .iter()
        .map(|t| CompletionCandidate::new(&t.id).help(Some(t.name.clone().into())))
        .collect()
}

/// Every provider id, with its name as help.
pub fn provider_ids() -> Vec<CompletionCandidate> {
    let Some(cat) = catalog() else {
        return Vec::new();
    };
    cat.providers
        .iter()
        .map(|p| CompletionCandidate::new(p.id()).help(Some(p.meta.name.clone().into())))
        .collect()
}

/// Every region slug, with its provider and city as help.
pub fn region_ids() -> Vec<CompletionCandidate> {
    let Some(cat) = catalog() else {
        return Vec::new();
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for p in &cat.providers {
        for r in &p.regions {
            if seen.insert(r.id.clone()) {
                out.push(
                    CompletionCandidate::new(&r.id)
                        .help(Some(format!("{} {}", p.id(), r.city).into())),
                );
            }
        }
    }
    out
}

/// The names of the live nodes in the local record.
pub fn node_names() -> Vec<CompletionCandidate> {
    let home = crate::context::home_dir();
    if !home.join(crate::state::DB_FILE).exists() {
        return Vec::new();
    }
    let Ok(store) = crate::state::open(&home) else {
        return Vec::new();
    };
    store
        .list_nodes(&crate::state::NodeFilter::default())
        .map(|nodes| {
            nodes
                .into_iter()
                .map(|n| {
                    CompletionCandidate::new(&n.name)
                        .help(Some(format!("{} {}", n.provider, n.status.as_str()).into()))
                })
                .collect()
        })
        .unwrap_or_default()
}
