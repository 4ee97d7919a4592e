//! The operations: create (with its idempotent retry), list (regions × variants, paging),
//! find_by_tag, get, start, stop, delete, steps around them, async action polling and waits.

use super::error::{excerpt, DriverError, ErrorKind, Hint};
use super::http::{backoff, Body, Mode, Prepared, Resp};
use super::outcome::{self, Certainty, CreateOutcome};
use super::tree;
use super::{Cleanup, CleanupState, Driver, Lifecycle, Node, NodeRef, NodeState, RenderedRequest};
use crate::catalog::schema::{ActionPoll, Operation, Paging, Step};
use base64::Engine as _;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Longest wait for a step's `wait_for` or an action to finish.
const STEP_WAIT: Duration = Duration::from_secs(20 * 60);
/// Guard against endless pagination: a listing still going after this many pages is an error.
const MAX_PAGES: usize = 1000;

/// The first node object a pointer reaches (the whole answer for an empty pointer).
fn first_node<'a>(value: &'a Value, pointer: &str) -> Option<&'a Value> {
    if pointer.is_empty() {
        return if value.is_null() { None } else { Some(value) };
    }
    tree::elements(value, pointer)
        .into_iter()
        .find(|v| v.is_object())
}

fn set(ctx: &mut Value, key: &str, value: impl Into<Value>) {
    if let Value::Object(m) = ctx {
        m.insert(key.to_string(), value.into());
    }
}

impl Driver {
    /// The operation `name` of `variant`, or the error that the catalog describes none.
    fn need_op(&self, variant: &str, name: &str) -> Result<&Operation, DriverError> {
        self.op(variant, name)
            .ok_or_else(|| self.no_op(name, variant))
    }

    /// `node` resolved (region and variant), its operation `name` (owned, as steps run on
    /// `self` while it is in use) and the node's template context.
    async fn node_op(
        &self,
        node: &NodeRef,
        name: &str,
    ) -> Result<(NodeRef, Operation, Value), DriverError> {
        let node = self.resolve_ref(node).await?;
        let op = self.need_op(&node.variant, name)?.clone();
        let ctx = self.node_ctx(&node);
        Ok((node, op, ctx))
    }

    fn no_op(&self, name: &str, variant: &str) -> DriverError {
        let v = if variant.is_empty() {
            String::new()
        } else {
            format!(" (variant '{variant}')")
        };
        DriverError::new(
            &self.inner.id,
            ErrorKind::Refused,
            format!("the catalog describes no `{name}` operation{v}"),
        )
    }

    fn default_region(&self) -> Option<String> {
        let p = &self.inner.provider;
        if let Some(r) = p.account_region(&self.inner.account) {
            return Some(r.to_string());
        }
        if !p.meta.default_region.is_empty() {
            Some(p.meta.default_region.clone())
        } else {
            p.regions.first().map(|r| r.id.clone())
        }
    }

    fn refuse_retired(&self) -> Result<(), DriverError> {
        let p = &self.inner.provider;
        if !p.is_retired() {
            return Ok(());
        }
        let st = &p.meta.status;
        let mut msg = if st.date.is_empty() {
            "this provider is retired and accepts no new servers".to_string()
        } else {
            format!(
                "this provider was retired on {} and accepts no new servers",
                st.date
            )
        };
        if !st.reason.is_empty() {
            msg = format!("{msg} ({})", st.reason);
        }
        let mut e = DriverError::new(&self.inner.id, ErrorKind::Refused, msg);
        if !st.suggestion.is_empty() {
            e.hint = Some(Box::new(Hint::Advice(st.suggestion.clone())));
        }
        Err(e)
    }

    /// The template context of a create. `random_password` is a fresh one-time secret for APIs
    /// that insist on a root password (keys are the way in); it is scrubbed from every log, and a
    /// dry run shows it as `(redacted)`.
    fn create_ctx(&self, req: &super::CreateRequest) -> Result<Value, DriverError> {
        self.create_ctx_with(req, true)
    }

