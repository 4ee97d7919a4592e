//! AWS EC2 Query API (2016-11-15) wire format — facts from `reference/apis/aws-ec2.md`
//! (botocore model, smithy-rs aws-sigv4, moto).
//!
//! Models: `POST /` (or `GET /?…`) with `Action=…&Version=2016-11-15` form parameters and XML
//! answers in the `http://ec2.amazonaws.com/doc/2016-11-15/` namespace. Every request must carry
//! a SigV4 `Authorization` header: the mock checks its format, the key id, the credential scope
//! (date matching `X-Amz-Date`, a real region, service `ec2`, `aws4_request`), that `host` and
//! `x-amz-date` are signed, the clock skew (≤ 15 min) and — with `SigV4Check::Full`, the
//! default — recomputes the signature with its own HMAC-SHA256 ([`super::crypto`]).
//! Nodes live in the region of the credential scope. Actions: `DescribeRegions` (whoami),
//! `RunInstances` (ImageId/InstanceType/MinCount/MaxCount required, instance type list, base64
//! `UserData`, `TagSpecification.N`, `ClientToken` idempotency with
//! `IdempotentParameterMismatch`), `DescribeInstances` (`InstanceId.N` = get and advances the
//! node; `Filter.N` with `tag:K`, `tag-key`, `tag-value`, `instance-state-name`, `instance-id`,
//! `client-token`, `instance-type`, `image-id`, `key-name`, `availability-zone`, `ip-address`
//! and `*`/`?` wildcards; `MaxResults` 5–1000 / `NextToken`), `StartInstances`,
//! `StopInstances`, `TerminateInstances`, `RebootInstances`. States pending → running,
//! stopping → stopped, pending → running after start, shutting-down → terminated (kept
//! visible); `ipAddress` only while running (released on stop, a new one after start).
//! Errors: `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>`,
//! unknown id `InvalidInstanceID.NotFound` with HTTP 400; throttling is HTTP 503
//! `RequestLimitExceeded` without `Retry-After`, as EC2 does.

use super::crypto::{hex, hmac_sha256, sha256};
use super::*;
use base64::Engine;

pub struct Ec2;

pub const API_VERSION: &str = "2016-11-15";
pub const XMLNS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

pub const REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
];

pub const INSTANCE_TYPES: &[&str] = &[
    "t2.nano",
    "t2.micro",
    "t2.small",
    "t2.medium",
    "t2.large",
    "t3.nano",
    "t3.micro",
    "t3.small",
    "t3.medium",
    "t3.large",
    "t3.xlarge",
    "t3.2xlarge",
    "t3a.micro",
    "t3a.small",
    "t3a.medium",
    "t3a.large",
    "t4g.micro",
    "t4g.small",
    "t4g.medium",
    "m5.large",
    "m5.xlarge",
    "m5.2xlarge",
    "m6i.large",
    "m6i.xlarge",
    "m7i.large",
    "c5.large",
    "c5.xlarge",
    "c5.2xlarge",
    "c5.4xlarge",
    "c6i.large",
    "c6i.xlarge",
    "c7i.large",
    "r5.large",
    "r5.xlarge",
    "g4dn.xlarge",
    "g4dn.2xlarge",
    "g5.xlarge",
    "g5.2xlarge",
    "p3.2xlarge",
    "p4d.24xlarge",
    "p5.48xlarge",
];

fn request_id(seq: u64) -> String {
    format!("7a62c49f-347e-4fc4-9331-{seq:012x}")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// An EC2 error answer.
fn error(status: u16, code: &str, message: &str) -> Resp {
    Resp::xml(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
            xml_escape(code),
            xml_escape(message),
            request_id(0xe44)
        ),
    )
}

fn ok(action: &str, seq: u64, inner: &str) -> Resp {
    Resp::xml(
        200,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{action}Response xmlns=\"{XMLNS}\"><requestId>{}</requestId>{inner}</{action}Response>",
            request_id(seq)
        ),
    )
}

/// All parameters: URL query plus a form-encoded body.
fn params(req: &Request) -> Vec<(String, String)> {
    let mut p = req.query.clone();
    let form = req.header("content-type").is_some_and(|c| {
        c.to_ascii_lowercase()
            .contains("application/x-www-form-urlencoded")
    });
    if form {
        p.extend(req.form());
    }
    p
}

struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    /// `Prefix.1`, `Prefix.2`, … in numeric order.
    fn list(&self, prefix: &str) -> Vec<String> {
        let mut items: Vec<(u32, String)> = self
            .0
            .iter()
            .filter_map(|(k, v)| {
                let n = k.strip_prefix(prefix)?.strip_prefix('.')?;
                n.parse::<u32>().ok().map(|n| (n, v.clone()))
            })
            .collect();
        items.sort_by_key(|(n, _)| *n);
        items.into_iter().map(|(_, v)| v).collect()
    }
    /// Indexes N present for `Prefix.N.<anything>`.
    fn indexes(&self, prefix: &str) -> Vec<u32> {
        let mut ns: Vec<u32> = self
            .0
            .iter()
            .filter_map(|(k, _)| {
                let rest = k.strip_prefix(prefix)?.strip_prefix('.')?;
                rest.split('.').next()?.parse().ok()
            })
            .collect();
        ns.sort();
        ns.dedup();
        ns
    }
}

