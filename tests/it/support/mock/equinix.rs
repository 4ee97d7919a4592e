//! Equinix Metal API v1 (devices) wire format — facts from `reference/apis/equinix-metal.md`
//! and the official OpenAPI spec (the product was sunset 2026-06-30; this mock is the only
//! place its API still runs).
//!
//! Models: whoami `GET /metal/v1/user`, `GET /metal/v1/projects` and
//! `GET /metal/v1/projects/{id}` (404 for another project); project-scoped
//! `POST /metal/v1/projects/{project_id}/devices` (201 Device; required plan, operating_system,
//! metro — facility alone is refused; hostname without underscores; billing_cycle enum) and
//! `GET …/devices` (`page`, `per_page` ≤ 1000 default 10, `meta.{first,previous,self,next,last}`
//! hrefs as absolute paths, `current_page`, `last_page`, `total`; `?tag=` exact,
//! `?hostname=` partial, `?metro=`, `?state=`); `GET/DELETE /metal/v1/devices/{id}` (delete →
//! 204, `deprovisioning`, then 404); `POST /metal/v1/devices/{id}/actions`
//! (`power_on`/`power_off`/`reboot` → 202 empty). States: queued → provisioning → active,
//! active → powering_off → inactive, inactive → powering_on → active. `ip_addresses` once
//! active: public IPv6 first, then public IPv4 (management), then private IPv4, so a reader
//! must filter rather than index. Errors: `{"errors": ["…"]}`.

use super::*;
use serde_json::json;

pub struct Equinix;

pub const PLANS: &[&str] = &[
    "c3.small.x86",
    "c3.medium.x86",
    "c3.large.arm64",
    "m3.small.x86",
    "m3.large.x86",
    "s3.xlarge.x86",
    "n3.xlarge.x86",
    "a3.large.x86",
    "g2.large.x86",
    "t3.small.x86",
];

pub const METROS: &[&str] = &[
    "da", "sv", "ny", "am", "sg", "ty", "fr", "dc", "sy", "ch", "la", "se", "sp", "ld", "pa", "md",
    "hk", "tr", "to", "os", "sl", "mt", "at", "hh",
];

fn err(status: u16, message: &str) -> Resp {
    Resp::json(status, json!({ "errors": [message] }))
}

fn not_found() -> Resp {
    err(404, "Not found")
}

fn metal_path(req: &Request) -> Option<Vec<String>> {
    let segs = req.segments();
    match segs.as_slice() {
        [a, b, rest @ ..] if a == "metal" && b == "v1" => Some(rest.to_vec()),
        _ => None,
    }
}

impl Api for Equinix {
    fn classify(&self, req: &Request) -> Op {
        let Some(rest) = metal_path(req) else {
            return Op::Unrouted;
        };
        let r: Vec<&str> = rest.iter().map(String::as_str).collect();
        match (req.method.as_str(), r.as_slice()) {
            ("GET", ["user"]) | ("GET", ["projects"]) | ("GET", ["projects", _]) => Op::Verify,
            ("POST", ["projects", _, "devices"]) => Op::Create,
            ("GET", ["projects", _, "devices"]) => Op::List,
            ("GET", ["devices", _]) => Op::Get,
            ("DELETE", ["devices", _]) => Op::Delete,
            ("POST", ["devices", _, "actions"]) => {
                match req.json().get("type").and_then(Value::as_str) {
                    Some("power_on") => Op::Start,
                    Some("power_off") => Op::Stop,
                    Some("reboot") => Op::Reboot,
                    _ => Op::Other,
                }
            }
            _ => Op::Unrouted,
        }
    }

    fn authorize(&self, req: &Request, cfg: &MockConfig) -> Result<(), Resp> {
        match req.header("x-auth-token") {
            Some(t) if t == cfg.token => Ok(()),
            _ => Err(err(401, "Invalid authentication token")),
        }
    }

