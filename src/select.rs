//! Filtering and ranking of templates and offers (template × region). Pure: no I/O.
//!
//! An offer's price is the regional price where the provider declares one, converted to USD
//! with the catalog's dated rate; ranking is by USD hourly price, ties broken by monthly price,
//! then provider id, then template id, then region.

use crate::catalog::schema::{Arch, Region, Template};
use crate::catalog::{Catalog, ProviderEntry};

/// What a user asks for. Empty fields constrain nothing.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub providers: Vec<String>,
    pub exclude_providers: Vec<String>,
    pub region: Option<String>,
    pub continent: Option<crate::catalog::schema::Continent>,
    pub country: Option<String>,
    pub min_cpu: Option<u32>,
    pub min_memory: Option<f64>,
    pub min_storage: Option<f64>,
    /// Require a GPU; with a model substring and a minimum count.
    pub gpu: Option<GpuWant>,
    pub max_hourly_usd: Option<f64>,
    pub max_monthly_usd: Option<f64>,
    pub arch: Option<Arch>,
    /// Only templates an xNode can be installed on (`deploy --xnode`).
    pub xnode: Option<XnodeNeeds>,
}

/// What a template needs to become an xNode (from the catalog's `[bootstrap.xnode]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct XnodeNeeds {
    /// Architectures with an installer.
    pub arch: Vec<Arch>,
    pub min_memory_gb: f64,
}

impl XnodeNeeds {
    /// The first need a template fails.
    pub fn check(&self, t: &Template) -> Option<Reject> {
        if !self.arch.is_empty() && !t.arch.is_some_and(|a| self.arch.contains(&a)) {
            return Some(Reject::XnodeArch);
        }
        if t.memory_gb + 1e-9 < self.min_memory_gb {
            return Some(Reject::XnodeMemory);
        }
        None
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GpuWant {
    /// Lower-case model substring with spaces and dashes removed (`rtx4090`, `h100`); empty = any.
    pub model: String,
    pub count: u32,
}

impl GpuWant {
    /// `""` (any), `h100`, `rtx4090:2`, `:2`.
    pub fn parse(text: &str) -> Result<GpuWant, String> {
        let (model, count) = match text.rsplit_once(':') {
            Some((m, c)) => {
                let n: u32 = c.trim().parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("GPU count '{c}' in --gpu {text} is not a positive number")
                })?;
                (m, n)
            }
            None => (text, 1),
        };
        Ok(GpuWant {
            model: squash(model),
            count,
        })
    }

    pub fn matches(&self, t: &Template) -> bool {
        match &t.gpu {
            Some(g) => {
                g.count >= self.count
                    && (self.model.is_empty() || squash(&g.model).contains(&self.model))
            }
            None => false,
        }
    }
}

/// Lower-case, without spaces, dashes or underscores: `NVIDIA RTX 4090` → `nvidiartx4090`.
pub fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// One template in one region, priced.
#[derive(Debug, Clone)]
pub struct Offer<'a> {
    pub provider: &'a ProviderEntry,
    pub template: &'a Template,
    pub region: &'a Region,
    pub hourly: f64,
    pub monthly: f64,
    pub hourly_usd: f64,
    pub monthly_usd: f64,
}

/// The constraint that rejected an offer, in the order they are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reject {
    Provider,
    Region,
    /// `--xnode`: no installer for the template's architecture.
    XnodeArch,
    /// `--xnode`: less memory than the installer needs.
    XnodeMemory,
    Arch,
    Cpu,
    Memory,
    Storage,
    Gpu,
    Budget,
    Monthly,
}

impl Reject {
    pub fn describe(self) -> &'static str {
        match self {
            Reject::Provider => "provider",
            Reject::Region => "region / continent / country",
            Reject::XnodeArch => "--xnode (no XnodeOS installer for the architecture)",
            Reject::XnodeMemory => "--xnode (less memory than XnodeOS needs)",
            Reject::Arch => "architecture",
            Reject::Cpu => "--min-cpu",
            Reject::Memory => "--min-memory",
            Reject::Storage => "--min-storage",
            Reject::Gpu => "--gpu",
            Reject::Budget => "--budget (USD/h)",
            Reject::Monthly => "--max-monthly",
        }
    }
}

/// Every template × region offer of the catalog, priced in USD.
pub fn all_offers(catalog: &Catalog) -> Vec<Offer<'_>> {
    offers_where(catalog, |_| true)
}

/// The offers of the templates `keep` accepts.
pub fn offers_where<'a>(catalog: &'a Catalog, keep: impl Fn(&Template) -> bool) -> Vec<Offer<'a>> {
    offers_of(catalog, catalog.templates.iter().filter(|t| keep(t)))
}

