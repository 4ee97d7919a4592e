//! The merged, validated catalog as the rest of the program sees it.
//!
//! Shared with `build.rs` (through `#[path]`), so: `std`, `serde` and the schema only.

use super::schema::{Api, Bootstrap, CredentialField, ProviderMeta, Rate, Region, Template};
use serde::{Deserialize, Serialize};

/// Everything capsule knows about providers, offline.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Catalog {
    /// Sorted by id.
    pub providers: Vec<ProviderEntry>,
    /// Sorted by provider, then hourly price, then id.
    pub templates: Vec<Template>,
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
            templates: Vec::new(),
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
        self.regions.iter().find(|r| {
            r.id.eq_ignore_ascii_case(slug)
                || (!r.api_id.is_empty() && r.api_id.eq_ignore_ascii_case(slug))
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
