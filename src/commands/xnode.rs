//! xNodes: `deploy --xnode`, its readiness ladder (`--wait-ready`, `status --probe`) and
//! `reinstall`.
//!
//! Everything about XnodeOS comes from the catalog's `[bootstrap.xnode]` (the user data, the
//! rules every value must match, the eligible templates, the probe) and each provider's
//! `[provider.xnode]` (image, reinstall operation). This file validates the user's values,
//! renders the user data, checks eligibility, runs the ladder and records each stage in history.
//! Values are validated, never escaped: anything outside a rule is refused with exit 2.

use super::nodes::{confirm, open_store, resolve_node};
use super::stdout;
use crate::catalog::schema::{Template, XnodeBootstrap, XnodeProbe};
use crate::catalog::ProviderEntry;
use crate::cli::{OutputFormat, ReinstallArgs, StatusArgs, XnodeArgs};
use crate::context::Ctx;
use crate::driver::{Driver, NodeRef, NodeState, RenderedRequest};
use crate::engine::{Engine, Event};
use crate::error::bad_input;
use crate::messages;
use crate::render::{self, col, Kind};
use crate::select::{Reject, XnodeNeeds};
use crate::state::{Action, EventFilter, NodeStatus, Observation, Outcome, Store};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;
use std::time::Duration;

/// What an xNode install gets: validated values, ready to splice.
#[derive(Debug, Clone)]
pub struct Spec {
    pub install: Install,
    pub installer_url: String,
}

/// An xNode's owner, domain, email and XnodeOS version: checked on the command line, given to
/// the installer, and reported with each node's result (its `xnode` facts).
#[derive(Debug, Clone, Serialize)]
pub struct Install {
    /// Normalised (`eth:` + 40 lowercase hex); `None` with `--no-owner`.
    pub owner: Option<String>,
    pub domain: Option<String>,
    pub email: Option<String>,
    pub version: String,
}

fn catalog_xnode(ctx: &Ctx) -> anyhow::Result<&XnodeBootstrap> {
    ctx.catalog.bootstrap.xnode.as_ref().ok_or_else(|| {
        bad_input(
            "the catalog has no [bootstrap.xnode] — restore catalog/xnode.toml, or drop --xnode",
        )
    })
}

/// A value as shown in an error: quoted, with control characters made visible.
fn shown(v: &str) -> String {
    format!("'{}'", v.escape_debug())
}

/// Check `value` against the catalog rule `key`; `raw` is what the user typed (for the message).
fn check(x: &XnodeBootstrap, key: &str, flag: &str, value: &str, raw: &str) -> anyhow::Result<()> {
    let rule = x.rules.get(key).ok_or_else(|| {
        bad_input(format!(
            "the catalog's [bootstrap.xnode.rules] has no rule for {key} — restore catalog/xnode.toml"
        ))
    })?;
    let re = regex::Regex::new(&rule.pattern).map_err(|e| {
        bad_input(format!(
            "the catalog's {key} pattern does not compile ({e}) — fix [bootstrap.xnode.rules.{key}]"
        ))
    })?;
    let too_long = rule.max_len > 0 && value.len() > rule.max_len;
    if too_long || !re.is_match(value) {
        return Err(bad_input(format!(
            "{flag} {} is not {} — values are checked, never escaped, so give one that matches",
            shown(raw),
            rule.rule
        )));
    }
    Ok(())
}

/// `0x…`/`eth:…` in any case → the catalog's prefix + lowercase hex, checked by the owner rule.
fn normalize_owner(x: &XnodeBootstrap, raw: &str) -> anyhow::Result<String> {
    let lower = raw.to_ascii_lowercase();
    let rest = x
        .owner
        .accept_prefixes
        .iter()
        .find_map(|p| lower.strip_prefix(&p.to_ascii_lowercase()));
    let normalized = match rest {
        Some(r) => format!("{}{r}", x.owner.prefix),
        // No accepted prefix: let the rule refuse it with its own words.
        None => lower.clone(),
    };
    check(x, "owner", "--owner", &normalized, raw)?;
    Ok(normalized)
}

