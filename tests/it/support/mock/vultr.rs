//! Vultr API v2 (cloud instances and bare metal) wire format — facts from
//! `reference/apis/vultr.md` and the official OpenAPI spec.
//!
//! Models: `GET /v2/account`; `POST /v2/instances` and `POST /v2/bare-metals` (202, required
//! region + plan + one of os_id/iso_id/snapshot_id/app_id/image_id, base64 `user_data`, plan
//! and region validation, `default_password` only in the create answer); list with cursor
//! pagination (`per_page` ≤ 500, `cursor`, `meta.links.next` = "" on the last page, `meta.total`)
//! and `?tag=`/`label=`/`region=`/`main_ip=` filters on instances only (bare metal ignores
//! them, as documented); get; `POST …/{id}/start|halt|reboot` → 204; `DELETE` → 204 then 404.
//! States: `pending`/`none` with `main_ip` "0.0.0.0" (bare metal "") → `active`/`running`/`ok`
//! with an address; halt → power_status `stopped` (bare metal has no power field).
//! Errors: `{"error": "...", "status": N}`.

use super::*;
use base64::Engine;
use serde_json::json;

pub struct Vultr;

/// Cloud-instance plan ids the mock accepts.
pub const PLANS: &[&str] = &[
    "vc2-1c-0.5gb-v6",
    "vc2-1c-0.5gb",
    "vc2-1c-1gb",
    "vc2-1c-2gb",
    "vc2-2c-2gb",
    "vc2-2c-4gb",
    "vc2-4c-8gb",
    "vc2-6c-16gb",
    "vc2-8c-32gb",
    "vc2-16c-64gb",
    "vc2-24c-96gb",
    "vhf-1c-1gb",
    "vhf-1c-2gb",
    "vhf-2c-2gb",
    "vhf-2c-4gb",
    "vhf-3c-8gb",
    "vhf-4c-16gb",
    "vhf-6c-24gb",
    "vhf-8c-32gb",
    "vhf-12c-48gb",
    "vhp-1c-1gb-intel",
    "vhp-2c-4gb-intel",
    "vhp-4c-8gb-intel",
    "vhp-8c-16gb-intel",
    "vdc-2c-8gb",
    "vdc-4c-16gb",
    "vdc-8c-32gb",
    "vcg-a16-2c-8g-2vram",
    "vcg-a100-1c-6g-4vram",
];

/// Bare-metal plan ids the mock accepts.
pub const METAL_PLANS: &[&str] = &[
    "vbm-4c-32gb",
    "vbm-6c-32gb",
    "vbm-8c-132gb",
    "vbm-24c-256gb-amd",
    "vbm-48c-1024gb-4-a100-gpu",
];

pub const REGIONS: &[&str] = &[
    "ewr", "ord", "dfw", "sea", "lax", "atl", "mia", "sjc", "yto", "mex", "sao", "scl", "ams",
    "fra", "cdg", "lhr", "man", "mad", "sto", "waw", "sgp", "syd", "mel", "nrt", "itm", "icn",
    "bom", "blr", "del", "jnb", "hnl", "tlv",
];

fn err(status: u16, message: &str) -> Resp {
    Resp::json(status, json!({"error": message, "status": status}))
}

/// `instances` or `bare-metals`, from the path.
#[derive(Clone, Copy, PartialEq)]
enum Kind2 {
    Instance,
    Metal,
}

impl Kind2 {
    fn of(req: &Request) -> Option<Kind2> {
        match req.segments().get(1).map(String::as_str) {
            Some("instances") => Some(Kind2::Instance),
            Some("bare-metals") => Some(Kind2::Metal),
            _ => None,
        }
    }
    fn tag(self) -> &'static str {
        match self {
            Kind2::Instance => "instance",
            Kind2::Metal => "bare_metal",
        }
    }
    fn list_key(self) -> &'static str {
        match self {
            Kind2::Instance => "instances",
            Kind2::Metal => "bare_metals",
        }
    }
    fn not_found(self) -> Resp {
        match self {
            Kind2::Instance => err(404, "Invalid instance-id."),
            Kind2::Metal => err(404, "Invalid bare metal id."),
        }
    }
}