impl Api for Ec2 {
    fn classify(&self, req: &Request) -> Op {
        if req.path != "/" || !(req.method == "POST" || req.method == "GET") {
            return Op::Unrouted;
        }
        let p = Params(params(req));
        match p.get("Action") {
            Some("DescribeRegions") => Op::Verify,
            Some("RunInstances") => Op::Create,
            Some("DescribeInstances") if !p.list("InstanceId").is_empty() => Op::Get,
            Some("DescribeInstances") => Op::List,
            Some("StartInstances") => Op::Start,
            Some("StopInstances") => Op::Stop,
            Some("RebootInstances") => Op::Reboot,
            Some("TerminateInstances") => Op::Delete,
            Some(
                "DescribeSecurityGroups" | "CreateSecurityGroup" | "AuthorizeSecurityGroupIngress",
            ) => Op::Other,
            None => Op::Other,
            Some(_) => Op::Unrouted,
        }
    }

    fn authorize(&self, req: &Request, cfg: &MockConfig) -> Result<(), Resp> {
        verify_sigv4(req, cfg, now())
    }

    fn handle(&self, req: &Request, op: Op, cx: &mut Cx) -> Resp {
        let p = Params(params(req));
        let Some(action) = p.get("Action").map(str::to_string) else {
            return error(
                400,
                "MissingAction",
                "The request must contain the parameter Action",
            );
        };
        match p.get("Version") {
            None => {
                return error(
                    400,
                    "MissingParameter",
                    "The request must contain the parameter Version",
                )
            }
            Some(API_VERSION) => {}
            Some(v) => {
                return error(
                    400,
                    "InvalidParameterValue",
                    &format!("The mock models API version {API_VERSION} only, got '{v}'"),
                )
            }
        }
        let region = parse_auth(req.header("authorization").unwrap_or(""))
            .map(|a| a.region)
            .unwrap_or_default();
        let seq = cx.store.next_seq();
        match op {
            Op::Verify => describe_regions(&p, seq),
            Op::Create => run_instances(&p, &region, seq, cx),
            Op::Get | Op::List => describe_instances(&p, &region, seq, cx),
            Op::Start | Op::Stop | Op::Delete | Op::Reboot => {
                change_state(&action, &p, &region, seq, cx)
            }
            Op::Other => security_groups(&action, &p, seq, cx),
            _ => error(
                400,
                "InvalidAction",
                &format!("The action {action} is not valid for this web service."),
            ),
        }
    }

    fn throttled(&self, _cfg: &MockConfig) -> Resp {
        error(503, "RequestLimitExceeded", "Request limit exceeded.")
    }

    fn server_error(&self) -> Resp {
        error(500, "InternalError", "An internal error has occurred")
    }

    fn entered(&self, node: &mut Node, state: &str, ips: &mut IpPool) {
        match state {
            "running" => {
                if node.ip.is_none() && node.extra.get("public_ip") != Some(&Value::Bool(false)) {
                    node.ip = Some(ips.public());
                }
                node.private_ip.get_or_insert_with(|| ips.private());
            }
            "stopped" | "stopping" | "shutting-down" => node.ip = None,
            "terminated" => {
                node.ip = None;
                node.private_ip = None;
            }
            _ => {}
        }
    }

    fn running_state(&self) -> &'static str {
        "running"
    }

    fn seed(&self, spec: &NodeSpec, store: &mut Store, cfg: &MockConfig) -> Node {
        let seq = store.next_seq();
        let region = spec.region.clone().unwrap_or_else(|| cfg.region.clone());
        let mut n = Node::new(
            format!("i-0{seq:016x}"),
            &spec.name,
            spec.plan.as_deref().unwrap_or("t3.micro"),
            &region,
            "running",
        );
        n.image = "ami-0abcdef1234567890".into();
        n.tags = spec.tags.clone();
        if !spec.name.is_empty() && n.tag_value("Name").is_none() {
            n.tags.insert(0, format!("Name={}", spec.name));
        }
        n.extra.insert(
            "reservation_id".into(),
            Value::String(format!("r-0{seq:016x}")),
        );
        n.extra
            .insert("az".into(), Value::String(format!("{region}a")));
        self.entered(&mut n, "running", &mut store.ips);
        if let Some(s) = &spec.status {
            n.status = s.clone();
            if s != "running" {
                n.ip = None;
            }
        }
        n
    }

    fn credential_env(&self, cfg: &MockConfig) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), cfg.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                cfg.secret_access_key.clone(),
            ),
            ("AWS_REGION".into(), cfg.region.clone()),
        ]
    }

    fn public_origin(&self) -> &'static str {
        "https://ec2.us-east-1.amazonaws.com"
    }
}

// ---------------------------------------------------------------------------------------------
// SigV4
// ---------------------------------------------------------------------------------------------

/// The parts of an `Authorization: AWS4-HMAC-SHA256 …` header.
#[derive(Debug, Clone)]
pub struct AuthHeader {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub terminal: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

pub fn parse_auth(value: &str) -> Option<AuthHeader> {
    let rest = value.trim().strip_prefix("AWS4-HMAC-SHA256 ")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v.to_string()),
            "SignedHeaders" => signed = Some(v.to_string()),
            "Signature" => signature = Some(v.to_string()),
            _ => return None,
        }
    }
    let credential = credential?;
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 {
        return None;
    }
    Some(AuthHeader {
        access_key_id: scope[0].into(),
        date: scope[1].into(),
        region: scope[2].into(),
        service: scope[3].into(),
        terminal: scope[4].into(),
        signed_headers: signed?.split(';').map(str::to_string).collect(),
        signature: signature?,
    })
}

