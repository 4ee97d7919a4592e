//! Scaleway Instance API v1 wire format — facts from `reference/apis/scaleway.md`, the Go SDK
//! and the (2022) official OpenAPI file.
//!
//! Models: whoami `GET /iam/v1alpha1/api-keys/{access_key}` and `GET /account/v3/projects`;
//! zone-scoped `POST /instance/v1/zones/{zone}/servers` (201, created **stopped**; required
//! commercial_type, name, image and exactly one of project/organization; unknown fields are
//! rejected, so `user_data`/`ssh_keys` in the body fail like on the real API); list with
//! `page`/`per_page` (≤ 100) and the `X-Total-Count` header, `?tags=a,b` (all must match),
//! `name`, `project`, `state`; get; `POST …/{id}/action` (poweron, poweroff, stop_in_place,
//! reboot, terminate → 200 task); `GET …/{id}/action` (allowed actions); `DELETE` only when
//! stopped (204); cloud-init as `PATCH …/user_data/{key}` with `text/plain` (204) plus GET/DELETE.
//! States: stopped → starting → running, running → stopping → stopped (or `stopped in place`).
//! A dynamic public IPv4 is attached when the server first runs (`public_ip` and `public_ips`).
//! Errors: `{"message", "type", …}`; validation `{"message":"Validation Error","type":
//! "invalid_request_error","fields":{…}}`; unknown id `{"type":"unknown_resource"}` (404).

use super::*;
use serde_json::json;

pub struct Scaleway;

pub const ZONES: &[&str] = &[
    "fr-par-1", "fr-par-2", "fr-par-3", "nl-ams-1", "nl-ams-2", "nl-ams-3", "pl-waw-1", "pl-waw-2",
    "pl-waw-3", "it-mil-1",
];

pub const COMMERCIAL_TYPES: &[&str] = &[
    "STARDUST1-S",
    "DEV1-S",
    "DEV1-M",
    "DEV1-L",
    "DEV1-XL",
    "PLAY2-PICO",
    "PLAY2-NANO",
    "PLAY2-MICRO",
    "PRO2-XXS",
    "PRO2-XS",
    "PRO2-S",
    "PRO2-M",
    "PRO2-L",
    "POP2-2C-8G",
    "POP2-4C-16G",
    "POP2-8C-32G",
    "GP1-XS",
    "GP1-S",
    "GP1-M",
    "GP1-L",
    "GP1-XL",
    "ENT1-S",
    "BASIC2-A2C-4G",
    "BASIC2-A4C-8G",
    "COPARM1-2C-8G",
    "COPARM1-4C-16G",
    "RENDER-S",
    "GPU-3070-S",
    "L4-1-24G",
    "L4-2-24G",
    "L40S-1-48G",
    "H100-1-80G",
    "H100-2-80G",
];

const CREATE_FIELDS: &[&str] = &[
    "name",
    "dynamic_ip_required",
    "routed_ip_enabled",
    "commercial_type",
    "image",
    "volumes",
    "enable_ipv6",
    "public_ip",
    "public_ips",
    "boot_type",
    "bootscript",
    "organization",
    "project",
    "tags",
    "security_group",
    "placement_group",
    "admin_password_encryption_ssh_key_id",
    "protected",
];

fn err(status: u16, kind: &str, message: &str) -> Resp {
    Resp::json(status, json!({"message": message, "type": kind}))
}

fn validation(field: &str, problem: &str) -> Resp {
    Resp::json(
        400,
        json!({"message": "Validation Error", "type": "invalid_request_error", "fields": { field: [problem] }}),
    )
}

fn unknown(id: &str) -> Resp {
    err(404, "unknown_resource", &format!("\"{id}\" not found"))
}

/// The parts of an Instance path: zone and the segments after `servers`.
fn instance_path(req: &Request) -> Option<(String, Vec<String>)> {
    let segs = req.segments();
    match segs.as_slice() {
        [a, b, c, zone, rest @ ..] if a == "instance" && b == "v1" && c == "zones" => {
            Some((zone.clone(), rest.to_vec()))
        }
        _ => None,
    }
}