impl Api for Vultr {
    fn classify(&self, req: &Request) -> Op {
        let segs = req.segments();
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        match (req.method.as_str(), s.as_slice()) {
            ("GET", ["v2", "account"]) => Op::Verify,
            ("POST", ["v2", "instances" | "bare-metals"]) => Op::Create,
            ("GET", ["v2", "instances" | "bare-metals"]) => Op::List,
            ("GET", ["v2", "instances" | "bare-metals", _]) => Op::Get,
            ("DELETE", ["v2", "instances" | "bare-metals", _]) => Op::Delete,
            ("POST", ["v2", "instances" | "bare-metals", _, "start"]) => Op::Start,
            ("POST", ["v2", "instances" | "bare-metals", _, "halt"]) => Op::Stop,
            ("POST", ["v2", "instances" | "bare-metals", _, "reboot"]) => Op::Reboot,
            ("PATCH", ["v2", "instances" | "bare-metals", _]) => Op::Other,
            ("POST", ["v2", "instances" | "bare-metals", _, "reinstall"]) => Op::Other,
            _ => Op::Unrouted,
        }
    }

    fn authorize(&self, req: &Request, cfg: &MockConfig) -> Result<(), Resp> {
        match bearer(req) {
            Some(t) if t == cfg.token => Ok(()),
            _ => Err(err(401, "Invalid API token.")),
        }
    }

    fn handle(&self, req: &Request, op: Op, cx: &mut Cx) -> Resp {
        let Some(kind) = Kind2::of(req) else {
            return match op {
                Op::Verify => account(),
                _ => err(404, "Not found"),
            };
        };
        let id = req.segments().get(2).cloned().unwrap_or_default();
        let exists = cx
            .store
            .node(&id)
            .is_some_and(|n| n.extra_str("kind") == kind.tag());
        match op {
            Op::Create => create(req, kind, cx),
            Op::List => list(req, kind, cx),
            _ if !exists => kind.not_found(),
            Op::Get => match cx.poll(&id) {
                Some(n) => Resp::json(200, json!({ kind.tag(): render(&n, false) })),
                None => kind.not_found(),
            },
            Op::Delete => {
                cx.store.nodes.retain(|n| n.id != id);
                Resp::empty(204)
            }
            // PATCH: user_data (base64) kept for the next reinstall; reinstall {hostname}.
            Op::Other => {
                let body = req.json();
                let node = cx.store.node_mut(&id).expect("checked");
                if req.method == "PATCH" {
                    let Some(u) = body.get("user_data").and_then(Value::as_str) else {
                        return err(400, "Nothing to update.");
                    };
                    if !is_base64(u) {
                        return err(400, "Invalid user_data: it must be base64 encoded.");
                    }
                    node.user_data = Some(
                        base64::engine::general_purpose::STANDARD
                            .decode(u.trim())
                            .map(|b| String::from_utf8_lossy(&b).into_owned())
                            .unwrap_or_default(),
                    );
                    node.extra.insert("user_data_updated".into(), json!(true));
                    return Resp::json(202, json!({ kind.tag(): render(node, false) }));
                }
                if body.get("hostname").is_some_and(|h| !h.is_string()) {
                    return err(400, "Invalid hostname.");
                }
                node.extra.insert("reinstalled".into(), json!(true));
                node.go(&["pending", "active"]);
                Resp::json(202, json!({ kind.tag(): render(node, false) }))
            }
            Op::Start | Op::Stop | Op::Reboot => {
                let node = cx.store.node_mut(&id).expect("checked");
                match op {
                    Op::Start if node.target() == "stopped" => node.go(&["active"]),
                    Op::Stop if node.target() != "stopped" => {
                        let mut steps = node.pending_steps();
                        steps.push("stopped".into());
                        let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
                        node.go(&steps);
                    }
                    Op::Reboot if node.target() == "active" && node.is_settled() => {
                        node.go(&["active"])
                    }
                    _ => {}
                }
                Resp::empty(204)
            }
            _ => err(404, "Not found"),
        }
    }

