//! Work shared out over the machine's cores, results in input order. Compiled into the binary
//! and into `build.rs` (through `#[path]`, like the loader and the checks that use it).

/// `work` on every item, the items shared out in contiguous parts over the available cores
/// (at most 8; this thread takes the first part, and does it all when there is one item),
/// results in input order. A worker that panics gives its panic back as the error, so no part's
/// result is ever silently left out: the caller resumes it or treats it as a failure.
pub fn on_cores<I: Sync, T: Send>(
    items: &[I],
    work: impl Fn(&I) -> T + Sync,
) -> std::thread::Result<Vec<T>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(items.len());
    if threads <= 1 {
        // The same contract on one core: a panic is the error.
        let all = std::panic::AssertUnwindSafe(|| items.iter().map(&work).collect());
        return std::panic::catch_unwind(all);
    }
    let per = items.len().div_ceil(threads);
    let work = &work;
    std::thread::scope(|scope| {
        let mut parts = items.chunks(per);
        let first = parts.next().unwrap_or_default();
        let handles: Vec<_> = parts
            .map(|c| scope.spawn(move || c.iter().map(work).collect::<Vec<T>>()))
            .collect();
        let mut out: Vec<T> = first.iter().map(work).collect();
        for h in handles {
            out.extend(h.join()?);
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::on_cores;

    #[test]
    fn results_keep_input_order_and_a_panic_is_the_error() {
        let items: Vec<u32> = (0..64).collect();
        let doubled = on_cores(&items, |n| n * 2).unwrap();
        assert_eq!(doubled, items.iter().map(|n| n * 2).collect::<Vec<_>>());
        let failed = on_cores(&items, |&n| {
            assert!(n != 63, "the last part fails");
            n
        });
        assert!(
            failed.is_err() || std::thread::available_parallelism().map_or(1, |n| n.get()) == 1
        );
    }
}