/// The validated xNode values of a command line, or `None` without `--xnode`.
pub fn spec(ctx: &Ctx, a: &XnodeArgs) -> anyhow::Result<Option<Spec>> {
    if !a.xnode {
        return Ok(None);
    }
    let x = catalog_xnode(ctx)?;
    let owner = match (&a.owner, a.no_owner) {
        (Some(o), _) => Some(normalize_owner(x, o)?),
        (None, true) => None,
        (None, false) => {
            return Err(bad_input(
                "--xnode needs --owner ADDR (0x… or eth:…): an xNode without an owner serves its management API to anyone who reaches port 443 — give the wallet that should own it, or pass --no-owner to accept an open node",
            ))
        }
    };
    let checked = |key: &str, flag: &str, v: &Option<String>| -> anyhow::Result<Option<String>> {
        match v {
            Some(v) => check(x, key, flag, v, v).map(|_| Some(v.clone())),
            None => Ok(None),
        }
    };
    let domain = checked("domain", "--domain", &a.domain)?;
    let email = checked("email", "--email", &a.email)?;
    let version = a.xnode_version.clone().unwrap_or_else(|| x.version.clone());
    check(x, "version", "--xnode-version", &version, &version)?;
    let env = minijinja::Environment::new();
    let installer_url = env
        .render_str(&x.installer_url, minijinja::context! { version => version })
        .map_err(|e| anyhow::anyhow!("the catalog's xnode installer_url failed to render: {e}"))?;
    Ok(Some(Spec {
        install: Install {
            owner,
            domain,
            email,
            version,
        },
        installer_url,
    }))
}

/// Say once what an xNode deploy does that cannot be undone, and shout about a missing owner.
pub fn warn(ctx: &Ctx, spec: &Spec) {
    let Some(x) = &ctx.catalog.bootstrap.xnode else {
        return;
    };
    if !x.disk_warning.is_empty() {
        messages::warn(&x.disk_warning);
    }
    if spec.install.owner.is_none() {
        messages::danger(format!("--no-owner: this xNode gets NO owner; its management API (port {}, Host {}) will run commands for ANYONE who reaches it",
            x.probe.https_port, x.probe.manager_host));
    }
}

/// The user data of one node.
pub fn user_data(
    ctx: &Ctx,
    spec: &Spec,
    name: &str,
    provider: &str,
    region: &str,
    template: &str,
) -> anyhow::Result<String> {
    let x = catalog_xnode(ctx)?;
    let env = minijinja::Environment::new();
    env.render_str(
        &x.user_data,
        minijinja::context! {
            owner => spec.install.owner, domain => spec.install.domain, email => spec.install.email,
            version => spec.install.version, installer_url => spec.installer_url,
            name => name, provider => provider, region => region, template => template,
        },
    )
    .map_err(|e| anyhow::anyhow!("the catalog's xnode user_data template failed to render: {e}"))
}

/// The image an xNode gets on this provider for this template (`None`: the provider default).
pub fn image(p: &ProviderEntry, t: &Template) -> Option<String> {
    let x = p.meta.xnode.as_ref()?;
    t.features
        .iter()
        .find_map(|f| x.image_by_feature.get(f))
        .cloned()
        .or_else(|| (!x.image.is_empty()).then(|| x.image.clone()))
}

/// What smart selection must require of a template for an xNode.
pub fn needs(ctx: &Ctx, a: &XnodeArgs) -> Option<XnodeNeeds> {
    if !a.xnode {
        return None;
    }
    let x = ctx.catalog.bootstrap.xnode.as_ref()?;
    Some(XnodeNeeds {
        arch: x.arch.clone(),
        min_memory_gb: x.min_memory_gb,
    })
}

/// Refuse a template an xNode cannot run on (manual deploys), naming the reason.
pub fn check_template(ctx: &Ctx, a: &XnodeArgs, t: &Template) -> anyhow::Result<()> {
    let Some(n) = needs(ctx, a) else {
        return Ok(());
    };
    let x = catalog_xnode(ctx)?;
    match n.check(t) {
        Some(Reject::XnodeArch) => Err(bad_input(format!(
            "template '{}' is {}, and XnodeOS installers exist only for {} — pick an {} template for --xnode",
            t.id,
            t.arch_name(),
            x.arch.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", "),
            x.arch.first().map_or("x86_64", |a| a.as_str())
        ))),
        Some(_) => Err(bad_input(format!(
            "template '{}' has {} GB of memory, under the {} GB an xNode needs ({}) — pick a template with at least {} GB for --xnode",
            t.id,
            render::num(t.memory_gb),
            render::num(x.min_memory_gb),
            x.min_memory_source,
            render::num(x.min_memory_gb)
        ))),
        None => Ok(()),
    }
}

/// The template variables an xNode create adds (`xnode = true`: catalog steps may test it).
pub fn create_vars() -> BTreeMap<String, Value> {
    BTreeMap::from([("xnode".to_string(), Value::Bool(true))])
}

// ---------------------------------------------------------------------------------------------
// The readiness ladder