/// The SigV4 canonical request for the given signed headers (names lower-case, sorted).
pub fn canonical_request(
    method: &str,
    path: &str,
    raw_query: &str,
    headers: &[(String, String)],
    signed: &[String],
    payload_hash: &str,
) -> Option<String> {
    // Non-S3 services encode each path segment once more ("double encoding").
    let uri = if path.is_empty() {
        "/".to_string()
    } else {
        path.split('/')
            .map(pct_encode)
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut query: Vec<(String, String)> = parse_form(raw_query)
        .into_iter()
        .map(|(k, v)| (pct_encode(&k), pct_encode(&v)))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut canon_headers = String::new();
    for name in signed {
        let values: Vec<String> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if values.is_empty() {
            return None;
        }
        canon_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    Some(format!(
        "{method}\n{uri}\n{query}\n{canon_headers}\n{}\n{payload_hash}",
        signed.join(";")
    ))
}

/// The hex signature of a canonical request.
pub fn signature(
    secret: &str,
    amz_date: &str,
    region: &str,
    service: &str,
    canonical: &str,
) -> String {
    let date = &amz_date[..8.min(amz_date.len())];
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&sha256(canonical.as_bytes()))
    );
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"aws4_request");
    hex(&hmac_sha256(&k_signing, string_to_sign.as_bytes()))
}

fn parse_amz_date(s: &str) -> Option<time::OffsetDateTime> {
    if s.len() != 16 || s.as_bytes()[8] != b'T' || !s.ends_with('Z') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let month = time::Month::try_from(n(4..6)? as u8).ok()?;
    let date = time::Date::from_calendar_date(n(0..4)? as i32, month, n(6..8)? as u8).ok()?;
    let t = time::Time::from_hms(n(9..11)? as u8, n(11..13)? as u8, n(13..15)? as u8).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc())
}

/// `YYYYMMDDTHHMMSSZ` for a time.
pub fn amz_date(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn sig_mismatch(msg: &str) -> Resp {
    error(403, "SignatureDoesNotMatch", msg)
}

/// Check a request's SigV4 header against the configured credentials at time `now`.
fn verify_sigv4(req: &Request, cfg: &MockConfig, now: time::OffsetDateTime) -> Result<(), Resp> {
    let Some(header) = req.header("authorization") else {
        return Err(error(
            401,
            "AuthFailure",
            "AWS was not able to validate the provided access credentials",
        ));
    };
    let Some(auth) = parse_auth(header) else {
        return Err(error(
            400,
            "IncompleteSignature",
            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters with the AWS4-HMAC-SHA256 algorithm.",
        ));
    };
    if auth.access_key_id != cfg.access_key_id {
        return Err(error(
            401,
            "AuthFailure",
            "AWS was not able to validate the provided access credentials",
        ));
    }
    if auth.service != "ec2" {
        return Err(sig_mismatch(&format!(
            "Credential should be scoped to correct service: 'ec2'. (got '{}')",
            auth.service
        )));
    }
    if !REGIONS.contains(&auth.region.as_str()) {
        return Err(sig_mismatch(&format!(
            "Credential should be scoped to a valid region, not '{}'.",
            auth.region
        )));
    }
    if auth.terminal != "aws4_request" {
        return Err(sig_mismatch(
            "Credential should be scoped with a valid terminator: 'aws4_request'.",
        ));
    }
    let Some(amz) = req.header("x-amz-date") else {
        return Err(error(
            400,
            "IncompleteSignature",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ));
    };
    let Some(when) = parse_amz_date(amz) else {
        return Err(error(
            400,
            "IncompleteSignature",
            &format!("Invalid X-Amz-Date '{amz}'."),
        ));
    };
    if !amz.starts_with(&auth.date) {
        return Err(sig_mismatch(&format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'",
            auth.date,
            &amz[..8]
        )));
    }
    if (now - when).whole_seconds().abs() > 15 * 60 {
        return Err(error(400, "RequestExpired", "Request has expired."));
    }
    let sorted = {
        let mut s = auth.signed_headers.clone();
        s.sort();
        s
    };
    if sorted != auth.signed_headers
        || auth
            .signed_headers
            .iter()
            .any(|h| h.to_ascii_lowercase() != *h)
    {
        return Err(sig_mismatch("SignedHeaders must be lower-case and sorted."));
    }
    for must in ["host", "x-amz-date"] {
        if !auth.signed_headers.iter().any(|h| h == must) {
            return Err(sig_mismatch(&format!("'{must}' must be a signed header.")));
        }
    }
    if req.header("x-amz-security-token").is_some()
        && !auth
            .signed_headers
            .iter()
            .any(|h| h == "x-amz-security-token")
    {
        return Err(sig_mismatch(
            "'x-amz-security-token' must be a signed header.",
        ));
    }
    if cfg.sigv4 == SigV4Check::FormatOnly {
        return Ok(());
    }
    let body_hash = hex(&sha256(&req.body));
    let payload_hash = match req.header("x-amz-content-sha256") {
        Some("UNSIGNED-PAYLOAD") => "UNSIGNED-PAYLOAD".to_string(),
        None => body_hash,
        Some(h) if h == body_hash => body_hash,
        Some(_) => {
            return Err(error(
                400,
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ))
        }
    };
    let canonical = canonical_request(
        &req.method,
        &req.path,
        &req.raw_query,
        &req.headers,
        &auth.signed_headers,
        &payload_hash,
    );
    let expected =
        canonical.map(|c| signature(&cfg.secret_access_key, amz, &auth.region, "ec2", &c));
    if expected.as_deref() != Some(auth.signature.as_str()) {
        return Err(sig_mismatch(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ));
    }
    Ok(())
}

