//! The AWS Price List Query API, `GetProducts` (pricing 2017-10-15, JSON 1.1 protocol), for
//! `catalog refresh`: `POST /` with `X-Amz-Target: AWSPriceListService.GetProducts` and
//! `Content-Type: application/x-amz-json-1.1`, SigV4-signed for service `pricing` in us-east-1.
//!
//! Request: `ServiceCode` (required), `Filters` [{`Type`, `Field`, `Value`}], `FormatVersion`,
//! `MaxResults` (1–100), `NextToken`. Answer: `{FormatVersion, NextToken, PriceList: [string]}`,
//! each `PriceList` item a JSON document in a string: `product` (`productFamily`, `attributes`
//! with `instanceType`, `vcpu`, `memory` "8 GiB", `regionCode`, `operatingSystem`, `tenancy`,
//! …; `sku`), `serviceCode`, `terms.OnDemand.<sku>.<offer>` and `terms.Reserved…` with
//! `priceDimensions.<rate>.pricePerUnit.USD`, `version`, `publicationDate`. Errors:
//! `{"__type": "…Exception", "Message": "…"}` with HTTP 400. Sources, read 2026-12-02: the
//! service model aws/aws-sdk-go models/apis/pricing/2017-10-15/api-2.json (the request and
//! answer shapes, `FilterType` TERM_MATCH, `MaxResults` 1–100, the exceptions) and the API
//! reference page (docs.amazonaws.cn/goto/WebAPI/pricing-2017-10-15/GetProducts).
//!
//! The server answers only a request made the way the reference says: the right target and
//! content type, a SigV4 `Authorization` whose credential scope is `…/us-east-1/pricing/
//! aws4_request`, the filters the refresh needs, `MaxResults` within range. Anything else is a
//! 400 that names the problem, so a wrong request fails the test. Each region holds the
//! catalog's four instance types plus filler types: several `NextToken` pages per region.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The five regions of the catalog, in its order.
pub const REGIONS: [&str; 5] = [
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "ap-southeast-1",
    "ap-northeast-1",
];

/// What the price list holds.
#[derive(Clone, Debug)]
pub struct Pricing {
    /// (instance type, region) → hourly USD; a pair that is absent is not sold there.
    pub prices: HashMap<(String, String), f64>,
    /// Extra instance types per region (a real region lists ~800).
    pub filler: usize,
    /// The most items one page carries (the service may return fewer than `MaxResults`).
    pub page_cap: usize,
}

impl Default for Pricing {
    fn default() -> Self {
        // (type, vcpu, GiB, per-region hourly in REGIONS order): us-west-2 equals us-east-1,
        // the others differ; eu-west-1 t3.micro moved from the embedded 0.0114 to 0.0118.
        let table: [(&str, [f64; 5]); 4] = [
            ("t3.micro", [0.0104, 0.0104, 0.0118, 0.0132, 0.0136]),
            ("t3.medium", [0.0416, 0.0416, 0.0456, 0.0528, 0.0544]),
            ("c5.xlarge", [0.17, 0.17, 0.192, 0.196, 0.214]),
            ("c5.2xlarge", [0.34, 0.34, 0.384, 0.392, 0.428]),
        ];
        let mut prices = HashMap::new();
        for (ty, row) in table {
            for (r, h) in REGIONS.iter().zip(row) {
                prices.insert((ty.to_string(), r.to_string()), h);
            }
        }
        Pricing {
            prices,
            filler: 230,
            page_cap: 100,
        }
    }
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub authorization: String,
    pub body: Value,
}

#[derive(Default)]
struct State {
    pricing: Option<Pricing>,
    seen: Vec<Seen>,
    /// (region, page index): that page answers a truncated body.
    broken: Option<(String, usize)>,
    /// Every page's first PriceList string is not a JSON document.
    bad_items: bool,
}

/// A running GetProducts server on 127.0.0.1.
pub struct PricingServer {
    pub url: String,
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<State>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PricingServer {
    pub fn start(pricing: Pricing) -> PricingServer {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1");
        let url = format!("http://{}", server.server_addr().to_ip().expect("ip"));
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(State {
            pricing: Some(pricing),
            ..State::default()
        }));
        let (s2, st2) = (stop.clone(), state.clone());
        let thread = std::thread::spawn(move || {
            while !s2.load(Ordering::SeqCst) {
                let Ok(Some(mut req)) = server.recv_timeout(std::time::Duration::from_millis(20))
                else {
                    continue;
                };
                let mut text = String::new();
                let _ = req.as_reader().read_to_string(&mut text);
                let header = |name: &str| {
                    req.headers()
                        .iter()
                        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
                        .map(|h| h.value.as_str().to_string())
                        .unwrap_or_default()
                };
                let (code, body) = answer(
                    &mut st2.lock().unwrap(),
                    req.method().as_str(),
                    req.url(),
                    &header("x-amz-target"),
                    &header("content-type"),
                    &header("authorization"),
                    &text,
                );
                let resp = tiny_http::Response::from_string(body)
                    .with_status_code(code)
                    .with_header(
                        "Content-Type: application/x-amz-json-1.1"
                            .parse::<tiny_http::Header>()
                            .unwrap(),
                    );
                let _ = req.respond(resp);
            }
        });
        PricingServer {
            url,
            stop,
            state,
            thread: Some(thread),
        }
    }