    fn handle(&self, req: &Request, op: Op, cx: &mut Cx) -> Resp {
        let rest = metal_path(req).unwrap_or_default();
        match op {
            Op::Verify if rest[0] == "user" => return user(cx.cfg),
            Op::Verify if rest.len() == 2 => {
                return if rest[1] == cx.cfg.project_id {
                    Resp::json(200, project(cx.cfg))
                } else {
                    not_found()
                };
            }
            Op::Verify => return projects(cx.cfg),
            Op::Create | Op::List => {
                if rest[1] != cx.cfg.project_id {
                    return not_found();
                }
                return if op == Op::Create {
                    create(req, cx)
                } else {
                    list(req, cx)
                };
            }
            _ => {}
        }
        let id = rest.get(1).cloned().unwrap_or_default();
        if cx.store.node(&id).is_none() {
            return not_found();
        }
        match op {
            Op::Get => match cx.poll(&id) {
                Some(n) => Resp::json(200, render(&n)),
                None => not_found(),
            },
            Op::Delete => {
                let node = cx.store.node_mut(&id).expect("checked");
                if node.status != "deprovisioning" {
                    node.status = "deprovisioning".into();
                    node.go(&[GONE]);
                }
                Resp::empty(204)
            }
            _ => action(req, &id, cx),
        }
    }

    fn throttled(&self, cfg: &MockConfig) -> Resp {
        err(429, "Too Many Requests").header("Retry-After", cfg.retry_after.to_string())
    }

    fn server_error(&self) -> Resp {
        err(500, "Internal server error")
    }

    fn running_state(&self) -> &'static str {
        "active"
    }

    fn seed(&self, spec: &NodeSpec, store: &mut Store, cfg: &MockConfig) -> Node {
        let id = uuid(0xe0a1_3e7a, store.next_seq());
        let mut n = Node::new(
            id,
            &spec.name,
            spec.plan.as_deref().unwrap_or("c3.small.x86"),
            spec.region.as_deref().unwrap_or("da"),
            "active",
        );
        n.image = "ubuntu_24_04".into();
        n.tags = spec.tags.clone();
        n.extra.insert("project".into(), json!(cfg.project_id));
        n.extra.insert("billing_cycle".into(), json!("hourly"));
        self.entered(&mut n, "active", &mut store.ips);
        if let Some(s) = &spec.status {
            n.status = s.clone();
        }
        n
    }

    fn credential_env(&self, cfg: &MockConfig) -> Vec<(String, String)> {
        vec![
            ("METAL_AUTH_TOKEN".into(), cfg.token.clone()),
            ("METAL_PROJECT_ID".into(), cfg.project_id.clone()),
        ]
    }

    fn public_origin(&self) -> &'static str {
        "https://api.equinix.com"
    }
}

fn user(cfg: &MockConfig) -> Resp {
    Resp::json(
        200,
        json!({
            "id": "a1b2c3d4-0000-4000-8000-0000000000a1",
            "short_id": "a1b2c3d4",
            "first_name": "Mock",
            "last_name": "User",
            "full_name": "Mock User",
            "email": "mock@example.com",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "default_project_id": cfg.project_id,
            "href": "/metal/v1/users/a1b2c3d4-0000-4000-8000-0000000000a1"
        }),
    )
}

fn project(cfg: &MockConfig) -> Value {
    json!({
        "id": cfg.project_id,
        "name": "default",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "backend_transfer_enabled": false,
        "customdata": {},
        "organization": {"href": "/metal/v1/organizations/a1b2c3d4-0000-4000-8000-0000000000b2"},
        "href": format!("/metal/v1/projects/{}", cfg.project_id),
    })
}

fn projects(cfg: &MockConfig) -> Resp {
    let href = "/metal/v1/projects?page=1";
    Resp::json(
        200,
        json!({
            "projects": [project(cfg)],
            "meta": {"first": {"href": href}, "last": {"href": href}, "self": {"href": href},
                     "current_page": 1, "last_page": 1, "total": 1}
        }),
    )
}

/// The root password an active device answer carries: a secret capsule must scrub.
pub const ROOT_PASSWORD: &str = "Mock-R00t-Passw0rd";

