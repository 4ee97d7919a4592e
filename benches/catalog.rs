//! Catalog benchmarks: load + validate + filter + rank a generated `--catalog` overlay of 1k,
//! 10k and 100k templates (the generator is `capsule openmesh catalog generate`, built with the
//! `dev` feature), the same overlays read back from the content-keyed cache and listed as
//! `templates --min-cpu 4 --min-memory 8 --limit 5` does (through the entry's index), and the
//! embedded catalog's start-up path (pre-digested JSON). The first load of each overlay, with an
//! empty cache (merge, validate, cache write, list), is measured on its own.
//!
//! Run: `cargo bench --bench catalog`.

use capsule::catalog;
use capsule::cli::{MinSize, SortKey, TemplateFilter};
use capsule::commands::catalog::{generate, listed_in, matching_templates};
use capsule::select::Query;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn load_filter_rank(dir: &std::path::Path) -> usize {
    let cat = catalog::load(Some(dir)).expect("generated catalog loads");
    let q = Query {
        min_cpu: Some(4),
        min_memory: Some(8.0),
        ..Query::default()
    };
    matching_templates(&cat, &q, SortKey::Price).len()
}

/// `templates --min-cpu 4 --min-memory 8 --limit 5`.
fn listing_filter() -> TemplateFilter {
    TemplateFilter {
        size: MinSize {
            min_cpu: Some(4),
            min_memory: Some(8.0),
            min_storage: None,
        },
        limit: Some(5),
        ..TemplateFilter::default()
    }
}

fn bench(c: &mut Criterion) {
    let embedded = catalog::embedded().expect("embedded catalog");
    c.bench_function("embedded catalog (pre-digested JSON)", |b| {
        b.iter(|| catalog::embedded().unwrap().templates.len())
    });
    let dirs: Vec<(usize, tempfile::TempDir)> = [1_000usize, 10_000, 100_000]
        .into_iter()
        .map(|n| {
            let dir = tempfile::tempdir().unwrap();
            generate(&embedded, dir.path(), n).unwrap();
            (n, dir)
        })
        .collect();
    let mut group = c.benchmark_group("overlay load+validate+filter+rank");
    group.sample_size(10);
    for (n, dir) in &dirs {
        group.bench_with_input(BenchmarkId::from_parameter(n), dir, |b, dir| {
            b.iter(|| load_filter_rank(dir.path()))
        });
    }
    group.finish();
    // What a command pays the first time it sees an overlay: merge, validate, write the cache
    // entry (index rows, encoded templates), list. Each iteration starts with an empty cache.
    let mut group = c.benchmark_group("overlay first load, empty cache: load+cache write+list");
    group.sample_size(10);
    let first_filter = listing_filter();
    for (n, dir) in &dirs {
        group.bench_with_input(BenchmarkId::from_parameter(n), dir, |b, dir| {
            b.iter_batched(
                || tempfile::tempdir().unwrap(),
                |home| {
                    let (cat, _) =
                        catalog::load_layered(home.path(), Some(dir.path()), true).unwrap();
                    let found = listed_in(&cat, &first_filter).unwrap().0.len();
                    assert!(
                        catalog::cache::dir(home.path()).is_dir(),
                        "the entry is written"
                    );
                    (found, home)
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    group.finish();
    let mut group = c.benchmark_group("overlay from the cache: read+list (limit 5)");
    let filter = listing_filter();
    for (n, dir) in &dirs {
        let home = tempfile::tempdir().unwrap();
        // The first load writes the entry; every one measured reads it.
        catalog::load_layered(home.path(), Some(dir.path()), true).unwrap();
        group.bench_with_input(BenchmarkId::from_parameter(n), dir, |b, dir| {
            b.iter(|| {
                let (cat, _) = catalog::load_layered(home.path(), Some(dir.path()), true).unwrap();
                let found = listed_in(&cat, &filter).unwrap().0.len();
                assert!(!cat.templates.is_decoded());
                found
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
