//! Hivelocity API v2 (instant bare metal) wire format — facts from
//! `reference/apis/hivelocity.md` and the official Swagger 2.0 file.
//!
//! Models: whoami `GET /api/v2/profile/`; `POST /api/v2/compute/` (200 BareMetalDevice;
//! required productId (int), locationName (facility code), osName, hostname (an FQDN); period
//! enum; tags; script); `GET /api/v2/compute/` (a bare JSON array: no paging, no filter);
//! `GET/DELETE /api/v2/compute/{deviceId}` (delete → 204, then 404); power
//! `POST /api/v2/device/{id}/power?action=boot|shutdown|reboot` → 202 `{powerStatus}` and
//! `GET /api/v2/device/{id}/power`. The deprecated `/bare-metal-devices/` paths behave like
//! `/compute/`. A new device is absent (GET 404, not listed) while it provisions, as on the
//! real API ("won't show up in GET requests until the order is approved and provisioning is
//! finished"), then `ON` with its `primaryIp`; with `MockConfig::hide_provisioning = false` it
//! shows `powerStatus: "OFF"` and no address meanwhile. Each GET of the device (or of its power)
//! counts as a poll. Power changes take effect after the poll count. 429 is `{"code":429,"description":"Your IP is rate limited."}` with
//! `X-RateLimit-Reset` and no `Retry-After`, as documented.

use super::*;
use serde_json::json;

pub struct Hivelocity;

pub const FACILITIES: &[&str] = &[
    "ATL2", "TPA1", "TPA2", "LAX2", "LAX3", "NYC1", "MIA1", "DAL1", "SEA1", "ORD1", "IAD3", "SLC1",
    "YYZ2", "AMS1", "FRA1", "LHR2", "SIN1", "NRT2", "BOM1", "DEL1", "PNQ1", "POZ1", "RIX1", "VNO1",
    "IND1",
];

const PERIODS: &[&str] = &[
    "hourly",
    "monthly",
    "quarterly",
    "semi-annually",
    "annually",
    "biennial",
    "triennial",
];

fn err(status: u16, description: &str) -> Resp {
    Resp::json(
        status,
        json!({"code": status, "description": description, "message": wire::reason(status)}),
    )
}

fn not_found() -> Resp {
    err(404, "Device not found")
}

fn api_path(req: &Request) -> Option<Vec<String>> {
    let segs = req.segments();
    match segs.as_slice() {
        [a, b, rest @ ..] if a == "api" && b == "v2" => Some(rest.to_vec()),
        _ => None,
    }
}

impl Api for Hivelocity {
    fn classify(&self, req: &Request) -> Op {
        let Some(rest) = api_path(req) else {
            return Op::Unrouted;
        };
        let r: Vec<&str> = rest.iter().map(String::as_str).collect();
        match (req.method.as_str(), r.as_slice()) {
            ("GET", ["profile"]) => Op::Verify,
            ("POST", ["compute" | "bare-metal-devices"]) => Op::Create,
            ("GET", ["compute" | "bare-metal-devices"]) => Op::List,
            ("GET", ["compute" | "bare-metal-devices", _]) => Op::Get,
            ("DELETE", ["compute" | "bare-metal-devices", _]) => Op::Delete,
            ("POST", ["device", _, "power"]) => match req.q("action") {
                Some("boot") => Op::Start,
                Some("shutdown") => Op::Stop,
                Some("reboot") => Op::Reboot,
                _ => Op::Other,
            },
            ("GET", ["device", _, "power"]) => Op::Poll,
            // A reload (BareMetalDeviceUpdate with forceReload).
            ("PUT", ["compute" | "bare-metal-devices", _]) => Op::Other,
            ("GET", ["inventory", "product"]) => Op::Other,
            _ => Op::Unrouted,
        }
    }

    fn authorize(&self, req: &Request, cfg: &MockConfig) -> Result<(), Resp> {
        match req.header("x-api-key") {
            Some(t) if t == cfg.token => Ok(()),
            _ => Err(err(401, "The API key is missing or invalid.")),
        }
    }

