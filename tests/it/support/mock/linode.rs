//! Linode API v4 (Linode instances) wire format — facts from `reference/apis/linode.md` and the
//! official OpenAPI spec.
//!
//! Models: `GET /v4/profile`; `POST /v4/linode/instances` (200, no envelope; required type +
//! region, `root_pass` required with `image` and checked for length/strength, label pattern and
//! per-account uniqueness, tag length 3–50, base64 `metadata.user_data`, `booted`); list with
//! `page`/`page_size` (25–500) → `{data, page, pages, results}` and the `X-Filter` header
//! (field equality, `+and`, `+or`, `+contains`, `+neq`, `+gt/+gte/+lt/+lte`, `+order_by`
//! ignored; unknown query parameters such as `?tag=` are ignored, as the real API does);
//! get; `POST …/boot|shutdown|reboot` → 200 `{}` ("Linode busy." while in transition);
//! `DELETE` → 200 `{}`, `deleting`, then 404. States: provisioning → booting → running,
//! running → shutting_down → offline, offline → booting → running. `ipv4` is filled at create
//! (as on the real API). `/v4beta` is accepted like `/v4`. Errors: `{"errors":[{reason, field}]}`.

use super::*;
use base64::Engine;
use serde_json::json;

pub struct Linode;

/// Type ids with (vcpus, memory MB, disk MB, gpus).
pub const TYPES: &[(&str, u64, u64, u64, u64)] = &[
    ("g6-nanode-1", 1, 1024, 25600, 0),
    ("g6-standard-1", 1, 2048, 51200, 0),
    ("g6-standard-2", 2, 4096, 81920, 0),
    ("g6-standard-4", 4, 8192, 163840, 0),
    ("g6-standard-6", 6, 16384, 327680, 0),
    ("g6-standard-8", 8, 32768, 655360, 0),
    ("g6-dedicated-2", 2, 4096, 81920, 0),
    ("g6-dedicated-4", 4, 8192, 163840, 0),
    ("g6-dedicated-8", 8, 16384, 327680, 0),
    ("g6-dedicated-16", 16, 32768, 655360, 0),
    ("g1-gpu-rtx6000-1", 8, 32768, 655360, 1),
    ("g1-gpu-rtx6000-2", 16, 65536, 1310720, 2),
    ("g2-gpu-rtx4000a1-s", 4, 16384, 524288, 1),
];

pub const REGIONS: &[&str] = &[
    "us-east",
    "us-west",
    "us-central",
    "us-southeast",
    "eu-west",
    "eu-central",
    "ap-south",
    "ap-northeast",
    "ap-southeast",
    "ap-west",
    "ca-central",
    "au-mel",
    "us-iad",
    "us-ord",
    "us-sea",
    "us-lax",
    "us-mia",
    "fr-par",
    "nl-ams",
    "se-sto",
    "it-mil",
    "es-mad",
    "gb-lon",
    "de-fra-2",
    "jp-osa",
    "jp-tyo-3",
    "sg-sin-2",
    "in-maa",
    "in-bom-2",
    "id-cgk",
    "br-gru",
];

fn err(status: u16, reason: &str, field: Option<&str>) -> Resp {
    let e = match field {
        Some(f) => json!({"reason": reason, "field": f}),
        None => json!({"reason": reason}),
    };
    Resp::json(status, json!({ "errors": [e] }))
}

fn not_found() -> Resp {
    err(404, "Not found", None)
}

impl Api for Linode {
    fn classify(&self, req: &Request) -> Op {
        let segs = req.segments();
        let s: Vec<&str> = segs.iter().map(String::as_str).collect();
        let s = match s.split_first() {
            Some((&"v4" | &"v4beta", rest)) => rest,
            _ => return Op::Unrouted,
        };
        match (req.method.as_str(), s) {
            ("GET", ["profile"]) => Op::Verify,
            ("POST", ["linode", "instances"]) => Op::Create,
            ("GET", ["linode", "instances"]) => Op::List,
            ("GET", ["linode", "instances", _]) => Op::Get,
            ("DELETE", ["linode", "instances", _]) => Op::Delete,
            ("POST", ["linode", "instances", _, "boot"]) => Op::Start,
            ("POST", ["linode", "instances", _, "shutdown"]) => Op::Stop,
            ("POST", ["linode", "instances", _, "reboot"]) => Op::Reboot,
            ("POST", ["linode", "instances", _, "rebuild"]) => Op::Other,
            _ => Op::Unrouted,
        }
    }