    /// Serve another price list from now on.
    pub fn set(&self, pricing: Pricing) {
        self.state.lock().unwrap().pricing = Some(pricing);
    }

    /// Page `page` (0-based) of `region` answers a truncated body from now on.
    pub fn break_page(&self, region: &str, page: usize) {
        self.state.lock().unwrap().broken = Some((region.to_string(), page));
    }

    /// Every page's first PriceList item becomes a string that is not JSON from now on.
    pub fn break_items(&self) {
        self.state.lock().unwrap().bad_items = true;
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

impl Drop for PricingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn error(kind: &str, message: &str) -> (u16, String) {
    (400, json!({"__type": kind, "Message": message}).to_string())
}

fn answer(
    st: &mut State,
    method: &str,
    url: &str,
    target: &str,
    content_type: &str,
    authorization: &str,
    text: &str,
) -> (u16, String) {
    if method != "POST" || url != "/" {
        return (
            404,
            json!({"Message": format!("no route {method} {url}")}).to_string(),
        );
    }
    if target != "AWSPriceListService.GetProducts" {
        return error("UnknownOperationException", &format!("target '{target}'"));
    }
    if content_type != "application/x-amz-json-1.1" {
        return error(
            "SerializationException",
            &format!("content type '{content_type}'"),
        );
    }
    // Credential=AKID/20261202/us-east-1/pricing/aws4_request, SignedHeaders=…, Signature=…
    let scope: Vec<&str> = authorization
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split(',').next())
        .map(|c| c.split('/').collect())
        .unwrap_or_default();
    if !authorization.starts_with("AWS4-HMAC-SHA256 ")
        || scope.len() != 5
        || scope[2] != "us-east-1"
        || scope[3] != "pricing"
        || scope[4] != "aws4_request"
    {
        return error(
            "InvalidSignatureException",
            "Credential should be scoped to a valid region and to the service 'pricing'.",
        );
    }
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        return error("SerializationException", "the body is not JSON");
    };
    st.seen.push(Seen {
        authorization: authorization.to_string(),
        body: body.clone(),
    });
    if body["ServiceCode"] != "AmazonEC2" {
        return error(
            "InvalidParameterException",
            "ServiceCode must be AmazonEC2 here",
        );
    }
    let max = body["MaxResults"].as_u64().unwrap_or(100);
    if !(1..=100).contains(&max) {
        return error(
            "ValidationException",
            "MaxResults must be between 1 and 100",
        );
    }
    let mut filters: HashMap<String, String> = HashMap::new();
    for f in body["Filters"].as_array().into_iter().flatten() {
        let (Some(ty), Some(field), Some(value)) =
            (f["Type"].as_str(), f["Field"].as_str(), f["Value"].as_str())
        else {
            return error(
                "InvalidParameterException",
                "a filter needs Type, Field and Value",
            );
        };
        if ty != "TERM_MATCH" {
            return error("InvalidParameterException", &format!("filter type '{ty}'"));
        }
        filters.insert(field.to_string(), value.to_string());
    }
    for (field, want) in [
        ("operatingSystem", "Linux"),
        ("tenancy", "Shared"),
        ("preInstalledSw", "NA"),
        ("capacitystatus", "Used"),
    ] {
        if filters.get(field).map(String::as_str) != Some(want) {
            return error(
                "InvalidParameterException",
                &format!("the test expects the filter {field} = {want}"),
            );
        }
    }
    let Some(region) = filters.get("regionCode").cloned() else {
        return error(
            "InvalidParameterException",
            "the test expects a regionCode filter",
        );
    };
    let items = products(st.pricing.as_ref().unwrap(), &region);
    let per = (max as usize)
        .min(st.pricing.as_ref().unwrap().page_cap)
        .max(1);
    let offset = match body["NextToken"].as_str() {
        None => 0,
        Some(t) => match t
            .strip_prefix(&format!("{region}:"))
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n,
            None => return error("InvalidNextTokenException", "the next token is not valid"),
        },
    };
    let chunk: Vec<Value> = items
        .iter()
        .skip(offset)
        .take(per)
        .map(|v| Value::String(v.to_string()))
        .collect();
    let mut chunk = chunk;
    if st.bad_items {
        if let Some(first) = chunk.first_mut() {
            *first = Value::String("{\"product\": {\"sku\": ".into());
        }
    }
    let mut out = json!({"FormatVersion": "aws_v1", "PriceList": chunk});
    if offset + per < items.len() {
        out["NextToken"] = json!(format!("{region}:{}", offset + per));
    }
    let text = out.to_string();
    if st.broken.as_ref() == Some(&(region, offset / per)) {
        return (200, text[..text.len() / 2].to_string());
    }
    (200, text)
}