    fn handle(&self, req: &Request, op: Op, cx: &mut Cx) -> Resp {
        let rest = api_path(req).unwrap_or_default();
        match op {
            Op::Verify => return profile(),
            Op::Other if rest == ["inventory", "product"] => return inventory(req, cx.cfg),
            Op::Create => return create(req, cx),
            Op::List => {
                let hide = cx.cfg.hide_provisioning;
                let items: Vec<Value> = cx
                    .store
                    .nodes
                    .iter()
                    .filter(|n| !(hide && n.status == "provisioning"))
                    .map(render)
                    .collect();
                return Resp::json(200, Value::Array(items));
            }
            _ => {}
        }
        let id = rest.get(1).cloned().unwrap_or_default();
        if cx.store.node(&id).is_none() {
            return not_found();
        }
        match op {
            Op::Get | Op::Poll => match cx.poll(&id) {
                Some(n) if cx.cfg.hide_provisioning && n.status == "provisioning" => not_found(),
                Some(n) if op == Op::Get => Resp::json(200, render(&n)),
                Some(n) => Resp::json(200, json!({"powerStatus": power(&n)})),
                None => not_found(),
            },
            Op::Delete => {
                cx.store.nodes.retain(|n| n.id != id);
                Resp::empty(204)
            }
            Op::Other if req.method == "PUT" => {
                // BareMetalDeviceUpdate: hostname and osName required; script; forceReload.
                let Ok(body) = req.parsed_json() else {
                    return err(400, "Invalid device parameters.");
                };
                let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
                let (Some(hostname), Some(os)) = (text("hostname"), text("osName")) else {
                    return err(400, "Invalid device parameters.");
                };
                if body.get("forceReload").is_some_and(|v| !v.is_boolean()) {
                    return err(400, "Invalid device parameters.");
                }
                let node = cx.store.node_mut(&id).expect("checked");
                if node.status != "OFF" || !node.is_settled() {
                    return err(409, "Device must be powered off to reload.");
                }
                node.name = hostname;
                node.image = os;
                node.user_data = text("script");
                node.go(&["ON"]);
                Resp::json(200, render(node))
            }
            Op::Start | Op::Stop | Op::Reboot => {
                let node = cx.store.node_mut(&id).expect("checked");
                if node.status == "provisioning" || !node.is_settled() {
                    return err(409, "Device has a pending operation; try again later.");
                }
                match (op, node.status.as_str()) {
                    (Op::Start, "OFF") => node.go(&["ON"]),
                    (Op::Stop, "ON") => node.go(&["OFF"]),
                    (Op::Reboot, "ON") => node.go(&["ON"]),
                    (Op::Start, _) => return err(400, "Can't do this while server is powered on."),
                    _ => return err(400, "Can't do this while server is powered off."),
                }
                let current = power(node);
                Resp::json(202, json!({ "powerStatus": current }))
            }
            _ => err(400, "action must be one of boot, reboot, shutdown"),
        }
    }

    fn throttled(&self, cfg: &MockConfig) -> Resp {
        Resp::json(
            429,
            json!({"code": 429, "description": "Your IP is rate limited."}),
        )
        .header("X-RateLimit-Limit", "3600")
        .header("X-RateLimit-Remaining", "0")
        .header("X-RateLimit-Reset", cfg.retry_after.to_string())
    }

    fn server_error(&self) -> Resp {
        err(500, "Internal Server Error")
    }

    fn running_state(&self) -> &'static str {
        "ON"
    }

    fn seed(&self, spec: &NodeSpec, store: &mut Store, _cfg: &MockConfig) -> Node {
        let seq = store.next_seq();
        let mut n = Node::new(
            (10_000 + seq).to_string(),
            &spec.name,
            spec.plan.as_deref().unwrap_or("525"),
            spec.region.as_deref().unwrap_or("TPA1"),
            "ON",
        );
        n.image = "Ubuntu 22.04".into();
        n.tags = spec.tags.clone();
        n.extra.insert("orderId".into(), json!(20_000 + seq));
        n.extra.insert("serviceId".into(), json!(30_000 + seq));
        n.extra.insert("period".into(), json!("hourly"));
        self.entered(&mut n, "ON", &mut store.ips);
        if let Some(s) = &spec.status {
            n.status = s.clone();
        }
        n
    }

    fn credential_env(&self, cfg: &MockConfig) -> Vec<(String, String)> {
        vec![("HIVELOCITY_API_KEY".into(), cfg.token.clone())]
    }

    fn common_headers(&self, store: &Store) -> Vec<(String, String)> {
        vec![
            ("X-RateLimit-Limit".into(), "3600".into()),
            (
                "X-RateLimit-Remaining".into(),
                3600u64.saturating_sub(store.counter).to_string(),
            ),
            ("X-RateLimit-Reset".into(), "3600".into()),
        ]
    }

    fn public_origin(&self) -> &'static str {
        "https://core.hivelocity.net"
    }
}

