//! DigitalOcean API v2 (Droplets) wire format — facts from `reference/apis/digitalocean.md` and
//! the official OpenAPI spec.
//!
//! Models: `GET /v2/account`; `POST /v2/droplets` (202, single create, required name/size/image,
//! size/region/tag/name validation with the 422 `{"id","message"}` shape); `GET /v2/droplets`
//! (page/per_page ≤ 200, `links.pages.{first,prev,next,last}` absolute URLs, `meta.total`,
//! `?tag_name=`, GPU droplets only with `?type=gpus`); `GET/DELETE /v2/droplets/{id}`;
//! `DELETE /v2/droplets?tag_name=`; `POST /v2/droplets/{id}/actions` (power_on, shutdown,
//! power_off, reboot, power_cycle, rename → 201 action object) and `GET /v2/actions/{id}`
//! (in-progress → completed). Status `new → active`, `active → off → active`; the status does
//! not change until the action completes. networks.v4 lists the private address first, then
//! the public one once active. `ratelimit-*` headers on every answer.

use super::*;
use serde_json::json;

pub struct DigitalOcean;

/// Size slugs the mock accepts (current list prices in the reference, plus GPU sizes).
pub const SIZES: &[&str] = &[
    "s-1vcpu-512mb-10gb",
    "s-1vcpu-1gb",
    "s-1vcpu-2gb",
    "s-2vcpu-2gb",
    "s-2vcpu-4gb",
    "s-4vcpu-8gb",
    "s-8vcpu-16gb",
    "s-8vcpu-32gb-amd",
    "s-8vcpu-32gb-640gb-intel",
    "gpu-h100x1-80gb",
    "gpu-h100x8-640gb",
    "gpu-l40sx1-48gb",
    "gpu-4000adax1-20gb",
    "gpu-6000adax1-48gb",
    "gpu-mi300x1-192gb",
];

/// Region slugs the mock accepts.
pub const REGIONS: &[&str] = &[
    "nyc1", "nyc2", "nyc3", "sfo2", "sfo3", "ams3", "sgp1", "lon1", "fra1", "tor1", "blr1", "syd1",
    "atl1",
];

fn err(status: u16, id: &str, message: &str) -> Resp {
    Resp::json(
        status,
        json!({"id": id, "message": message, "request_id": "5c3a9e4e-0000-4000-8000-000000000000"}),
    )
}

fn not_found() -> Resp {
    err(
        404,
        "not_found",
        "The resource you requested could not be found.",
    )
}

fn unprocessable(message: &str) -> Resp {
    err(422, "unprocessable_entity", message)
}

impl Api for DigitalOcean {
    fn classify(&self, req: &Request) -> Op {
        let segs = req.segments();
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        match (req.method.as_str(), s.as_slice()) {
            ("GET", ["v2", "account"]) => Op::Verify,
            ("GET" | "POST", ["v2", "account", "keys"]) => Op::Key,
            ("POST", ["v2", "droplets"]) => Op::Create,
            ("GET", ["v2", "droplets"]) => Op::List,
            ("DELETE", ["v2", "droplets"]) if req.q("tag_name").is_some() => Op::Delete,
            ("GET", ["v2", "droplets", _]) => Op::Get,
            ("DELETE", ["v2", "droplets", _]) => Op::Delete,
            ("POST", ["v2", "droplets", _, "actions"]) => {
                match req.json().get("type").and_then(Value::as_str) {
                    Some("power_on") => Op::Start,
                    Some("shutdown" | "power_off") => Op::Stop,
                    Some("reboot" | "power_cycle") => Op::Reboot,
                    _ => Op::Other,
                }
            }
            ("GET", ["v2", "actions", _]) | ("GET", ["v2", "droplets", _, "actions", _]) => {
                Op::Poll
            }
            _ => Op::Unrouted,
        }
    }

    fn authorize(&self, req: &Request, cfg: &MockConfig) -> Result<(), Resp> {
        match bearer(req) {
            Some(t) if t == cfg.token => Ok(()),
            _ => Err(err(401, "unauthorized", "Unable to authenticate you.")),
        }
    }