    fn create_ctx_with(
        &self,
        req: &super::CreateRequest,
        real: bool,
    ) -> Result<Value, DriverError> {
        let p = &self.inner.provider;
        let region = if req.region.is_empty() {
            self.default_region().unwrap_or_default()
        } else {
            req.region.clone()
        };
        let mut m: Map<String, Value> = self.base_ctx(Some(&region));
        m.insert("name".into(), req.name.clone().into());
        m.insert("hostname".into(), req.name.clone().into());
        m.insert("plan".into(), req.plan.clone().into());
        m.insert("template".into(), req.template.clone().into());
        let image = req
            .image
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| p.meta.default_image.clone());
        m.insert("image".into(), image.into());
        m.insert("ssh_keys".into(), req.ssh_keys.clone().into());
        m.insert(
            "user_data".into(),
            req.user_data.clone().map_or(Value::Null, Value::String),
        );
        m.insert(
            "user_data_b64".into(),
            req.user_data.as_ref().map_or(Value::Null, |u| {
                base64::engine::general_purpose::STANDARD
                    .encode(u.as_bytes())
                    .into()
            }),
        );
        m.insert("deploy_id".into(), req.deploy_id.clone().into());
        for (k, v) in &req.vars {
            m.insert(k.clone(), v.clone());
        }
        let password = if real {
            let pw = random_password();
            self.inner.add_secret(&pw);
            pw
        } else {
            "(redacted)".to_string()
        };
        m.insert("random_password".into(), password.into());
        let mut ctx = Value::Object(m);
        p.api.tagging.parts().map_err(|e| {
            DriverError::new(
                &self.inner.id,
                ErrorKind::Refused,
                format!("the catalog's tagging.tag is unusable: {e}"),
            )
            .from_catalog()
        })?;
        set(&mut ctx, "tag", p.api.tagging.tag_for(&req.deploy_id));
        Ok(ctx)
    }

    fn rendered(&self, p: &Prepared) -> RenderedRequest {
        let mut headers = p.headers.clone();
        headers.extend(self.inner.auth.redacted_headers());
        RenderedRequest {
            method: p.method.to_string(),
            url: p.url.to_string(),
            headers,
            body: p.body.as_ref().map(Body::encode),
        }
    }

    /// The requests a create would send (the create itself and the steps around it), with auth
    /// headers shown as `(redacted)`; the node id of `after` steps is shown as `{id}`. No network.
    pub fn render_create(
        &self,
        req: &super::CreateRequest,
    ) -> anyhow::Result<Vec<RenderedRequest>> {
        self.refuse_retired()?;
        let variant = req.api_variant.as_str();
        let ctx = self.create_ctx_with(req, false)?;
        let op = self.need_op(variant, "create")?;
        let mut out = Vec::new();
        let step_req = |step: &Step, ctx: &Value| -> Result<RenderedRequest, DriverError> {
            let sop = self.need_op(variant, &step.operation)?;
            let mut c = ctx.clone();
            for (k, v) in &step.vars {
                set(&mut c, k, v.clone());
            }
            let mut r = self.rendered(&self.prepare(&step.operation, sop, &c)?);
            r.url = r.url.replace("%7Bid%7D", "{id}");
            Ok(r)
        };
        // Steps run in order; a value a step would save is shown as `{name}`.
        let mut ctx = ctx;
        for step in &op.before {
            if !self.step_applies(step, &ctx)? {
                continue;
            }
            out.push(step_req(step, &ctx)?);
            for var in step.save.keys() {
                set(&mut ctx, var, format!("{{{var}}}"));
            }
        }
        out.push(self.rendered(&self.prepare("create", op, &ctx)?));
        let mut after_ctx = ctx.clone();
        set(&mut after_ctx, "id", "{id}");
        for step in &op.after {
            if self.step_applies(step, &after_ctx)? {
                out.push(step_req(step, &after_ctx)?);
            }
        }
        Ok(out)
    }

    /// Whether a step's `when` condition holds over the context.
    fn step_applies(&self, step: &Step, ctx: &Value) -> Result<bool, DriverError> {
        if step.when.is_empty() {
            return Ok(true);
        }
        self.inner.renderer.truthy(&step.when, ctx).map_err(|e| {
            DriverError::new(
                &self.inner.id,
                ErrorKind::Refused,
                format!(
                    "step `{}`: condition `{}` fails: {e}",
                    step.operation, step.when
                ),
            )
            .from_catalog()
        })
    }

    /// Run a named node operation (and its steps) with extra variables: `reinstall` with new
    /// user data. `user_data` and `image` in `vars` also get their `_b64` forms.
    pub async fn invoke(
        &self,
        node: &super::NodeRef,
        name: &str,
        vars: &std::collections::BTreeMap<String, Value>,
    ) -> Result<(), DriverError> {
        let (node, op, mut ctx) = self.node_op(node, name).await?;
        let variant = node.variant.as_str();
        self.add_vars(&mut ctx, vars);
        // A rebuild may insist on a new root password, as a create does: one-time, scrubbed.
        let pw = random_password();
        self.inner.add_secret(&pw);
        set(&mut ctx, "random_password", pw);
        let saved = self
            .run_steps(&op.before, variant, &ctx, Some(&node))
            .await?;
        for (k, v) in saved {
            set(&mut ctx, &k, v);
        }
        self.call(variant, name, &ctx).await?;
        self.run_steps(&op.after, variant, &ctx, Some(&node))
            .await
            .map(|_| ())
    }

    /// The requests `invoke` would send, without the network (node steps' waits not shown).
    pub fn render_invoke(
        &self,
        node: &super::NodeRef,
        name: &str,
        vars: &std::collections::BTreeMap<String, Value>,
    ) -> anyhow::Result<Vec<RenderedRequest>> {
        let variant = node.variant.as_str();
        let op = self.need_op(variant, name)?;
        let mut ctx = self.node_ctx(node);
        self.add_vars(&mut ctx, vars);
        set(&mut ctx, "random_password", "(redacted)");
        let mut out = Vec::new();
        for step in op.before.iter() {
            if !self.step_applies(step, &ctx)? {
                continue;
            }
            let sop = self.need_op(variant, &step.operation)?;
            let mut c = ctx.clone();
            for (k, v) in &step.vars {
                set(&mut c, k, v.clone());
            }
            out.push(self.rendered(&self.prepare(&step.operation, sop, &c)?));
            for var in step.save.keys() {
                set(&mut ctx, var, format!("{{{var}}}"));
            }
        }
        out.push(self.rendered(&self.prepare(name, op, &ctx)?));
        Ok(out)
    }

    fn add_vars(&self, ctx: &mut Value, vars: &std::collections::BTreeMap<String, Value>) {
        for (k, v) in vars {
            set(ctx, k, v.clone());
            if k == "user_data" {
                if let Some(u) = v.as_str() {
                    set(
                        ctx,
                        "user_data_b64",
                        base64::engine::general_purpose::STANDARD.encode(u.as_bytes()),
                    );
                }
            }
        }
    }

    /// Create a node, then run the create's `after` steps. Never blindly retried: when the
    /// server may have acted, the node is looked up by its tag first, and a create is not sent
    /// again inside the provider's hidden window (see [`super::outcome`]).
    pub async fn create(&self, req: &super::CreateRequest) -> CreateOutcome {
        if let Err(e) = self.refuse_retired() {
            return CreateOutcome::Rejected(e);
        }
        let variant = req.api_variant.clone();
        let mut ctx = match self.create_ctx(req) {
            Ok(c) => c,
            Err(e) => return CreateOutcome::Rejected(e),
        };
        let tag = ctx["tag"].as_str().unwrap_or_default().to_string();
        let region_slug = ctx["region_slug"].as_str().unwrap_or_default().to_string();
        let Some(op) = self.op(&variant, "create").cloned() else {
            return CreateOutcome::Rejected(self.no_op("create", &variant));
        };
        // Nothing is created before the create call itself.
        match self.run_steps(&op.before, &variant, &ctx, None).await {
            Ok(saved) => {
                for (k, v) in saved {
                    set(&mut ctx, &k, v);
                }
            }
            Err(e) => return CreateOutcome::Rejected(e),
        }
        let prep = match self.prepare("create", &op, &ctx) {
            Ok(p) => p,
            Err(e) => return CreateOutcome::Rejected(e),
        };
        let max = self.inner.opts.max_attempts.max(1);
        let hidden =
            outcome::hidden_window(self.inner.provider.api.limits.hidden_after_create_seconds);
        let can_look_up = self.can_find_by_tag();
        let mut first_sent: Option<Instant> = None;
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            let sent = Instant::now();
            let first = *first_sent.get_or_insert(sent);
            let e = match self.send(&prep, Mode::Create).await {
                Ok(r) => break r,
                Err(e) => e,
            };
            if outcome::certainty(&e) == Certainty::NotCreated {
                return CreateOutcome::Rejected(e);
            }
            self.log(
                1,
                &format!("create may have reached the server ({e}); looking up tag {tag}"),
            );
            tokio::time::sleep(backoff(self.inner.opts.backoff_base, attempt)).await;
            match self.find_by_tag(&tag, Some(&region_slug)).await {
                Ok(Some(node)) => return self.finish_create(&op, &variant, &ctx, node, None).await,
                // A documented refusal (no capacity, say) answered with a 5xx: once the lookup
                // proves nothing was created, it is settled as the refusal it names, and sending
                // the same create again would only be refused again.
                Ok(None)
                    if e.refusal.is_some()
                        && outcome::may_resend(first.elapsed(), hidden, can_look_up) =>
                {
                    return CreateOutcome::Rejected(e)
                }
                Ok(None)
                    if attempt < max
                        && outcome::may_resend(first.elapsed(), hidden, can_look_up) =>
                {
                    continue
                }
                Ok(None) => return self.in_doubt(e, &tag, None, hidden),
                Err(lookup) => return self.in_doubt(e, &tag, Some(&lookup), hidden),
            }
        };
        // A 2xx: the server accepted the create. An answer that names no node is settled by a
        // lookup, never by creating again.
        let found = first_node(&resp.value, &op.node)
            .map(|obj| self.node_from(obj, &variant, Some(&region_slug)))
            .filter(|n| !n.id.is_empty());
        let node = match found {
            Some(n) => n,
            None => {
                let e = DriverError::new(
                    &self.inner.id,
                    ErrorKind::Api,
                    "the create was accepted but its answer names no node id",
                )
                .with_status(resp.status);
                match self.find_by_tag(&tag, Some(&region_slug)).await {
                    Ok(Some(n)) => n,
                    Ok(None) => return self.in_doubt(e, &tag, None, hidden),
                    Err(lookup) => return self.in_doubt(e, &tag, Some(&lookup), hidden),
                }
            }
        };
        let mut node = node;
        if node.name.is_empty() {
            node.name = req.name.clone();
        }
        if node.plan.is_empty() {
            node.plan = req.plan.clone();
        }
        if node.region.is_empty() {
            node.region = region_slug.clone();
        }
        if node.tag.is_none() && !tag.is_empty() {
            node.tag = Some(tag.clone());
        }
        if node.state == NodeState::Unknown && node.raw_status.is_empty() {
            node.state = NodeState::Pending;
        }
        self.finish_create(&op, &variant, &ctx, node, Some(&resp))
            .await
    }

    /// The create's async action (when `resp` is the create's own answer) and `after` steps of
    /// a node that exists: a failure leaves it in doubt with its id known.
    async fn finish_create(
        &self,
        op: &crate::catalog::schema::Operation,
        variant: &str,
        ctx: &Value,
        node: Node,
        resp: Option<&Resp>,
    ) -> CreateOutcome {
        let mut c = ctx.clone();
        set(&mut c, "id", node.id.clone());
        if let (Some(a), Some(resp)) = (&op.action, resp) {
            if let Err(e) = self.poll_action(variant, a, &c, resp, true).await {
                return CreateOutcome::InDoubt {
                    error: self.after_failed(&node, "create", e),
                    node: Some(node),
                };
            }
        }
        match self.after_create(&op.after, variant, &c, &node).await {
            Ok(()) => CreateOutcome::Created(node),
            Err(error) => CreateOutcome::InDoubt {
                error,
                node: Some(node),
            },
        }
    }

    /// An in-doubt outcome with what to do about it.
    fn in_doubt(
        &self,
        mut e: DriverError,
        tag: &str,
        lookup: Option<&DriverError>,
        hidden: Duration,
    ) -> CreateOutcome {
        e.in_doubt = true;
        let why = match lookup {
            Some(l) => format!("looking it up by tag '{tag}' failed ({l})"),
            None if !hidden.is_zero() => format!(
                "the provider may not list a new node for up to {} s, so tag '{tag}' was not found yet",
                hidden.as_secs()
            ),
            None => format!("tag '{tag}' was not found"),
        };
        e.hint = Some(Box::new(Hint::SettleByTag { why }));
        CreateOutcome::InDoubt {
            error: e,
            node: None,
        }
    }

    async fn after_create(
        &self,
        steps: &[Step],
        variant: &str,
        ctx: &Value,
        node: &Node,
    ) -> Result<(), DriverError> {
        if steps.is_empty() {
            return Ok(());
        }
        let nref = node.node_ref();
        self.run_steps(steps, variant, ctx, Some(&nref))
            .await
            .map(|_| ())
            .map_err(|e| self.after_failed(node, "a step after create", e))
    }

    fn after_failed(&self, node: &Node, what: &str, mut e: DriverError) -> DriverError {
        e.message = format!("created node {} but {what} failed: {}", node.id, e.message);
        e
    }

    /// Look a node up by its deploy tag (in one region when the API is regional and a region is
    /// given): lists the capsule nodes (`list_tag` = the managed tag, `tag` = this tag, so a
    /// catalog may filter on either) and matches `node.deploy_id` against `tag`. Deleted nodes
    /// are ignored.
    pub async fn find_by_tag(
        &self,
        tag: &str,
        region: Option<&str>,
    ) -> Result<Option<Node>, DriverError> {
        let api = &self.inner.provider.api;
        if !self.can_find_by_tag() {
            return Ok(None);
        }
        let region = if api.regional {
            region.filter(|r| !r.is_empty())
        } else {
            None
        };
        let nodes = self
            .list_nodes(&self.managed_tag(), Some(tag), region)
            .await?;
        Ok(nodes
            .into_iter()
            .find(|n| n.state != NodeState::Deleted && n.tag.as_deref() == Some(tag)))
    }

    /// Whether the catalog can find a node by its deploy tag (a lookup that finds nothing then
    /// means the provider does not list it).
    pub fn can_find_by_tag(&self) -> bool {
        tree::field_set(&self.inner.provider.api.node.deploy_id)
    }

    /// The provider's `limits.hidden_after_create_seconds`.
    pub fn hidden_after_create_seconds(&self) -> f64 {
        self.inner.provider.api.limits.hidden_after_create_seconds
    }

    /// The deploy tag of a deploy id under this provider's tag format.
    pub fn tag_for(&self, deploy_id: &str) -> String {
        self.inner.provider.api.tagging.tag_for(deploy_id)
    }

    /// Look a node up by its deploy id (its tag under the provider's format).
    pub async fn find_by_deploy_id(
        &self,
        deploy_id: &str,
        region: Option<&str>,
    ) -> Result<Option<Node>, DriverError> {
        self.find_by_tag(&self.tag_for(deploy_id), region).await
    }

    /// Every node: all regions (regional APIs) and every variant's list. `all = false` keeps the
    /// nodes capsule created (the managed tag, filtered by the server or by reading the tag).
    pub async fn list(&self, all: bool) -> Result<Vec<Node>, DriverError> {
        let api = &self.inner.provider.api;
        let list_tag = if all {
            String::new()
        } else {
            self.managed_tag()
        };
        let nodes = self.list_nodes(&list_tag, None, None).await?;
        if all || api.tagging.server_side_filter || !tree::field_set(&api.node.deploy_id) {
            return Ok(nodes);
        }
        Ok(nodes.into_iter().filter(|n| n.tag.is_some()).collect())
    }

    async fn list_nodes(
        &self,
        list_tag: &str,
        tag: Option<&str>,
        region: Option<&str>,
    ) -> Result<Vec<Node>, DriverError> {
        let p = &self.inner.provider;
        let mut variants: Vec<String> = Vec::new();
        if p.api.operations.contains_key("list") {
            variants.push(String::new());
        }
        variants.extend(
            p.api
                .variants
                .iter()
                .filter(|(_, ops)| ops.contains_key("list"))
                .map(|(n, _)| n.clone()),
        );
        if variants.is_empty() {
            return Err(self.no_op("list", ""));
        }
        let regions: Vec<Option<String>> = if p.api.regional {
            match region {
                Some(r) => vec![Some(r.to_string())],
                None => p.regions.iter().map(|r| Some(r.id.clone())).collect(),
            }
        } else {
            vec![None]
        };
        let mut set = tokio::task::JoinSet::new();
        let mut index = 0usize;
        for v in &variants {
            for r in &regions {
                let d = self.clone();
                let (v, r, lt, t) = (
                    v.clone(),
                    r.clone(),
                    list_tag.to_string(),
                    tag.map(str::to_string),
                );
                set.spawn(async move {
                    (
                        index,
                        d.list_pages(&v, r.as_deref(), &lt, t.as_deref()).await,
                    )
                });
                index += 1;
            }
        }
        let mut parts: Vec<(usize, Vec<Node>)> = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((i, Ok(nodes))) => parts.push((i, nodes)),
                Ok((_, Err(e))) => {
                    set.abort_all();
                    return Err(e);
                }
                Err(e) => {
                    set.abort_all();
                    return Err(DriverError::new(
                        &self.inner.id,
                        ErrorKind::Api,
                        format!("listing failed: {e}"),
                    ));
                }
            }
        }
        parts.sort_by_key(|(i, _)| *i);
        let mut seen = HashSet::new();
        Ok(parts
            .into_iter()
            .flat_map(|(_, n)| n)
            .filter(|n| seen.insert((n.region.clone(), n.id.clone())))
            .collect())
    }

    /// One list operation with its pagination.
    async fn list_pages(
        &self,
        variant: &str,
        region: Option<&str>,
        list_tag: &str,
        tag: Option<&str>,
    ) -> Result<Vec<Node>, DriverError> {
        let mut ctx = Value::Object(self.base_ctx(region));
        set(&mut ctx, "list_tag", list_tag);
        set(&mut ctx, "tag", tag.unwrap_or(""));
        let items = self.items("list", variant, &ctx).await?;
        Ok(items
            .iter()
            .filter(|v| v.is_object())
            .map(|v| self.node_from(v, variant, region))
            .collect())
    }

    /// The provider's live price list (`api.prices`, operation `prices`), in its currency, with
    /// the request it came from (`GET https://…/v2/sizes`, query and secrets left out).
    pub async fn prices(&self) -> Result<PriceList, DriverError> {
        let api = &self.inner.provider.api;
        let Some(fields) = &api.prices else {
            return Err(self.no_op("prices", ""));
        };
        let provider = &self.inner.provider;
        let scopes: Vec<Option<String>> = if fields.per_region {
            provider
                .regions
                .iter()
                .map(|r| Some(r.id.clone()))
                .collect()
        } else if api.regional {
            vec![self.default_region()]
        } else {
            vec![None]
        };
        let names: Vec<&str> = if fields.operations.is_empty() {
            vec!["prices"]
        } else {
            fields.operations.iter().map(String::as_str).collect()
        };
        // A keyed map (`{"DEV1-S": {…}}`) becomes one item per entry, its key at `/_key`.
        let expand = |v: Value| -> Vec<Value> {
            match v {
                Value::Object(m) if fields.keyed => m
                    .into_iter()
                    .map(|(k, mut e)| {
                        if let Value::Object(o) = &mut e {
                            o.insert("_key".into(), Value::String(k));
                        }
                        e
                    })
                    .collect(),
                other => vec![other],
            }
        };
        let num = |v: &Value, f: &crate::catalog::schema::Field| {
            tree::field(v, f)
                .and_then(|t| t.trim().parse::<f64>().ok())
                .filter(|x| x.is_finite() && *x > 0.0)
        };
        // One item as the plan it prices, as soon as it is read: the listing's pages and items
        // are dropped as they go, so only the mapped figures of a long list are held.
        let plan_of = |v: &Value, variant: &str| -> Option<PlanPrice> {
            let plan = tree::field(v, &fields.plan)?;
            // An item without the regions key says nothing about regions (not "nowhere").
            let says_regions = !fields.regions.is_empty()
                && tree::resolve_all(v, &fields.regions)
                    .iter()
                    .any(|x| x.is_array());
            let regions = says_regions.then(|| {
                let sold = fields.available.is_empty()
                    || tree::text_at(v, &fields.available).is_none_or(|t| t != "false");
                if !sold {
                    return Vec::new();
                }
                tree::elements(v, &fields.regions)
                    .into_iter()
                    .filter_map(|r| r.as_str().map(str::to_string))
                    .collect()
            });
            let region_prices = fields
                .region_prices
                .as_ref()
                .map(|rp| {
                    tree::elements(v, &rp.list)
                        .into_iter()
                        .filter_map(|e| {
                            let id = tree::text_at(e, &rp.region)?;
                            let h = tree::text_at(e, &rp.hourly)?.trim().parse::<f64>().ok()?;
                            (h.is_finite() && h > 0.0).then_some((id, h))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let specs = fields
                .specs
                .iter()
                .filter_map(|(k, ptr)| {
                    // A number, or a number with its unit (`"8 GiB"`).
                    let x = number_in(&tree::field(v, ptr)?, false)?;
                    let d = fields.spec_divisors.get(k).copied().unwrap_or(1.0);
                    (x.is_finite() && d > 0.0).then(|| (k.clone(), x / d))
                })
                .collect();
            Some(PlanPrice {
                plan,
                hourly: num(v, &fields.hourly),
                monthly: num(v, &fields.monthly),
                regions,
                region_prices,
                specs,
                variant: variant.to_string(),
            })
        };
        let mut sources: Vec<String> = Vec::new();
        let mut plans: Vec<PlanPrice> = Vec::new();
        for scope in &scopes {
            let ctx = Value::Object(self.base_ctx(scope.as_deref()));
            let region_id = scope
                .as_deref()
                .map(|s| provider.region_api_id(s).to_string());
            let stock: Option<std::collections::HashMap<String, String>> =
                match (&fields.availability, fields.per_region) {
                    (Some(av), true) => {
                        let mut m = std::collections::HashMap::new();
                        self.each_item(&av.operation, "", &ctx, |v| {
                            for e in expand(v) {
                                if let (Some(k), Some(val)) =
                                    (tree::text_at(&e, "/_key"), tree::text_at(&e, &av.value))
                                {
                                    m.insert(k, val);
                                }
                            }
                            Ok(())
                        })
                        .await?;
                        Some(m)
                    }
                    _ => None,
                };
            for name in &names {
                let op = self.need_op("", name)?;
                let prep = self.prepare(name, op, &ctx)?;
                let mut url = prep.url.clone();
                url.set_query(None);
                let src = format!("{} {url}", prep.method);
                if !sources.contains(&src) {
                    sources.push(src);
                }
                let variant = fields.variants.get(*name).cloned().unwrap_or_default();
                self.each_item(name, "", &ctx, |v| {
                    for mut e in expand(v) {
                        if let (Some(r), true, Value::Object(o)) =
                            (&region_id, fields.per_region, &mut e)
                        {
                            let key = o.get("_key").and_then(Value::as_str).unwrap_or_default();
                            let sold = match (&stock, &fields.availability) {
                                (Some(m), Some(av)) => {
                                    m.get(key).is_some_and(|s| av.sold.iter().any(|x| x == s))
                                }
                                _ => true,
                            };
                            let regions = if sold {
                                vec![Value::String(r.clone())]
                            } else {
                                vec![]
                            };
                            o.insert("_regions".into(), Value::Array(regions));
                        }
                        plans.extend(plan_of(&e, &variant));
                    }
                    Ok(())
                })
                .await?;
            }
        }
        let source = sources.join(", ");
        let plans = if fields.per_region {
            merge_regions(plans)
        } else {
            plans
        };
        Ok(PriceList {
            source,
            plans,
            regional: fields.per_region || fields.region_prices.is_some(),
        })
    }

    /// Every item of a listing operation, across its pages.
    pub(super) async fn items(
        &self,
        name: &str,
        variant: &str,
        ctx: &Value,
    ) -> Result<Vec<Value>, DriverError> {
        let mut out = Vec::new();
        self.each_item(name, variant, ctx, |v| {
            out.push(v);
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Every item of a listing operation, across its pages, handed to `each` while its page is
    /// held: each page is dropped before the next one is read, so a caller that keeps only what
    /// it maps out of an item holds one page at a time, never the whole listing. An error of
    /// `each` ends the listing with that error.
    pub(super) async fn each_item(
        &self,
        name: &str,
        variant: &str,
        ctx: &Value,
        mut each: impl FnMut(Value) -> Result<(), DriverError>,
    ) -> Result<(), DriverError> {
        let op = self.need_op(variant, name)?;
        let mut prep = self.prepare(name, op, ctx)?;
        let pg = &op.paging;
        if let Some((param, size)) = pg.size() {
            match (pg, prep.body.as_mut()) {
                (Paging::Token { .. }, Some(b)) => b.set_param(param, size.to_string().into()),
                _ => prep.set_query(param, &size.to_string()),
            }
        }
        let mut count: u64 = 0;
        let mut seen: HashSet<String> = HashSet::new();
        let mut page: u64 = 1;
        let mut pages = 0usize;
        // A listing that stops early is an error, never a shorter list: `sync` would read the
        // missing nodes as gone.
        let incomplete = |why: String| {
            DriverError::new(
                &self.inner.id,
                ErrorKind::Api,
                format!("the `{name}` listing stopped early: {why}; its result is incomplete"),
            )
        };
        let shown = |s: &str| excerpt(s, &self.inner.secrets(), 200);
        loop {
            if pages >= MAX_PAGES {
                return Err(incomplete(format!(
                    "it did not end after {MAX_PAGES} pages"
                )));
            }
            pages += 1;
            if let Paging::Page { page_param, .. } = pg {
                prep.set_query(page_param, &page.to_string());
            }
            let resp = self.send(&prep, Mode::Safe).await?;
            let value = self.read_value(name, &op.node, &resp, true)?;
            // An empty map (`{"servers": {}}`, a keyed list past its last page) is no item.
            let items: Vec<&Value> = tree::elements(value, &op.node)
                .into_iter()
                .filter(|v| !matches!(v, Value::Object(m) if m.is_empty()))
                .collect();
            let n = items.len();
            count += n as u64;
            for item in items {
                if op.items_are_json {
                    each(self.decode_item(name, item, resp.status)?)?;
                } else {
                    each(item.clone())?;
                }
            }
            match pg {
                Paging::None => break,
                Paging::Page {
                    size,
                    total_pages,
                    total,
                    ..
                } => {
                    if n == 0 {
                        break;
                    }
                    if !total_pages.is_empty() {
                        if let Some(tp) =
                            tree::text_at(value, total_pages).and_then(|t| t.parse::<u64>().ok())
                        {
                            if page >= tp {
                                break;
                            }
                            page += 1;
                            continue;
                        }
                    }
                    if let Some(total) = total_of(&resp, total) {
                        if count >= total {
                            break;
                        }
                    } else if *size > 0 && (n as u64) < u64::from(*size) {
                        break;
                    }
                    page += 1;
                }
                Paging::NextLink { next, .. } => {
                    let Some(next) = tree::text_at(value, next).filter(|s| !s.trim().is_empty())
                    else {
                        break;
                    };
                    if !seen.insert(next.clone()) {
                        return Err(incomplete(format!(
                            "the next-page link {} came back twice",
                            shown(&next)
                        )));
                    }
                    let url = prep.url.join(next.trim()).map_err(|e| {
                        incomplete(format!(
                            "the next-page link {} is not a URL ({e})",
                            shown(&next)
                        ))
                    })?;
                    prep.url = self.follow_link(&prep, url).map_err(|target| {
                        DriverError::new(
                            &self.inner.id,
                            ErrorKind::Api,
                            format!(
                                "the `{name}` listing's next-page link points to {}, another address than the API's; capsule sends credentials only to the API's own scheme, host and port",
                                shown(&target)
                            ),
                        )
                    })?;
                }
                Paging::Cursor {
                    next, cursor_param, ..
                }
                | Paging::Token {
                    next, cursor_param, ..
                } => {
                    let Some(token) = tree::text_at(value, next).filter(|s| !s.is_empty()) else {
                        break;
                    };
                    if !seen.insert(token.clone()) {
                        return Err(incomplete(
                            "the server sent the same page token twice".to_string(),
                        ));
                    }
                    let param = if cursor_param.is_empty() {
                        "cursor"
                    } else {
                        cursor_param.as_str()
                    };
                    match (pg, prep.body.as_mut()) {
                        (Paging::Token { .. }, Some(b)) => b.set_param(param, token.into()),
                        _ => prep.set_query(param, &token),
                    }
                }
            }
        }
        Ok(())
    }

    /// One list item that is a JSON document inside a string (`items_are_json`), parsed. Anything
    /// else (not a string, not JSON, not an object) is an error: the page is broken, and a
    /// listing never silently drops what it cannot read.
    fn decode_item(&self, name: &str, item: &Value, status: u16) -> Result<Value, DriverError> {
        let problem = match item {
            Value::String(text) => match serde_json::from_str::<Value>(text) {
                Ok(v) if v.is_object() => return Ok(v),
                Ok(_) => "holds a JSON document that is not an object".to_string(),
                Err(e) => format!(
                    "holds an item that is not a JSON document ({e}); it began: {}",
                    excerpt(text, &self.inner.secrets(), 80)
                ),
            },
            _ => "holds an item that is not a JSON document in a string".to_string(),
        };
        Err(DriverError::new(
            &self.inner.id,
            ErrorKind::Api,
            format!("the `{name}` answer {problem}"),
        )
        .with_status(status))
    }

    /// Where a next-page link may lead: the origin (scheme, host, port) of the request that
    /// brought it, or that of the catalog's URL it came from before an endpoint override. A link
    /// to the catalog's origin is moved to the override (its path prefix included); a link to
    /// the request's origin is followed as it is. `Err` is the refused link.
    fn follow_link(&self, prep: &Prepared, mut url: reqwest::Url) -> Result<reqwest::Url, String> {
        let same = |a: &reqwest::Url, b: &reqwest::Url| {
            a.scheme() == b.scheme()
                && a.host_str() == b.host_str()
                && a.port_or_known_default() == b.port_or_known_default()
        };
        let on_request = same(&url, &prep.url);
        if !on_request && !same(&url, &prep.api_url) {
            return Err(url.to_string());
        }
        if let (false, Some(ep)) = (on_request, &prep.endpoint) {
            super::http::apply_override(&mut url, ep, &prep.base_path);
        }
        Ok(url)
    }

    /// The parsed answer of a read (a list page, a get). An answer that does not parse, is
    /// empty, lacks the node pointer or (`list`) is not a list where the whole answer should be
    /// one is an error naming what came back, never "no servers".
    fn read_value<'a>(
        &self,
        name: &str,
        pointer: &str,
        resp: &'a Resp,
        list: bool,
    ) -> Result<&'a Value, DriverError> {
        let fail = |problem: String| {
            let t = resp.text.trim();
            let began = if t.is_empty() {
                String::new()
            } else {
                format!("; it began: {}", excerpt(t, &self.inner.secrets(), 120))
            };
            DriverError::new(
                &self.inner.id,
                ErrorKind::Api,
                format!("the `{name}` answer {problem}{began}"),
            )
            .with_status(resp.status)
        };
        if let Some(e) = &resp.parse_error {
            return Err(fail(format!("does not parse ({e})")));
        }
        let v = &resp.value;
        if v.is_null() {
            return Err(fail("is empty".to_string()));
        }
        if !tree::reaches(v, pointer) {
            return Err(fail(format!("has no `{pointer}`")));
        }
        if pointer.is_empty() {
            if list && !v.is_array() {
                return Err(fail("is not a list".to_string()));
            }
            if !list && v.as_object().is_none_or(|m| m.is_empty()) {
                return Err(fail("holds no node".to_string()));
            }
        }
        Ok(v)
    }

    fn node_ctx(&self, node: &NodeRef) -> Value {
        let mut m = self.base_ctx(node.region.as_deref());
        m.insert("id".into(), node.id.clone().into());
        Value::Object(m)
    }

    fn deleted(&self, node: &NodeRef) -> Node {
        Node {
            provider: self.inner.id.clone(),
            id: node.id.clone(),
            name: String::new(),
            region: node.region.clone().unwrap_or_default(),
            plan: String::new(),
            state: NodeState::Deleted,
            raw_status: String::new(),
            ipv4: None,
            created_at: None,
            tag: None,
            variant: node.variant.clone(),
        }
    }

    /// The node's current state; a node the API no longer knows comes back as `Deleted`.
    pub async fn get(&self, node: &NodeRef) -> Result<Node, DriverError> {
        let p = &self.inner.provider;
        if p.api.regional && node.region.as_deref().is_none_or(str::is_empty) {
            for r in &p.regions {
                let mut n = node.clone();
                n.region = Some(r.id.clone());
                let found = self.get_in(&n).await?;
                if found.state != NodeState::Deleted {
                    return Ok(found);
                }
            }
            return Ok(self.deleted(node));
        }
        self.get_in(node).await
    }

    async fn get_in(&self, node: &NodeRef) -> Result<Node, DriverError> {
        let op = self.need_op(&node.variant, "get")?;
        let ctx = self.node_ctx(node);
        match self.call_plain(&node.variant, "get", &ctx).await {
            Ok(resp) => match first_node(self.read_value("get", &op.node, &resp, false)?, &op.node)
            {
                Some(v) => {
                    let mut n = self.node_from(v, &node.variant, node.region.as_deref());
                    if n.id.is_empty() {
                        n.id = node.id.clone();
                    }
                    Ok(n)
                }
                None => Ok(self.deleted(node)),
            },
            Err(e) if e.kind == ErrorKind::NotFound => Ok(self.deleted(node)),
            Err(e) => Err(e),
        }
    }

    /// Fill in the region of a regional node that has none (by finding it).
    async fn resolve_ref(&self, node: &NodeRef) -> Result<NodeRef, DriverError> {
        if !self.inner.provider.api.regional
            || node.region.as_deref().is_some_and(|r| !r.is_empty())
        {
            return Ok(node.clone());
        }
        let found = self.get(node).await?;
        if found.state == NodeState::Deleted {
            return Err(DriverError::new(
                &self.inner.id,
                ErrorKind::NotFound,
                format!("node {} was not found in any region", node.id),
            ));
        }
        Ok(found.node_ref())
    }

    /// Power on, and follow the provider's action object until it finishes.
    pub async fn start(&self, node: &NodeRef) -> Result<(), DriverError> {
        self.request(node, Lifecycle::Start, true).await.map(drop)
    }

    /// Power off, and follow the provider's action object until it finishes.
    pub async fn stop(&self, node: &NodeRef) -> Result<(), DriverError> {
        self.request(node, Lifecycle::Stop, true).await.map(drop)
    }

    /// Delete, following the action object; a node already gone is fine. The cleanups the
    /// catalog declares are returned for the caller to run once the node is gone.
    pub async fn delete(&self, node: &NodeRef) -> Result<Vec<Cleanup>, DriverError> {
        match self.request(node, Lifecycle::Delete, true).await {
            Err(e) if e.kind == ErrorKind::NotFound => Ok(Vec::new()),
            r => r,
        }
    }

    /// Ask the provider to start, stop or delete a node. With `follow = false` this returns as
    /// soon as the provider accepted the request (an action object it returns is checked once,
    /// not polled); `follow = true` polls the action until it finishes. A node the provider does
    /// not have is an error of kind [`ErrorKind::NotFound`]. The operation's `before` steps run
    /// first, its `after` steps next; its `cleanup` steps are returned, one per element of the
    /// node as read before the call, to run once the node is gone ([`Driver::run_cleanup`]).
    pub async fn request(
        &self,
        node: &NodeRef,
        what: Lifecycle,
        follow: bool,
    ) -> Result<Vec<Cleanup>, DriverError> {
        let name = what.as_str();
        let (node, op, mut ctx) = self.node_op(node, name).await?;
        let variant = node.variant.as_str();
        // Steps that run per element of the node (`each`) read it before the operation; so does
        // any operation with cleanups, which must not be sent for a node that is not there.
        let steps = || op.before.iter().chain(&op.after).chain(&op.cleanup);
        if steps().any(|s| !s.each.is_empty()) || !op.cleanup.is_empty() {
            let raw = match self.call_plain(variant, "get", &ctx).await {
                Ok(resp) => resp.value,
                Err(e) if e.kind == ErrorKind::NotFound => {
                    return Err(self.not_found(&node));
                }
                Err(e) => return Err(e),
            };
            set(&mut ctx, "node", raw);
        }
        self.run_steps(&op.before, variant, &ctx, Some(&node))
            .await?;
        let resp = self.call_plain(variant, name, &ctx).await.map_err(|e| {
            if e.kind == ErrorKind::NotFound {
                self.not_found(&node)
            } else {
                e
            }
        })?;
        if let Some(a) = &op.action {
            self.poll_action(variant, a, &ctx, &resp, follow).await?;
        }
        self.run_steps(&op.after, variant, &ctx, Some(&node))
            .await?;
        let mut cleanups = Vec::new();
        for step in &op.cleanup {
            let items: Vec<Value> = if step.each.is_empty() {
                vec![Value::Null]
            } else {
                let raw = ctx.get("node").cloned().unwrap_or(Value::Null);
                tree::elements(&raw, &step.each)
                    .into_iter()
                    .cloned()
                    .collect()
            };
            for item in items {
                cleanups.push(Cleanup {
                    node: node.clone(),
                    operation: step.operation.clone(),
                    vars: step.vars.clone(),
                    item,
                });
            }
        }
        Ok(cleanups)
    }

    fn not_found(&self, node: &NodeRef) -> DriverError {
        let mut e = DriverError::new(
            &self.inner.id,
            ErrorKind::NotFound,
            format!("node {} not found at {}", node.id, self.inner.id),
        );
        e.status = Some(404);
        e
    }

    /// Run one pending cleanup: nothing while the node still exists ([`CleanupState::Waiting`]);
    /// once it is gone, the cleanup's operation. What it removes being gone already counts as
    /// done.
    pub async fn run_cleanup(&self, c: &Cleanup) -> Result<CleanupState, DriverError> {
        if self.get(&c.node).await?.state != NodeState::Deleted {
            return Ok(CleanupState::Waiting);
        }
        let mut ctx = self.node_ctx(&c.node);
        for (k, v) in &c.vars {
            set(&mut ctx, k, v.clone());
        }
        if !c.item.is_null() {
            set(&mut ctx, "item", c.item.clone());
        }
        match self.call(&c.node.variant, &c.operation, &ctx).await {
            Ok(_) => Ok(CleanupState::Done),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(CleanupState::Done),
            Err(e) => Err(e),
        }
    }

    /// Poll until the node is in `want` (and has a public IPv4 when asked).
    pub async fn wait_for(
        &self,
        node: &NodeRef,
        want: NodeState,
        need_ipv4: bool,
        timeout: Duration,
    ) -> Result<Node, DriverError> {
        let deadline = Instant::now() + timeout;
        let interval = self.poll_interval();
        let mut nref = node.clone();
        let mut last = String::from("unknown");
        let mut seen_alive = false;
        loop {
            match self.get(&nref).await {
                Ok(n) => {
                    if nref.region.is_none() && !n.region.is_empty() {
                        nref.region = Some(n.region.clone());
                    }
                    if n.state == want && (!need_ipv4 || n.ipv4.is_some()) {
                        return Ok(n);
                    }
                    if n.state == NodeState::Error && want != NodeState::Error {
                        return Err(DriverError::new(
                            &self.inner.id,
                            ErrorKind::Api,
                            format!("node {} entered the error state ({})", n.id, n.raw_status),
                        ));
                    }
                    if n.state == NodeState::Deleted && seen_alive && want != NodeState::Deleted {
                        return Err(DriverError::new(
                            &self.inner.id,
                            ErrorKind::NotFound,
                            format!("node {} was deleted", n.id),
                        ));
                    }
                    if n.state != NodeState::Deleted {
                        seen_alive = true;
                    }
                    last = if n.raw_status.is_empty() {
                        n.state.to_string()
                    } else {
                        format!("{} ({})", n.state, n.raw_status)
                    };
                }
                Err(e) if e.is_transient() => last = format!("{last}; last error: {e}"),
                Err(e) => return Err(e),
            }
            if Instant::now() + interval > deadline {
                let what = if need_ipv4 {
                    format!("{want} with a public IPv4")
                } else {
                    want.to_string()
                };
                return Err(DriverError::new(
                    &self.inner.id,
                    ErrorKind::Timeout,
                    format!(
                        "node {} did not reach {what} within {} s (last: {last})",
                        node.id,
                        timeout.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// Prepare and send one operation (no action polling, no steps).
    pub(super) async fn call_plain(
        &self,
        variant: &str,
        name: &str,
        ctx: &Value,
    ) -> Result<Resp, DriverError> {
        let op = self.need_op(variant, name)?;
        let prep = self.prepare(name, op, ctx)?;
        self.send(&prep, Mode::Safe).await
    }

    /// One operation and the async action it returns, if the catalog says so.
    async fn call(&self, variant: &str, name: &str, ctx: &Value) -> Result<Resp, DriverError> {
        let resp = self.call_plain(variant, name, ctx).await?;
        if let Some(a) = self.op(variant, name).and_then(|o| o.action.as_ref()) {
            self.poll_action(variant, a, ctx, &resp, true).await?;
        }
        Ok(resp)
    }

    /// Follow every action the answer names (`action.id` may point at several): each one is
    /// checked in the answer (the first) or fetched until it is done, failed, or the one
    /// deadline for them all passes.
    async fn poll_action(
        &self,
        variant: &str,
        action: &ActionPoll,
        ctx: &Value,
        resp: &Resp,
        follow: bool,
    ) -> Result<(), DriverError> {
        let mut ids: Vec<String> = Vec::new();
        for ptr in &action.id {
            for v in tree::resolve_all(&resp.value, ptr) {
                if let Some(id) = tree::text(v).filter(|s| !s.is_empty()) {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
        }
        let deadline = Instant::now() + STEP_WAIT;
        for (i, aid) in ids.iter().enumerate() {
            let answer = (i == 0).then_some(&resp.value);
            self.follow_action(variant, action, ctx, answer, aid, follow, deadline)
                .await?;
        }
        Ok(())
    }

    /// One action: done when `answer` (the operation's own answer, for the first action) says
    /// so, else fetched with the action operation until it is done or failed.
    #[allow(clippy::too_many_arguments)]
    async fn follow_action(
        &self,
        variant: &str,
        action: &ActionPoll,
        ctx: &Value,
        answer: Option<&Value>,
        aid: &str,
        follow: bool,
        deadline: Instant,
    ) -> Result<(), DriverError> {
        let is_in = |list: &[String], s: &str| list.iter().any(|x| x.eq_ignore_ascii_case(s));
        let check = |v: &Value| -> Option<Result<(), DriverError>> {
            let st = tree::text_at(v, &action.status)?;
            if is_in(&action.done, &st) {
                Some(Ok(()))
            } else if is_in(&action.failed, &st) {
                Some(Err(DriverError::new(
                    &self.inner.id,
                    ErrorKind::Api,
                    format!("action {aid} ended as '{st}'"),
                )))
            } else {
                None
            }
        };
        if let Some(r) = answer.and_then(check) {
            return r;
        }
        if action.operation.is_empty() || !follow {
            return Ok(());
        }
        let mut c = ctx.clone();
        set(&mut c, "action_id", aid.to_string());
        let interval = self.poll_interval();
        loop {
            tokio::time::sleep(interval).await;
            let r = self.call_plain(variant, &action.operation, &c).await?;
            if let Some(r) = check(&r.value) {
                return r;
            }
            if Instant::now() + interval > deadline {
                return Err(DriverError::new(
                    &self.inner.id,
                    ErrorKind::Timeout,
                    format!(
                        "action {aid} did not finish within {} s",
                        STEP_WAIT.as_secs()
                    ),
                ));
            }
        }
    }

    /// Run `before`/`after` steps. A step is skipped when the node is in one of its `unless`
    /// states (or gone); an `optional` step's failure is logged and ignored.
    ///
    /// A step with a `when` condition runs only when it holds; the values a step `save`s are
    /// returned, and seen by the steps after it.
    async fn run_steps(
        &self,
        steps: &[Step],
        variant: &str,
        ctx: &Value,
        node: Option<&NodeRef>,
    ) -> Result<Map<String, Value>, DriverError> {
        let mut saved = Map::new();
        let mut ctx = ctx.clone();
        for step in steps {
            if !self.step_applies(step, &ctx)? {
                continue;
            }
            let ctx = &mut ctx;
            let saved = &mut saved;
            let result: Result<(), DriverError> = async {
                if let Some(n) = node {
                    if !step.unless.is_empty() {
                        let cur = self.get(n).await?;
                        if cur.state == NodeState::Deleted
                            || step.unless.iter().any(|&u| NodeState::from(u) == cur.state)
                        {
                            return Ok(());
                        }
                    }
                }
                let mut c = ctx.clone();
                for (k, v) in &step.vars {
                    set(&mut c, k, v.clone());
                }
                // One call, or one per element at `each` in the node read before.
                let items: Vec<Option<Value>> = if step.each.is_empty() {
                    vec![None]
                } else {
                    let raw = ctx.get("node").cloned().unwrap_or(Value::Null);
                    tree::elements(&raw, &step.each)
                        .into_iter()
                        .cloned()
                        .map(Some)
                        .collect()
                };
                for item in items {
                    let mut c = c.clone();
                    if let Some(item) = item {
                        set(&mut c, "item", item);
                    }
                    match self.call(variant, &step.operation, &c).await {
                        // The node (or this element of it) is already gone.
                        Err(e) if e.kind == ErrorKind::NotFound && node.is_some() => {
                            if step.each.is_empty() {
                                return Ok(());
                            }
                        }
                        Err(e) => return Err(e),
                        Ok(resp) => {
                            for (var, ptr) in &step.save {
                                let v = tree::text_at(&resp.value, ptr).unwrap_or_default();
                                set(ctx, var, v.clone());
                                saved.insert(var.clone(), Value::String(v));
                            }
                        }
                    }
                }
                if let (Some(want), Some(n)) = (step.wait_for, node) {
                    self.wait_for(n, want.into(), false, STEP_WAIT).await?;
                }
                Ok(())
            }
            .await;
            match result {
                Err(e) if step.optional => self.log(
                    1,
                    &format!("optional step `{}` failed: {e}", step.operation),
                ),
                Err(e) => return Err(e),
                Ok(()) => {}
            }
        }
        Ok(saved)
    }

    /// Check the credentials with the `verify` operation (or one list call when there is none).
    pub async fn verify(&self) -> Result<(), DriverError> {
        let region = self.default_region();
        if self.op("", "verify").is_some() {
            let ctx = Value::Object(self.base_ctx(region.as_deref()));
            self.call_plain("", "verify", &ctx).await.map(|_| ())
        } else {
            let variant = if self.op("", "list").is_some() {
                String::new()
            } else {
                self.inner
                    .provider
                    .api
                    .variants
                    .keys()
                    .next()
                    .cloned()
                    .unwrap_or_default()
            };
            let r = if self.inner.provider.api.regional {
                region
            } else {
                None
            };
            let op = self
                .op(&variant, "list")
                .ok_or_else(|| self.no_op("verify", ""))?;
            let mut ctx = Value::Object(self.base_ctx(r.as_deref()));
            set(&mut ctx, "list_tag", "");
            set(&mut ctx, "tag", "");
            let prep = self.prepare("list", op, &ctx)?;
            self.send(&prep, Mode::Safe).await.map(|_| ())
        }
    }
}

/// The total item count from a pointer or a `header:Name`.
fn total_of(resp: &Resp, spec: &str) -> Option<u64> {
    if spec.is_empty() {
        return None;
    }
    let text = match spec.strip_prefix("header:") {
        Some(h) => resp
            .headers
            .get(h.trim())
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        None => tree::text_at(&resp.value, spec),
    }?;
    text.trim().parse().ok()
}

/// A plan listed once per region (`per_region`) becomes one plan sold in the union of its
/// regions, at the first region's price; a region whose price differs from it gets a regional
/// price. A plan listed twice in one region keeps its first listing there.
fn merge_regions(plans: Vec<PlanPrice>) -> Vec<PlanPrice> {
    let mut merged: Vec<PlanPrice> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = Default::default();
    for p in plans {
        let here: Vec<String> = p.regions.clone().unwrap_or_default();
        let i = match index.get(&p.plan) {
            Some(&i) => i,
            None => {
                index.insert(p.plan.clone(), merged.len());
                merged.push(PlanPrice {
                    regions: p.regions.as_ref().map(|_| Vec::new()),
                    ..p.clone()
                });
                merged.len() - 1
            }
        };
        let m = &mut merged[i];
        for r in here {
            let regions = m.regions.get_or_insert_with(Vec::new);
            if regions.contains(&r) {
                continue;
            }
            regions.push(r.clone());
            let listed = m.region_prices.iter().any(|(x, _)| *x == r);
            if let (Some(h), Some(base), false) = (p.hourly, m.hourly, listed) {
                if (h - base).abs() > 1e-12 {
                    m.region_prices.push((r, h));
                }
            }
        }
    }
    merged
}

/// A provider's live price list and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceList {
    pub source: String,
    pub plans: Vec<PlanPrice>,
    /// The list states every regional price (none listed = none differs): a refresh replaces
    /// the template's regional prices instead of keeping them.
    pub regional: bool,
}

/// One plan's live price (`catalog refresh`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlanPrice {
    pub plan: String,
    pub hourly: Option<f64>,
    pub monthly: Option<f64>,
    /// Provider region ids where the plan is sold now (`None`: the list does not say; empty: nowhere).
    pub regions: Option<Vec<String>>,
    /// Provider region id → hourly price where it differs.
    pub region_prices: Vec<(String, f64)>,
    /// `cpu`, `memory_gb`, `storage_gb`, `bandwidth_tb` as the list states them.
    pub specs: std::collections::BTreeMap<String, f64>,
    /// The API variant that creates the plan (empty = the main operations).
    pub variant: String,
}

/// 32 characters from upper, lower, digits and symbols, at least one of each: strong enough for
/// any provider's root-password rules.
fn random_password() -> String {
    use rand::seq::SliceRandom;
    use rand::Rng;
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"-_.+=";
    let mut rng = rand::thread_rng();
    let all: Vec<u8> = [UPPER, LOWER, DIGIT, SYMBOL].concat();
    let mut chars: Vec<u8> = [UPPER, LOWER, DIGIT, SYMBOL]
        .iter()
        .map(|set| set[rng.gen_range(0..set.len())])
        .collect();
    while chars.len() < 32 {
        chars.push(all[rng.gen_range(0..all.len())]);
    }
    chars.shuffle(&mut rng);
    String::from_utf8(chars).unwrap_or_default()
}

#[cfg(test)]
mod password_tests {
    use super::random_password;

    #[test]
    fn random_passwords_are_strong_and_fresh() {
        let a = random_password();
        let b = random_password();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.chars().any(|c| c.is_ascii_uppercase()));
        assert!(a.chars().any(|c| c.is_ascii_lowercase()));
        assert!(a.chars().any(|c| c.is_ascii_digit()));
        assert!(a.chars().any(|c| "-_.+=".contains(c)));
    }
}

/// A product chosen for a template by `api.plan_lookup`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ResolvedPlan {
    pub plan: String,
    pub name: String,
    pub cpu: f64,
    pub memory_gb: f64,
    pub hourly: Option<f64>,
    /// The image its kind needs, when the catalog says so.
    pub image: Option<String>,
}

impl ResolvedPlan {
    pub fn describe(&self) -> String {
        let price = self.hourly.map(|h| format!(", {h}/h")).unwrap_or_default();
        format!(
            "product {} \"{}\" ({} cores, {} GB{price})",
            self.plan, self.name, self.cpu, self.memory_gb
        )
    }
}

/// The first number in a text (`"64GB"` → 64); with `gb`, an `MB`/`TB` unit is converted.
fn number_in(text: &str, gb: bool) -> Option<f64> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let n: f64 = rest[..end].parse().ok()?;
    if !gb {
        return Some(n);
    }
    let unit = rest[end..].trim_start().to_ascii_uppercase();
    Some(if unit.starts_with("MB") {
        n / 1024.0
    } else if unit.starts_with("TB") {
        n * 1024.0
    } else {
        n
    })
}

/// The image a product's kind needs (`plan_lookup.image_by`), when a rule applies to it.
fn image_of(lk: &crate::catalog::schema::PlanLookup, item: &Value) -> Option<String> {
    lk.image_by.iter().find_map(|(ptr, map)| {
        let got = tree::text_at(item, ptr)?;
        map.get(&got).cloned()
    })
}

impl Driver {
    /// The image the first deploy of live product `plan` chose for its kind (`image_by`), read
    /// again from the inventory: what `deploy --resume` sends so it makes the same choice.
    /// `Ok(None)`: the product's kind needs no particular image. A product the inventory no
    /// longer lists is an error (its kind, so its image, cannot be told).
    pub async fn plan_image(
        &self,
        plan: &str,
        region_slug: &str,
    ) -> Result<Option<String>, DriverError> {
        let p = &self.inner.provider;
        let Some(lk) = &p.api.plan_lookup else {
            return Err(self.no_op("plan_lookup", ""));
        };
        let (items, _) = self.inventory(Some(region_slug)).await?;
        let facility = p.region_api_id(region_slug);
        let same = |v: &&Value| tree::text_at(v, &lk.id).is_some_and(|id| id == plan);
        let here = |v: &&Value| {
            tree::text_at(v, &lk.region).is_some_and(|r| r.eq_ignore_ascii_case(facility))
        };
        let item = items
            .iter()
            .filter(same)
            .find(here)
            .or_else(|| items.iter().find(same));
        match item {
            Some(v) => Ok(image_of(lk, v)),
            None => {
                let mut e = DriverError::new(
                    &self.inner.id,
                    ErrorKind::Refused,
                    format!("product {plan} is no longer in the inventory, so the image its kind needs cannot be told"),
                );
                e.hint = Some(Box::new(Hint::Advice("name the image with --image".into())));
                Err(e)
            }
        }
    }

    /// The live product that fits `t` in `region_slug` and is in stock there: the smallest that
    /// fits (cores, then memory, then price). None fits: a refusal naming the nearest products.
    pub async fn resolve_plan(
        &self,
        t: &crate::catalog::schema::Template,
        region_slug: &str,
    ) -> Result<ResolvedPlan, DriverError> {
        let (items, _) = self.inventory(Some(region_slug)).await?;
        self.pick_product(&items, t, region_slug)
    }

    /// Every item of the `plan_lookup` listings, and the requests they came from.
    async fn inventory(
        &self,
        region_slug: Option<&str>,
    ) -> Result<(Vec<Value>, String), DriverError> {
        let p = &self.inner.provider;
        let Some(lk) = &p.api.plan_lookup else {
            return Err(self.no_op("plan_lookup", ""));
        };
        let ctx = Value::Object(self.base_ctx(region_slug));
        // Only the fields the lookup reads are kept of each item, as its page is read.
        let read: Vec<&str> = [
            &lk.id,
            &lk.name,
            &lk.region,
            &lk.stock,
            &lk.cpu,
            &lk.memory_gb,
            &lk.gpu,
            &lk.hourly,
            &lk.hourly_extra,
        ]
        .into_iter()
        .chain(lk.image_by.keys())
        .map(String::as_str)
        .filter(|p| !p.is_empty())
        .collect();
        let mut items = Vec::new();
        let mut sources = Vec::new();
        for name in &lk.operations {
            let op = self.need_op("", name)?;
            let prep = self.prepare(name, op, &ctx)?;
            sources.push(format!("{} {}", prep.method, prep.url));
            self.each_item(name, "", &ctx, |v| {
                items.push(tree::project(&v, &read));
                Ok(())
            })
            .await?;
        }
        Ok((items, sources.join(", ")))
    }

    /// Prices from the `plan_lookup` inventory (a provider without a price list): for each
    /// template, the product that fits it in each region, in stock; the template's price is the
    /// cheapest region's, the others are regional prices.
    pub async fn inventory_prices(
        &self,
        templates: &[crate::catalog::schema::Template],
    ) -> Result<PriceList, DriverError> {
        let (items, source) = self.inventory(None).await?;
        let p = &self.inner.provider;
        let mut plans = Vec::new();
        for t in templates {
            let mut found: Vec<(String, f64)> = Vec::new();
            for r in &p.regions {
                if let Ok(best) = self.pick_product(&items, t, &r.id) {
                    if let Some(h) = best.hourly.filter(|h| *h > 0.0) {
                        found.push((p.region_api_id(&r.id).to_string(), h));
                    }
                }
            }
            let hourly = found.iter().map(|x| x.1).reduce(f64::min);
            plans.push(PlanPrice {
                plan: t.plan.clone(),
                hourly,
                monthly: None,
                regions: Some(found.iter().map(|x| x.0.clone()).collect()),
                region_prices: found,
                specs: Default::default(),
                variant: String::new(),
            });
        }
        Ok(PriceList {
            source,
            plans,
            regional: true,
        })
    }

    /// The smallest product of `items` in stock in the region that fits `t`.
    fn pick_product(
        &self,
        items: &[Value],
        t: &crate::catalog::schema::Template,
        region_slug: &str,
    ) -> Result<ResolvedPlan, DriverError> {
        let p = &self.inner.provider;
        let Some(lk) = &p.api.plan_lookup else {
            return Err(self.no_op("plan_lookup", ""));
        };
        let facility = p.region_api_id(region_slug).to_string();
        let want_gpu = t.gpu.as_ref().map(|g| {
            // The model's distinctive token: "NVIDIA RTX 4090" → "4090".
            g.model
                .split_whitespace()
                .last()
                .unwrap_or_default()
                .to_ascii_lowercase()
        });
        let mut fits = Vec::new();
        let mut near = Vec::new();
        for v in items {
            let text = |ptr: &str| {
                if ptr.is_empty() {
                    None
                } else {
                    tree::text_at(v, ptr)
                }
            };
            let Some(id) = text(&lk.id) else { continue };
            let region = text(&lk.region).unwrap_or_default();
            if !region.eq_ignore_ascii_case(&facility) {
                continue;
            }
            let cpu = text(&lk.cpu)
                .and_then(|s| number_in(&s, false))
                .unwrap_or(0.0);
            let mem = text(&lk.memory_gb)
                .and_then(|s| number_in(&s, true))
                .unwrap_or(0.0);
            let gpu = text(&lk.gpu).unwrap_or_default().to_ascii_lowercase();
            let hourly = text(&lk.hourly)
                .and_then(|s| s.trim().parse::<f64>().ok())
                .map(|h| {
                    h + text(&lk.hourly_extra)
                        .and_then(|s| s.trim().parse::<f64>().ok())
                        .unwrap_or(0.0)
                });
            let stock = text(&lk.stock).unwrap_or_default();
            let in_stock = lk.in_stock.is_empty()
                || lk.in_stock.iter().any(|s| s.eq_ignore_ascii_case(&stock));
            let gpu_ok = match &want_gpu {
                Some(tok) => gpu.contains(tok.as_str()),
                None => gpu.trim().is_empty() || gpu == "none" || gpu == "n/a",
            };
            let image = image_of(lk, v);
            let r = ResolvedPlan {
                plan: id,
                name: text(&lk.name).unwrap_or_default(),
                cpu,
                memory_gb: mem,
                hourly,
                image,
            };
            if in_stock && gpu_ok && cpu >= f64::from(t.cpu) && mem + 1e-9 >= t.memory_gb {
                fits.push(r);
            } else if gpu_ok {
                let gap = (f64::from(t.cpu) - cpu).abs() / f64::from(t.cpu.max(1))
                    + (t.memory_gb - mem).abs() / t.memory_gb.max(1.0)
                    + if in_stock { 0.0 } else { 0.5 };
                near.push((gap, r, stock));
            }
        }
        fits.sort_by(|a, b| {
            a.cpu
                .total_cmp(&b.cpu)
                .then(a.memory_gb.total_cmp(&b.memory_gb))
                .then(
                    a.hourly
                        .unwrap_or(f64::MAX)
                        .total_cmp(&b.hourly.unwrap_or(f64::MAX)),
                )
                .then_with(|| a.plan.cmp(&b.plan))
        });
        if let Some(best) = fits.into_iter().next() {
            return Ok(best);
        }
        near.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.plan.cmp(&b.1.plan)));
        let names: Vec<String> = near
            .iter()
            .take(3)
            .map(|(_, r, stock)| format!("{} ({stock})", r.describe()))
            .collect();
        let mut e = DriverError::new(
            &self.inner.id,
            ErrorKind::Refused,
            format!(
                "no product in stock in {facility} fits template '{}' ({} cores, {} GB{})",
                t.id,
                t.cpu,
                t.memory_gb,
                t.gpu
                    .as_ref()
                    .map(|g| format!(", {}", g.model))
                    .unwrap_or_default()
            ),
        );
        e.hint = Some(Box::new(Hint::Advice(if names.is_empty() {
            format!("the inventory lists no such product in {facility}; try another region")
        } else {
            format!("nearest there: {}", names.join("; "))
        })));
        Err(e)
    }
}