/// Headers that sign a form-encoded EC2 call to `url` (`http://host:port/`): `Content-Type`,
/// `X-Amz-Date` and `Authorization` (signed: content-type;host;x-amz-date). For tests that
/// talk to the mock directly.
pub fn sign_form(url: &str, cfg: &MockConfig, region: &str, body: &str) -> Vec<(String, String)> {
    let host = url
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let host = host.split('/').next().unwrap_or(host).to_string();
    let date = amz_date(now());
    let headers = vec![
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
        ),
        ("host".to_string(), host),
        ("x-amz-date".to_string(), date.clone()),
    ];
    let signed: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
    let canonical = canonical_request(
        "POST",
        "/",
        "",
        &headers,
        &signed,
        &hex(&sha256(body.as_bytes())),
    )
    .expect("headers present");
    let sig = signature(&cfg.secret_access_key, &date, region, "ec2", &canonical);
    vec![
        ("Content-Type".into(), headers[0].1.clone()),
        ("X-Amz-Date".into(), date.clone()),
        (
            "Authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{}/{region}/ec2/aws4_request, SignedHeaders={}, Signature={sig}",
                cfg.access_key_id,
                &date[..8],
                signed.join(";")
            ),
        ),
    ]
}

/// A signed EC2 call to a mock with form parameters (`Version` is added).
pub fn call(
    url: &str,
    cfg: &MockConfig,
    region: &str,
    form: &[(&str, &str)],
) -> std::io::Result<Reply> {
    let mut pairs: Vec<(&str, String)> = form.iter().map(|(k, v)| (*k, v.to_string())).collect();
    if !form.iter().any(|(k, _)| *k == "Version") {
        pairs.push(("Version", API_VERSION.to_string()));
    }
    let body = query_string(&pairs);
    let headers = sign_form(url, cfg, region, &body);
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    super::call(
        "POST",
        &format!("{}/", url.trim_end_matches('/')),
        &refs,
        body.as_bytes(),
    )
}

// ---------------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------------

fn state_code(name: &str) -> u32 {
    match name {
        "pending" => 0,
        "running" => 16,
        "shutting-down" => 32,
        "terminated" => 48,
        "stopping" => 64,
        "stopped" => 80,
        _ => 0,
    }
}

fn state_xml(tag: &str, name: &str) -> String {
    format!(
        "<{tag}><code>{}</code><name>{name}</name></{tag}>",
        state_code(name)
    )
}

fn launch_time(rfc3339: &str) -> String {
    rfc3339
        .strip_suffix('Z')
        .map(|s| format!("{s}.000Z"))
        .unwrap_or_else(|| rfc3339.to_string())
}

fn instance_xml(n: &Node) -> String {
    let mut x = String::from("<item>");
    x.push_str(&format!("<instanceId>{}</instanceId>", n.id));
    x.push_str(&format!("<imageId>{}</imageId>", xml_escape(&n.image)));
    x.push_str(&state_xml("instanceState", &n.status));
    let private = n.private_ip.clone().unwrap_or_default();
    x.push_str(&format!(
        "<privateDnsName>{}</privateDnsName>",
        if private.is_empty() {
            String::new()
        } else {
            format!("ip-{}.ec2.internal", private.replace('.', "-"))
        }
    ));
    x.push_str(&format!(
        "<dnsName>{}</dnsName>",
        n.ip.as_ref()
            .map(|ip| format!("ec2-{}.compute-1.amazonaws.com", ip.replace('.', "-")))
            .unwrap_or_default()
    ));
    x.push_str("<reason/>");
    if !n.extra_str("key_name").is_empty() {
        x.push_str(&format!(
            "<keyName>{}</keyName>",
            xml_escape(n.extra_str("key_name"))
        ));
    }
    x.push_str(&format!(
        "<amiLaunchIndex>{}</amiLaunchIndex><productCodes/>",
        n.extra
            .get("launch_index")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    ));
    x.push_str(&format!(
        "<instanceType>{}</instanceType>",
        xml_escape(&n.plan)
    ));
    x.push_str(&format!(
        "<launchTime>{}</launchTime>",
        launch_time(&n.created_at)
    ));
    x.push_str(&format!(
        "<placement><availabilityZone>{}</availabilityZone><groupName/><tenancy>default</tenancy></placement>",
        xml_escape(n.extra_str("az"))
    ));
    x.push_str("<monitoring><state>disabled</state></monitoring>");
    if !private.is_empty() {
        x.push_str(&format!("<privateIpAddress>{private}</privateIpAddress>"));
    }
    if let Some(ip) = &n.ip {
        x.push_str(&format!("<ipAddress>{ip}</ipAddress>"));
    }
    x.push_str(
        "<groupSet/><architecture>x86_64</architecture><rootDeviceType>ebs</rootDeviceType>",
    );
    x.push_str("<rootDeviceName>/dev/xvda</rootDeviceName><blockDeviceMapping/>");
    x.push_str("<virtualizationType>hvm</virtualizationType>");
    if !n.extra_str("client_token").is_empty() {
        x.push_str(&format!(
            "<clientToken>{}</clientToken>",
            xml_escape(n.extra_str("client_token"))
        ));
    }
    if !n.tags.is_empty() {
        x.push_str("<tagSet>");
        for t in &n.tags {
            let (k, v) = t.split_once('=').unwrap_or((t, ""));
            x.push_str(&format!(
                "<item><key>{}</key><value>{}</value></item>",
                xml_escape(k),
                xml_escape(v)
            ));
        }
        x.push_str("</tagSet>");
    }
    x.push_str("<hypervisor>xen</hypervisor>");
    if n.status == "terminated" || n.status == "shutting-down" {
        x.push_str("<stateReason><code>Client.UserInitiatedShutdown</code><message>Client.UserInitiatedShutdown: User initiated shutdown</message></stateReason>");
    }
    x.push_str("</item>");
    x
}