    fn handle(&self, req: &Request, op: Op, cx: &mut Cx) -> Resp {
        match op {
            Op::Verify => account(),
            Op::Key => keys(req, cx),
            Op::Create => create(req, cx),
            Op::List => list(req, cx),
            Op::Get => match droplet_id(req).and_then(|id| cx.poll(&id)) {
                Some(n) => Resp::json(200, json!({"droplet": droplet(&n)})),
                None => not_found(),
            },
            Op::Delete => delete(req, cx),
            Op::Start | Op::Stop | Op::Reboot | Op::Other => action(req, cx),
            Op::Poll => get_action(req, cx),
            _ => not_found(),
        }
    }

    fn throttled(&self, cfg: &MockConfig) -> Resp {
        err(429, "too_many_requests", "API rate limit exceeded.")
            .header("retry-after", cfg.retry_after.to_string())
    }

    fn server_error(&self) -> Resp {
        err(500, "server_error", "Unexpected server-side error")
    }

    fn entered(&self, node: &mut Node, state: &str, ips: &mut IpPool) {
        if state == "active" {
            node.private_ip.get_or_insert_with(|| ips.private());
            let public =
                node.extra.get("public_networking").and_then(Value::as_bool) != Some(false);
            if public && node.ip.is_none() {
                node.ip = Some(ips.public());
            }
        }
    }

    fn running_state(&self) -> &'static str {
        "active"
    }

    fn seed(&self, spec: &NodeSpec, store: &mut Store, _cfg: &MockConfig) -> Node {
        let id = (500_000_000 + store.next_seq()).to_string();
        let mut n = Node::new(
            id,
            &spec.name,
            spec.plan.as_deref().unwrap_or("s-1vcpu-1gb"),
            spec.region.as_deref().unwrap_or("nyc3"),
            "active",
        );
        n.image = "ubuntu-24-04-x64".into();
        n.tags = spec.tags.clone();
        self.entered(&mut n, "active", &mut store.ips);
        if let Some(s) = &spec.status {
            n.status = s.clone();
        }
        n
    }

    fn credential_env(&self, cfg: &MockConfig) -> Vec<(String, String)> {
        vec![("DIGITALOCEAN_TOKEN".into(), cfg.token.clone())]
    }

    fn common_headers(&self, store: &Store) -> Vec<(String, String)> {
        let reset = now().unix_timestamp() + 3600;
        vec![
            ("ratelimit-limit".into(), "5000".into()),
            (
                "ratelimit-remaining".into(),
                5000u64.saturating_sub(store.counter).to_string(),
            ),
            ("ratelimit-reset".into(), reset.to_string()),
        ]
    }

    fn public_origin(&self) -> &'static str {
        "https://api.digitalocean.com"
    }
}

fn droplet_id(req: &Request) -> Option<String> {
    let id = req.segments().get(2)?.clone();
    id.parse::<u64>().ok().map(|_| id)
}

/// `GET /v2/account/keys` (`ssh_keys`, links, meta.total) and `POST /v2/account/keys`
/// (`name` and `public_key` required; 201 `ssh_key`; a key already stored is 422), as the
/// official spec's sshKeys_list / sshKeys_create.
fn keys(req: &Request, cx: &mut Cx) -> Resp {
    if req.method == "GET" {
        let keys = cx.store.keys.clone();
        let total = keys.len();
        return Resp::json(
            200,
            json!({"ssh_keys": keys, "links": {}, "meta": {"total": total}}),
        );
    }
    let body = req.json();
    let (Some(name), Some(key)) = (
        body.get("name").and_then(Value::as_str),
        body.get("public_key").and_then(Value::as_str),
    ) else {
        return unprocessable("name and public_key are required");
    };
    let material = |k: &str| k.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    if cx
        .store
        .keys
        .iter()
        .any(|k| k["public_key"].as_str().map(material) == Some(material(key)))
    {
        return unprocessable("SSH Key is already in use on your account");
    }
    let id = 512190 + cx.store.keys.len() as u64;
    let stored = json!({"id": id, "fingerprint": format!("3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:{:02x}", id % 256),
                        "public_key": key, "name": name});
    cx.store.keys.push(stored.clone());
    Resp::json(201, json!({"ssh_key": stored}))
}