    fn throttled(&self, cfg: &MockConfig) -> Resp {
        err(
            429,
            "Rate limit reached - please try your request again later.",
        )
        .header("Retry-After", cfg.retry_after.to_string())
    }

    fn server_error(&self) -> Resp {
        err(500, "Internal server error.")
    }

    fn running_state(&self) -> &'static str {
        "active"
    }

    fn seed(&self, spec: &NodeSpec, store: &mut Store, _cfg: &MockConfig) -> Node {
        let plan = spec.plan.as_deref().unwrap_or("vc2-1c-1gb");
        let kind = if METAL_PLANS.contains(&plan) {
            Kind2::Metal
        } else {
            Kind2::Instance
        };
        let id = uuid(0x0b5c_7e1a, store.next_seq());
        let mut n = Node::new(
            id,
            &spec.name,
            plan,
            spec.region.as_deref().unwrap_or("ewr"),
            "active",
        );
        n.image = "2284".into();
        n.tags = spec.tags.clone();
        n.extra.insert("kind".into(), json!(kind.tag()));
        n.extra.insert("os_id".into(), json!(2284));
        n.extra.insert("hostname".into(), json!(spec.name));
        self.entered(&mut n, "active", &mut store.ips);
        if let Some(s) = &spec.status {
            n.status = s.clone();
        }
        n
    }

    fn credential_env(&self, cfg: &MockConfig) -> Vec<(String, String)> {
        vec![("VULTR_API_KEY".into(), cfg.token.clone())]
    }

    fn public_origin(&self) -> &'static str {
        "https://api.vultr.com"
    }
}

fn account() -> Resp {
    Resp::json(
        200,
        json!({"account": {
            "name": "Mock User",
            "email": "mock@example.com",
            "acls": ["manage_users", "subscriptions", "billing", "support", "provisioning", "dns",
                     "abuse", "upgrade", "firewall", "alerts"],
            "balance": -100.0,
            "pending_charges": 3.21,
            "last_payment_date": "2026-01-01T00:00:00+00:00",
            "last_payment_amount": -100.0
        }}),
    )
}

/// `2026-01-02T03:04:05+00:00`
fn vultr_date(rfc3339: &str) -> String {
    rfc3339
        .strip_suffix('Z')
        .map(|s| format!("{s}+00:00"))
        .unwrap_or_else(|| rfc3339.to_string())
}

/// vCPUs and RAM (MB) read from a plan id like `vc2-2c-4gb`.
fn plan_specs(plan: &str) -> (u64, u64) {
    let mut cpus = 1;
    let mut ram = 1024;
    for part in plan.split('-') {
        if let Some(c) = part.strip_suffix('c') {
            cpus = c.parse().unwrap_or(cpus);
        } else if let Some(g) = part.strip_suffix("gb") {
            ram = g.parse::<f64>().map(|g| (g * 1024.0) as u64).unwrap_or(ram);
        }
    }
    (cpus, ram)
}

/// The root password a create answer carries (`default_password`): a secret capsule must scrub.
pub const PASSWORD: &str = "Mock-Passw0rd-1!";