/// The offers of `templates` (the catalog's, or some of them), in their order, each template's
/// in the order of its regions.
pub fn offers_of<'a>(
    catalog: &'a Catalog,
    templates: impl IntoIterator<Item = &'a Template>,
) -> Vec<Offer<'a>> {
    let mut out = Vec::new();
    let mut provider: Option<&ProviderEntry> = None;
    for t in templates {
        // Templates are grouped by provider: look it up once per group.
        let p = match provider {
            Some(p) if p.meta.id == t.provider => p,
            _ => match catalog.provider(&t.provider) {
                Some(p) => {
                    provider = Some(p);
                    p
                }
                None => continue,
            },
        };
        let rate = catalog.usd_rate(p.currency()).unwrap_or(1.0);
        for slug in &t.regions {
            let Some(region) = p.region(slug) else {
                continue;
            };
            let hourly = t.hourly_in(slug);
            let monthly = t.monthly_in(slug);
            out.push(Offer {
                provider: p,
                template: t,
                region,
                hourly,
                monthly,
                hourly_usd: hourly * rate,
                monthly_usd: monthly * rate,
            });
        }
    }
    out
}

impl Query {
    /// Whether a template can fit at all, before regions and prices are looked at.
    pub fn template_may_fit(&self, t: &Template) -> bool {
        (self.providers.is_empty()
            || self
                .providers
                .iter()
                .any(|p| p.eq_ignore_ascii_case(&t.provider)))
            && !self
                .exclude_providers
                .iter()
                .any(|p| p.eq_ignore_ascii_case(&t.provider))
            && self.arch.is_none_or(|a| t.arch == Some(a))
            && self.min_cpu.is_none_or(|n| t.cpu >= n)
            && self.min_memory.is_none_or(|m| t.memory_gb + 1e-9 >= m)
            && self.min_storage.is_none_or(|s| t.storage_gb + 1e-9 >= s)
            && self.gpu.as_ref().is_none_or(|g| g.matches(t))
            && self.xnode.as_ref().is_none_or(|x| x.check(t).is_none())
    }

    /// The first constraint an offer fails, or `None` when it fits.
    pub fn check(&self, o: &Offer<'_>) -> Option<Reject> {
        let pid = o.provider.id();
        if (!self.providers.is_empty()
            && !self.providers.iter().any(|p| p.eq_ignore_ascii_case(pid)))
            || self
                .exclude_providers
                .iter()
                .any(|p| p.eq_ignore_ascii_case(pid))
        {
            return Some(Reject::Provider);
        }
        if let Some(r) = &self.region {
            let matches =
                o.region.id.eq_ignore_ascii_case(r) || o.region.api_id.eq_ignore_ascii_case(r);
            if !matches {
                return Some(Reject::Region);
            }
        }
        if self
            .continent
            .is_some_and(|c| o.region.continent != Some(c))
            || self
                .country
                .as_ref()
                .is_some_and(|c| !o.region.country.eq_ignore_ascii_case(c))
        {
            return Some(Reject::Region);
        }
        let t = o.template;
        if let Some(r) = self.xnode.as_ref().and_then(|x| x.check(t)) {
            return Some(r);
        }
        if self.arch.is_some_and(|a| t.arch != Some(a)) {
            return Some(Reject::Arch);
        }
        if self.min_cpu.is_some_and(|n| t.cpu < n) {
            return Some(Reject::Cpu);
        }
        if self.min_memory.is_some_and(|m| t.memory_gb + 1e-9 < m) {
            return Some(Reject::Memory);
        }
        if self.min_storage.is_some_and(|s| t.storage_gb + 1e-9 < s) {
            return Some(Reject::Storage);
        }
        if self.gpu.as_ref().is_some_and(|g| !g.matches(t)) {
            return Some(Reject::Gpu);
        }
        if self
            .max_hourly_usd
            .is_some_and(|b| o.hourly_usd > b + 1e-12)
        {
            return Some(Reject::Budget);
        }
        if self
            .max_monthly_usd
            .is_some_and(|b| o.monthly_usd > b + 1e-9)
        {
            return Some(Reject::Monthly);
        }
        None
    }
}

/// The deterministic offer order: USD hourly, USD monthly, provider, template, region.
pub fn rank(offers: &mut [Offer<'_>]) {
    offers.sort_by(rank_order);
}

/// The order of [`rank`] for two offers.
pub fn rank_order(a: &Offer<'_>, b: &Offer<'_>) -> std::cmp::Ordering {
    a.hourly_usd
        .total_cmp(&b.hourly_usd)
        .then(a.monthly_usd.total_cmp(&b.monthly_usd))
        .then_with(|| a.provider.id().cmp(b.provider.id()))
        .then_with(|| a.template.id.cmp(&b.template.id))
        .then_with(|| a.region.id.cmp(&b.region.id))
}

/// Feasible offers, ranked, and how many offers each constraint rejected.
pub fn plan<'a>(catalog: &'a Catalog, q: &Query) -> (Vec<Offer<'a>>, Vec<(Reject, usize)>) {
    let mut fits = Vec::new();
    let mut rejected: std::collections::BTreeMap<Reject, usize> = Default::default();
    for o in all_offers(catalog) {
        match q.check(&o) {
            None => fits.push(o),
            Some(r) => *rejected.entry(r).or_default() += 1,
        }
    }
    rank(&mut fits);
    (fits, rejected.into_iter().collect())
}
