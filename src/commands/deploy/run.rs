//! The run of `deploy`: its creates (and waits) pushed on the one execution engine
//! (`crate::engine`), whose reports the command thread alone records in the store, so "recorded,
//! then created" always holds. A create refused for a documented reason moves to its next
//! candidate (`commands::failover`); the per-node result table closes the run.

use super::*;
use crate::engine::{Engine, Event, Progress, Reporter};

/// Everything a run needs, built and checked before the first intent is written: a failure
/// here (no credentials, an unreadable credentials file, a bad endpoint, a bad `--timeout`)
/// leaves no record behind.
pub(super) struct Runner<'a> {
    pub(super) ctx: &'a Ctx,
    pub(super) args: &'a DeployArgs,
    pub(super) drivers: BTreeMap<String, Driver>,
    /// The credentials account every create runs with.
    pub(super) account: String,
    pub(super) timeout: Duration,
    pub(super) parallel: usize,
    pub(super) wait: bool,
    pub(super) wait_ssh: bool,
    /// The xNode install to check for, with `--xnode`.
    pub(super) xnode: Option<crate::commands::xnode::Spec>,
    pub(super) wait_ready: bool,
}

impl<'a> Runner<'a> {
    /// Drivers for `providers`, with the credentials of `account`.
    pub(super) fn new<'p>(
        ctx: &'a Ctx,
        args: &'a DeployArgs,
        account: &str,
        providers: impl IntoIterator<Item = &'p str>,
    ) -> anyhow::Result<Runner<'a>> {
        let default_minutes = if args.xnode.wait_ready { 45 } else { 10 };
        let timeout = args
            .timeout
            .unwrap_or(Duration::from_secs(default_minutes * 60));
        let xnode = crate::commands::xnode::spec(ctx, &args.xnode)?;
        let mut drivers = BTreeMap::new();
        for p in providers {
            if !drivers.contains_key(p) {
                drivers.insert(p.to_string(), ctx.driver_for(p, account)?);
            }
        }
        Ok(Runner {
            ctx,
            args,
            drivers,
            account: account.to_string(),
            timeout,
            parallel: args.parallel.max(1),
            wait: args.wait || args.wait_ssh,
            wait_ssh: args.wait_ssh,
            xnode,
            wait_ready: args.xnode.wait_ready,
        })
    }
}

/// The fleet a run works on, opened once: its group id, the fleet's lease (held for the whole
/// run) and the store every report is recorded in.
pub(super) struct Fleet {
    pub(super) group_id: String,
    // Declared before the store, so the lease is let go before the store closes.
    pub(super) lease: state::lease::Lease,
    pub(super) store: Box<dyn Store>,
}

impl Fleet {
    /// Open the store and take the lease of fleet `group`, or say who holds it.
    pub(super) fn open(ctx: &Ctx, group: &str) -> anyhow::Result<Fleet> {
        let store = open_store(ctx)?;
        let lease = take_lease(ctx, store.as_ref(), group)?;
        Ok(Fleet {
            group_id: group.to_string(),
            lease,
            store,
        })
    }
}

/// Take the fleet's lease on this machine and, on a shared store, the team-wide lock, or say
/// who holds it.
fn take_lease(ctx: &Ctx, store: &dyn Store, group: &str) -> anyhow::Result<state::lease::Lease> {
    match state::lease::acquire(&ctx.home, group)? {
        state::lease::Acquired::Held(_) if !store.lock_group(group)? => Err(anyhow::anyhow!(
            "fleet {group} is being deployed by a capsule on another machine sharing the team state {} — wait for it to finish, then run `capsule openmesh deploy --resume {group}`",
            store.describe()
        )),
        state::lease::Acquired::Held(l) => Ok(l),
        state::lease::Acquired::Busy { pid } => {
            let who = pid.map_or_else(
                || "another capsule process".to_string(),
                |p| format!("capsule process {p}"),
            );
            Err(anyhow::anyhow!(
                "fleet {group} is being deployed by {who} — wait for it to finish, then run `capsule openmesh deploy --resume {group}`"
            ))
        }
    }
}