fn reservation_body(reservation: &str, nodes: &[&Node]) -> String {
    let mut x = format!("<reservationId>{reservation}</reservationId><ownerId>123456789012</ownerId><groupSet/><instancesSet>");
    for n in nodes {
        x.push_str(&instance_xml(n));
    }
    x.push_str("</instancesSet>");
    x
}

fn describe_regions(p: &Params, seq: u64) -> Resp {
    let wanted = p.list("RegionName");
    let mut x = String::from("<regionInfo>");
    for r in REGIONS
        .iter()
        .filter(|r| wanted.is_empty() || wanted.iter().any(|w| w == *r))
    {
        x.push_str(&format!(
            "<item><regionName>{r}</regionName><regionEndpoint>ec2.{r}.amazonaws.com</regionEndpoint><optInStatus>opt-in-not-required</optInStatus></item>"
        ));
    }
    x.push_str("</regionInfo>");
    ok("DescribeRegions", seq, &x)
}

/// DescribeSecurityGroups (filter `group-name`), CreateSecurityGroup (GroupName and
/// GroupDescription required; a taken name is `InvalidGroup.Duplicate`) and
/// AuthorizeSecurityGroupIngress (`IpPermissions.N.{IpProtocol,FromPort,ToPort,IpRanges.M.CidrIp}`;
/// a rule already there is `InvalidPermission.Duplicate`), as the EC2 API reference describes.
fn security_groups(action: &str, p: &Params, seq: u64, cx: &mut Cx) -> Resp {
    let groups = &mut cx.store.security_groups;
    match action {
        "DescribeSecurityGroups" => {
            let mut names = Vec::new();
            for n in 1..=10 {
                if p.get(&format!("Filter.{n}.Name")) == Some("group-name") {
                    names.extend(p.list(&format!("Filter.{n}.Value")));
                }
            }
            let mut x = String::from("<securityGroupInfo>");
            for (id, name, rules) in groups
                .iter()
                .filter(|g| names.is_empty() || names.contains(&g.1))
            {
                x.push_str(&format!("<item><ownerId>123456789012</ownerId><groupId>{id}</groupId><groupName>{name}</groupName><ipPermissions>"));
                for r in rules {
                    let mut parts = r.split(':');
                    let proto = parts.next().unwrap_or("");
                    let (from, to) = parts
                        .next()
                        .and_then(|p| p.split_once('-'))
                        .unwrap_or(("", ""));
                    let cidr = parts.next().unwrap_or("");
                    x.push_str(&format!("<item><ipProtocol>{proto}</ipProtocol><fromPort>{from}</fromPort><toPort>{to}</toPort><ipRanges><item><cidrIp>{cidr}</cidrIp></item></ipRanges></item>"));
                }
                x.push_str("</ipPermissions></item>");
            }
            x.push_str("</securityGroupInfo>");
            ok("DescribeSecurityGroups", seq, &x)
        }
        "CreateSecurityGroup" => {
            let (Some(name), Some(_)) = (p.get("GroupName"), p.get("GroupDescription")) else {
                return error(
                    400,
                    "MissingParameter",
                    "The request must contain the parameters GroupName and GroupDescription",
                );
            };
            if groups.iter().any(|g| g.1 == name) {
                return error(
                    400,
                    "InvalidGroup.Duplicate",
                    &format!("The security group '{name}' already exists"),
                );
            }
            let id = format!("sg-{:017x}", 0x5ec0_0000 + seq);
            groups.push((id.clone(), name.to_string(), Vec::new()));
            ok(
                "CreateSecurityGroup",
                seq,
                &format!("<return>true</return><groupId>{id}</groupId>"),
            )
        }
        _ => {
            let Some(gid) = p.get("GroupId") else {
                return error(
                    400,
                    "MissingParameter",
                    "The request must contain the parameter GroupId",
                );
            };
            let Some(g) = groups.iter_mut().find(|g| g.0 == gid) else {
                return error(
                    400,
                    "InvalidGroup.NotFound",
                    &format!("The security group '{gid}' does not exist"),
                );
            };
            let mut new = Vec::new();
            for n in 1..=20 {
                let Some(proto) = p.get(&format!("IpPermissions.{n}.IpProtocol")) else {
                    break;
                };
                let from = p.get(&format!("IpPermissions.{n}.FromPort")).unwrap_or("");
                let to = p.get(&format!("IpPermissions.{n}.ToPort")).unwrap_or("");
                for cidr in p.list(&format!("IpPermissions.{n}.IpRanges")).iter().chain(
                    (1..=5)
                        .filter_map(|m| {
                            p.get(&format!("IpPermissions.{n}.IpRanges.{m}.CidrIp"))
                                .map(str::to_string)
                        })
                        .collect::<Vec<_>>()
                        .iter(),
                ) {
                    new.push(format!("{proto}:{from}-{to}:{cidr}"));
                }
            }
            if new.is_empty() {
                return error(400, "MissingParameter", "No IpPermissions given");
            }
            if new.iter().any(|r| g.2.contains(r)) {
                return error(
                    400,
                    "InvalidPermission.Duplicate",
                    "the specified rule already exists",
                );
            }
            g.2.extend(new);
            ok(
                "AuthorizeSecurityGroupIngress",
                seq,
                "<return>true</return>",
            )
        }
    }
}