fn render(n: &Node) -> Value {
    let mut ips = Vec::new();
    if let Some(ip) = &n.ip {
        let seq = n.id.len() as u64 + ip.len() as u64;
        ips.push(json!({"id": uuid(0x1aa6_0006, seq), "address_family": 6, "public": true, "management": true,
                        "address": format!("2604:1380:4641:{:x}::1", seq), "cidr": 127, "netmask": "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
                        "gateway": format!("2604:1380:4641:{:x}::", seq)}));
        ips.push(json!({"id": uuid(0x1aa4_0004, seq), "address_family": 4, "public": true, "management": true,
                        "address": ip, "cidr": 31, "netmask": "255.255.255.254",
                        "gateway": ip.rsplit_once('.').map(|(a, _)| format!("{a}.1")).unwrap_or_default()}));
    }
    if let Some(p) = &n.private_ip {
        ips.push(
            json!({"id": uuid(0x1aa4_1004, n.id.len() as u64), "address_family": 4, "public": false,
                        "management": true, "address": p, "cidr": 31, "netmask": "255.255.255.254",
                        "gateway": "10.0.0.1"}),
        );
    }
    let mut v = json!({
        "id": n.id,
        "short_id": &n.id[..8],
        "hostname": n.name,
        "description": null,
        "state": n.status,
        "tags": n.tags,
        "billing_cycle": n.extra_str("billing_cycle"),
        "created_at": n.created_at,
        "updated_at": n.created_at,
        "locked": false,
        "always_pxe": false,
        "bonding_mode": 5,
        "userdata": n.user_data.clone().unwrap_or_default(),
        "customdata": {},
        "plan": {"slug": n.plan, "name": n.plan, "class": n.plan, "line": "baremetal"},
        "metro": {"id": format!("{}-metro", n.region), "code": n.region, "name": n.region.to_uppercase(), "country": "US"},
        "facility": {"code": format!("{}11", n.region), "name": format!("{} 11", n.region.to_uppercase())},
        "operating_system": {"slug": n.image, "name": n.image, "distro": "ubuntu"},
        "ip_addresses": ips,
        "network_ports": [],
        "volumes": [],
        "ssh_keys": [],
        "project": {"href": format!("/metal/v1/projects/{}", n.extra_str("project"))},
        "href": format!("/metal/v1/devices/{}", n.id),
    });
    if n.status == "queued" || n.status == "provisioning" {
        v["provisioning_percentage"] = json!(if n.status == "queued" { 0.0 } else { 50.0 });
    }
    if n.status == "active" {
        v["root_password"] = json!(ROOT_PASSWORD);
    }
    v
}

fn create(req: &Request, cx: &mut Cx) -> Resp {
    let body = match req.parsed_json() {
        Ok(b) => b,
        Err(m) => return err(422, &m),
    };
    if body.get("metro").is_none() && body.get("facility").is_some() {
        return err(
            422,
            "Facility-based device creation is deprecated; use a metro.",
        );
    }
    if let Err(e) = check_fields(
        &body,
        &[
            ("plan", Kind::Str),
            ("operating_system", Kind::Str),
            ("metro", Kind::Str),
        ],
        &[
            ("hostname", Kind::Str),
            ("billing_cycle", Kind::Str),
            ("userdata", Kind::Str),
            ("tags", Kind::StrList),
            ("project_ssh_keys", Kind::StrList),
            ("user_ssh_keys", Kind::StrList),
            ("no_ssh_keys", Kind::Bool),
            ("locked", Kind::Bool),
            ("customdata", Kind::Obj),
            ("description", Kind::Str),
            ("termination_time", Kind::Str),
            ("always_pxe", Kind::Bool),
            ("ipxe_script_url", Kind::Str),
            ("spot_instance", Kind::Bool),
        ],
    ) {
        return err(422, &e.message());
    }
    let plan = str_field(&body, "plan");
    if !cx.cfg.plan_known(PLANS, plan) {
        return err(422, &format!("Plan '{plan}' is not valid."));
    }
    let metro = str_field(&body, "metro");
    if !METROS.contains(&metro) {
        return err(422, &format!("Metro '{metro}' is not valid."));
    }
    let cycle = body
        .get("billing_cycle")
        .and_then(Value::as_str)
        .unwrap_or("hourly");
    if !["hourly", "daily", "monthly", "yearly"].contains(&cycle) {
        return err(422, "billing_cycle is not included in the list");
    }
    let seq = cx.store.next_seq();
    let hostname = match body.get("hostname").and_then(Value::as_str) {
        Some(h) if h.is_empty() || h.contains('_') || h.contains(' ') => {
            return err(
                422,
                "Hostname is invalid: use letters, numbers, dots and dashes.",
            )
        }
        Some(h) => h.to_string(),
        None => format!("{}-{seq:02}", plan.replace('.', "-")),
    };
    let mut node = Node::new(uuid(0xe0a1_3e7a, seq), &hostname, plan, metro, "queued");
    node.image = str_field(&body, "operating_system").to_string();
    node.tags = str_list(&body, "tags");
    node.user_data = body
        .get("userdata")
        .and_then(Value::as_str)
        .map(str::to_string);
    node.extra
        .insert("project".into(), json!(cx.cfg.project_id));
    node.extra.insert("billing_cycle".into(), json!(cycle));
    node.go(&["provisioning", "active"]);
    let out = render(&node);
    cx.store.create(node);
    Resp::json(201, out)
}

