//! The query index of a cached catalog: what lets `templates` answer from a cache entry of
//! 100k templates while decoding only the few it needs.
//!
//! A cache entry (`cache.rs`) holds, besides the catalog without its templates:
//! - **rows**: one fixed-size record per template with the numbers a query filters on
//!   (provider, cpu, memory, storage, GPU count, architecture) and lower bounds of its offers'
//!   USD prices, sorted by the hourly lower bound;
//! - **offsets**: where each template's MessagePack bytes start, in catalog order;
//! - **data**: the templates, each encoded on its own, in catalog order.
//!
//! Every figure in a row is computed when the entry is written, from the same catalog and with
//! the same code a query runs ([`select::offers_of`]), so a row is exact about its template:
//! a row that fails [`Prefilter::may_match`] has no offer the query accepts. The query path
//! (`commands::catalog`) uses the rows only to choose which templates to decode and when to
//! stop; the decoded templates go through the ordinary filter and rank code.

use super::model::{Catalog, TemplateSource};
use super::schema::{Arch, Template};
use crate::select::{self, Query};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Bytes of one row.
pub const ROW: usize = 56;
/// A row's provider when the template's provider is not in the catalog.
const NO_PROVIDER: u32 = u32::MAX;

/// What a query may filter on, for one template.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    /// The template's position in catalog order.
    pub pos: u32,
    /// Its provider's position in `Catalog::providers`.
    pub provider: u32,
    pub cpu: u32,
    /// 0 without a GPU.
    pub gpu_count: u32,
    pub arch: Option<Arch>,
    /// It has at least one offer (a region of its provider that resolves).
    pub offers: bool,
    pub memory_gb: f64,
    pub storage_gb: f64,
    /// No offer of the template is cheaper (USD per hour; minus infinity when a price is not a
    /// number, so that it bounds nothing).
    pub min_hourly_usd: f64,
    /// The same for the USD monthly price.
    pub min_monthly_usd: f64,
}

fn arch_code(a: Option<Arch>) -> u8 {
    match a {
        None => 0,
        Some(Arch::X86_64) => 1,
        Some(Arch::Arm64) => 2,
    }
}

fn arch_of(code: u8) -> Option<Option<Arch>> {
    match code {
        0 => Some(None),
        1 => Some(Some(Arch::X86_64)),
        2 => Some(Some(Arch::Arm64)),
        _ => None,
    }
}

impl Row {
    /// The row of template `pos` of `catalog`.
    pub fn of(catalog: &Catalog, pos: usize, t: &Template) -> Row {
        let provider = catalog
            .providers
            .iter()
            .position(|p| p.meta.id.eq_ignore_ascii_case(&t.provider))
            .map_or(NO_PROVIDER, |i| i as u32);
        let offers = select::offers_of(catalog, [t]);
        let lower = |f: fn(&select::Offer) -> f64| {
            offers.iter().map(f).fold(f64::INFINITY, |lo, x| {
                if x.is_nan() {
                    f64::NEG_INFINITY
                } else {
                    lo.min(x)
                }
            })
        };
        Row {
            pos: pos as u32,
            provider,
            cpu: t.cpu,
            gpu_count: t.gpu.as_ref().map_or(0, |g| g.count),
            arch: t.arch,
            offers: !offers.is_empty(),
            memory_gb: t.memory_gb,
            storage_gb: t.storage_gb,
            min_hourly_usd: lower(|o| o.hourly_usd),
            min_monthly_usd: lower(|o| o.monthly_usd),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.pos.to_le_bytes());
        out.extend_from_slice(&self.provider.to_le_bytes());
        out.extend_from_slice(&self.cpu.to_le_bytes());
        out.extend_from_slice(&self.gpu_count.to_le_bytes());
        out.push(arch_code(self.arch));
        out.push(u8::from(self.offers));
        out.extend_from_slice(&[0; 6]);
        for x in [
            self.memory_gb,
            self.storage_gb,
            self.min_hourly_usd,
            self.min_monthly_usd,
        ] {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }

    fn read(b: &[u8]) -> Option<Row> {
        let u32_at = |i: usize| Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?));
        let f64_at = |i: usize| Some(f64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?));
        Some(Row {
            pos: u32_at(0)?,
            provider: u32_at(4)?,
            cpu: u32_at(8)?,
            gpu_count: u32_at(12)?,
            arch: arch_of(*b.get(16)?)?,
            offers: *b.get(17)? != 0,
            memory_gb: f64_at(24)?,
            storage_gb: f64_at(32)?,
            min_hourly_usd: f64_at(40)?,
            min_monthly_usd: f64_at(48)?,
        })
    }
}