fn account() -> Resp {
    Resp::json(
        200,
        json!({"account": {
            "droplet_limit": 25,
            "floating_ip_limit": 5,
            "volume_limit": 10,
            "email": "mock@example.com",
            "name": "Mock User",
            "uuid": "b6fr89dbf6d9156cace5f3c78dc9851d957381ef",
            "email_verified": true,
            "status": "active",
            "status_message": "",
            "team": {"uuid": "5df3e3004a17e242b7c20ca6c9fc25b701a47ece", "name": "My Team"}
        }}),
    )
}

/// vCPUs, memory (MB) and disk (GB) read from a size slug like `s-2vcpu-4gb`.
fn size_specs(slug: &str) -> (u64, u64, u64) {
    let mut vcpus = 1;
    let mut mem_gb = 1.0;
    for part in slug.split('-') {
        if let Some(c) = part.strip_suffix("vcpu") {
            vcpus = c.parse().unwrap_or(1);
        } else if let Some(m) = part.strip_suffix("mb") {
            mem_gb = m.parse::<f64>().unwrap_or(1024.0) / 1024.0;
        } else if let Some(g) = part.strip_suffix("gb") {
            if mem_gb == 1.0 {
                mem_gb = g.parse().unwrap_or(1.0);
            }
        }
    }
    let memory = (mem_gb * 1024.0) as u64;
    (vcpus, memory, (memory / 1024).max(1) * 25)
}

fn droplet(n: &Node) -> Value {
    let (vcpus, memory, disk) = size_specs(&n.plan);
    let mut v4 = Vec::new();
    if let Some(p) = &n.private_ip {
        v4.push(json!({"ip_address": p, "netmask": "255.255.240.0", "gateway": "10.0.0.1", "type": "private"}));
    }
    if let Some(ip) = &n.ip {
        let gw = format!(
            "{}.1",
            ip.rsplit_once('.').map(|(a, _)| a).unwrap_or("203.0.113")
        );
        v4.push(
            json!({"ip_address": ip, "netmask": "255.255.255.0", "gateway": gw, "type": "public"}),
        );
    }
    let id: u64 = n.id.parse().unwrap_or(0);
    json!({
        "id": id,
        "name": n.name,
        "memory": memory,
        "vcpus": vcpus,
        "disk": disk,
        "locked": false,
        "status": n.status,
        "kernel": null,
        "created_at": n.created_at,
        "features": ["droplet_agent", "private_networking"],
        "backup_ids": [],
        "next_backup_window": null,
        "snapshot_ids": [],
        "image": {"id": 100_000_001, "name": n.image, "distribution": "Ubuntu", "slug": n.image, "public": true},
        "volume_ids": [],
        "size": {"slug": n.plan, "memory": memory, "vcpus": vcpus, "disk": disk, "transfer": 1.0,
                 "available": true, "regions": [n.region]},
        "size_slug": n.plan,
        "networks": {"v4": v4, "v6": []},
        "region": {"slug": n.region, "name": n.region, "available": true, "features": [], "sizes": []},
        "tags": n.tags,
        "vpc_uuid": "760e09ef-dc84-11e8-981e-3cfdfeaae000",
    })
}

fn valid_name(name: &str) -> bool {
    // ^[a-zA-Z0-9]?[a-z0-9A-Z.\-]*[a-z0-9A-Z]$, at most 255 characters
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 255
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || *c == b'-')
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 255
        && tag
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_-:".contains(&c))
}

