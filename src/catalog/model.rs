//! The merged, validated catalog as the rest of the program sees it.
//!
//! Shared with `build.rs` (through `#[path]`), so: `std`, `serde` and the schema only.

use super::schema::{Api, Bootstrap, CredentialField, ProviderMeta, Rate, Region, Template};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};

/// Everything capsule knows about providers, offline.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Catalog {
    /// Sorted by id.
    pub providers: Vec<ProviderEntry>,
    /// Sorted by provider, then hourly price, then id. Held in memory, or (a catalog read from
    /// the cache) decoded in full on first use; see [`Templates`].
    pub templates: Templates,
    pub rates: Vec<Rate>,
    pub bootstrap: Bootstrap,
    /// Provider id → RFC 3339 time of the refresh its prices come from (the refreshed layer);
    /// absent = the prices are the embedded catalog's (or an overlay's).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub refreshed: std::collections::BTreeMap<String, String>,
}

/// One provider: its description, regions, credential fields and API.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProviderEntry {
    pub meta: ProviderMeta,
    pub regions: Vec<Region>,
    pub credentials: Vec<CredentialField>,
    pub api: Api,
}

impl Catalog {
    /// A copy of everything but the templates (which are left empty).
    pub fn clone_without_templates(&self) -> Catalog {
        // Destructured in full: a field added to `Catalog` must be decided on here.
        let Catalog {
            providers,
            templates: _,
            rates,
            bootstrap,
            refreshed,
        } = self;
        Catalog {
            providers: providers.clone(),
            templates: Templates::default(),
            rates: rates.clone(),
            bootstrap: bootstrap.clone(),
            refreshed: refreshed.clone(),
        }
    }

    pub fn provider(&self, id: &str) -> Option<&ProviderEntry> {
        self.providers
            .iter()
            .find(|p| p.meta.id.eq_ignore_ascii_case(id))
    }

    pub fn template(&self, id: &str) -> Option<&Template> {
        self.templates
            .iter()
            .find(|t| t.id.eq_ignore_ascii_case(id))
    }

    pub fn templates_of<'a>(
        &'a self,
        provider: &'a str,
    ) -> impl Iterator<Item = &'a Template> + 'a {
        self.templates
            .iter()
            .filter(move |t| t.provider == provider)
    }

    /// USD per unit of `currency` (1.0 for USD); `None` when no rate is known.
    pub fn usd_rate(&self, currency: &str) -> Option<f64> {
        if currency.eq_ignore_ascii_case("USD") {
            return Some(1.0);
        }
        self.rates
            .iter()
            .find(|r| r.currency.eq_ignore_ascii_case(currency))
            .map(|r| r.usd)
    }
}

impl ProviderEntry {
    pub fn id(&self) -> &str {
        &self.meta.id
    }

    pub fn region(&self, slug: &str) -> Option<&Region> {
        // A slug is nearly always written as declared: its exact match is looked for first (a
        // length check and a compare, where ignoring case goes byte by byte), and wins over a
        // region that only matches ignoring case.
        let same = |r: &&Region| r.id == slug || (!r.api_id.is_empty() && r.api_id == slug);
        self.regions.iter().find(same).or_else(|| {
            self.regions.iter().find(|r| {
                r.id.eq_ignore_ascii_case(slug)
                    || (!r.api_id.is_empty() && r.api_id.eq_ignore_ascii_case(slug))
            })
        })
    }

    /// The provider's own id for a region slug (the slug itself when none is declared).
    pub fn region_api_id<'a>(&'a self, slug: &'a str) -> &'a str {
        match self.region(slug) {
            Some(r) if !r.api_id.is_empty() => &r.api_id,
            Some(r) => &r.id,
            None => slug,
        }
    }

    /// The region slug for a provider-side region id (`fr-par-1` → `par1`).
    pub fn region_slug_for_api_id<'a>(&'a self, api_id: &'a str) -> &'a str {
        self.regions
            .iter()
            .find(|r| r.api_id.eq_ignore_ascii_case(api_id) || r.id.eq_ignore_ascii_case(api_id))
            .map_or(api_id, |r| r.id.as_str())
    }