/// The rows of every template, encoded: first the templates of retired providers, then the
/// others, each group cheapest lower bound first (ties in catalog order).
pub fn encode_rows(catalog: &Catalog) -> Option<Vec<u8>> {
    let templates: &[Template] = &catalog.templates;
    let runs: Vec<(usize, &[Template])> = templates
        .chunks(super::cache::RUN)
        .enumerate()
        .map(|(n, run)| (n * super::cache::RUN, run))
        .collect();
    let mut rows: Vec<Row> = super::cores::on_cores(&runs, |(first, run)| {
        run.iter()
            .enumerate()
            .map(|(i, t)| Row::of(catalog, first + i, t))
            .collect::<Vec<_>>()
    })
    .ok()?
    .concat();
    let retired = |r: &Row| {
        catalog
            .providers
            .get(r.provider as usize)
            .is_some_and(|p| p.is_retired())
    };
    rows.sort_by(|a, b| {
        retired(b)
            .cmp(&retired(a))
            .then(a.min_hourly_usd.total_cmp(&b.min_hourly_usd))
            .then(a.pos.cmp(&b.pos))
    });
    let mut out = Vec::with_capacity(rows.len() * ROW);
    for r in &rows {
        r.write(&mut out);
    }
    Some(out)
}

/// One template decoded alone: `None` inside when it could not be.
type Slot = OnceLock<Option<Box<Template>>>;

/// The templates of a cache entry, decoded on demand: each one alone for a query, or all of
/// them for everything else. The entry's bytes were checked (length, checksum) before this is
/// made.
pub struct Indexed {
    /// The whole entry (a mapped file).
    bytes: Box<dyn super::cache::Bytes>,
    rows: Range<usize>,
    offsets: Range<usize>,
    data: Range<usize>,
    count: usize,
    /// The entry's file, named when it cannot be decoded.
    path: PathBuf,
    /// Templates decoded one at a time, by catalog position.
    one: OnceLock<Box<[Slot]>>,
    /// How many were.
    decoded: std::sync::atomic::AtomicUsize,
}

impl Indexed {
    /// The index over `bytes`, whose ranges `rows`, `offsets` and `data` are the entry's
    /// parts; `None` when their sizes do not agree.
    pub(crate) fn new(
        bytes: Box<dyn super::cache::Bytes>,
        rows: Range<usize>,
        offsets: Range<usize>,
        data: Range<usize>,
        path: PathBuf,
    ) -> Option<Indexed> {
        let count = rows.len() / ROW;
        let len = (*bytes).as_ref().len();
        let sound = rows.len().is_multiple_of(ROW)
            && offsets.len() == count * 8
            && rows.end <= len
            && offsets.end <= len
            && data.end <= len
            && u32::try_from(count).is_ok();
        sound.then_some(Indexed {
            bytes,
            rows,
            offsets,
            data,
            count,
            path,
            one: OnceLock::new(),
            decoded: Default::default(),
        })
    }

    fn all(&self) -> &[u8] {
        (*self.bytes).as_ref()
    }

    /// Number of templates.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Row `n` in lower-bound order.
    pub fn row(&self, n: usize) -> Option<Row> {
        let start = self.rows.start + n.checked_mul(ROW)?;
        if start + ROW > self.rows.end {
            return None;
        }
        Row::read(&self.all()[start..start + ROW])
    }

    /// The encoded bytes of template `pos`.
    fn bytes(&self, pos: usize) -> Option<&[u8]> {
        let offsets = &self.all()[self.offsets.clone()];
        let at = |i: usize| -> Option<usize> {
            let b = offsets.get(i * 8..i * 8 + 8)?;
            usize::try_from(u64::from_le_bytes(b.try_into().ok()?)).ok()
        };
        let start = at(pos)?;
        let end = if pos + 1 == self.count {
            self.data.len()
        } else {
            at(pos + 1)?
        };
        self.all()[self.data.clone()].get(start..end)
    }

    fn decode(&self, pos: usize) -> Option<Template> {
        rmp_serde::from_slice(self.bytes(pos)?).ok()
    }

    /// Template `pos` (catalog order), decoded once; `None` when it cannot be decoded.
    pub fn template(&self, pos: usize) -> Option<&Template> {
        let slots = self.one.get_or_init(|| {
            (0..self.count)
                .map(|_| OnceLock::new())
                .collect::<Vec<_>>()
                .into_boxed_slice()
        });
        slots
            .get(pos)?
            .get_or_init(|| {
                self.decoded
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.decode(pos).map(Box::new)
            })
            .as_deref()
    }