fn create(req: &Request, cx: &mut Cx) -> Resp {
    let body = match req.parsed_json() {
        Ok(b) => b,
        Err(m) => return err(400, "bad_request", &m),
    };
    if body.get("names").is_some() && body.get("name").is_none() {
        return unprocessable("the mock models single-Droplet create only (send `name`)");
    }
    if let Err(e) = check_fields(
        &body,
        &[
            ("name", Kind::Str),
            ("size", Kind::Str),
            ("image", Kind::StrOrInt),
        ],
        &[
            ("region", Kind::Str),
            ("ssh_keys", Kind::StrOrIntList),
            ("user_data", Kind::Str),
            ("tags", Kind::StrList),
            ("ipv6", Kind::Bool),
            ("monitoring", Kind::Bool),
            ("backups", Kind::Bool),
            ("with_droplet_agent", Kind::Bool),
            ("public_networking", Kind::Bool),
            ("vpc_uuid", Kind::Str),
            ("volumes", Kind::StrList),
        ],
    ) {
        return unprocessable(&e.message());
    }
    let name = str_field(&body, "name");
    if !valid_name(name) {
        return unprocessable(
            "Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)",
        );
    }
    let size = str_field(&body, "size");
    if !cx.cfg.plan_known(SIZES, size) {
        return unprocessable("You specified an invalid size for Droplet creation.");
    }
    let region = body.get("region").and_then(Value::as_str).unwrap_or("nyc3");
    if !REGIONS.contains(&region) {
        return unprocessable("You specified an invalid region for Droplet creation.");
    }
    let image = match &body["image"] {
        Value::String(s) if !s.is_empty() => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return unprocessable("You specified an invalid image for Droplet creation."),
    };
    let tags = str_list(&body, "tags");
    if let Some(bad) = tags.iter().find(|t| !valid_tag(t)) {
        return unprocessable(&format!(
            "tag name '{bad}' is invalid: only letters, numbers, colons, dashes and underscores are allowed"
        ));
    }
    let user_data = body.get("user_data").and_then(Value::as_str);
    if user_data.is_some_and(|u| u.len() > 64 * 1024) {
        return unprocessable("user_data must be 64 KiB or less");
    }
    let id = (500_000_000 + cx.store.next_seq()).to_string();
    let mut node = Node::new(id.clone(), name, size, region, "new");
    node.image = image;
    node.tags = tags;
    node.user_data = user_data.map(str::to_string);
    for key in ["ssh_keys", "public_networking", "ipv6", "monitoring"] {
        if let Some(v) = body.get(key) {
            node.extra.insert(key.into(), v.clone());
        }
    }
    node.go(&["active"]);
    let out = droplet(&node);
    cx.store.create(node);
    let action = cx.store.add_action(&id, "create", Some("active"), region);
    Resp::json(
        202,
        json!({
            "droplet": out,
            "links": {"actions": [{"id": action.id, "rel": "create",
                                   "href": format!("{}/v2/actions/{}", cx.origin, action.id)}]}
        }),
    )
}

fn list(req: &Request, cx: &mut Cx) -> Resp {
    let (page, per_page) = match (int_param(req, "page"), int_param(req, "per_page")) {
        (Ok(p), Ok(pp)) => (p.unwrap_or(1).max(1), pp),
        (Err(m), _) | (_, Err(m)) => return err(400, "bad_request", &m),
    };
    let tag = req.q("tag_name").filter(|t| !t.is_empty());
    let kind = req.q("type").filter(|t| !t.is_empty());
    if tag.is_some() && (kind.is_some() || req.q("name").is_some()) {
        return err(
            400,
            "bad_request",
            "tag_name cannot be combined with name or type",
        );
    }
    let gpus = kind == Some("gpus");
    let nodes: Vec<Node> = cx
        .store
        .nodes
        .iter()
        .filter(|n| tag.is_none_or(|t| n.has_tag(t)))
        .filter(|n| n.plan.starts_with("gpu-") == gpus)
        .cloned()
        .collect();
    let size = cx.cfg.effective_page_size(per_page.map(|p| p.min(200)), 20);
    let (items, pages) = paginate(&nodes, page, size);
    let link = |p: usize| {
        let mut q = vec![("page", p.to_string()), ("per_page", size.to_string())];
        if let Some(t) = tag {
            q.push(("tag_name", t.to_string()));
        }
        if let Some(k) = kind {
            q.push(("type", k.to_string()));
        }
        format!("{}/v2/droplets?{}", cx.origin, query_string(&q))
    };
    let mut links = Map::new();
    if page > 1 {
        links.insert("first".into(), json!(link(1)));
        links.insert("prev".into(), json!(link((page - 1).min(pages))));
    }
    if page < pages {
        links.insert("last".into(), json!(link(pages)));
        links.insert("next".into(), json!(link(page + 1)));
    }
    let links = if links.is_empty() {
        json!({})
    } else {
        json!({ "pages": links })
    };
    Resp::json(
        200,
        json!({
            "droplets": items.iter().map(droplet).collect::<Vec<_>>(),
            "links": links,
            "meta": {"total": nodes.len()}
        }),
    )
}

