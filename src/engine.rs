//! The one execution engine: a bounded-parallel fan-out with progress and per-item results.
//!
//! Every command that calls many providers or nodes at once runs through here: deploy (fleet
//! creates and their waits), list and sync (one listing per provider account), provider verify,
//! catalog refresh (one price list per provider), xNode readiness and the bulk lifecycle.
//!
//! - At most `limit` jobs run at once; the others wait their turn and start in input order.
//! - Jobs run as tasks on the runtime, so they make progress while the command thread writes
//!   the state store.
//! - Every item gets exactly one result, in input order for [`fan_out`]; a job that panicked is
//!   reported as [`Lost`] for its item instead of taking the other results with it.
//! - A job may report events before it ends ([`Reporter`]); a job's events always arrive
//!   before its own [`Event::Done`].
//!
//! The engine knows nothing of the domain: what an item, an event or a result is belongs to
//! the caller. Progress on a terminal goes through [`Progress`], which falls back to the
//! messages module when there is no bar.

use crate::messages;
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinSet;

/// The concurrency of fan-outs that have no `--parallel` flag (one call per provider account,
/// one price list per provider): enough for every provider at once, still a bound.
pub const DEFAULT_LIMIT: usize = 16;

/// A job that ended without a result: it panicked (a bug) or was cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost(pub String);

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the job stopped without a result: {}", self.0)
    }
}

impl std::error::Error for Lost {}

impl Lost {
    fn of(e: tokio::task::JoinError) -> Lost {
        if e.is_panic() {
            let payload = e.into_panic();
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "it panicked".to_string());
            Lost(text)
        } else {
            Lost("it was cancelled".to_string())
        }
    }
}

/// What the engine hands back: an event a job reported, or a job's end.
#[derive(Debug)]
pub enum Event<E, R> {
    Report {
        index: usize,
        event: E,
    },
    Done {
        index: usize,
        result: Result<R, Lost>,
    },
}

/// A job's way to report events before it ends (progress steps, a create's outcome before its
/// waits). Events of one job arrive in the order they were sent.
pub struct Reporter<E> {
    index: usize,
    tx: UnboundedSender<(usize, E)>,
}

impl<E> Reporter<E> {
    /// The job's index: the order in which it was pushed.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Report an event (ignored once the engine is gone: nobody is left to read it).
    pub fn report(&self, event: E) {
        let _ = self.tx.send((self.index, event));
    }
}

type BoxFuture<R> = Pin<Box<dyn Future<Output = R> + Send>>;
type Pending<E, R> = Box<dyn FnOnce(Reporter<E>) -> BoxFuture<R> + Send>;

/// A bounded pool of jobs; push jobs (also while others run), then read [`Event`]s with
/// [`Engine::next`] until it returns `None`.
pub struct Engine<E, R> {
    handle: tokio::runtime::Handle,
    limit: usize,
    running: JoinSet<R>,
    /// The index of each running task (a task that panicked is known only by its id).
    ids: HashMap<tokio::task::Id, usize>,
    /// Ends already seen, handed out once the events queued before them were.
    finished: VecDeque<Event<E, R>>,
    waiting: VecDeque<(usize, Pending<E, R>)>,
    tx: UnboundedSender<(usize, E)>,
    rx: UnboundedReceiver<(usize, E)>,
    pushed: usize,
}

impl<E: Send + 'static, R: Send + 'static> Engine<E, R> {
    /// An engine running its jobs on `handle`'s runtime, at most `limit` (at least 1) at once.
    pub fn new(handle: tokio::runtime::Handle, limit: usize) -> Self {
        let (tx, rx) = unbounded_channel();
        Engine {
            handle,
            limit: limit.max(1),
            running: JoinSet::new(),
            ids: HashMap::new(),
            finished: VecDeque::new(),
            waiting: VecDeque::new(),
            tx,
            rx,
            pushed: 0,
        }
    }