/// One region's products, each as the decoded PriceList document.
fn products(p: &Pricing, region: &str) -> Vec<Value> {
    let shapes: HashMap<&str, (u32, f64)> = [
        ("t3.micro", (2, 1.0)),
        ("t3.medium", (2, 4.0)),
        ("c5.xlarge", (4, 8.0)),
        ("c5.2xlarge", (8, 16.0)),
    ]
    .into_iter()
    .collect();
    let mut out = Vec::new();
    let mut known: Vec<(&String, f64)> = p
        .prices
        .iter()
        .filter(|((_, r), _)| r == region)
        .map(|((t, _), h)| (t, *h))
        .collect();
    known.sort_by(|a, b| a.0.cmp(b.0));
    // Filler first, so the catalog's own types land on later pages.
    for i in 0..p.filler {
        let ty = format!("m{}.{}xlarge", 100 + i / 8, 1 + i % 8);
        let cpu = 2 * (1 + i % 8) as u32;
        out.push(product(
            &ty,
            region,
            cpu,
            cpu as f64 * 4.0,
            0.048 * cpu as f64,
        ));
    }
    for (ty, h) in known {
        let (cpu, mem) = shapes.get(ty.as_str()).copied().unwrap_or((2, 2.0));
        out.push(product(ty, region, cpu, mem, h));
    }
    out
}

fn product(ty: &str, region: &str, cpu: u32, mem: f64, hourly: f64) -> Value {
    let sku: String = format!("{ty}{region}")
        .bytes()
        .map(|b| char::from(b'A' + b % 26))
        .take(16)
        .collect();
    let od = format!("{sku}.JRTCKXETXF");
    let rsv = format!("{sku}.4NA7Y494T4");
    json!({
        "product": {
            "productFamily": "Compute Instance",
            "attributes": {
                "servicecode": "AmazonEC2",
                "instanceType": ty,
                "instanceFamily": "General purpose",
                "vcpu": cpu.to_string(),
                "memory": format!("{mem} GiB"),
                "storage": "EBS only",
                "networkPerformance": "Up to 5 Gigabit",
                "regionCode": region,
                "locationType": "AWS Region",
                "operatingSystem": "Linux",
                "tenancy": "Shared",
                "preInstalledSw": "NA",
                "capacitystatus": "Used",
                "licenseModel": "No License required",
                "operation": "RunInstances",
                "usagetype": format!("BoxUsage:{ty}"),
            },
            "sku": sku,
        },
        "serviceCode": "AmazonEC2",
        "terms": {
            "OnDemand": {
                od.clone(): {
                    "priceDimensions": {
                        format!("{od}.6YS6EN2CT7"): {
                            "unit": "Hrs",
                            "endRange": "Inf",
                            "description": format!("${hourly} per On Demand Linux {ty} Instance Hour"),
                            "appliesTo": [],
                            "rateCode": format!("{od}.6YS6EN2CT7"),
                            "beginRange": "0",
                            "pricePerUnit": {"USD": format!("{hourly:.10}")},
                        }
                    },
                    "sku": sku,
                    "effectiveDate": "2026-11-01T00:00:00Z",
                    "offerTermCode": "JRTCKXETXF",
                    "termAttributes": {},
                }
            },
            "Reserved": {
                rsv.clone(): {
                    "priceDimensions": {
                        format!("{rsv}.2TG2D8R56U"): {
                            "unit": "Quantity",
                            "description": "Upfront Fee",
                            "pricePerUnit": {"USD": "1"},
                        }
                    },
                    "sku": sku,
                    "offerTermCode": "4NA7Y494T4",
                    "termAttributes": {"LeaseContractLength": "1yr", "OfferingClass": "standard", "PurchaseOption": "All Upfront"},
                }
            }
        },
        "version": "20261101000000",
        "publicationDate": "2026-11-01T00:00:00Z",
    })
}