impl Api for Scaleway {
    fn classify(&self, req: &Request) -> Op {
        let segs = req.segments();
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        match (req.method.as_str(), s.as_slice()) {
            ("GET", ["iam", "v1alpha1", "api-keys", _])
            | ("GET", ["account", "v3", "projects"]) => return Op::Verify,
            _ => {}
        }
        let Some((_, rest)) = instance_path(req) else {
            return Op::Unrouted;
        };
        let r: Vec<&str> = rest.iter().map(String::as_str).collect();
        match (req.method.as_str(), r.as_slice()) {
            ("POST", ["servers"]) => Op::Create,
            ("GET", ["servers"]) => Op::List,
            ("GET", ["servers", _]) => Op::Get,
            ("DELETE", ["servers", _]) => Op::Delete,
            ("POST", ["servers", _, "action"]) => {
                match req.json().get("action").and_then(Value::as_str) {
                    Some("poweron") => Op::Start,
                    Some("poweroff" | "stop_in_place") => Op::Stop,
                    Some("reboot") => Op::Reboot,
                    Some("terminate") => Op::Delete,
                    _ => Op::Other,
                }
            }
            ("GET", ["servers", _, "action"]) => Op::Other,
            ("GET", ["servers", _, "user_data"]) => Op::UserData,
            ("GET" | "PATCH" | "DELETE", ["servers", _, "user_data", _]) => Op::UserData,
            // A local volume left behind by a deleted server.
            ("DELETE", ["volumes", _]) => Op::Other,
            _ => Op::Unrouted,
        }
    }

    fn authorize(&self, req: &Request, cfg: &MockConfig) -> Result<(), Resp> {
        match req.header("x-auth-token") {
            Some(t) if t == cfg.token => Ok(()),
            _ => Err(Resp::json(
                401,
                json!({"message": "authentication is denied", "method": "api_key",
                       "reason": "not_found", "type": "denied_authentication"}),
            )),
        }
    }

    fn handle(&self, req: &Request, op: Op, cx: &mut Cx) -> Resp {
        if op == Op::Verify {
            return whoami(req, cx.cfg);
        }
        let Some((zone, rest)) = instance_path(req) else {
            return err(404, "not_found", "resource is not found");
        };
        if !ZONES.contains(&zone.as_str()) {
            return err(404, "not_found", &format!("zone {zone} not found"));
        }
        let id = rest.get(1).cloned().unwrap_or_default();
        let exists = cx.store.node(&id).is_some_and(|n| n.region == zone);
        match op {
            Op::Create => create(req, &zone, cx),
            Op::List => list(req, &zone, cx),
            Op::Other if req.method == "DELETE" && rest.first().is_some_and(|r| r == "volumes") => {
                Resp::empty(204)
            }
            _ if !exists => unknown(&id),
            Op::Get => match cx.poll(&id) {
                Some(n) => Resp::json(200, json!({"server": render(&n)})),
                None => unknown(&id),
            },
            Op::Delete if req.method == "DELETE" => {
                let node = cx.store.node(&id).expect("checked");
                if !(node.is_settled()
                    && (node.status == "stopped" || node.status == "stopped in place"))
                {
                    return err(400, "invalid_request_error", "server should be stopped");
                }
                cx.store.nodes.retain(|n| n.id != id);
                Resp::empty(204)
            }
            Op::UserData => user_data(req, &id, &rest, cx),
            Op::Other if req.method == "GET" => {
                let node = cx.store.node(&id).expect("checked");
                Resp::json(200, json!({"actions": allowed_actions(node)}))
            }
            _ => action(req, &id, &zone, cx),
        }
    }

    fn throttled(&self, cfg: &MockConfig) -> Resp {
        err(429, "too_many_requests", "rate limit exceeded")
            .header("Retry-After", cfg.retry_after.to_string())
    }