    /// Add a job; it starts at once when a slot is free, otherwise after the jobs before it.
    /// Returns its index (0, 1, 2… in push order).
    pub fn push<F, Fut>(&mut self, job: F) -> usize
    where
        F: FnOnce(Reporter<E>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
    {
        let index = self.pushed;
        self.pushed += 1;
        self.waiting
            .push_back((index, Box::new(move |r| Box::pin(job(r)) as BoxFuture<R>)));
        self.start_waiting();
        index
    }

    /// How many jobs were pushed so far.
    pub fn pushed(&self) -> usize {
        self.pushed
    }

    fn start_waiting(&mut self) {
        while self.running.len() < self.limit {
            let Some((index, job)) = self.waiting.pop_front() else {
                break;
            };
            let reporter = Reporter {
                index,
                tx: self.tx.clone(),
            };
            let handle = self.running.spawn_on(job(reporter), &self.handle);
            self.ids.insert(handle.id(), index);
        }
    }

    /// The next event: a reported one first, then a finished job (which freed its slot for
    /// the next waiting job). `None` once every job ended and every event was read.
    pub async fn next(&mut self) -> Option<Event<E, R>> {
        loop {
            // A job sends its events before it ends, so by the time its end is seen they are
            // queued: they are handed out before the end.
            if let Ok((index, event)) = self.rx.try_recv() {
                return Some(Event::Report { index, event });
            }
            if let Some(done) = self.finished.pop_front() {
                return Some(done);
            }
            if self.running.is_empty() {
                return None;
            }
            tokio::select! {
                biased;
                Some((index, event)) = self.rx.recv() => {
                    return Some(Event::Report { index, event });
                }
                Some(joined) = self.running.join_next_with_id() => {
                    let (index, result) = match joined {
                        Ok((id, r)) => (self.ids.remove(&id), Ok(r)),
                        Err(e) => (self.ids.remove(&e.id()), Err(Lost::of(e))),
                    };
                    // Every task was spawned with its id recorded.
                    let index = index.unwrap_or(usize::MAX);
                    self.finished.push_back(Event::Done { index, result });
                    self.start_waiting();
                }
                else => return None,
            }
        }
    }
}

/// Run `job` on every item, at most `limit` at once, and return every item with its result in
/// input order. `progress` counts finished items.
pub async fn fan_out<I, R, F, Fut>(
    items: Vec<I>,
    limit: usize,
    progress: &Progress,
    job: F,
) -> Vec<(I, Result<R, Lost>)>
where
    I: Clone + Send + 'static,
    R: Send + 'static,
    F: Fn(I) -> Fut,
    Fut: Future<Output = R> + Send + 'static,
{
    let mut engine: Engine<(), R> = Engine::new(tokio::runtime::Handle::current(), limit);
    for item in &items {
        let fut = job(item.clone());
        engine.push(move |_| fut);
    }
    let mut results: Vec<Option<Result<R, Lost>>> = items.iter().map(|_| None).collect();
    while let Some(event) = engine.next().await {
        if let Event::Done { index, result } = event {
            progress.inc();
            if let Some(slot) = results.get_mut(index) {
                *slot = Some(result);
            }
        }
    }
    progress.finish();
    items
        .into_iter()
        .zip(results)
        .map(|(item, r)| {
            (
                item,
                r.unwrap_or_else(|| Err(Lost("no result came back".into()))),
            )
        })
        .collect()
}

/// Progress of a fan-out: a bar on a terminal, or nothing; lines said while it runs go above
/// the bar, or to stderr through the messages module.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar counting `len` `noun`s, when `shown` (a terminal, table output) and `len` > 1.
    pub fn new(shown: bool, len: usize, noun: &str) -> Progress {
        if !shown || len <= 1 {
            return Progress::hidden();
        }
        let b = ProgressBar::new(len as u64);
        b.set_style(
            ProgressStyle::with_template(&format!(
                "{{spinner}} {{pos}}/{{len}} {noun} {{wide_msg}}"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Progress { bar: Some(b) }
    }

    /// No bar: every line goes to stderr.
    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    /// One more item finished.
    pub fn inc(&self) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    /// The latest status: the bar's message, or an info line without a bar.
    pub fn status(&self, text: impl fmt::Display) {
        match &self.bar {
            Some(b) => b.set_message(text.to_string()),
            None => messages::info(text),
        }
    }

    /// A line that stays: above the bar, or an info line without a bar.
    pub fn say(&self, text: impl fmt::Display) {
        match &self.bar {
            Some(b) => b.println(messages::format(messages::Level::Info, &text.to_string())),
            None => messages::info(text),
        }
    }

    /// Remove the bar (the results are printed next).
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn results_keep_input_order_and_every_item() {
        let rt = runtime();
        // Later items finish first.
        let items: Vec<u64> = (0..20).collect();
        let out = rt.block_on(fan_out(items, 20, &Progress::hidden(), |i| async move {
            tokio::time::sleep(Duration::from_millis(40 - 2 * i)).await;
            i * 10
        }));
        assert_eq!(out.len(), 20);
        for (n, (item, r)) in out.into_iter().enumerate() {
            assert_eq!(item, n as u64);
            assert_eq!(r, Ok(item * 10));
        }
    }

    #[test]
    fn the_limit_holds_and_jobs_start_in_input_order() {
        let rt = runtime();
        let live = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let ended = Arc::new(AtomicUsize::new(0));
        // For each job as it starts: its index and how many jobs had ended by then.
        let started = Arc::new(Mutex::new(Vec::new()));
        let (l, p, e, s) = (live.clone(), peak.clone(), ended.clone(), started.clone());
        let out = rt.block_on(fan_out(
            (0..30).collect::<Vec<usize>>(),
            3,
            &Progress::hidden(),
            move |i| {
                let (l, p, e, s) = (l.clone(), p.clone(), e.clone(), s.clone());
                async move {
                    s.lock().unwrap().push((i, e.load(Ordering::SeqCst)));
                    let now = l.fetch_add(1, Ordering::SeqCst) + 1;
                    p.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    l.fetch_sub(1, Ordering::SeqCst);
                    e.fetch_add(1, Ordering::SeqCst);
                    i
                }
            },
        ));
        assert_eq!(out.len(), 30);
        assert!(
            peak.load(Ordering::SeqCst) <= 3,
            "never more than three at once"
        );
        let started = started.lock().unwrap().clone();
        let mut all: Vec<usize> = started.iter().map(|(i, _)| *i).collect();
        all.sort();
        assert_eq!(all, (0..30).collect::<Vec<_>>(), "every job started once");
        // Job k waits for a slot: at least k - 2 jobs had ended when it started.
        for (i, ended_then) in started {
            assert!(
                ended_then + 2 >= i,
                "job {i} started with only {ended_then} ended"
            );
        }
    }

    #[test]
    fn per_item_errors_and_panics_stay_with_their_item() {
        let rt = runtime();
        let out = rt.block_on(fan_out(
            vec![1i32, -1, 2, 0, 3],
            2,
            &Progress::hidden(),
            |i| async move {
                if i == 0 {
                    panic!("zero");
                }
                if i < 0 {
                    Err(format!("{i} is negative"))
                } else {
                    Ok(i)
                }
            },
        ));
        let items: Vec<i32> = out.iter().map(|(i, _)| *i).collect();
        assert_eq!(items, vec![1, -1, 2, 0, 3]);
        assert_eq!(out[0].1, Ok(Ok(1)));
        assert_eq!(out[1].1, Ok(Err("-1 is negative".to_string())));
        assert_eq!(out[2].1, Ok(Ok(2)));
        assert_eq!(out[3].1, Err(Lost("zero".into())));
        assert_eq!(out[4].1, Ok(Ok(3)));
    }

    #[test]
    fn events_come_before_their_jobs_end_and_jobs_can_be_added_while_running() {
        let rt = runtime();
        let mut engine: Engine<&'static str, u32> = Engine::new(rt.handle().clone(), 2);
        for n in 0..4u32 {
            engine.push(move |r| async move {
                r.report("created");
                tokio::time::sleep(Duration::from_millis(u64::from(5 * (4 - n)))).await;
                r.report("ready");
                n
            });
        }
        let mut seen: Vec<Vec<&str>> = vec![Vec::new(); 6];
        let mut done = Vec::new();
        while let Some(event) = rt.block_on(engine.next()) {
            match event {
                Event::Report { index, event } => {
                    assert!(!done.contains(&index), "an event after its job ended");
                    seen[index].push(event);
                }
                Event::Done { index, result } => {
                    done.push(index);
                    // The first job to end adds one more (as deploy moves a refused create).
                    if engine.pushed() < 6 {
                        engine.push(|r| async move {
                            r.report("moved");
                            99
                        });
                    }
                    assert!(result.is_ok());
                }
            }
        }
        done.sort();
        assert_eq!(done, vec![0, 1, 2, 3, 4, 5]);
        for s in &seen[..4] {
            assert_eq!(s, &vec!["created", "ready"]);
        }
        assert_eq!(seen[4], vec!["moved"]);
        assert_eq!(seen[5], vec!["moved"]);
    }

    #[test]
    fn an_empty_fan_out_returns_nothing() {
        let rt = runtime();
        let out: Vec<(u8, Result<u8, Lost>)> = rt.block_on(fan_out(
            Vec::new(),
            4,
            &Progress::hidden(),
            |i| async move { i },
        ));
        assert!(out.is_empty());
    }
}