fn power(n: &Node) -> &'static str {
    if n.status == "ON" {
        "ON"
    } else {
        "OFF"
    }
}

fn profile() -> Resp {
    Resp::json(
        200,
        json!({
            "id": 54321,
            "login": "mock@example.com",
            "email": "mock@example.com",
            "first_name": "Mock",
            "last_name": "User",
            "phone": "+1 555 0100",
            "is_client": true,
            "created": 1767225600,
            "metadata": {}
        }),
    )
}

fn render(n: &Node) -> Value {
    let num = |k: &str| n.extra.get(k).cloned().unwrap_or(json!(0));
    json!({
        "deviceId": n.id.parse::<u64>().unwrap_or(0),
        "orderId": num("orderId"),
        "serviceId": num("serviceId"),
        "hostname": n.name,
        "powerStatus": power(n),
        "primaryIp": n.ip,
        "locationName": n.region,
        "productId": n.plan.parse::<u64>().unwrap_or(0),
        "productName": format!("Instant Dedicated Server {}", n.plan),
        "osName": n.image,
        "tags": n.tags,
        "period": n.extra_str("period"),
        "publicSshKeyId": n.extra.get("publicSshKeyId").cloned().unwrap_or(Value::Null),
        "script": n.user_data,
        "vlanId": null,
        "customIPXEScriptURL": null,
        "customIPXEScriptContents": null,
    })
}

fn create(req: &Request, cx: &mut Cx) -> Resp {
    let body = match req.parsed_json() {
        Ok(b) => b,
        Err(m) => return err(400, &m),
    };
    if let Err(e) = check_fields(
        &body,
        &[
            ("productId", Kind::Int),
            ("locationName", Kind::Str),
            ("osName", Kind::Str),
            ("hostname", Kind::Str),
        ],
        &[
            ("period", Kind::Str),
            ("tags", Kind::StrList),
            ("publicSshKeyId", Kind::Int),
            ("script", Kind::Str),
            ("vlanId", Kind::Int),
            ("bondingSupport", Kind::Bool),
            ("customIPXEScriptURL", Kind::Str),
            ("customIPXEScriptContents", Kind::Str),
            ("ignitionId", Kind::Int),
            ("forceDeviceId", Kind::Int),
        ],
    ) {
        return err(400, &e.message());
    }
    let product = body["productId"].as_u64().unwrap_or(0);
    let known = match &cx.cfg.plans {
        Some(list) => list.iter().any(|p| *p == product.to_string()),
        None => product > 0,
    };
    if !known {
        return err(400, &format!("Product {product} is not available."));
    }
    let location = str_field(&body, "locationName");
    if !FACILITIES.contains(&location) {
        return err(400, &format!("Invalid locationName '{location}'."));
    }
    let hostname = str_field(&body, "hostname");
    let fqdn = hostname.contains('.')
        && !hostname.starts_with('.')
        && !hostname.ends_with('.')
        && hostname
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-');
    if !fqdn {
        return err(
            400,
            "hostname must be a fully qualified domain name, e.g. node1.example.com.",
        );
    }
    let os = str_field(&body, "osName");
    if os.trim().is_empty() {
        return err(
            400,
            "osName must name an operating system option of the product.",
        );
    }
    let period = body
        .get("period")
        .and_then(Value::as_str)
        .unwrap_or("hourly");
    if !PERIODS.contains(&period) {
        return err(400, &format!("Invalid period '{period}'."));
    }
    let seq = cx.store.next_seq();
    let mut node = Node::new(
        (10_000 + seq).to_string(),
        hostname,
        &product.to_string(),
        location,
        "provisioning",
    );
    node.image = os.to_string();
    node.tags = str_list(&body, "tags");
    node.user_data = body
        .get("script")
        .and_then(Value::as_str)
        .map(str::to_string);
    node.extra.insert("orderId".into(), json!(20_000 + seq));
    node.extra.insert("serviceId".into(), json!(30_000 + seq));
    node.extra.insert("period".into(), json!(period));
    if let Some(k) = body.get("publicSshKeyId") {
        node.extra.insert("publicSshKeyId".into(), k.clone());
    }
    node.go(&["ON"]);
    let out = render(&node);
    cx.store.create(node);
    Resp::json(200, out)
}