    fn authorize(&self, req: &Request, cfg: &MockConfig) -> Result<(), Resp> {
        match bearer(req) {
            Some(t) if t == cfg.token => Ok(()),
            _ => Err(err(401, "Invalid Token", None)),
        }
    }

    fn handle(&self, req: &Request, op: Op, cx: &mut Cx) -> Resp {
        let id = req.segments().get(3).cloned().unwrap_or_default();
        let exists = cx.store.node(&id).is_some();
        match op {
            Op::Verify => profile(),
            Op::Create => create(req, cx),
            Op::List => list(req, cx),
            _ if !exists => not_found(),
            Op::Get => match cx.poll(&id) {
                Some(n) => Resp::json(200, render(&n)),
                None => not_found(),
            },
            // Rebuild: image and root_pass required; metadata.user_data base64.
            Op::Other => {
                let body = req.json();
                let image = body.get("image").and_then(Value::as_str);
                let pass = body.get("root_pass").and_then(Value::as_str);
                let (Some(image), Some(_)) = (image, pass) else {
                    return err(400, "image and root_pass are required", Some("image"));
                };
                let ud = body.pointer("/metadata/user_data");
                if ud.is_some_and(|u| !u.as_str().is_some_and(is_base64)) {
                    return err(
                        400,
                        "user_data must be valid base64",
                        Some("metadata.user_data"),
                    );
                }
                let node = cx.store.node_mut(&id).expect("checked");
                node.image = image.to_string();
                node.user_data = ud.and_then(Value::as_str).map(|u| {
                    base64::engine::general_purpose::STANDARD
                        .decode(u.trim())
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default()
                });
                node.go(&["rebuilding", "running"]);
                Resp::json(200, render(node))
            }
            Op::Delete => {
                let node = cx.store.node_mut(&id).expect("checked");
                if node.status != "deleting" {
                    node.status = "deleting".into();
                    node.go(&[GONE]);
                }
                Resp::json(200, json!({}))
            }
            Op::Start | Op::Stop | Op::Reboot => {
                let node = cx.store.node_mut(&id).expect("checked");
                if !node.is_settled() {
                    return err(400, "Linode busy.", None);
                }
                match (op, node.status.as_str()) {
                    (Op::Start, "offline" | "stopped") => node.go(&["booting", "running"]),
                    (Op::Stop, "running") => node.go(&["shutting_down", "offline"]),
                    (Op::Reboot, "running") => node.go(&["rebooting", "running"]),
                    (Op::Reboot, "offline") => node.go(&["booting", "running"]),
                    _ => {} // already in the wanted state
                }
                Resp::json(200, json!({}))
            }
            _ => not_found(),
        }
    }

    fn throttled(&self, cfg: &MockConfig) -> Resp {
        err(429, "Too Many Requests", None)
            .header("Retry-After", cfg.retry_after.to_string())
            .header("X-RateLimit-Limit", "800")
            .header("X-RateLimit-Remaining", "0")
            .header(
                "X-RateLimit-Reset",
                (now().unix_timestamp() + i64::from(cfg.retry_after)).to_string(),
            )
    }

    fn server_error(&self) -> Resp {
        err(500, "Please try again", None)
    }

    fn entered(&self, _node: &mut Node, _state: &str, _ips: &mut IpPool) {
        // Addresses are assigned at create and kept across power changes.
    }