/// How far an xNode has come (xnode.md §3). `Unprotected` sits at the level of `Protected`: the
/// manager answers, but without its login in front.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Created,
    Running,
    Installing,
    Tls,
    Unprotected,
    Protected,
    Certified,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Created => "created",
            Stage::Running => "running",
            Stage::Installing => "installing",
            Stage::Tls => "tls",
            Stage::Unprotected => "unprotected",
            Stage::Protected => "protected",
            Stage::Certified => "certified",
        }
    }

    fn level(self) -> u8 {
        match self {
            Stage::Created => 0,
            Stage::Running => 1,
            Stage::Installing => 2,
            Stage::Tls => 3,
            Stage::Unprotected | Stage::Protected => 4,
            Stage::Certified => 5,
        }
    }

    /// The last stage of the ladder for a node with or without a domain.
    fn is_final(self, domain: bool) -> bool {
        match self {
            Stage::Unprotected | Stage::Certified => true,
            Stage::Protected => !domain,
            _ => false,
        }
    }
}

/// What the probe needs, from the catalog (ports, names, timeouts).
#[derive(Debug, Clone)]
struct Probe {
    cfg: XnodeProbe,
    domain: Option<String>,
    timeout: Duration,
    interval: Duration,
}

impl Probe {
    fn new(x: &XnodeBootstrap, domain: Option<String>) -> Probe {
        let secs =
            |v: f64, d: f64| Duration::from_secs_f64(if v > 0.0 && v.is_finite() { v } else { d });
        Probe {
            cfg: x.probe.clone(),
            domain,
            timeout: secs(x.probe.timeout_seconds, 5.0),
            interval: secs(x.probe.interval_seconds, 10.0),
        }
    }

    fn total(&self) -> u8 {
        if self.domain.is_some() {
            5
        } else {
            4
        }
    }

    /// One sentence on a stage.
    fn describe(&self, stage: Stage, ip: Option<&str>) -> String {
        let c = &self.cfg;
        let ip = ip.unwrap_or("-");
        match stage {
            Stage::Created => {
                "the provider has not reported it running with a public IPv4 yet".into()
            }
            Stage::Running => format!("the provider reports it running at {ip}"),
            Stage::Installing => format!(
                "the installer runs (port {} closed, port {} not open yet)",
                c.ssh_port, c.https_port
            ),
            Stage::Tls => format!("port {} accepts TLS for {}", c.https_port, c.manager_host),
            Stage::Protected => format!(
                "the manager answers with a redirect to its login ({}): ready",
                c.auth_location
            ),
            Stage::Unprotected => {
                "the manager answers WITHOUT a login: its management API is open to anyone".into()
            }
            Stage::Certified => format!(
                "https://{} presents a valid certificate",
                self.domain.as_deref().unwrap_or("")
            ),
        }
    }

    fn line(&self, stage: Stage, ip: Option<&str>) -> String {
        format!(
            "stage {}/{} {}: {}",
            stage.level(),
            self.total(),
            stage.as_str(),
            self.describe(stage, ip)
        )
    }

    /// The network stage of a running node at `ip` (never below `Running`).
    async fn observe(&self, ip: IpAddr) -> Stage {
        let c = &self.cfg;
        let path = if c.path.is_empty() {
            "/"
        } else {
            c.path.as_str()
        };
        if let Ok(a) =
            crate::probe::https_get(ip, c.https_port, &c.manager_host, path, false, self.timeout)
                .await
        {
            {
                let to_login = (300..400).contains(&a.status)
                    && a.location.as_deref().is_some_and(|l| {
                        // Absolute or relative: the path must start with the login location.
                        let p = l
                            .find("://")
                            .map_or(l, |i| l[i + 3..].find('/').map_or("", |j| &l[i + 3 + j..]));
                        p.starts_with(&c.auth_location)
                    });
                if to_login {
                    if let Some(d) = &self.domain {
                        if crate::probe::https_get(ip, c.https_port, d, "/", true, self.timeout)
                            .await
                            .is_ok()
                        {
                            return Stage::Certified;
                        }
                    }
                    return Stage::Protected;
                }
                if (200..300).contains(&a.status) {
                    return Stage::Unprotected;
                }
                return Stage::Tls;
            }
        }
        if crate::probe::tls_handshake(ip, c.https_port, &c.manager_host, self.timeout)
            .await
            .is_ok()
        {
            return Stage::Tls;
        }
        if c.ssh_port != 0 && crate::probe::tcp_open(ip, c.ssh_port, self.timeout).await {
            return Stage::Running;
        }
        Stage::Installing
    }
}

/// One node on the ladder.
struct Climb {
    deploy_id: Option<String>,
    name: String,
    node: NodeRef,
    /// The credentials account of the node.
    account: String,
    ip: Option<String>,
    best: Stage,
}