/// How a job begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Start {
    /// A deploy id never sent: create at once.
    Create,
    /// Resume: look the node up by its recorded (old) deploy tag and adopt what is found;
    /// create under that deploy id only when the lookup definitively finds nothing and
    /// `may_create` (outside the provider's hidden window).
    LookUp { may_create: bool },
}

/// One create to run.
pub(super) struct Job {
    pub(super) name: String,
    pub(super) provider: String,
    pub(super) req: CreateRequest,
    pub(super) start: Start,
}

/// What a create task reports back to the thread that owns the store.
pub(super) enum Report {
    Outcome {
        deploy_id: String,
        outcome: CreateOutcome,
    },
    Observed {
        deploy_id: String,
        node: Node,
    },
    WaitFailed {
        deploy_id: String,
        error: String,
    },
}

/// The outcome of one job: the create, or (resume) the lookup by the old tag first.
pub(super) async fn run_job(driver: &Driver, job: &Job) -> CreateOutcome {
    let may_create = match job.start {
        Start::Create => return driver.create(&job.req).await,
        Start::LookUp { may_create } => may_create,
    };
    let tag = driver.tag_for(&job.req.deploy_id);
    let found = driver
        .find_by_deploy_id(&job.req.deploy_id, Some(job.req.region.as_str()))
        .await;
    match found {
        Ok(Some(node)) => CreateOutcome::Created(node),
        Ok(None) if may_create && driver.can_find_by_tag() => driver.create(&job.req).await,
        Ok(None) => {
            let hidden = driver.hidden_after_create_seconds();
            let why = if hidden > 0.0 {
                format!(
                    "tag '{tag}' is not listed yet, and the provider may not list a new node for up to {hidden} s after its create"
                )
            } else {
                format!("tag '{tag}' cannot be looked up with this provider's catalog")
            };
            CreateOutcome::InDoubt {
                error: DriverError::new(&job.provider, ErrorKind::NotFound, why).with_hint(
                    "nothing was created again; resume once that window has passed, or `capsule openmesh sync` to settle it",
                ),
                node: None,
            }
        }
        Err(e) => {
            let mut error = e;
            error.message = format!(
                "looking up tag '{tag}' failed: {} — nothing was created again",
                error.message
            );
            CreateOutcome::InDoubt { error, node: None }
        }
    }
}

/// How long and for what each create task waits once its node exists.
#[derive(Clone, Copy)]
pub(super) struct Waits {
    pub(super) wait: bool,
    pub(super) wait_ssh: bool,
    pub(super) timeout: Duration,
}

/// Push one job onto the engine: the create, then the waits, each result reported to the
/// command thread, which alone writes the store.
pub(super) fn push_job(engine: &mut Engine<Report, ()>, driver: Driver, job: Job, w: Waits) {
    engine.push(move |tx: Reporter<Report>| async move {
        let deploy_id = job.req.deploy_id.clone();
        let outcome = run_job(&driver, &job).await;
        let created = match &outcome {
            CreateOutcome::Created(n) => Some(n.clone()),
            CreateOutcome::Rejected(_) | CreateOutcome::InDoubt { .. } => None,
        };
        tx.report(Report::Outcome {
            deploy_id: deploy_id.clone(),
            outcome,
        });
        let Some(node) = created.filter(|_| w.wait) else {
            return;
        };
        match driver
            .wait_for(&node.node_ref(), NodeState::Running, true, w.timeout)
            .await
        {
            Ok(n) => {
                if w.wait_ssh {
                    if let Some(ip) = &n.ipv4 {
                        if let Err(e) = wait_port(ip, 22, w.timeout).await {
                            tx.report(Report::WaitFailed {
                                deploy_id: deploy_id.clone(),
                                error: e,
                            });
                        }
                    }
                }
                tx.report(Report::Observed { deploy_id, node: n });
            }
            Err(e) => {
                tx.report(Report::WaitFailed {
                    deploy_id,
                    error: e.to_string(),
                });
            }
        }
    });
}

/// What a run keeps to move refused creates: where each node is being created, the drivers,
/// and the smart plan's failover.
pub(super) struct Moves<'a> {
    /// The run's options and the credentials account of the deploy (a moved node keeps it).
    pub(super) runner: &'a Runner<'a>,
    pub(super) fleet: &'a Fleet,
    /// The runner's drivers and those of the providers nodes moved to.
    pub(super) drivers: BTreeMap<String, Driver>,
    /// Deploy id → where that create goes.
    pub(super) places: BTreeMap<String, Candidate>,
    pub(super) failover: Option<Failover>,
}