    fn running_state(&self) -> &'static str {
        "running"
    }

    fn seed(&self, spec: &NodeSpec, store: &mut Store, _cfg: &MockConfig) -> Node {
        let id = (40_000_000 + store.next_seq()).to_string();
        let label = if spec.name.is_empty() {
            format!("linode{id}")
        } else {
            spec.name.clone()
        };
        let mut n = Node::new(
            id,
            &label,
            spec.plan.as_deref().unwrap_or("g6-nanode-1"),
            spec.region.as_deref().unwrap_or("us-east"),
            spec.status.as_deref().unwrap_or("running"),
        );
        n.image = "linode/ubuntu24.04".into();
        n.tags = spec.tags.clone();
        n.ip = Some(store.ips.public());
        n
    }

    fn credential_env(&self, cfg: &MockConfig) -> Vec<(String, String)> {
        vec![("LINODE_TOKEN".into(), cfg.token.clone())]
    }

    fn common_headers(&self, store: &Store) -> Vec<(String, String)> {
        vec![
            ("X-RateLimit-Limit".into(), "800".into()),
            (
                "X-RateLimit-Remaining".into(),
                800u64.saturating_sub(store.counter).to_string(),
            ),
            (
                "X-RateLimit-Reset".into(),
                (now().unix_timestamp() + 120).to_string(),
            ),
        ]
    }

    fn public_origin(&self) -> &'static str {
        "https://api.linode.com"
    }
}

fn profile() -> Resp {
    Resp::json(
        200,
        json!({
            "uid": 1234,
            "username": "mock-user",
            "email": "mock@example.com",
            "timezone": "US/Eastern",
            "email_notifications": true,
            "restricted": false,
            "two_factor_auth": true,
            "authorized_keys": null,
            "lish_auth_method": "keys_only",
            "referrals": {"code": "", "url": "", "total": 0, "completed": 0, "pending": 0, "credit": 0},
            "authentication_type": "password",
            "verified_phone_number": null
        }),
    )
}

fn render(n: &Node) -> Value {
    let (vcpus, memory, disk, gpus) = TYPES
        .iter()
        .find(|t| t.0 == n.plan)
        .map(|t| (t.1, t.2, t.3, t.4))
        .unwrap_or((1, 1024, 25600, 0));
    let mut ipv4: Vec<&str> = n.ip.iter().map(String::as_str).collect();
    ipv4.extend(n.private_ip.iter().map(String::as_str));
    let created = n.created_at.trim_end_matches('Z');
    let seq = n.id.parse::<u64>().unwrap_or(0) % 0xffff;
    json!({
        "id": n.id.parse::<u64>().unwrap_or(0),
        "label": n.name,
        "group": "",
        "status": n.status,
        "created": created,
        "updated": created,
        "type": n.plan,
        "ipv4": ipv4,
        "ipv6": format!("2600:3c03::f03c:91ff:fe24:{seq:x}/128"),
        "image": n.image,
        "region": n.region,
        "site_type": "core",
        "specs": {"disk": disk, "memory": memory, "vcpus": vcpus, "gpus": gpus, "transfer": 1000},
        "alerts": {"cpu": 180, "network_in": 10, "network_out": 10, "transfer_quota": 80, "io": 10000},
        "backups": {"enabled": false, "available": false, "schedule": {"day": null, "window": null},
                    "last_successful": null},
        "hypervisor": "kvm",
        "watchdog_enabled": true,
        "tags": n.tags,
        "host_uuid": "3a3ddd59d9a78bb8de041391075df44de62bfec8",
        "has_user_data": n.user_data.is_some(),
        "placement_group": null,
        "disk_encryption": "disabled",
        "lke_cluster_id": null,
        "capabilities": [],
    })
}

fn valid_label(label: &str) -> bool {
    // ^[a-zA-Z]((?!--|__|\.\.)[a-zA-Z0-9-_.])+$, 3–64 characters
    let b = label.as_bytes();
    (3..=64).contains(&b.len())
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
        && !label.contains("--")
        && !label.contains("__")
        && !label.contains("..")
}

fn strong_enough(pass: &str) -> bool {
    let classes = [
        pass.chars().any(|c| c.is_ascii_lowercase()),
        pass.chars().any(|c| c.is_ascii_uppercase()),
        pass.chars().any(|c| c.is_ascii_digit()),
        pass.chars().any(|c| !c.is_ascii_alphanumeric()),
    ];
    classes.iter().filter(|c| **c).count() >= 3
}