/// A stage change reported by a climbing task.
struct Step {
    index: usize,
    stage: Stage,
    ip: Option<String>,
    /// The node was observed at this stage (`false` for a final timeout report).
    done: Option<Result<(), String>>,
}

/// Climb every node's ladder at once until each is final or the deadline passes. Each new
/// stage is recorded in history; returns the final stage of each node and its error.
fn climb_all(
    ctx: &Ctx,
    store: &dyn Store,
    probe: &Probe,
    owner: bool,
    climbs: &mut [Climb],
    timeout: Duration,
) -> anyhow::Result<Vec<Option<String>>> {
    let rt = ctx.runtime()?;
    let mut drivers: BTreeMap<(String, String), Driver> = BTreeMap::new();
    for c in climbs.iter() {
        let key = (c.node.provider.clone(), c.account.clone());
        if let std::collections::btree_map::Entry::Vacant(slot) = drivers.entry(key) {
            slot.insert(ctx.driver_for(&c.node.provider, &c.account)?);
        }
    }
    let multi = (ctx.interactive && ctx.format() == OutputFormat::Table)
        .then(indicatif::MultiProgress::new);
    let bars: Vec<Option<indicatif::ProgressBar>> = climbs
        .iter()
        .map(|c| {
            multi.as_ref().map(|m| {
                let b = m.add(indicatif::ProgressBar::new_spinner());
                b.set_message(format!(
                    "{}: {}",
                    c.name,
                    probe.line(c.best, c.ip.as_deref())
                ));
                b.enable_steady_tick(Duration::from_millis(200));
                b
            })
        })
        .collect();
    let mut errors: Vec<Option<String>> = vec![None; climbs.len()];
    let started = std::time::Instant::now();
    rt.block_on(async {
        // Every node is watched at once: a watch mostly sleeps, and each has its own deadline.
        let mut engine: Engine<Step, ()> =
            Engine::new(tokio::runtime::Handle::current(), climbs.len());
        for (index, c) in climbs.iter().enumerate() {
            let driver = drivers[&(c.node.provider.clone(), c.account.clone())].clone();
            let nref = c.node.clone();
            let mut ip = c.ip.clone();
            let mut best = c.best;
            let probe = probe.clone();
            engine.push(move |tx| async move {
                let deadline = tokio::time::Instant::now() + timeout;
                let domain = probe.domain.is_some();
                loop {
                    let mut seen = best;
                    if best < Stage::Running || ip.is_none() {
                        if let Ok(n) = driver.get(&nref).await {
                            if n.state == NodeState::Running && n.ipv4.is_some() {
                                ip = n.ipv4.clone();
                                seen = seen.max(Stage::Running);
                                // Stage 1 is the provider's word: recorded before the network is asked.
                                if best < Stage::Running {
                                    best = Stage::Running;
                                    tx.report(Step { index, stage: best, ip: ip.clone(), done: None });
                                }
                            }
                        }
                    }
                    if let Some(addr) = ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok()) {
                        seen = seen.max(probe.observe(addr).await);
                    }
                    if seen > best || (seen == Stage::Unprotected && best != seen) {
                        best = seen;
                        tx.report(Step { index, stage: best, ip: ip.clone(), done: None });
                    }
                    if best.is_final(domain) {
                        tx.report(Step { index, stage: best, ip: ip.clone(), done: Some(Ok(())) });
                        return;
                    }
                    if tokio::time::Instant::now() + probe.interval > deadline {
                        tx.report(Step {
                            index,
                            stage: best,
                            ip: ip.clone(),
                            done: Some(Err(String::new())),
                        });
                        return;
                    }
                    tokio::time::sleep(probe.interval).await;
                }
            });
        }
        while let Some(event) = engine.next().await {
            let step = match event {
                Event::Report { event, .. } => event,
                Event::Done { result: Ok(()), .. } => continue,
                Event::Done {
                    index,
                    result: Err(lost),
                } => {
                    // A watch that stopped early fails its node only.
                    if let Some(b) = &bars[index] {
                        b.finish();
                    }
                    errors[index] = Some(format!("{}: {lost}", climbs[index].name));
                    continue;
                }
            };
            let c = &mut climbs[step.index];
            c.ip = step.ip.clone().or(c.ip.clone());
            let elapsed = started.elapsed().as_secs();
            let when = format!("{}m{:02}s", elapsed / 60, elapsed % 60);
            match step.done {
                None => {
                    c.best = step.stage;
                    let line = probe.line(step.stage, c.ip.as_deref());
                    let outcome = if step.stage == Stage::Unprotected && owner {
                        Outcome::Failed
                    } else {
                        Outcome::Ok
                    };
                    if let Some(d) = &c.deploy_id {
                        if step.stage == Stage::Running {
                            // The provider's running state and address, as `deploy --wait` records them.
                            let seen = Observation {
                                status: Some(NodeStatus::Running),
                                ipv4: c.ip.clone().map(Some),
                                ..Observation::default()
                            };
                            if let Err(e) = store.record_observation(d, &seen, Action::Deploy, "") {
                                messages::info(format!("could not record the node's address: {e}"));
                            }
                        }
                        if let Err(e) = store.record_action(Some(d), Action::Xnode, outcome, &line) {
                            messages::info(format!("could not record a stage: {e}"));
                        }
                    }
                    match &bars[step.index] {
                        Some(b) => b.set_message(format!("{}: {line} (after {when})", c.name)),
                        None => messages::info(format!("{}: {line} (after {when})", c.name)),
                    }
                }
                Some(Ok(())) => {
                    if step.stage == Stage::Unprotected && owner {
                        errors[step.index] = Some(format!(
                            "{} answers without a login although it was given an owner: the installer did not take the owner — do not use it; reinstall or delete it",
                            c.name
                        ));
                    }
                    if let Some(b) = &bars[step.index] {
                        b.finish();
                    }
                }
                Some(Err(_)) => {
                    let msg = format!(
                        "{} was not ready within {}: last stage reached {}/{} {} ({})",
                        c.name,
                        crate::duration::format(timeout),
                        c.best.level(),
                        probe.total(),
                        c.best.as_str(),
                        probe.describe(c.best, c.ip.as_deref())
                    );
                    if let Some(d) = &c.deploy_id {
                        let _ = store.record_action(Some(d), Action::Xnode, Outcome::Failed, &format!("readiness timed out at stage {}", c.best.as_str()));
                    }
                    if let Some(b) = &bars[step.index] {
                        b.finish();
                    }
                    errors[step.index] = Some(msg);
                }
            }
        }
    });
    Ok(errors)
}