/// After a refused create: the job that creates the node at its next candidate, or the report
/// to record as it is.
pub(super) enum Next {
    Move(Box<Job>, Driver),
    Keep(Box<Report>),
}

impl Moves<'_> {
    /// Look at a create's outcome: a documented refusal moves the node to its next candidate
    /// (re-keying its one record, the refused attempt kept as an event); anything else, or no
    /// candidate left, is recorded as it is.
    pub(super) fn outcome(
        &mut self,
        rt: &tokio::runtime::Runtime,
        names: &mut BTreeMap<String, String>,
        deploy_id: String,
        outcome: CreateOutcome,
    ) -> Next {
        let (Some(f), Some(at)) = (self.failover.as_mut(), self.places.get(&deploy_id).cloned())
        else {
            return Next::Keep(Box::new(Report::Outcome { deploy_id, outcome }));
        };
        let name = names[&deploy_id].clone();
        let error = outcome.error().map(|e| e.to_string());
        let Some(why) = outcome.refusal() else {
            let label = match &outcome {
                CreateOutcome::Created(_) => "created",
                CreateOutcome::Rejected(_) => "failed",
                CreateOutcome::InDoubt { .. } => "in_doubt",
            };
            f.finish(&name, &at, label, error);
            return Next::Keep(Box::new(Report::Outcome { deploy_id, outcome }));
        };
        f.refused(&name, &at, why);
        let mut skipped = Vec::new();
        let mut moved = None;
        while let Some(next) = self.failover.as_ref().and_then(|f| f.next_for(&name, &at)) {
            let message = format!(
                "refused, {}: {} — moving to {}",
                failover::reason_text(why),
                error.as_deref().unwrap_or(""),
                failover::moved_to(&next).trim_start_matches("moved to ")
            );
            match self.prepare(rt, &deploy_id, &name, &next, &message) {
                Ok(job) => {
                    moved = Some((next, job));
                    break;
                }
                Err(e) => {
                    if let Some(f) = self.failover.as_mut() {
                        f.tried_by(&name, &next);
                    }
                    skipped.push(Attempt {
                        name: name.clone(),
                        provider: next.provider.clone(),
                        template: next.template.clone(),
                        region: next.region.clone(),
                        outcome: "skipped",
                        reason: None,
                        error: Some(e.to_string()),
                        next: None,
                    });
                }
            }
        }
        let Some(f) = self.failover.as_mut() else {
            return Next::Keep(Box::new(Report::Outcome { deploy_id, outcome }));
        };
        let next = match &moved {
            Some((c, _)) => failover::moved_to(c),
            None => f.stop_reason().to_string(),
        };
        f.record(Attempt {
            name: name.clone(),
            provider: at.provider.clone(),
            template: at.template.clone(),
            region: at.region.clone(),
            outcome: "refused",
            reason: Some(why),
            error,
            next: Some(next),
        });
        for a in skipped {
            f.record(a);
        }
        let Some((place, (job, driver))) = moved else {
            return Next::Keep(Box::new(Report::Outcome { deploy_id, outcome }));
        };
        names.remove(&deploy_id);
        self.places.remove(&deploy_id);
        names.insert(job.req.deploy_id.clone(), name);
        self.places.insert(job.req.deploy_id.clone(), place);
        Next::Move(Box::new(job), driver)
    }

    /// Build the create at `c` for the node recorded under `from`, and move its record there.
    /// Nothing is recorded unless everything else succeeded.
    pub(super) fn prepare(
        &mut self,
        rt: &tokio::runtime::Runtime,
        from: &str,
        name: &str,
        c: &Candidate,
        message: &str,
    ) -> anyhow::Result<(Job, Driver)> {
        let ctx = self.runner.ctx;
        let account = self.runner.account.as_str();
        let p = ctx.provider(&c.provider)?;
        let t = ctx
            .catalog
            .template(&c.template)
            .ok_or_else(|| anyhow::anyhow!("template '{}' vanished", c.template))?;
        let pl = placement_of(ctx, name, p, t, &c.region);
        if !self.drivers.contains_key(p.id()) {
            let driver = ctx.driver_for(p.id(), account)?;
            self.drivers.insert(p.id().to_string(), driver);
        }
        let driver = self.drivers[p.id()].clone();
        let resolved = if lookup_needed(p, t) {
            Some(rt.block_on(driver.resolve_plan(t, &c.region))?)
        } else {
            None
        };
        let deploy_id = state::new_deploy_id();
        let req = create_request(
            ctx,
            self.runner.args,
            account,
            &pl,
            &deploy_id,
            resolved.as_ref(),
        )?;
        let node = new_node(ctx, &self.fleet.group_id, account, &pl, &req)?;
        self.fleet.store.record_moved(from, &node, message)?;
        let job = Job {
            name: name.to_string(),
            provider: pl.provider,
            req,
            start: Start::Create,
        };
        Ok((job, driver))
    }
}