fn list(req: &Request, cx: &mut Cx) -> Resp {
    let (page, per_page) = match (int_param(req, "page"), int_param(req, "per_page")) {
        (Ok(p), Ok(pp)) => (p.unwrap_or(1), pp),
        (Err(m), _) | (_, Err(m)) => return err(422, &m),
    };
    if page == 0 || per_page.is_some_and(|p| p == 0 || p > 1000) {
        return err(422, "page must be ≥ 1 and per_page between 1 and 1000");
    }
    let tag = req.q("tag").filter(|t| !t.is_empty());
    let hostname = req.q("hostname").filter(|t| !t.is_empty());
    let metro = req.q("metro").filter(|t| !t.is_empty());
    let state = req.q("state").filter(|t| !t.is_empty());
    let project = cx.cfg.project_id.clone();
    let nodes: Vec<Node> = cx
        .store
        .nodes
        .iter()
        .filter(|n| n.extra_str("project") == project)
        .filter(|n| tag.is_none_or(|t| n.has_tag(t)))
        .filter(|n| hostname.is_none_or(|h| n.name.contains(h)))
        .filter(|n| metro.is_none_or(|m| n.region == m))
        .filter(|n| state.is_none_or(|s| n.status == s))
        .cloned()
        .collect();
    let size = cx.cfg.effective_page_size(per_page, 10);
    let (items, pages) = paginate(&nodes, page, size);
    let href = |p: usize| {
        let mut q = vec![("page", p.to_string()), ("per_page", size.to_string())];
        for (k, v) in [
            ("tag", tag),
            ("hostname", hostname),
            ("metro", metro),
            ("state", state),
        ] {
            if let Some(v) = v {
                q.push((k, v.to_string()));
            }
        }
        json!({"href": format!("/metal/v1/projects/{project}/devices?{}", query_string(&q))})
    };
    let mut meta = Map::new();
    meta.insert("first".into(), href(1));
    if page > 1 {
        meta.insert("previous".into(), href((page - 1).min(pages)));
    }
    meta.insert("self".into(), href(page));
    if page < pages {
        meta.insert("next".into(), href(page + 1));
    }
    meta.insert("last".into(), href(pages));
    meta.insert("current_page".into(), json!(page));
    meta.insert("last_page".into(), json!(pages));
    meta.insert("total".into(), json!(nodes.len()));
    Resp::json(
        200,
        json!({"devices": items.iter().map(render).collect::<Vec<_>>(), "meta": meta}),
    )
}

fn action(req: &Request, id: &str, cx: &mut Cx) -> Resp {
    let body = match req.parsed_json() {
        Ok(b) => b,
        Err(m) => return err(422, &m),
    };
    let kind = body.get("type").and_then(Value::as_str).unwrap_or("");
    let node = cx.store.node_mut(id).expect("checked");
    if !node.is_settled() {
        return err(
            422,
            &format!(
                "Device is {} and cannot accept actions right now.",
                node.status
            ),
        );
    }
    match (kind, node.status.as_str()) {
        ("power_on", "inactive") => node.go(&["powering_on", "active"]),
        ("power_off", "active") => node.go(&["powering_off", "inactive"]),
        ("reboot", "active") => node.go(&["active"]),
        ("power_on", _) => return err(422, "Device is already powered on."),
        ("power_off" | "reboot", _) => return err(422, "Device must be powered on."),
        (other, _) => return err(422, &format!("Action type '{other}' is not valid.")),
    }
    Resp::empty(202)
}