// ---------------------------------------------------------------------------------------------
// Inventory (issue 11): GET /api/v2/inventory/product?location=MAIN|GPU&group_by=…: the swagger's
// `Stock` objects (integer product ids, specs as text, prices and per-location premiums, stock per
// facility). `group_by=flat` answers one array; `facility` (the default) and `city` answer the
// spec's `Inventory`, a map of `Stock` arrays keyed by facility code or city
// (`MockConfig::inventory_grouped` answers the map whatever is asked).

/// One `Stock` row.
#[allow(clippy::too_many_arguments)]
fn stock(
    id: u64,
    name: &str,
    dc: &str,
    stock: &str,
    cores: u32,
    memory: &str,
    gpu: &str,
    hourly: f64,
    premium: f64,
    vps: bool,
) -> Value {
    json!({
        "product_id": id, "product_name": name, "data_center": dc, "stock": stock,
        "product_cpu": name, "product_cpu_cores": format!("{cores} Cores"),
        "processor_info": {"cores": cores, "threads": cores * 2, "sockets": 1, "vCPUs": cores * 2},
        "product_memory": memory, "product_drive": "960GB SSD", "product_gpu": gpu,
        "product_bandwidth": "20TB", "product_hourly_price": hourly,
        "product_monthly_price": (hourly * 720.0).round(), "hourly_location_premium": premium,
        "monthly_location_premium": (premium * 720.0).round(),
        "product_disabled_billing_periods": ["triennial"], "is_vps": vps, "is_sps": !vps,
        "core": true, "edge": false, "location_option_id": 1, "product_on_sale": false,
    })
}

fn inventory(req: &Request, cfg: &MockConfig) -> Resp {
    let group_by = req.q("group_by").unwrap_or("facility");
    if !matches!(group_by, "flat" | "facility" | "city") {
        return err(400, "group_by must be 'city', 'facility' or 'flat'");
    }
    let rows = match req.q("location").unwrap_or("MAIN") {
        "GPU" => vec![
            stock(
                780,
                "Ryzen 9 7900X + RTX 4090",
                "ATL2",
                "available",
                12,
                "96GB",
                "1x NVIDIA RTX 4090",
                0.79,
                0.0,
                false,
            ),
            stock(
                780,
                "Ryzen 9 7900X + RTX 4090",
                "LAX2",
                "unavailable",
                12,
                "96GB",
                "1x NVIDIA RTX 4090",
                0.79,
                0.0,
                false,
            ),
        ],
        _ => vec![
            stock(
                474,
                "ci.nano.s2 E-2136",
                "ATL2",
                "available",
                6,
                "16GB",
                "",
                0.14,
                0.0,
                false,
            ),
            stock(
                538,
                "E-2288G",
                "ATL2",
                "available",
                8,
                "32GB",
                "",
                0.24,
                0.0,
                false,
            ),
            stock(
                612,
                "Dual Xeon Silver 4110",
                "ATL2",
                "limited",
                16,
                "64GB",
                "",
                0.48,
                0.02,
                false,
            ),
            stock(
                640,
                "Dual Xeon Gold 6130",
                "ATL2",
                "available",
                32,
                "131072 MB",
                "",
                0.95,
                0.0,
                false,
            ),
            stock(
                612,
                "Dual Xeon Silver 4110",
                "NYC1",
                "unavailable",
                16,
                "64GB",
                "",
                0.48,
                0.03,
                false,
            ),
            stock(
                538,
                "E-2288G",
                "NYC1",
                "available",
                8,
                "32GB",
                "",
                0.24,
                0.03,
                false,
            ),
            stock(
                2379,
                "VPS 16 vCPU",
                "TPA1",
                "available",
                16,
                "64GB",
                "",
                0.30,
                0.0,
                true,
            ),
        ],
    };
    if group_by == "flat" && !cfg.inventory_grouped {
        return Resp::json(200, Value::Array(rows));
    }
    let key = |dc: &str| -> String {
        if group_by != "city" {
            return dc.to_string();
        }
        match dc {
            "ATL2" => "Atlanta",
            "NYC1" => "New York",
            "TPA1" | "TPA2" => "Tampa",
            "LAX2" | "LAX3" => "Los Angeles",
            "MIA1" => "Miami",
            other => other,
        }
        .to_string()
    };
    let mut groups = serde_json::Map::new();
    for row in rows {
        let k = key(row["data_center"].as_str().unwrap_or_default());
        let group = groups.entry(k).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = group {
            a.push(row);
        }
    }
    Resp::json(200, Value::Object(groups))
}