    /// The region an account's non-secret credential fields name (the field marked
    /// `region = true`), when it is one of this provider's regions.
    pub fn account_region(
        &self,
        fields: &std::collections::BTreeMap<String, String>,
    ) -> Option<&str> {
        let field = self.credentials.iter().find(|f| f.region)?;
        let value = fields.get(&field.name)?;
        self.region(value.trim()).map(|r| r.id.as_str())
    }

    pub fn is_retired(&self) -> bool {
        self.meta.status.state == Some(super::schema::LifecycleState::Retired)
    }

    pub fn currency(&self) -> &str {
        &self.meta.currency
    }
}

impl Template {
    /// Hourly price in the provider's currency for a region (regional price when declared).
    pub fn hourly_in(&self, region: &str) -> f64 {
        self.region_prices
            .get(region)
            .copied()
            .unwrap_or(self.price_hourly)
    }

    /// Monthly price for a region: scaled by the regional hourly price when it differs.
    pub fn monthly_in(&self, region: &str) -> f64 {
        match self.region_prices.get(region) {
            Some(h) if self.price_hourly > 0.0 => self.price_monthly * h / self.price_hourly,
            _ => self.price_monthly,
        }
    }
}

/// A catalog's templates: a `Vec<Template>` to every reader (through `Deref`), which a catalog
/// read from the cache decodes in full only when something first reads it. Until then its
/// [`TemplateSource`] can answer a query by decoding only the templates the query needs (see
/// `catalog::index`). Serialized as the plain list.
#[derive(Clone, Default)]
pub struct Templates {
    all: OnceLock<Vec<Template>>,
    source: Option<Arc<dyn TemplateSource>>,
}

/// Where the templates of a [`Templates`] not yet decoded come from.
pub trait TemplateSource: Send + Sync {
    /// Every template, in catalog order.
    fn decode_all(&self) -> Vec<Template>;
    /// For a query path that knows the concrete source.
    fn as_any(&self) -> &dyn std::any::Any;
}

impl Templates {
    /// Templates decoded from `source` on first use.
    pub fn deferred(source: Arc<dyn TemplateSource>) -> Templates {
        Templates {
            all: OnceLock::new(),
            source: Some(source),
        }
    }

    /// The source the templates come from, while they are exactly its templates (a change
    /// through `DerefMut` forgets it).
    pub fn source(&self) -> Option<&dyn TemplateSource> {
        self.source.as_deref()
    }

    /// Whether the full list is in memory.
    pub fn is_decoded(&self) -> bool {
        self.all.get().is_some()
    }

    fn get(&self) -> &Vec<Template> {
        self.all.get_or_init(|| match &self.source {
            Some(s) => s.decode_all(),
            None => Vec::new(),
        })
    }
}

impl std::ops::Deref for Templates {
    type Target = Vec<Template>;
    fn deref(&self) -> &Vec<Template> {
        self.get()
    }
}

impl std::ops::DerefMut for Templates {
    fn deref_mut(&mut self) -> &mut Vec<Template> {
        let all = match self.all.take() {
            Some(all) => all,
            None => self
                .source
                .as_ref()
                .map_or_else(Vec::new, |s| s.decode_all()),
        };
        // Changed from here on: the source no longer describes them.
        self.source = None;
        self.all = OnceLock::from(all);
        match self.all.get_mut() {
            Some(all) => all,
            None => unreachable!("set on the line above"),
        }
    }
}

impl From<Vec<Template>> for Templates {
    fn from(all: Vec<Template>) -> Templates {
        Templates {
            all: OnceLock::from(all),
            source: None,
        }
    }
}

impl FromIterator<Template> for Templates {
    fn from_iter<I: IntoIterator<Item = Template>>(iter: I) -> Templates {
        Templates::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl<'a> IntoIterator for &'a Templates {
    type Item = &'a Template;
    type IntoIter = std::slice::Iter<'a, Template>;
    fn into_iter(self) -> Self::IntoIter {
        self.get().iter()
    }
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

impl Serialize for Templates {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Templates {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Templates, D::Error> {
        Vec::<Template>::deserialize(d).map(Templates::from)
    }
}