/// The history message of an install (read back by `status --probe` for the domain).
fn install_message(spec: &Spec) -> String {
    format!(
        "installer {} owner={} domain={} email={}",
        spec.install.version,
        spec.install.owner.as_deref().unwrap_or("NONE"),
        spec.install.domain.as_deref().unwrap_or("-"),
        spec.install.email.as_deref().unwrap_or("-"),
    )
}

/// The `next_step` sentence for a node.
fn next_step(ctx: &Ctx, spec: &Spec, ip: Option<&str>) -> String {
    let Some(x) = &ctx.catalog.bootstrap.xnode else {
        return String::new();
    };
    minijinja::Environment::new()
        .render_str(
            &x.next_step,
            minijinja::context! { ip => ip.unwrap_or("(not known yet)"), domain => spec.install.domain, owner => spec.install.owner },
        )
        .unwrap_or_default()
}

/// The xNode facts of a result row (`xnode` in the JSON of `deploy --xnode` and `reinstall`).
#[derive(Debug, Clone, Serialize)]
pub struct XnodeFacts {
    #[serde(flatten)]
    pub install: Install,
    pub next_step: String,
    /// With `--wait-ready`: the ladder stage reached, and whether it is the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready: Option<bool>,
}

/// A result row an xNode install reads and fills in (deploy's and reinstall's rows).
pub trait XnodeRow {
    fn name(&self) -> &str;
    fn provider(&self) -> &str;
    fn region(&self) -> Option<&str>;
    fn id(&self) -> Option<&str>;
    fn deploy_id(&self) -> Option<&str>;
    fn ipv4(&mut self) -> &mut Option<String>;
    fn error(&mut self) -> &mut Option<String>;
    fn xnode(&mut self) -> &mut Option<XnodeFacts>;
}

/// One row of `reinstall`'s JSON: the node and its xNode facts.
#[derive(Debug, Clone, Serialize)]
struct ReinstallRow {
    name: String,
    provider: String,
    region: Option<String>,
    id: String,
    ipv4: Option<String>,
    deploy_id: Option<String>,
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    xnode: Option<XnodeFacts>,
}

impl XnodeRow for ReinstallRow {
    fn name(&self) -> &str {
        &self.name
    }
    fn provider(&self) -> &str {
        &self.provider
    }
    fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }
    fn id(&self) -> Option<&str> {
        Some(&self.id)
    }
    fn deploy_id(&self) -> Option<&str> {
        self.deploy_id.as_deref()
    }
    fn ipv4(&mut self) -> &mut Option<String> {
        &mut self.ipv4
    }
    fn error(&mut self) -> &mut Option<String> {
        &mut self.error
    }
    fn xnode(&mut self) -> &mut Option<XnodeFacts> {
        &mut self.xnode
    }
}

