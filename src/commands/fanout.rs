//! The bounded fan-out for commands that call many nodes at once: at most K jobs in flight, a
//! progress bar on a terminal, and every item's result returned in input order (never a bare
//! `join_all`, never an unbounded spawn).

use crate::cli::OutputFormat;
use crate::context::Ctx;
use indicatif::{ProgressBar, ProgressStyle};
use std::future::Future;
use std::sync::Arc;

/// A progress bar for `len` items, only on a terminal, for table output and more than one item.
pub fn progress(ctx: &Ctx, len: usize, noun: &str) -> Option<ProgressBar> {
    if !(ctx.interactive && ctx.format() == OutputFormat::Table && len > 1) {
        return None;
    }
    let b = ProgressBar::new(len as u64);
    b.set_style(
        ProgressStyle::with_template(&format!("{{spinner}} {{pos}}/{{len}} {noun} {{wide_msg}}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Some(b)
}

/// Run `job` on every item, at most `parallel` at once; results come back in input order.
pub async fn run<I, R, F, Fut>(
    items: Vec<I>,
    parallel: usize,
    bar: Option<&ProgressBar>,
    job: F,
) -> Vec<R>
where
    I: Send + 'static,
    R: Send + 'static,
    F: Fn(I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    let sem = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let job = Arc::new(job);
    let mut set = tokio::task::JoinSet::new();
    let n = items.len();
    for (i, item) in items.into_iter().enumerate() {
        // The permit is taken before the spawn, so jobs start in input order (spawned tasks
        // would race for permits in whatever order the scheduler polls them). The semaphore is
        // never closed, so acquiring cannot fail.
        let permit = sem.clone().acquire_owned().await;
        let job = job.clone();
        set.spawn(async move {
            let _permit = permit;
            (i, job(item).await)
        });
    }
    let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((i, r)) => {
                out[i] = Some(r);
                if let Some(b) = bar {
                    b.inc(1);
                }
            }
            // A job that panicked is a bug: surface it as one.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_keep_input_order_and_the_bound_holds() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let live = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let (l, p) = (live.clone(), peak.clone());
        let out = rt.block_on(super::run((0..20).collect(), 3, None, move |i: u32| {
            let (l, p) = (l.clone(), p.clone());
            async move {
                let now = l.fetch_add(1, Ordering::SeqCst) + 1;
                p.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                l.fetch_sub(1, Ordering::SeqCst);
                i * 2
            }
        }));
        assert_eq!(out, (0..20).map(|i| i * 2).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 3);
    }
}