fn run_instances(p: &Params, region: &str, seq: u64, cx: &mut Cx) -> Resp {
    for required in ["ImageId", "InstanceType", "MinCount", "MaxCount"] {
        if p.get(required).is_none_or(str::is_empty) {
            return error(
                400,
                "MissingParameter",
                &format!("The request must contain the parameter {required}"),
            );
        }
    }
    let image = p.get("ImageId").unwrap_or_default();
    let hexpart = image.strip_prefix("ami-").unwrap_or("");
    if !(hexpart.len() == 8 || hexpart.len() == 17)
        || !hexpart.bytes().all(|c| c.is_ascii_hexdigit())
    {
        return error(
            400,
            "InvalidAMIID.Malformed",
            &format!("Invalid id: \"{image}\" (expecting \"ami-...\")"),
        );
    }
    let itype = p.get("InstanceType").unwrap_or_default();
    if !cx.cfg.plan_known(INSTANCE_TYPES, itype) {
        return error(
            400,
            "InvalidParameterValue",
            &format!("Invalid value '{itype}' for InstanceType."),
        );
    }
    let (Ok(min), Ok(max)) = (
        p.get("MinCount").unwrap_or_default().parse::<u32>(),
        p.get("MaxCount").unwrap_or_default().parse::<u32>(),
    ) else {
        return error(
            400,
            "InvalidParameterValue",
            "MinCount and MaxCount must be integers",
        );
    };
    if min == 0 || max < min || max > 20 {
        return error(
            400,
            "InvalidParameterValue",
            "MinCount must be ≥ 1 and ≤ MaxCount (at most 20 in the mock)",
        );
    }
    if let Some(ud) = p.get("UserData") {
        if base64::engine::general_purpose::STANDARD
            .decode(ud.trim())
            .is_err()
        {
            return error(
                400,
                "InvalidParameterValue",
                "Invalid BASE64 encoding of user data.",
            );
        }
    }
    let token = p.get("ClientToken").unwrap_or_default().to_string();
    if token.len() > 64 {
        return error(
            400,
            "InvalidParameterValue",
            "ClientToken must be at most 64 characters",
        );
    }
    if let Some(az) = p.get("Placement.AvailabilityZone") {
        if !az.starts_with(region) {
            return error(
                400,
                "InvalidParameterValue",
                &format!("Invalid availability zone: [{az}]"),
            );
        }
    }
    let mut tags = Vec::new();
    for n in p.indexes("TagSpecification") {
        let rt = p
            .get(&format!("TagSpecification.{n}.ResourceType"))
            .unwrap_or_default();
        let valid = [
            "instance",
            "volume",
            "network-interface",
            "spot-instances-request",
            "elastic-gpu",
        ];
        if !valid.contains(&rt) {
            return error(
                400,
                "InvalidParameterValue",
                &format!("'{rt}' is not a valid taggable resource type."),
            );
        }
        for m in p.indexes(&format!("TagSpecification.{n}.Tag")) {
            let key = p
                .get(&format!("TagSpecification.{n}.Tag.{m}.Key"))
                .unwrap_or_default();
            let value = p
                .get(&format!("TagSpecification.{n}.Tag.{m}.Value"))
                .unwrap_or_default();
            if key.is_empty() || key.starts_with("aws:") || key.len() > 128 || value.len() > 256 {
                return error(
                    400,
                    "InvalidParameterValue",
                    &format!("Tag key '{key}' is not valid"),
                );
            }
            if rt == "instance" {
                tags.push(format!("{key}={value}"));
            }
        }
    }
    // Idempotency: the same token in this region returns the original reservation.
    let fingerprint = format!("{image}|{itype}|{min}|{max}");
    if !token.is_empty() {
        let existing: Vec<Node> = cx
            .store
            .nodes
            .iter()
            .filter(|n| n.region == region && n.extra_str("client_token") == token)
            .cloned()
            .collect();
        if let Some(first) = existing.first() {
            if first.extra_str("fingerprint") != fingerprint {
                return error(
                    400,
                    "IdempotentParameterMismatch",
                    "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).",
                );
            }
            let refs: Vec<&Node> = existing.iter().collect();
            return ok(
                "RunInstances",
                seq,
                &reservation_body(first.extra_str("reservation_id"), &refs),
            );
        }
    }
    // EC2 lists InsufficientInstanceCapacity among its server errors (a 5xx) and the limit
    // codes among its client errors (AWS EC2 API reference, "Error codes", read 2026-12).
    match cx.cfg.refusal_in(region) {
        Some(super::Refusal::Capacity) => {
            return error(
                500,
                "InsufficientInstanceCapacity",
                &format!("We currently do not have sufficient {itype} capacity in the Availability Zone you requested."),
            )
        }
        Some(super::Refusal::Quota) => {
            return error(
                400,
                "VcpuLimitExceeded",
                "You have requested more vCPU capacity than your current vCPU limit allows.",
            )
        }
        None => {}
    }
    let reservation = format!("r-0{:016x}", cx.store.next_seq());
    let user_data = p.get("UserData").map(|u| {
        base64::engine::general_purpose::STANDARD
            .decode(u.trim())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    });
    let az = p
        .get("Placement.AvailabilityZone")
        .map(str::to_string)
        .unwrap_or_else(|| format!("{region}a"));
    let mut created = Vec::new();
    for i in 0..max {
        let id = format!("i-0{:016x}", cx.store.next_seq());
        let name = tags
            .iter()
            .find_map(|t| t.strip_prefix("Name="))
            .unwrap_or("")
            .to_string();
        let mut node = Node::new(id, &name, itype, region, "pending");
        node.image = image.to_string();
        node.tags = tags.clone();
        node.user_data = user_data.clone();
        node.extra
            .insert("reservation_id".into(), Value::String(reservation.clone()));
        node.extra
            .insert("client_token".into(), Value::String(token.clone()));
        node.extra
            .insert("fingerprint".into(), Value::String(fingerprint.clone()));
        node.extra.insert("az".into(), Value::String(az.clone()));
        node.extra.insert("launch_index".into(), Value::from(i));
        if let Some(k) = p.get("KeyName") {
            node.extra
                .insert("key_name".into(), Value::String(k.to_string()));
        }
        let groups = p.list("SecurityGroupId");
        if !groups.is_empty() {
            node.extra
                .insert("security_group_ids".into(), serde_json::json!(groups));
        }
        if let Some(s) = p.get("SubnetId") {
            node.extra
                .insert("subnet_id".into(), Value::String(s.to_string()));
        }
        node.private_ip = Some(cx.store.ips.private());
        node.go(&["running"]);
        created.push(node.clone());
        cx.store.create(node);
    }
    let refs: Vec<&Node> = created.iter().collect();
    ok("RunInstances", seq, &reservation_body(&reservation, &refs))
}