    fn server_error(&self) -> Resp {
        err(500, "internal_error", "internal error")
    }

    fn entered(&self, node: &mut Node, state: &str, ips: &mut IpPool) {
        if state == "running" {
            let dynamic = node
                .extra
                .get("dynamic_ip_required")
                .and_then(Value::as_bool)
                != Some(false);
            if dynamic && node.ip.is_none() {
                node.ip = Some(ips.public());
            }
            node.private_ip.get_or_insert_with(|| ips.private());
        }
    }

    fn running_state(&self) -> &'static str {
        "running"
    }

    fn seed(&self, spec: &NodeSpec, store: &mut Store, cfg: &MockConfig) -> Node {
        let id = uuid(0x5ca1_e000, store.next_seq());
        let mut n = Node::new(
            id,
            &spec.name,
            spec.plan.as_deref().unwrap_or("DEV1-S"),
            spec.region.as_deref().unwrap_or("fr-par-1"),
            "running",
        );
        n.image = "ubuntu_noble".into();
        n.tags = spec.tags.clone();
        n.extra.insert("project".into(), json!(cfg.project_id));
        self.entered(&mut n, "running", &mut store.ips);
        if let Some(s) = &spec.status {
            n.status = s.clone();
        }
        n
    }

    fn credential_env(&self, cfg: &MockConfig) -> Vec<(String, String)> {
        vec![
            ("SCW_SECRET_KEY".into(), cfg.token.clone()),
            ("SCW_ACCESS_KEY".into(), scw_access_key(cfg)),
            ("SCW_DEFAULT_PROJECT_ID".into(), cfg.project_id.clone()),
        ]
    }

    fn public_origin(&self) -> &'static str {
        "https://api.scaleway.com"
    }
}

/// The Scaleway access key (`SCW` + 17 characters) derived from the configured key id.
fn scw_access_key(cfg: &MockConfig) -> String {
    if cfg.access_key_id.starts_with("SCW") {
        cfg.access_key_id.clone()
    } else {
        let tail: String = cfg
            .access_key_id
            .chars()
            .rev()
            .take(17)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("SCW{tail:0>17}")
    }
}

fn whoami(req: &Request, cfg: &MockConfig) -> Resp {
    let segs = req.segments();
    if segs.first().map(String::as_str) == Some("account") {
        return Resp::json(
            200,
            json!({"total_count": 1, "projects": [{
                "id": cfg.project_id, "name": "default", "organization_id": cfg.project_id,
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z", "description": ""
            }]}),
        );
    }
    let key = segs.get(3).cloned().unwrap_or_default();
    if key != scw_access_key(cfg) {
        return Resp::json(
            404,
            json!({"message": "resource is not found", "resource": "api_key", "resource_id": key, "type": "not_found"}),
        );
    }
    Resp::json(
        200,
        json!({
            "access_key": key,
            "secret_key": null,
            "user_id": "6f2b0f3c-0000-4000-8000-000000000001",
            "application_id": null,
            "description": "mock key",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "expires_at": null,
            "default_project_id": cfg.project_id,
            "editable": true,
            "deletable": true,
            "managed": false,
            "creation_ip": "127.0.0.1"
        }),
    )
}

fn allowed_actions(n: &Node) -> Vec<&'static str> {
    if !n.is_settled() {
        return Vec::new();
    }
    match n.status.as_str() {
        "running" => vec!["poweroff", "terminate", "reboot", "stop_in_place", "backup"],
        "stopped" | "stopped in place" => vec!["poweron", "backup"],
        _ => Vec::new(),
    }
}