fn render(n: &Node, with_password: bool) -> Value {
    let (cpus, ram) = plan_specs(&n.plan);
    let metal = n.extra_str("kind") == "bare_metal";
    let gateway = n.ip.as_ref().map(|ip| {
        format!(
            "{}.1",
            ip.rsplit_once('.').map(|(a, _)| a).unwrap_or("0.0.0")
        )
    });
    let status = if n.status == "stopped" {
        "active"
    } else {
        n.status.as_str()
    };
    let os_id = n.extra.get("os_id").cloned().unwrap_or(json!(0));
    let mut v = if metal {
        json!({
            "id": n.id,
            "os": "Ubuntu 24.04 LTS x64",
            "ram": format!("{ram} MB"),
            "disk": "2x 240GB SSD",
            "main_ip": n.ip.clone().unwrap_or_default(),
            "cpu_count": cpus,
            "region": n.region,
            "date_created": vultr_date(&n.created_at),
            "status": status,
            "netmask_v4": if n.ip.is_some() { "255.255.255.0" } else { "" },
            "gateway_v4": gateway.unwrap_or_default(),
            "plan": n.plan,
            "label": n.name,
            "tag": "",
            "os_id": os_id,
            "app_id": 0,
            "image_id": "",
            "v6_network": "",
            "v6_main_ip": "",
            "v6_network_size": 0,
            "mac_address": 2199756823533u64,
            "tags": n.tags,
            "features": [],
        })
    } else {
        let ready = n.status != "pending";
        json!({
            "id": n.id,
            "os": "Ubuntu 24.04 LTS x64",
            "ram": ram,
            "disk": (ram / 1024).max(1) * 25,
            "main_ip": n.ip.clone().unwrap_or_else(|| "0.0.0.0".into()),
            "vcpu_count": cpus,
            "region": n.region,
            "plan": n.plan,
            "date_created": vultr_date(&n.created_at),
            "status": status,
            "allowed_bandwidth": 1000,
            "netmask_v4": if n.ip.is_some() { "255.255.254.0" } else { "" },
            "gateway_v4": gateway.unwrap_or_else(|| "0.0.0.0".into()),
            "power_status": if n.status == "stopped" { "stopped" } else { "running" },
            "server_status": if ready { "ok" } else { "none" },
            "v6_network": "",
            "v6_main_ip": "",
            "v6_network_size": 0,
            "label": n.name,
            "internal_ip": "",
            "kvm": format!("https://my.vultr.com/subs/vps/novnc/api.php?data={}", n.id),
            "hostname": n.extra_str("hostname"),
            "tag": "",
            "tags": n.tags,
            "os_id": os_id,
            "app_id": 0,
            "image_id": "",
            "firewall_group_id": "",
            "features": [],
            "user_scheme": "root",
        })
    };
    if with_password {
        v["default_password"] = json!(PASSWORD);
    }
    v
}