/// After an xNode deploy: record the install of each created node, climb the ladder with
/// `--wait-ready`, and put the xNode facts in each result row. Returns how many nodes failed.
pub fn finish<R: XnodeRow>(
    ctx: &Ctx,
    store: &dyn Store,
    spec: &Spec,
    rows: &mut [R],
    wait_ready: bool,
    timeout: Duration,
) -> anyhow::Result<usize> {
    let x = catalog_xnode(ctx)?;
    let probe = Probe::new(x, spec.install.domain.clone());
    let mut climbs = Vec::new();
    let mut row_of = Vec::new();
    for (i, row) in rows.iter_mut().enumerate() {
        let (Some(id), None) = (row.id().map(str::to_string), row.error().clone()) else {
            continue;
        };
        let deploy_id = row.deploy_id().map(str::to_string);
        if let Some(d) = &deploy_id {
            store.record_action(Some(d), Action::Xnode, Outcome::Ok, &install_message(spec))?;
        }
        let provider = row.provider().to_string();
        let region = row.region().filter(|r| !r.is_empty()).map(str::to_string);
        let record = store.node_by_deploy_id(row.deploy_id().unwrap_or_default())?;
        climbs.push(Climb {
            deploy_id,
            name: row.name().to_string(),
            account: super::nodes::account_of(ctx, record.as_ref()).to_string(),
            node: NodeRef {
                provider,
                id,
                region,
                variant: record.map(|r| r.api_variant).unwrap_or_default(),
            },
            ip: row.ipv4().clone(),
            best: Stage::Created,
        });
        row_of.push(i);
    }
    let mut failures = 0;
    let errors = if wait_ready && !climbs.is_empty() {
        climb_all(
            ctx,
            store,
            &probe,
            spec.install.owner.is_some(),
            &mut climbs,
            timeout,
        )?
    } else {
        vec![None; climbs.len()]
    };
    for ((c, i), err) in climbs.iter().zip(row_of).zip(errors) {
        let row = &mut rows[i];
        if c.ip.is_some() {
            *row.ipv4() = c.ip.clone();
        }
        *row.xnode() = Some(XnodeFacts {
            install: spec.install.clone(),
            next_step: next_step(ctx, spec, c.ip.as_deref()),
            stage: wait_ready.then(|| c.best.as_str()),
            ready: wait_ready
                .then(|| err.is_none() && c.best.is_final(spec.install.domain.is_some())),
        });
        if let Some(e) = err {
            failures += 1;
            *row.error() = Some(e);
        }
    }
    Ok(failures)
}

/// The readiness errors of the rows, one line each.
pub fn report_not_ready<R: XnodeRow>(rows: &mut [R]) {
    for row in rows {
        if row.xnode().is_some() {
            if let Some(e) = row.error() {
                messages::info(e);
            }
        }
    }
}

/// After the result table: each xNode's address, owner, domain and what to do next.
pub fn print_summary<R: XnodeRow>(rows: &mut [R]) -> std::io::Result<()> {
    let mut out = stdout();
    for row in rows {
        let ip = row.ipv4().clone();
        let name = row.name().to_string();
        let Some(x) = row.xnode().as_ref() else {
            continue;
        };
        writeln!(
            out,
            "xNode {}: IP {}, owner {}, domain {}{}",
            name,
            ip.as_deref().unwrap_or("(not known yet)"),
            x.install.owner.as_deref().unwrap_or("NONE (unprotected)"),
            x.install.domain.as_deref().unwrap_or("-"),
            x.stage.map(|s| format!(", stage {s}")).unwrap_or_default(),
        )?;
        if !x.next_step.is_empty() {
            writeln!(out, "  next: {}", x.next_step)?;
        }
    }
    Ok(())
}

/// The latest recorded ladder stage of each node (`inventory`), by deploy id.
pub fn recorded_stages(store: &dyn Store) -> anyhow::Result<BTreeMap<String, String>> {
    let events = store.events(&EventFilter {
        action: Some(Action::Xnode),
        ..EventFilter::default()
    })?;
    let mut out = BTreeMap::new();
    for e in events {
        let Some(d) = e.deploy_id else { continue };
        let mut words = e.message.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("stage"), Some(_), Some(name)) => {
                out.insert(d, name.trim_end_matches(':').to_string());
            }
            (Some("installer"), _, _) => {
                out.insert(d, Stage::Created.as_str().to_string());
            }
            (Some("readiness"), _, _) => {}
            _ => {}
        }
    }
    Ok(out)
}