    /// How many templates [`Indexed::template`] has decoded.
    pub fn decoded(&self) -> usize {
        self.decoded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every template in catalog order, decoded on every core; `None` when one cannot be.
    fn try_decode_all(&self) -> Option<Vec<Template>> {
        let positions: Vec<usize> = (0..self.count).collect();
        let runs: Vec<&[usize]> = positions.chunks(super::cache::RUN).collect();
        let decoded = super::cores::on_cores(&runs, |run| {
            run.iter()
                .map(|&p| self.decode(p))
                .collect::<Option<Vec<Template>>>()
        })
        .ok()?;
        let mut all = Vec::with_capacity(self.count);
        for run in decoded {
            all.extend(run?);
        }
        Some(all)
    }
}

impl TemplateSource for Indexed {
    fn decode_all(&self) -> Vec<Template> {
        match self.try_decode_all() {
            Some(all) => all,
            None => {
                // The bytes passed their checksum, so only a bug gets here; the command cannot
                // go on without its catalog, and the next one rebuilds the entry.
                let _ = std::fs::remove_file(&self.path);
                crate::messages::error(format!(
                    "the catalog cache entry {} could not be decoded and was removed — run the command again",
                    self.path.display()
                ));
                std::process::exit(1);
            }
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// The index of a catalog's templates, while they are still those of a cache entry and not
/// decoded in full.
pub fn of(catalog: &Catalog) -> Option<&Indexed> {
    if catalog.templates.is_decoded() {
        return None;
    }
    catalog
        .templates
        .source()?
        .as_any()
        .downcast_ref::<Indexed>()
}

/// A query as the rows can test it: a row it refuses has no offer the query accepts
/// ([`Query::template_may_fit`] and [`Query::check`] refuse them all), so the refused
/// templates need not be decoded. What a row does not hold (regions, GPU model, xNode needs)
/// is not tested here.
pub struct Prefilter {
    /// By provider position: the query's provider list allows it.
    providers: Vec<bool>,
    arch: Option<Arch>,
    min_cpu: Option<u32>,
    min_memory: Option<f64>,
    min_storage: Option<f64>,
    gpu_count: Option<u32>,
    max_hourly_usd: Option<f64>,
    max_monthly_usd: Option<f64>,
}

impl Prefilter {
    pub fn new(catalog: &Catalog, q: &Query) -> Prefilter {
        let providers = catalog
            .providers
            .iter()
            .map(|p| {
                let id = p.id();
                (q.providers.is_empty() || q.providers.iter().any(|x| x.eq_ignore_ascii_case(id)))
                    && !q
                        .exclude_providers
                        .iter()
                        .any(|x| x.eq_ignore_ascii_case(id))
            })
            .collect();
        Prefilter {
            providers,
            arch: q.arch,
            min_cpu: q.min_cpu,
            min_memory: q.min_memory,
            min_storage: q.min_storage,
            gpu_count: q.gpu.as_ref().map(|g| g.count),
            max_hourly_usd: q.max_hourly_usd,
            max_monthly_usd: q.max_monthly_usd,
        }
    }

    /// Whether the row's template may have an offer the query accepts. The comparisons are
    /// those of [`Query::check`], on the same numbers (negated as written there, so that a
    /// bound that is not a number refuses nothing, as it refuses no offer there).
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    pub fn may_match(&self, r: &Row) -> bool {
        r.offers
            && self
                .providers
                .get(r.provider as usize)
                .copied()
                .unwrap_or(false)
            && self.arch.is_none_or(|a| r.arch == Some(a))
            && self.min_cpu.is_none_or(|n| r.cpu >= n)
            && self.min_memory.is_none_or(|m| r.memory_gb + 1e-9 >= m)
            && self.min_storage.is_none_or(|s| r.storage_gb + 1e-9 >= s)
            && self.gpu_count.is_none_or(|n| r.gpu_count >= n)
            && self
                .max_hourly_usd
                .is_none_or(|b| !(r.min_hourly_usd > b + 1e-12))
            && self
                .max_monthly_usd
                .is_none_or(|b| !(r.min_monthly_usd > b + 1e-9))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_round_trips() {
        let r = Row {
            pos: 7,
            provider: 2,
            cpu: 16,
            gpu_count: 4,
            arch: Some(Arch::Arm64),
            offers: true,
            memory_gb: 61.5,
            storage_gb: 0.25,
            min_hourly_usd: f64::NEG_INFINITY,
            min_monthly_usd: 3.125,
        };
        let mut b = Vec::new();
        r.write(&mut b);
        assert_eq!(b.len(), ROW);
        assert_eq!(Row::read(&b), Some(r));
        b[16] = 9; // no such architecture
        assert_eq!(Row::read(&b), None);
        assert_eq!(Row::read(&b[..ROW - 1]), None);
    }

    #[test]
    fn a_price_that_is_not_a_number_bounds_nothing() {
        let mut cat = crate::catalog::embedded().unwrap();
        let t = cat.templates[0].clone();
        let row = Row::of(&cat, 0, &t);
        assert!(row.offers);
        assert!(row.min_hourly_usd.is_finite());
        cat.templates[0].price_hourly = f64::NAN;
        cat.templates[0].region_prices.clear();
        let t = cat.templates[0].clone();
        let row = Row::of(&cat, 0, &t);
        assert_eq!(row.min_hourly_usd, f64::NEG_INFINITY);
    }
}