fn create(req: &Request, kind: Kind2, cx: &mut Cx) -> Resp {
    let body = match req.parsed_json() {
        Ok(b) => b,
        Err(m) => return err(400, &m),
    };
    if let Err(e) = check_fields(
        &body,
        &[("region", Kind::Str), ("plan", Kind::Str)],
        &[
            ("os_id", Kind::Int),
            ("iso_id", Kind::Str),
            ("snapshot_id", Kind::Str),
            ("app_id", Kind::Int),
            ("image_id", Kind::Str),
            ("label", Kind::Str),
            ("hostname", Kind::Str),
            ("sshkey_id", Kind::StrList),
            ("user_data", Kind::Str),
            ("tags", Kind::StrList),
            ("tag", Kind::Str),
            ("enable_ipv6", Kind::Bool),
            ("disable_public_ipv4", Kind::Bool),
            ("backups", Kind::Str),
            ("ddos_protection", Kind::Bool),
            ("activation_email", Kind::Bool),
            ("firewall_group_id", Kind::Str),
            ("script_id", Kind::Str),
            ("reserved_ipv4", Kind::Str),
            ("user_scheme", Kind::Str),
            ("enable_vpc", Kind::Bool),
            ("attach_vpc", Kind::StrList),
            ("persistent_pxe", Kind::Bool),
        ],
    ) {
        return err(400, &e.message());
    }
    let sources = ["os_id", "iso_id", "snapshot_id", "app_id", "image_id"];
    if !sources
        .iter()
        .any(|k| body.get(*k).is_some_and(|v| !v.is_null()))
    {
        return err(
            400,
            "You must provide one of os_id, iso_id, snapshot_id, app_id or image_id.",
        );
    }
    let plan = str_field(&body, "plan");
    let builtin = if kind == Kind2::Metal {
        METAL_PLANS
    } else {
        PLANS
    };
    if !cx.cfg.plan_known(builtin, plan) {
        return err(400, "Invalid plan chosen.");
    }
    let region = str_field(&body, "region");
    if !REGIONS.contains(&region) {
        return err(400, "Invalid region chosen.");
    }
    if let Some(b) = body.get("backups").and_then(Value::as_str) {
        if b != "enabled" && b != "disabled" {
            return err(400, "backups must be 'enabled' or 'disabled'.");
        }
    }
    let user_data = body.get("user_data").and_then(Value::as_str);
    if user_data.is_some_and(|u| !is_base64(u)) {
        return err(400, "Invalid user_data: it must be base64 encoded.");
    }
    let id = uuid(0x0b5c_7e1a, cx.store.next_seq());
    let label = body.get("label").and_then(Value::as_str).unwrap_or("");
    let mut node = Node::new(id, label, plan, region, "pending");
    node.image = sources
        .iter()
        .find_map(|k| body.get(*k).filter(|v| !v.is_null()))
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string())
        })
        .unwrap_or_default();
    node.tags = str_list(&body, "tags");
    node.user_data = user_data.map(|u| {
        base64::engine::general_purpose::STANDARD
            .decode(u.trim())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    });
    node.extra.insert("kind".into(), json!(kind.tag()));
    for key in ["os_id", "hostname", "sshkey_id", "enable_ipv6"] {
        if let Some(v) = body.get(key) {
            node.extra.insert(key.into(), v.clone());
        }
    }
    node.go(&["active"]);
    let out = render(&node, true);
    cx.store.create(node);
    Resp::json(202, json!({ kind.tag(): out }))
}

fn cursor_encode(prefix: &str, offset: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{prefix}__{offset}"))
}

fn cursor_decode(cursor: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(cursor)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (_, n) = text.split_once("__")?;
    n.parse().ok()
}

fn list(req: &Request, kind: Kind2, cx: &mut Cx) -> Resp {
    let per_page = match int_param(req, "per_page") {
        Ok(p) => p,
        Err(m) => return err(400, &m),
    };
    if per_page.is_some_and(|p| p > 500) {
        return err(400, "per_page must be between 1 and 500.");
    }
    let offset = match req.q("cursor").filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => match cursor_decode(c) {
            Some(o) => o,
            None => return err(400, "Invalid cursor."),
        },
    };
    let filters: Vec<(&str, &str)> = if kind == Kind2::Instance {
        ["tag", "label", "region", "main_ip"]
            .iter()
            .filter_map(|k| req.q(k).filter(|v| !v.is_empty()).map(|v| (*k, v)))
            .collect()
    } else {
        Vec::new() // bare-metal lists take no filters
    };
    let nodes: Vec<Node> = cx
        .store
        .nodes
        .iter()
        .filter(|n| n.extra_str("kind") == kind.tag())
        .filter(|n| {
            filters.iter().all(|(k, v)| match *k {
                "tag" => n.has_tag(v),
                "label" => n.name == *v,
                "region" => n.region == *v,
                _ => n.ip.as_deref() == Some(*v),
            })
        })
        .cloned()
        .collect();
    let size = cx.cfg.effective_page_size(per_page, 100);
    let items: Vec<Value> = nodes
        .iter()
        .skip(offset)
        .take(size)
        .map(|n| render(n, false))
        .collect();
    let next = if offset + size < nodes.len() {
        cursor_encode("next", offset + size)
    } else {
        String::new()
    };
    let prev = if offset > 0 {
        cursor_encode("prev", offset.saturating_sub(size))
    } else {
        String::new()
    };
    Resp::json(
        200,
        json!({
            kind.list_key(): items,
            "meta": {"total": nodes.len(), "links": {"next": next, "prev": prev}}
        }),
    )
}