fn delete(req: &Request, cx: &mut Cx) -> Resp {
    if req.segments().len() == 2 {
        let tag = req.q("tag_name").unwrap_or_default().to_string();
        cx.store.nodes.retain(|n| !n.has_tag(&tag));
        return Resp::empty(204);
    }
    let Some(id) = droplet_id(req) else {
        return not_found();
    };
    let before = cx.store.nodes.len();
    cx.store.nodes.retain(|n| n.id != id);
    if cx.store.nodes.len() == before {
        return not_found();
    }
    Resp::empty(204)
}

fn action_json(a: &Action, store: &Store) -> Value {
    let done = a.completed_at.is_some() || store.node(&a.node_id).is_none();
    json!({
        "id": a.id,
        "status": if done { "completed" } else { "in-progress" },
        "type": a.kind,
        "started_at": a.started_at,
        "completed_at": if done { json!(a.completed_at.clone().unwrap_or_else(now_rfc3339)) } else { Value::Null },
        "resource_id": a.node_id.parse::<u64>().unwrap_or(0),
        "resource_type": "droplet",
        "region": {"slug": a.region, "name": a.region, "available": true, "features": [], "sizes": []},
        "region_slug": a.region,
    })
}

fn action(req: &Request, cx: &mut Cx) -> Resp {
    let Some(id) = droplet_id(req) else {
        return not_found();
    };
    let body = match req.parsed_json() {
        Ok(b) => b,
        Err(m) => return err(400, "bad_request", &m),
    };
    let Some(kind) = body.get("type").and_then(Value::as_str).map(str::to_string) else {
        return unprocessable("type is required");
    };
    let Some(node) = cx.store.node_mut(&id) else {
        return not_found();
    };
    let region = node.region.clone();
    let power = matches!(
        kind.as_str(),
        "power_on" | "shutdown" | "power_off" | "reboot" | "power_cycle"
    );
    if power && !node.is_settled() {
        return unprocessable("Droplet already has a pending event.");
    }
    let target = match kind.as_str() {
        "power_on" if node.status == "active" => {
            return unprocessable("Droplet is already powered on.")
        }
        "shutdown" | "power_off" if node.status == "off" => {
            return unprocessable("Droplet is already powered off.")
        }
        "reboot" if node.status != "active" => return unprocessable("Droplet is currently off."),
        "power_on" | "reboot" | "power_cycle" => {
            node.go(&["active"]);
            Some("active")
        }
        "shutdown" | "power_off" => {
            node.go(&["off"]);
            Some("off")
        }
        "rename" => match body.get("name").and_then(Value::as_str) {
            Some(n) if valid_name(n) => {
                node.name = n.to_string();
                None
            }
            _ => return unprocessable("name is invalid"),
        },
        other => return unprocessable(&format!("the mock does not model the '{other}' action")),
    };
    let mut a = cx.store.add_action(&id, &kind, target, &region);
    if target.is_none() {
        let now = now_rfc3339();
        if let Some(stored) = cx.store.actions.iter_mut().find(|x| x.id == a.id) {
            stored.completed_at = Some(now.clone());
        }
        a.completed_at = Some(now);
    }
    Resp::json(201, json!({"action": action_json(&a, cx.store)}))
}

fn get_action(req: &Request, cx: &mut Cx) -> Resp {
    let segs = req.segments();
    let (droplet, action_id) = match segs.len() {
        3 => (None, segs[2].clone()),
        _ => (Some(segs[2].clone()), segs[4].clone()),
    };
    let Ok(aid) = action_id.parse::<u64>() else {
        return not_found();
    };
    let Some(a) = cx.store.actions.iter().find(|a| a.id == aid).cloned() else {
        return not_found();
    };
    if droplet.is_some_and(|d| d != a.node_id) {
        return not_found();
    }
    cx.poll(&a.node_id);
    let a = cx
        .store
        .actions
        .iter()
        .find(|x| x.id == aid)
        .cloned()
        .unwrap_or(a);
    Resp::json(200, json!({"action": action_json(&a, cx.store)}))
}