fn create(req: &Request, cx: &mut Cx) -> Resp {
    let body = match req.parsed_json() {
        Ok(b) => b,
        Err(m) => return err(400, &m, None),
    };
    if let Err(e) = check_fields(
        &body,
        &[("type", Kind::Str), ("region", Kind::Str)],
        &[
            ("image", Kind::Str),
            ("root_pass", Kind::Str),
            ("authorized_keys", Kind::StrList),
            ("authorized_users", Kind::StrList),
            ("label", Kind::Str),
            ("group", Kind::Str),
            ("tags", Kind::StrList),
            ("metadata", Kind::Obj),
            ("booted", Kind::Bool),
            ("private_ip", Kind::Bool),
            ("backups_enabled", Kind::Bool),
            ("firewall_id", Kind::Int),
            ("swap_size", Kind::Int),
            ("stackscript_id", Kind::Int),
            ("stackscript_data", Kind::Obj),
            ("placement_group", Kind::Obj),
        ],
    ) {
        let reason = if e.problem == "is required" {
            "This field is required.".to_string()
        } else {
            e.message()
        };
        return err(400, &reason, Some(&e.field));
    }
    let plan = str_field(&body, "type");
    let builtin: Vec<&str> = TYPES.iter().map(|t| t.0).collect();
    if !cx.cfg.plan_known(&builtin, plan) {
        return err(
            400,
            "A valid plan type by that ID was not found",
            Some("type"),
        );
    }
    let region = str_field(&body, "region");
    if !REGIONS.contains(&region) {
        return err(400, "region is not valid", Some("region"));
    }
    let image = body.get("image").and_then(Value::as_str);
    if let Some(img) = image {
        if !(img.starts_with("linode/") || img.starts_with("private/")) {
            return err(400, "image is not valid", Some("image"));
        }
        match body.get("root_pass").and_then(Value::as_str) {
            None => {
                return err(
                    400,
                    "root_pass is required when deploying from an image.",
                    Some("root_pass"),
                )
            }
            Some(p) if !(7..=128).contains(&p.chars().count()) => {
                return err(
                    400,
                    "Password must be between 7 and 128 characters.",
                    Some("root_pass"),
                )
            }
            Some(p) if !strong_enough(p) => {
                return err(
                    400,
                    "Password does not meet strength requirement.",
                    Some("root_pass"),
                )
            }
            _ => {}
        }
    }
    let label = match body.get("label").and_then(Value::as_str) {
        Some(l) if !valid_label(l) => {
            return err(
                400,
                "Label must begin with a letter, contain only letters, numbers, dashes, underscores and periods, and be 3-64 characters.",
                Some("label"),
            )
        }
        Some(l) if cx.store.name_taken(l) => {
            return err(400, "Label must be unique among your linodes", Some("label"))
        }
        other => other.map(str::to_string),
    };
    let tags = str_list(&body, "tags");
    if tags.iter().any(|t| !(3..=50).contains(&t.chars().count())) {
        return err(400, "Length must be 3-50 characters", Some("tags"));
    }
    let user_data = body.pointer("/metadata/user_data");
    if user_data.is_some_and(|u| !u.as_str().is_some_and(is_base64)) {
        return err(
            400,
            "user_data must be valid base64",
            Some("metadata.user_data"),
        );
    }
    let booted = body
        .get("booted")
        .and_then(Value::as_bool)
        .unwrap_or(image.is_some());
    let id = (40_000_000 + cx.store.next_seq()).to_string();
    let label = label.unwrap_or_else(|| format!("linode{id}"));
    let mut node = Node::new(id, &label, plan, region, "provisioning");
    node.image = image.unwrap_or_default().to_string();
    node.tags = tags;
    node.user_data = user_data.and_then(Value::as_str).map(|u| {
        base64::engine::general_purpose::STANDARD
            .decode(u.trim())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    });
    node.ip = Some(cx.store.ips.public());
    if body.get("private_ip").and_then(Value::as_bool) == Some(true) {
        let n = cx.store.ips.private;
        cx.store.ips.private += 1;
        node.private_ip = Some(format!("192.168.{}.{}", 128 + n / 250, 2 + n % 250));
    }
    for key in ["authorized_keys", "root_pass"] {
        if let Some(v) = body.get(key) {
            node.extra.insert(key.into(), v.clone());
        }
    }
    if booted {
        node.go(&["booting", "running"]);
    } else {
        node.go(&["offline"]);
    }
    let out = render(&node);
    cx.store.create(node);
    Resp::json(200, out)
}