fn render(n: &Node) -> Value {
    let ip = n.ip.as_ref().map(|address| {
        json!({"id": uuid(0x1b0b_0000, n.id.len() as u64 + address.len() as u64), "address": address,
               "dynamic": true, "family": "inet", "provisioning_mode": "dhcp", "gateway": "62.210.0.1",
               "netmask": "32", "state": "attached", "tags": []})
    });
    let arch = if n.plan.starts_with("BASIC2-A") || n.plan.starts_with("COPARM") {
        "arm64"
    } else {
        "x86_64"
    };
    let zone_short = n
        .region
        .replace("fr-par-", "par")
        .replace("nl-ams-", "ams")
        .replace("pl-waw-", "waw");
    let running = n.status == "running";
    json!({
        "id": n.id,
        "name": n.name,
        "arch": arch,
        "commercial_type": n.plan,
        "boot_type": "local",
        "organization": n.extra_str("project"),
        "project": n.extra_str("project"),
        "hostname": n.name,
        "image": {"id": "5a2c2a5e-0000-4000-8000-00000000beef", "name": n.image, "arch": arch,
                  "public": true, "state": "available", "zone": n.region},
        "volumes": {"0": {"id": uuid(0x7017_0000, n.id.len() as u64), "name": format!("{}-vol-0", n.name),
                          "volume_type": "l_ssd", "size": 20_000_000_000u64, "state": "available",
                          "zone": n.region, "server": {"id": n.id, "name": n.name}, "boot": false}},
        "tags": n.tags,
        "state": n.status,
        "protected": false,
        "state_detail": match n.status.as_str() { "running" => "booted", "starting" => "provisioning node", _ => "" },
        "public_ip": ip.clone().unwrap_or(Value::Null),
        "public_ips": ip.into_iter().collect::<Vec<_>>(),
        "mac_address": "de:00:00:00:00:01",
        "routed_ip_enabled": true,
        "ipv6": null,
        "extra_networks": [],
        "dynamic_ip_required": n.extra.get("dynamic_ip_required").and_then(Value::as_bool).unwrap_or(true),
        "enable_ipv6": false,
        "private_ip": n.private_ip,
        "creation_date": n.created_at,
        "modification_date": n.created_at,
        "bootscript": null,
        "security_group": {"id": "0a1b2c3d-0000-4000-8000-00000000c0de", "name": "Default security group"},
        "location": if running {
            json!({"zone_id": zone_short, "platform_id": "14", "cluster_id": "5", "hypervisor_id": "203", "node_id": "40"})
        } else { Value::Null },
        "maintenances": [],
        "allowed_actions": allowed_actions(n),
        "placement_group": null,
        "private_nics": [],
        "zone": n.region,
        "filesystems": [],
        "end_of_service": false,
    })
}