/// Run `jobs` for `fleet` on the execution engine, record every report, move refused creates
/// along the smart plan's `failover`, and print the per-node result table.
pub(super) fn run_jobs(
    runner: &Runner,
    fleet: &Fleet,
    jobs: Vec<Job>,
    explanation: Option<Explanation>,
    failover: Option<Failover>,
) -> anyhow::Result<ExitCode> {
    let ctx = runner.ctx;
    let store = fleet.store.as_ref();
    let group_id = fleet.group_id.as_str();
    let mut names: BTreeMap<String, String> = jobs
        .iter()
        .map(|j| (j.req.deploy_id.clone(), j.name.clone()))
        .collect();
    let rt = ctx.runtime()?;
    let timeout = runner.timeout;
    let waits = Waits {
        wait: runner.wait,
        wait_ssh: runner.wait_ssh,
        timeout,
    };
    let progress = super::super::progress(ctx, jobs.len(), "nodes");
    let mut results: BTreeMap<String, (Option<Node>, Option<String>)> = BTreeMap::new();
    let mut in_doubt: BTreeSet<String> = BTreeSet::new();
    let mut moves = Moves {
        runner,
        fleet,
        drivers: runner.drivers.clone(),
        places: jobs
            .iter()
            .map(|j| {
                let place = Candidate {
                    provider: j.provider.clone(),
                    template: j.req.template.clone(),
                    region: j.req.region.clone(),
                };
                (j.req.deploy_id.clone(), place)
            })
            .collect(),
        failover,
    };
    let beat = fleet.lease.handle()?;
    // The lease's heartbeat: the next holder learns when this process was last alive.
    let heartbeat = rt.spawn(async move {
        loop {
            let _ = beat.set_modified(std::time::SystemTime::now());
            tokio::time::sleep(state::lease::HEARTBEAT).await;
        }
    });
    let mut engine: Engine<Report, ()> = Engine::new(rt.handle().clone(), runner.parallel);
    for job in jobs {
        let driver = moves.drivers[&job.provider].clone();
        push_job(&mut engine, driver, job, waits);
    }
    // The command thread owns the store: it records every report, and moves refused creates.
    while let Some(event) = rt.block_on(engine.next()) {
        let report = match event {
            Event::Done { result: Ok(()), .. } => continue,
            Event::Done {
                result: Err(lost), ..
            } => {
                // Its node has no result: the table below says so.
                messages::info(format!("a create stopped early: {lost}"));
                continue;
            }
            Event::Report { event, .. } => event,
        };
        let report = match report {
            Report::Outcome { deploy_id, outcome } => {
                match moves.outcome(&rt, &mut names, deploy_id, outcome) {
                    Next::Move(job, driver) => {
                        if let Some(line) = moves.failover.as_ref().and_then(Failover::last_refusal)
                        {
                            progress.say(line);
                        }
                        push_job(&mut engine, driver, *job, waits);
                        continue;
                    }
                    Next::Keep(report) => *report,
                }
            }
            other => other,
        };
        let res = handle_report(
            store,
            &names,
            &mut results,
            &mut in_doubt,
            report,
            &progress,
        );
        if let Err(e) = res {
            messages::info(format!("could not record a result: {e}"));
        }
    }
    heartbeat.abort();
    progress.finish();
    let failover = moves.failover;
    let explanation = explanation.map(|mut e| {
        if let Some(f) = &failover {
            e.attempts = f.attempts().to_vec();
        }
        e
    });
    let table = ctx.format() == OutputFormat::Table;
    // The per-node result table.
    let mut rows = Vec::new();
    let mut failures = 0;
    for (deploy_id, name) in &names {
        let rec = store.node_by_deploy_id(deploy_id)?;
        let (node, err) = results
            .get(deploy_id)
            .cloned()
            .unwrap_or((None, Some("no result".into())));
        if err.is_some() {
            failures += 1;
        }
        let status = match (&node, &rec) {
            (Some(n), _) => Some(n.state.as_str().to_string()),
            (None, Some(r)) if table => Some(r.status.label().to_string()),
            (None, Some(r)) => Some(r.status.as_str().to_string()),
            (None, None) => None,
        };
        rows.push(NodeResult {
            name: name.clone(),
            provider: rec.as_ref().map(|r| r.provider.clone()),
            template: rec.as_ref().map(|r| r.template.clone()),
            region: rec.as_ref().map(|r| r.region.clone()),
            id: node
                .as_ref()
                .map(|n| n.id.clone())
                .or_else(|| rec.as_ref().and_then(|r| r.provider_id.clone())),
            status,
            ipv4: node.as_ref().and_then(|n| n.ipv4.clone()),
            deploy_id: deploy_id.clone(),
            group_id: group_id.to_string(),
            price_hourly: rec.as_ref().map(|r| r.price_hourly),
            currency: rec.as_ref().map(|r| r.currency.clone()),
            error: err,
            xnode: None,
        });
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let not_ready = match &runner.xnode {
        Some(spec) => {
            crate::commands::xnode::finish(ctx, store, spec, &mut rows, runner.wait_ready, timeout)?
        }
        None => 0,
    };
    let cols = [
        col("name", "name", Kind::Text),
        col("provider", "provider", Kind::Text),
        col("template", "template", Kind::Text),
        col("region", "region", Kind::Text),
        col("id", "id", Kind::Text),
        col("status", "status", Kind::Status),
        col("ipv4", "ipv4", Kind::Text),
        col("error", "error", Kind::Text),
    ];
    if ctx.format() == OutputFormat::Json {
        let v = DeployReport {
            group_id,
            plan: explanation.as_ref().map(Explanation::json),
            nodes: &rows,
        };
        writeln!(stdout(), "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        let listed: Vec<render::Row> = rows.iter().map(render::Row::of).collect();
        render::listing(&mut stdout(), ctx.style, &cols, &listed)?;
        crate::commands::xnode::print_summary(&mut rows)?;
        if let Some(f) = failover.as_ref().filter(|_| table) {
            write!(stdout(), "{}", f.attempts_text())?;
        }
    }
    if !in_doubt.is_empty() {
        let which: Vec<&str> = in_doubt
            .iter()
            .filter_map(|d| names.get(d).map(String::as_str))
            .collect();
        messages::info(format!("{} in doubt: the provider may have created {} ({}); the name is kept, and `capsule openmesh deploy --resume {group_id}` or `capsule openmesh sync` look it up by its tag rather than create it twice",
            if which.len() == 1 { "1 node is".to_string() } else { format!("{} nodes are", which.len()) },
            if which.len() == 1 { "it" } else { "them" },
            which.join(", ")));
    }
    if failures > 0 {
        messages::info(format!("{failures} of {} nodes failed; every node is recorded — retry the rest with `capsule openmesh deploy --resume {group_id}`",
            names.len()));
        return Ok(ExitCode::from(1));
    }
    if not_ready > 0 {
        crate::commands::xnode::report_not_ready(&mut rows);
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The deploy report (`golden/schema/deploy.json`): the group, the smart plan's explanation
/// and every node's result.
#[derive(Debug, serde::Serialize)]
struct DeployReport<'a> {
    group_id: &'a str,
    plan: Option<crate::explain::ExplanationJson<'a>>,
    nodes: &'a [NodeResult],
}

/// One node of the deploy report (`nodes` in `golden/schema/deploy.json`).
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct NodeResult {
    name: String,
    provider: Option<String>,
    template: Option<String>,
    region: Option<String>,
    /// The provider's id of the node, once known.
    id: Option<String>,
    status: Option<String>,
    ipv4: Option<String>,
    deploy_id: String,
    group_id: String,
    price_hourly: Option<f64>,
    currency: Option<String>,
    error: Option<String>,
    /// `deploy --xnode`: the installed xNode's facts.
    #[serde(skip_serializing_if = "Option::is_none")]
    xnode: Option<crate::commands::xnode::XnodeFacts>,
}

impl crate::commands::xnode::XnodeRow for NodeResult {
    fn name(&self) -> &str {
        &self.name
    }
    fn provider(&self) -> &str {
        self.provider.as_deref().unwrap_or_default()
    }
    fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }
    fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
    fn deploy_id(&self) -> Option<&str> {
        Some(&self.deploy_id)
    }
    fn ipv4(&mut self) -> &mut Option<String> {
        &mut self.ipv4
    }
    fn error(&mut self) -> &mut Option<String> {
        &mut self.error
    }
    fn xnode(&mut self) -> &mut Option<crate::commands::xnode::XnodeFacts> {
        &mut self.xnode
    }
}

pub(super) fn created_of(node: &Node) -> Created {
    Created {
        provider_id: node.id.clone(),
        status: status_of(node.state),
        raw_status: node.raw_status.clone(),
        ipv4: node.ipv4.clone(),
        created_at: node.created_at.clone(),
    }
}

pub(super) fn handle_report(
    store: &dyn Store,
    names: &BTreeMap<String, String>,
    results: &mut BTreeMap<String, (Option<Node>, Option<String>)>,
    in_doubt: &mut BTreeSet<String>,
    report: Report,
    progress: &Progress,
) -> anyhow::Result<()> {
    let say = |msg: String| progress.status(msg);
    match report {
        Report::Outcome { deploy_id, outcome } => {
            progress.inc();
            let name = &names[&deploy_id];
            match outcome {
                CreateOutcome::Created(node) => {
                    store.record_created(&deploy_id, &created_of(&node))?;
                    say(format!("{name} created at {} ({})", node.provider, node.id));
                    results.insert(deploy_id, (Some(node), None));
                }
                CreateOutcome::Rejected(error) => {
                    // A definite refusal: nothing exists, the record leaves the live set.
                    let msg = error.to_string();
                    store.record_failed(&deploy_id, &msg, Failure::Rejected)?;
                    say(format!("{name} failed: {msg}"));
                    results.insert(deploy_id, (None, Some(msg)));
                }
                CreateOutcome::InDoubt { error, node } => {
                    // The provider may have created it: the name stays taken, and a lookup by
                    // its tag settles it later. A node whose id is known is recorded with it.
                    if let Some(n) = &node {
                        store.record_created(&deploy_id, &created_of(n))?;
                    }
                    let msg = error.to_string();
                    store.record_failed(&deploy_id, &msg, Failure::InDoubt)?;
                    say(format!("{name} is in doubt: {msg}"));
                    in_doubt.insert(deploy_id.clone());
                    results.insert(deploy_id, (None, Some(msg)));
                }
            }
        }
        Report::Observed { deploy_id, node } => {
            store.record_observation(&deploy_id, &observe(&node), Action::Deploy, "")?;
            say(format!(
                "{} is {} at {}",
                names[&deploy_id],
                node.state,
                node.ipv4.as_deref().unwrap_or("-")
            ));
            results.insert(deploy_id, (Some(node), None));
        }
        Report::WaitFailed { deploy_id, error } => {
            store.record_action(
                Some(&deploy_id),
                Action::Deploy,
                Outcome::Failed,
                &format!("waiting: {error}"),
            )?;
            say(format!("{}: {error}", names[&deploy_id]));
            let entry = results.entry(deploy_id).or_insert((None, None));
            entry.1 = Some(error);
        }
    }
    Ok(())
}

/// Wait until a TCP port answers.
pub(super) async fn wait_port(ip: &str, port: u16, timeout: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::TcpStream::connect((ip, port)),
        )
        .await;
        if matches!(attempt, Ok(Ok(_))) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "port {port} on {ip} did not answer within {}s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