/// Values of a filterable field.
fn field_values(n: &Node, field: &str) -> Result<Vec<String>, String> {
    Ok(match field {
        "tags" => n.tags.clone(),
        "label" => vec![n.name.clone()],
        "region" => vec![n.region.clone()],
        "type" => vec![n.plan.clone()],
        "status" => vec![n.status.clone()],
        "image" => vec![n.image.clone()],
        "id" => vec![n.id.clone()],
        "group" => vec![String::new()],
        other => return Err(format!("Cannot filter on {other}")),
    })
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn compare(values: &[String], op: &str, want: &str) -> bool {
    let num = |s: &str| s.parse::<f64>().ok();
    values.iter().any(|v| match op {
        "+contains" => v.contains(want),
        "+neq" => v != want,
        "+gt" | "+gte" | "+lt" | "+lte" => match (num(v), num(want)) {
            (Some(a), Some(b)) => match op {
                "+gt" => a > b,
                "+gte" => a >= b,
                "+lt" => a < b,
                _ => a <= b,
            },
            _ => false,
        },
        _ => v == want,
    })
}

/// Evaluate an `X-Filter` object against a node.
fn matches(filter: &Value, n: &Node) -> Result<bool, String> {
    let obj = filter.as_object().ok_or("X-Filter must be a JSON object")?;
    for (key, cond) in obj {
        let ok = match key.as_str() {
            "+and" | "+or" => {
                let parts = cond.as_array().ok_or(format!("{key} must be an array"))?;
                let results = parts
                    .iter()
                    .map(|p| matches(p, n))
                    .collect::<Result<Vec<_>, _>>()?;
                if key == "+and" {
                    results.iter().all(|r| *r)
                } else {
                    results.iter().any(|r| *r)
                }
            }
            "+order_by" | "+order" => true,
            field => {
                let values = field_values(n, field)?;
                match cond {
                    Value::Object(ops) => {
                        let mut all = true;
                        for (op, want) in ops {
                            let ok = match op.as_str() {
                                "+or" => want
                                    .as_array()
                                    .ok_or("+or must be an array")?
                                    .iter()
                                    .filter_map(scalar)
                                    .any(|w| compare(&values, "=", &w)),
                                "+contains" | "+neq" | "+gt" | "+gte" | "+lt" | "+lte" => {
                                    let w = scalar(want).ok_or(format!("{op} needs a scalar"))?;
                                    compare(&values, op, &w)
                                }
                                other => return Err(format!("Unknown filter operator {other}")),
                            };
                            all &= ok;
                        }
                        all
                    }
                    other => {
                        let w = scalar(other).ok_or(format!("Invalid value for {field}"))?;
                        compare(&values, "=", &w)
                    }
                }
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn list(req: &Request, cx: &mut Cx) -> Resp {
    let (page, page_size) = match (int_param(req, "page"), int_param(req, "page_size")) {
        (Ok(p), Ok(ps)) => (p.unwrap_or(1), ps),
        (Err(m), _) => return err(400, &m, Some("page")),
        (_, Err(m)) => return err(400, &m, Some("page_size")),
    };
    if page == 0 {
        return err(400, "Must be greater than or equal to 1", Some("page"));
    }
    if page_size.is_some_and(|s| !(25..=500).contains(&s)) {
        return err(400, "Must be 25-500", Some("page_size"));
    }
    let filter = match req.header("x-filter").filter(|f| !f.trim().is_empty()) {
        None => None,
        Some(f) => match serde_json::from_str::<Value>(f) {
            Ok(v) => Some(v),
            Err(_) => return err(400, "Invalid JSON", Some("X-Filter")),
        },
    };
    let mut nodes = Vec::new();
    for n in &cx.store.nodes {
        let keep = match &filter {
            None => true,
            Some(f) => match matches(f, n) {
                Ok(k) => k,
                Err(m) => return err(400, &m, Some("X-Filter")),
            },
        };
        if keep {
            nodes.push(n.clone());
        }
    }
    let size = cx.cfg.effective_page_size(page_size, 100);
    let (items, pages) = paginate(&nodes, page, size);
    Resp::json(
        200,
        json!({
            "data": items.iter().map(render).collect::<Vec<_>>(),
            "page": page,
            "pages": pages,
            "results": nodes.len(),
        }),
    )
}