/// The domain recorded with a node's install, if any.
fn recorded_domain(store: &dyn Store, deploy_id: &str) -> anyhow::Result<Option<String>> {
    let events = store.events(&EventFilter {
        deploy_id: Some(deploy_id.to_string()),
        action: Some(Action::Xnode),
        ..EventFilter::default()
    })?;
    Ok(events
        .iter()
        .rev()
        .find(|e| e.message.starts_with("installer "))
        .and_then(|e| {
            e.message
                .split_whitespace()
                .find_map(|w| w.strip_prefix("domain="))
                .filter(|d| *d != "-")
                .map(str::to_string)
        }))
}

/// `status NODE --probe`: one look at the node's ladder stage, recorded when it is new.
pub fn status_probe(ctx: &Ctx, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let x = catalog_xnode(ctx)?;
    let store = open_store(ctx)?;
    let (nref, record) = resolve_node(ctx, store.as_ref(), &args.node.node)?;
    let domain = match &record {
        Some(r) => recorded_domain(store.as_ref(), &r.deploy_id)?,
        None => None,
    };
    let probe = Probe::new(x, domain);
    let driver = ctx.driver_for(
        &nref.provider,
        super::nodes::account_of(ctx, record.as_ref()),
    )?;
    let rt = ctx.runtime()?;
    let node = rt
        .block_on(driver.get(&nref))
        .map_err(super::nodes::driver_error)?;
    let ip = node.ipv4.clone();
    let stage = if node.state == NodeState::Running && ip.is_some() {
        match ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok()) {
            Some(addr) => rt.block_on(probe.observe(addr)).max(Stage::Running),
            None => Stage::Running,
        }
    } else {
        Stage::Created
    };
    let line = probe.line(stage, ip.as_deref());
    if let Some(r) = &record {
        let last = recorded_stages(store.as_ref())?.remove(&r.deploy_id);
        if last.as_deref() != Some(stage.as_str()) {
            store.record_action(Some(&r.deploy_id), Action::Xnode, Outcome::Ok, &line)?;
        }
    }
    let row = Probed {
        name: record.as_ref().map_or(&node.name, |r| &r.name),
        provider: &nref.provider,
        id: &nref.id,
        status: node.state.as_str(),
        ipv4: ip.as_deref(),
        stage: stage.as_str(),
        level: stage.level(),
        of: probe.total(),
        detail: probe.describe(stage, ip.as_deref()),
    };
    let cols = [
        col("name", "name", Kind::Text),
        col("provider", "provider", Kind::Text),
        col("id", "id", Kind::Text),
        col("status", "status", Kind::Status),
        col("ipv4", "ipv4", Kind::Text),
        col("stage", "stage", Kind::Text),
        col("detail", "detail", Kind::Text),
    ];
    render::listing(&mut stdout(), ctx.style, &cols, &[render::Row::of(&row)])?;
    if stage == Stage::Unprotected {
        messages::danger(format!(
            "{} serves its management API without a login: anyone who reaches it can run commands",
            nref.id
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `status NODE --probe` (one row): the node and the installer stage it reached, `level` of
/// `of`.
#[derive(Debug, Serialize)]
struct Probed<'a> {
    name: &'a str,
    provider: &'a str,
    id: &'a str,
    status: &'static str,
    ipv4: Option<&'a str>,
    stage: &'static str,
    level: u8,
    of: u8,
    detail: String,
}

// ---------------------------------------------------------------------------------------------
// reinstall

/// `reinstall NODE --xnode --owner …`: the provider's reinstall operation with new user data.
pub fn reinstall(ctx: &Ctx, args: &ReinstallArgs) -> anyhow::Result<ExitCode> {
    if !args.xnode.xnode {
        return Err(bad_input(
            "reinstall installs an xNode: pass --xnode --owner ADDR (it wipes the node's disks)",
        ));
    }
    let spec = spec(ctx, &args.xnode)?.ok_or_else(|| bad_input("pass --xnode"))?;
    let store = open_store(ctx)?;
    let (nref, record) = resolve_node(ctx, store.as_ref(), &args.node)?;
    let p = ctx.provider(&nref.provider)?;
    let op = p
        .meta
        .xnode
        .as_ref()
        .map(|x| x.reinstall.clone())
        .unwrap_or_default();
    if op.is_empty() {
        let why = p
            .meta
            .xnode
            .as_ref()
            .map(|x| x.no_reinstall_reason.clone())
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "it has no reinstall endpoint".to_string());
        return Err(bad_input(format!(
            "reinstall is not supported by {}: {why} — delete the node and deploy a new one with `capsule openmesh deploy --xnode`",
            p.id()
        )));
    }
    let template = record
        .as_ref()
        .and_then(|r| ctx.catalog.template(&r.template));
    if let Some(t) = template {
        check_template(ctx, &args.xnode, t)?;
    }
    let name = record
        .as_ref()
        .map(|r| r.name.clone())
        .unwrap_or_else(|| nref.id.clone());
    let user_data = user_data(
        ctx,
        &spec,
        &name,
        p.id(),
        record.as_ref().map_or("", |r| r.region.as_str()),
        template.map_or("", |t| t.id.as_str()),
    )?;
    let image = template
        .and_then(|t| image(p, t))
        .or_else(|| {
            p.meta
                .xnode
                .as_ref()
                .map(|x| x.image.clone())
                .filter(|i| !i.is_empty())
        })
        .unwrap_or_else(|| p.meta.default_image.clone());
    let mut vars = create_vars();
    vars.insert("user_data".into(), json!(user_data));
    vars.insert("image".into(), json!(image));
    vars.insert("name".into(), json!(name));
    vars.insert("hostname".into(), json!(name));
    let timeout = args.timeout;
    if args.dry_run {
        let driver = ctx.driver_for(
            &nref.provider,
            super::nodes::account_of(ctx, record.as_ref()),
        )?;
        let reqs = driver.render_invoke(&nref, &op, &vars)?;
        return print_requests(ctx, &name, &reqs);
    }
    warn(ctx, &spec);
    if !confirm(
        ctx,
        &format!(
            "Reinstall {name} ({} {}) as an xNode? This WIPES EVERY DISK of the server",
            nref.provider, nref.id
        ),
        "--yes",
    )? {
        messages::info("nothing reinstalled");
        return Ok(ExitCode::from(1));
    }
    let driver = ctx.driver_for(
        &nref.provider,
        super::nodes::account_of(ctx, record.as_ref()),
    )?;
    let rt = ctx.runtime()?;
    let deploy_id = record.as_ref().map(|r| r.deploy_id.clone());
    if let Some(d) = &deploy_id {
        store.record_action(
            Some(d),
            Action::Xnode,
            Outcome::Started,
            &format!("reinstall: {}", install_message(&spec)),
        )?;
    }
    let done = rt
        .block_on(async { tokio::time::timeout(timeout, driver.invoke(&nref, &op, &vars)).await });
    let result = match done {
        Ok(r) => r.map_err(super::nodes::driver_error),
        Err(_) => Err(anyhow::anyhow!(
            "the reinstall of {name} did not finish within {}",
            crate::duration::format(timeout)
        )),
    };
    if let Err(e) = result {
        if let Some(d) = &deploy_id {
            store.record_action(
                Some(d),
                Action::Xnode,
                Outcome::Failed,
                &format!("reinstall failed: {e}"),
            )?;
        }
        return Err(e);
    }
    let mut rows = vec![ReinstallRow {
        name: name.to_string(),
        provider: nref.provider.clone(),
        region: nref.region.clone(),
        id: nref.id.clone(),
        ipv4: record.as_ref().and_then(|r| r.ipv4.clone()),
        deploy_id: deploy_id.clone(),
        error: None,
        xnode: None,
    }];
    let failures = finish(
        ctx,
        store.as_ref(),
        &spec,
        &mut rows,
        args.xnode.wait_ready,
        timeout,
    )?;
    if ctx.format() == OutputFormat::Json {
        writeln!(stdout(), "{}", serde_json::to_string_pretty(&rows[0])?)?;
    } else {
        writeln!(
            stdout(),
            "reinstalling {name} ({}:{}) as an xNode",
            nref.provider,
            nref.id
        )?;
        print_summary(&mut rows)?;
    }
    if failures > 0 {
        if let Some(e) = &rows[0].error {
            messages::info(e);
        }
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_requests(ctx: &Ctx, name: &str, reqs: &[RenderedRequest]) -> anyhow::Result<ExitCode> {
    let mut out = stdout();
    if ctx.format() == OutputFormat::Json {
        let v = DryRun {
            dry_run: true,
            node: name,
            requests: reqs,
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        writeln!(out, "Would reinstall {name} as an xNode:")?;
        for r in reqs {
            super::deploy::write_request(&mut out, r)?;
        }
        writeln!(out, "Dry run: nothing was changed.")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `reinstall --xnode --dry-run -o json`: the requests that would be sent.
#[derive(Debug, Serialize)]
struct DryRun<'a> {
    dry_run: bool,
    node: &'a str,
    requests: &'a [RenderedRequest],
}