fn malformed_id(id: &str) -> bool {
    let h = id.strip_prefix("i-").unwrap_or("");
    !((h.len() == 8 || h.len() == 17) && h.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// Check instance ids: all well-formed and present in `region`.
fn check_ids(ids: &[String], region: &str, store: &Store) -> Result<(), Resp> {
    if let Some(bad) = ids.iter().find(|i| malformed_id(i)) {
        return Err(error(
            400,
            "InvalidInstanceID.Malformed",
            &format!("Invalid id: \"{bad}\""),
        ));
    }
    let missing: Vec<&String> = ids
        .iter()
        .filter(|i| store.node(i).is_none_or(|n| n.region != region))
        .collect();
    match missing.len() {
        0 => Ok(()),
        1 => Err(error(
            400,
            "InvalidInstanceID.NotFound",
            &format!("The instance ID '{}' does not exist", missing[0]),
        )),
        _ => Err(error(
            400,
            "InvalidInstanceID.NotFound",
            &format!(
                "The instance IDs '{}' do not exist",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// `*` and `?` wildcards as EC2 filters use them.
fn wildcard(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && go(&p[2..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

fn filter_values(n: &Node, name: &str) -> Option<Vec<String>> {
    let tag_pairs = || {
        n.tags
            .iter()
            .map(|t| t.split_once('=').unwrap_or((t.as_str(), "")))
    };
    Some(match name {
        "tag-key" => tag_pairs().map(|(k, _)| k.to_string()).collect(),
        "tag-value" => tag_pairs().map(|(_, v)| v.to_string()).collect(),
        "instance-state-name" => vec![n.status.clone()],
        "instance-state-code" => vec![state_code(&n.status).to_string()],
        "instance-id" => vec![n.id.clone()],
        "client-token" => vec![n.extra_str("client_token").to_string()],
        "instance-type" => vec![n.plan.clone()],
        "image-id" => vec![n.image.clone()],
        "key-name" => vec![n.extra_str("key_name").to_string()],
        "availability-zone" => vec![n.extra_str("az").to_string()],
        "reservation-id" => vec![n.extra_str("reservation_id").to_string()],
        "ip-address" => n.ip.iter().cloned().collect(),
        other => {
            let key = other.strip_prefix("tag:")?;
            tag_pairs()
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
                .collect()
        }
    })
}

fn describe_instances(p: &Params, region: &str, seq: u64, cx: &mut Cx) -> Resp {
    let ids = p.list("InstanceId");
    let max_results = p.get("MaxResults");
    if !ids.is_empty() && max_results.is_some() {
        return error(
            400,
            "InvalidParameterCombination",
            "The parameter instancesSet cannot be used with the parameter maxResults",
        );
    }
    let max = match max_results.map(str::parse::<usize>) {
        None => None,
        Some(Ok(n)) if (5..=1000).contains(&n) => Some(n),
        Some(_) => {
            return error(
                400,
                "InvalidParameterValue",
                &format!(
                    "Value ( {} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.",
                    max_results.unwrap_or_default()
                ),
            )
        }
    };
    if let Err(e) = check_ids(&ids, region, cx.store) {
        return e;
    }
    let mut filters = Vec::new();
    for n in p.indexes("Filter") {
        let name = p
            .get(&format!("Filter.{n}.Name"))
            .unwrap_or_default()
            .to_string();
        let values = p.list(&format!("Filter.{n}.Value"));
        filters.push((name, values));
    }
    for id in &ids {
        cx.poll(id);
    }
    let mut matched = Vec::new();
    for n in cx.store.nodes.iter().filter(|n| n.region == region) {
        if !ids.is_empty() && !ids.contains(&n.id) {
            continue;
        }
        let mut keep = true;
        for (name, values) in &filters {
            let Some(have) = filter_values(n, name) else {
                return error(
                    400,
                    "InvalidParameterValue",
                    &format!("The filter '{name}' is invalid"),
                );
            };
            keep &= values
                .iter()
                .any(|want| have.iter().any(|h| wildcard(want, h)));
        }
        if keep {
            matched.push(n.clone());
        }
    }
    let offset = match p.get("NextToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => match base64::engine::general_purpose::STANDARD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix("offset:")
                    .and_then(|n| n.parse::<usize>().ok())
            }) {
            Some(o) => o,
            None => {
                return error(
                    400,
                    "InvalidParameterValue",
                    &format!("Invalid value '{t}' for nextToken"),
                )
            }
        },
    };
    let size = if ids.is_empty() {
        cx.cfg.effective_page_size(max, 1000)
    } else {
        usize::MAX
    };
    let page: Vec<&Node> = matched.iter().skip(offset).take(size).collect();
    let mut x = String::from("<reservationSet>");
    let mut i = 0;
    while i < page.len() {
        let rid = page[i].extra_str("reservation_id");
        let mut group = vec![page[i]];
        while i + group.len() < page.len()
            && page[i + group.len()].extra_str("reservation_id") == rid
        {
            group.push(page[i + group.len()]);
        }
        i += group.len();
        x.push_str(&format!("<item>{}</item>", reservation_body(rid, &group)));
    }
    x.push_str("</reservationSet>");
    if offset.saturating_add(size) < matched.len() {
        let token =
            base64::engine::general_purpose::STANDARD.encode(format!("offset:{}", offset + size));
        x.push_str(&format!("<nextToken>{token}</nextToken>"));
    }
    ok("DescribeInstances", seq, &x)
}

fn change_state(action: &str, p: &Params, region: &str, seq: u64, cx: &mut Cx) -> Resp {
    let ids = p.list("InstanceId");
    if ids.is_empty() {
        return error(
            400,
            "MissingParameter",
            "The request must contain the parameter InstanceId",
        );
    }
    if let Err(e) = check_ids(&ids, region, cx.store) {
        return e;
    }
    let verb = match action {
        "StartInstances" => "started",
        "StopInstances" => "stopped",
        "RebootInstances" => "rebooted",
        _ => "terminated",
    };
    // Validate every instance before changing any.
    for id in &ids {
        let n = cx.store.node(id).expect("checked");
        let bad = match action {
            "StartInstances" => matches!(
                n.status.as_str(),
                "stopping" | "shutting-down" | "terminated"
            ),
            "StopInstances" => matches!(
                n.status.as_str(),
                "pending" | "shutting-down" | "terminated"
            ),
            "RebootInstances" => n.status != "running",
            _ => false,
        };
        if bad {
            return error(
                400,
                "IncorrectInstanceState",
                &format!("The instance '{id}' is not in a state from which it can be {verb}."),
            );
        }
    }
    if action == "RebootInstances" {
        return ok("RebootInstances", seq, "<return>true</return>");
    }
    let api = cx.api;
    let mut items = String::new();
    for id in &ids {
        let previous = cx.store.node(id).expect("checked").status.clone();
        let change: Option<(&str, &str)> = match (action, previous.as_str()) {
            ("StartInstances", "stopped") => Some(("pending", "running")),
            ("StopInstances", "running") => Some(("stopping", "stopped")),
            ("TerminateInstances", s) if s != "terminated" && s != "shutting-down" => {
                Some(("shutting-down", "terminated"))
            }
            _ => None,
        };
        let mut current = previous.clone();
        if let Some((now_state, next)) = change {
            let Store { nodes, ips, .. } = &mut *cx.store;
            let node = nodes.iter_mut().find(|n| n.id == *id).expect("checked");
            node.status = now_state.to_string();
            api.entered(node, now_state, ips);
            node.go(&[next]);
            current = now_state.to_string();
        }
        items.push_str(&format!(
            "<item><instanceId>{id}</instanceId>{}{}</item>",
            state_xml("currentState", &current),
            state_xml("previousState", &previous)
        ));
    }
    ok(
        action,
        seq,
        &format!("<instancesSet>{items}</instancesSet>"),
    )
}