fn create(req: &Request, zone: &str, cx: &mut Cx) -> Resp {
    let body = match req.parsed_json() {
        Ok(b) => b,
        Err(m) => return err(400, "invalid_request_error", &m),
    };
    let Some(obj) = body.as_object() else {
        return validation("_schema", "Invalid input type.");
    };
    if let Some(extra) = obj.keys().find(|k| !CREATE_FIELDS.contains(&k.as_str())) {
        return validation(extra, "Unknown field.");
    }
    if let Err(e) = check_fields(
        &body,
        &[
            ("name", Kind::Str),
            ("commercial_type", Kind::Str),
            ("image", Kind::Str),
        ],
        &[
            ("project", Kind::Str),
            ("organization", Kind::Str),
            ("tags", Kind::StrList),
            ("volumes", Kind::Obj),
            ("dynamic_ip_required", Kind::Bool),
            ("routed_ip_enabled", Kind::Bool),
            ("enable_ipv6", Kind::Bool),
            ("protected", Kind::Bool),
            ("public_ip", Kind::Str),
            ("public_ips", Kind::StrList),
            ("boot_type", Kind::Str),
            ("security_group", Kind::Str),
            ("placement_group", Kind::Str),
        ],
    ) {
        let problem = if e.problem == "is required" {
            "Missing data for required field.".into()
        } else {
            e.problem
        };
        return validation(&e.field, &problem);
    }
    let project = obj.get("project").and_then(Value::as_str);
    let org = obj.get("organization").and_then(Value::as_str);
    let owner = match (project, org) {
        (Some(p), None) => p,
        (None, Some(o)) => o,
        _ => {
            return validation(
                "project",
                "Exactly one of project and organization must be set.",
            )
        }
    };
    if owner != cx.cfg.project_id {
        return Resp::json(
            403,
            json!({"message": "insufficient permissions", "type": "permissions_denied",
                   "details": [{"resource": "instance_server", "action": "write"}]}),
        );
    }
    let ctype = str_field(&body, "commercial_type");
    if !cx.cfg.plan_known(COMMERCIAL_TYPES, ctype) {
        return validation(
            "commercial_type",
            &format!("\"{ctype}\" is not a valid commercial type in {zone}."),
        );
    }
    let image = str_field(&body, "image");
    if image.is_empty() {
        return validation("image", "Field may not be empty.");
    }
    if let Some(vols) = obj.get("volumes").and_then(Value::as_object) {
        for (k, v) in vols {
            let vt = v
                .get("volume_type")
                .and_then(Value::as_str)
                .unwrap_or("l_ssd");
            if !["l_ssd", "sbs_volume", "scratch", "b_ssd"].contains(&vt) {
                return validation(&format!("volumes.{k}.volume_type"), "Not a valid choice.");
            }
        }
    }
    // Error `type`s `out_of_stock` and `quotas_exceeded` (reference/apis/scaleway.md §5). The
    // stored sources give no status for out_of_stock: the mock answers 503, the cautious reading
    // (a 5xx stays in doubt until the lookup by tag settles it); a quota answers 403.
    match cx.cfg.refusal_in(zone) {
        Some(super::Refusal::Capacity) => {
            return err(
                503,
                "out_of_stock",
                &format!("{ctype} is out of stock in {zone}"),
            )
        }
        Some(super::Refusal::Quota) => {
            return err(403, "quotas_exceeded", "Quota exceeded for this resource.")
        }
        None => {}
    }
    let id = uuid(0x5ca1_e000, cx.store.next_seq());
    let mut node = Node::new(id, str_field(&body, "name"), ctype, zone, "stopped");
    node.image = image.to_string();
    node.tags = str_list(&body, "tags");
    node.extra.insert("project".into(), json!(owner));
    if let Some(d) = obj.get("dynamic_ip_required") {
        node.extra.insert("dynamic_ip_required".into(), d.clone());
    }
    let out = render(&node);
    cx.store.create(node);
    Resp::json(201, json!({ "server": out }))
}

fn list(req: &Request, zone: &str, cx: &mut Cx) -> Resp {
    let (page, per_page) = match (int_param(req, "page"), int_param(req, "per_page")) {
        (Ok(p), Ok(pp)) => (p.unwrap_or(1), pp),
        (Err(m), _) => return validation("page", &m),
        (_, Err(m)) => return validation("per_page", &m),
    };
    if page == 0 {
        return validation("page", "Must be greater than or equal to 1.");
    }
    if per_page.is_some_and(|p| p == 0 || p > 100) {
        return validation("per_page", "Must be between 1 and 100.");
    }
    let tags: Vec<&str> = req
        .q("tags")
        .map(|t| t.split(',').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let name = req.q("name").filter(|n| !n.is_empty());
    let project = req.q("project").filter(|p| !p.is_empty());
    let state = req.q("state").filter(|s| !s.is_empty());
    let nodes: Vec<Node> = cx
        .store
        .nodes
        .iter()
        .filter(|n| n.region == zone)
        .filter(|n| tags.iter().all(|t| n.has_tag(t)))
        .filter(|n| name.is_none_or(|x| n.name.contains(x)))
        .filter(|n| project.is_none_or(|p| n.extra_str("project") == p))
        .filter(|n| state.is_none_or(|s| n.status == s))
        .cloned()
        .collect();
    let size = cx.cfg.effective_page_size(per_page, 50);
    let (items, _) = paginate(&nodes, page, size);
    Resp::json(
        200,
        json!({"servers": items.iter().map(render).collect::<Vec<_>>()}),
    )
    .header("X-Total-Count", nodes.len().to_string())
}

fn action(req: &Request, id: &str, zone: &str, cx: &mut Cx) -> Resp {
    let body = match req.parsed_json() {
        Ok(b) => b,
        Err(m) => return err(400, "invalid_request_error", &m),
    };
    let kind = body
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let node = cx.store.node_mut(id).expect("checked");
    if !node.is_settled() {
        return Resp::json(
            409,
            json!({"message": "resource is in a transient state", "resource": "instance_server",
                   "resource_id": id, "current_state": node.status, "type": "transient_state"}),
        );
    }
    let stopped = node.status == "stopped" || node.status == "stopped in place";
    let running = node.status == "running";
    match kind.as_str() {
        "poweron" if stopped => node.go(&["starting", "running"]),
        "poweroff" if running => node.go(&["stopping", "stopped"]),
        "stop_in_place" if running => node.go(&["stopping", "stopped in place"]),
        "reboot" if running => node.go(&["running"]),
        "terminate" if running => node.go(&["stopping", GONE]),
        "terminate" => node.go(&[GONE]),
        "poweron" => return err(400, "invalid_request_error", "server should be stopped"),
        "poweroff" | "stop_in_place" | "reboot" => {
            return err(400, "invalid_request_error", "server should be running")
        }
        _ => {
            return validation(
                "action",
                "Must be one of: poweron, backup, stop_in_place, poweroff, terminate, reboot, enable_routed_ip.",
            )
        }
    }
    let task = cx.store.next_seq();
    Resp::json(
        200,
        json!({"task": {
            "id": uuid(0x7a5c_0000, task),
            "description": format!("server_batch_{kind}"),
            "status": "pending",
            "href_from": format!("/servers/{id}/action"),
            "href_result": format!("/servers/{id}"),
            "started_at": now_rfc3339(),
            "terminated_at": null,
            "progress": 0,
            "zone": zone,
        }}),
    )
}

fn user_data(req: &Request, id: &str, rest: &[String], cx: &mut Cx) -> Resp {
    let key = rest.get(3).cloned();
    let node = cx.store.node_mut(id).expect("checked");
    let mut keys: Vec<String> = node
        .extra
        .get("user_data_keys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let stored = |node: &Node, k: &str| -> Option<String> {
        if k == "cloud-init" {
            node.user_data.clone()
        } else {
            node.extra
                .get(&format!("user_data:{k}"))
                .and_then(Value::as_str)
                .map(str::to_string)
        }
    };
    match (req.method.as_str(), key) {
        ("GET", None) => Resp::json(200, json!({"user_data": keys})),
        ("GET", Some(k)) => match stored(node, &k) {
            Some(v) => Resp::text(200, &v),
            None => err(404, "not_found", &format!("user data {k} not found")),
        },
        ("PATCH", Some(k)) => {
            let ct = req.header("content-type").unwrap_or("");
            if !ct.to_ascii_lowercase().starts_with("text/plain") {
                return err(
                    400,
                    "invalid_request_error",
                    "Content-Type must be text/plain",
                );
            }
            let text = req.body_text();
            if k == "cloud-init" {
                node.user_data = Some(text);
            } else {
                node.extra.insert(format!("user_data:{k}"), json!(text));
            }
            if !keys.contains(&k) {
                keys.push(k);
            }
            node.extra.insert("user_data_keys".into(), json!(keys));
            Resp::empty(204)
        }
        ("DELETE", Some(k)) => {
            if k == "cloud-init" {
                node.user_data = None;
            }
            node.extra.remove(&format!("user_data:{k}"));
            keys.retain(|x| *x != k);
            node.extra.insert("user_data_keys".into(), json!(keys));
            Resp::empty(204)
        }
        _ => err(404, "not_found", "resource is not found"),
    }
}
