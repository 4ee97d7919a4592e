//! Tests of the fake provider clouds themselves (`support::mock`): auth rejection, the
//! create → poll → running lifecycle with an address in each provider's real place, pagination
//! over three pages, fault injection, error shapes, expectations, SigV4 and HTTP interop.
//! Each test starts its own servers on port 0; nothing sleeps longer than a fault demands.

use crate::support::mock::{
    aws, call, Fault, MockConfig, MockServer, NodeSpec, Op, Provider, Reply, SigV4Check,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

/// A JSON client for one token-authenticated mock.
struct Http<'a> {
    m: &'a MockServer,
    token: String,
}

impl<'a> Http<'a> {
    fn new(m: &'a MockServer) -> Http<'a> {
        Http {
            m,
            token: m.config().token.clone(),
        }
    }

    fn with_token(m: &'a MockServer, token: &str) -> Http<'a> {
        Http {
            m,
            token: token.into(),
        }
    }

    fn auth(&self) -> (&'static str, String) {
        match self.m.provider() {
            Provider::DigitalOcean | Provider::Vultr | Provider::Linode => {
                ("Authorization", format!("Bearer {}", self.token))
            }
            Provider::Scaleway | Provider::Equinix => ("X-Auth-Token", self.token.clone()),
            Provider::Hivelocity => ("X-API-KEY", self.token.clone()),
            Provider::Aws => unreachable!("EC2 is signed, use aws::call"),
        }
    }

    fn send(&self, method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]) -> Reply {
        let (k, v) = self.auth();
        let mut headers = vec![(k, v.as_str())];
        headers.extend_from_slice(extra);
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.m.url())
        };
        call(method, &url, &headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[], b"")
    }

    fn json(&self, method: &str, path: &str, body: Value) -> Reply {
        self.send(
            method,
            path,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    }

    fn delete(&self, path: &str) -> Reply {
        self.send("DELETE", path, &[], b"")
    }
}

fn whoami_path(m: &MockServer) -> String {
    match m.provider() {
        Provider::DigitalOcean | Provider::Vultr => "/v2/account".into(),
        Provider::Linode => "/v4/profile".into(),
        Provider::Equinix => "/metal/v1/user".into(),
        Provider::Hivelocity => "/api/v2/profile/".into(),
        Provider::Scaleway => {
            let key = m
                .env()
                .into_iter()
                .find(|(k, _)| k == "SCW_ACCESS_KEY")
                .expect("access key")
                .1;
            format!("/iam/v1alpha1/api-keys/{key}")
        }
        Provider::Aws => unreachable!(),
    }
}

/// Poll `get` until `done` holds; returns the last value and how many polls it took.
#[track_caller]
fn poll_until(mut get: impl FnMut() -> Value, done: impl Fn(&Value) -> bool) -> (Value, usize) {
    for i in 1..=20 {
        let v = get();
        if done(&v) {
            return (v, i);
        }
    }
    panic!("never reached the wanted state");
}

/// First `<tag>…</tag>` text in an XML document.
fn xml(doc: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = doc.find(&open)? + open.len();
    let end = doc[start..].find(&format!("</{tag}>"))? + start;
    Some(doc[start..end].to_string())
}

fn xml_all(doc: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    doc.match_indices(&open)
        .filter_map(|(i, _)| {
            let s = i + open.len();
            doc[s..].find(&close).map(|e| doc[s..s + e].to_string())
        })
        .collect()
}

fn fast() -> MockConfig {
    MockConfig::default().with_pending_polls(1)
}

// ---------------------------------------------------------------------------------------------
// crypto + SigV4
// ---------------------------------------------------------------------------------------------

#[test]
fn sha256_and_hmac_match_published_vectors() {
    use crate::support::mock::crypto::{hex, hmac_sha256, sha256};
    assert_eq!(
        hex(&sha256(b"")),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex(&sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_eq!(
        hex(&sha256(long)),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
    // RFC 4231 test case 2
    assert_eq!(
        hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // RFC 4231 test case 6: a key longer than the block
    assert_eq!(
        hex(&hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        )),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[test]
fn sigv4_reproduces_the_aws_signing_test_suite() {
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let date = "20150830T123600Z";
    let h = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let names =
        |pairs: &[(&str, &str)]| pairs.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>();
    let sha =
        |b: &[u8]| crate::support::mock::crypto::hex(&crate::support::mock::crypto::sha256(b));

    // get-vanilla
    let headers = [("host", "example.amazonaws.com"), ("x-amz-date", date)];
    let canonical =
        aws::canonical_request("GET", "/", "", &h(&headers), &names(&headers), &sha(b"")).unwrap();
    assert_eq!(
        sha(canonical.as_bytes()),
        "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
    );
    assert_eq!(
        aws::signature(secret, date, "us-east-1", "service", &canonical),
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );

    // post-x-www-form-urlencoded
    let body = b"Param1=value1";
    let body_hash = sha(body);
    let headers = [
        ("content-length", "13"),
        ("content-type", "application/x-www-form-urlencoded"),
        ("host", "example.amazonaws.com"),
        ("x-amz-content-sha256", body_hash.as_str()),
        ("x-amz-date", date),
    ];
    let canonical =
        aws::canonical_request("POST", "/", "", &h(&headers), &names(&headers), &body_hash)
            .unwrap();
    assert_eq!(
        sha(canonical.as_bytes()),
        "b1edd1d03544c25390e32085d55b57acc9a3961bb59415ff86c45c3d89d16cfb"
    );
    assert_eq!(
        aws::signature(secret, date, "us-east-1", "service", &canonical),
        "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"
    );
}

#[test]
fn ec2_checks_sigv4_key_scope_and_signature() {
    let m = MockServer::start(Provider::Aws, MockConfig::default());
    let cfg = m.config().clone();
    let ok = aws::call(
        &m.url(),
        &cfg,
        "us-east-1",
        &[("Action", "DescribeRegions")],
    )
    .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert!(ok.text().contains("<regionName>eu-west-1</regionName>"));
    assert!(ok
        .text()
        .contains("xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\""));

    let wrong_key = MockConfig {
        access_key_id: "AKIAWRONG00000000000".into(),
        ..cfg.clone()
    };
    let r = aws::call(
        &m.url(),
        &wrong_key,
        "us-east-1",
        &[("Action", "DescribeRegions")],
    )
    .unwrap();
    assert_eq!(
        (r.status, xml(&r.text(), "Code").as_deref()),
        (401, Some("AuthFailure"))
    );

    let wrong_secret = MockConfig {
        secret_access_key: "not-the-secret".into(),
        ..cfg.clone()
    };
    let r = aws::call(
        &m.url(),
        &wrong_secret,
        "us-east-1",
        &[("Action", "DescribeRegions")],
    )
    .unwrap();
    assert_eq!(
        (r.status, xml(&r.text(), "Code").as_deref()),
        (403, Some("SignatureDoesNotMatch"))
    );

    let r = aws::call(
        &m.url(),
        &cfg,
        "mars-north-1",
        &[("Action", "DescribeRegions")],
    )
    .unwrap();
    assert_eq!(r.status, 403);
    assert!(r.text().contains("valid region"), "{}", r.text());

    // Unsigned, and signed but with the body changed after signing.
    let r = call(
        "POST",
        &format!("{}/", m.url()),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"Action=DescribeRegions&Version=2016-11-15",
    )
    .unwrap();
    assert_eq!(
        (r.status, xml(&r.text(), "Code").as_deref()),
        (401, Some("AuthFailure"))
    );
    let headers = aws::sign_form(
        &m.url(),
        &cfg,
        "us-east-1",
        "Action=DescribeRegions&Version=2016-11-15",
    );
    let refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let r = call(
        "POST",
        &format!("{}/", m.url()),
        &refs,
        b"Action=DescribeRegions&Version=2016-11-15&X=1",
    )
    .unwrap();
    assert_eq!(r.status, 403);

    // Format-only checking accepts any signature but still wants the scope right.
    let lax = MockServer::start(
        Provider::Aws,
        MockConfig::default().with_sigv4(SigV4Check::FormatOnly),
    );
    let r = aws::call(
        &lax.url(),
        &wrong_secret,
        "us-east-1",
        &[("Action", "DescribeRegions")],
    )
    .unwrap();
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn ec2_accepts_requests_signed_by_aws_sigv4_through_reqwest() {
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;

    let m = MockServer::start(Provider::Aws, MockConfig::default());
    let cfg = m.config().clone();
    let identity = Credentials::new(
        &cfg.access_key_id,
        &cfg.secret_access_key,
        None,
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-1")
        .name("ec2")
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let url = format!("{}/", m.url());
    let body = "Action=RunInstances&Version=2016-11-15&ImageId=ami-0abcdef1234567890&InstanceType=t3.micro&MinCount=1&MaxCount=1";
    let ct = "application/x-www-form-urlencoded; charset=utf-8";
    let signable = SignableRequest::new(
        "POST",
        &url,
        [("content-type", ct)].into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut req = http::Request::builder()
        .method("POST")
        .uri(&url)
        .header("content-type", ct)
        .body(())
        .unwrap();
    instructions.apply_to_request_http1x(&mut req);
    let resp = reqwest::Client::new()
        .post(&url)
        .headers(req.headers().clone())
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(m.count_creates(), 1);
    assert_eq!(
        m.nodes()[0].region,
        "eu-west-1",
        "nodes live in the signing region"
    );
}

// ---------------------------------------------------------------------------------------------
// auth, whoami, not found
// ---------------------------------------------------------------------------------------------

#[test]
fn every_token_provider_rejects_a_missing_or_wrong_credential_in_its_own_shape() {
    for p in Provider::ALL.into_iter().filter(|p| *p != Provider::Aws) {
        let m = MockServer::new(p);
        let path = whoami_path(&m);
        let good = Http::new(&m).get(&path);
        assert_eq!(good.status, 200, "{p:?} whoami: {}", good.text());
        let r = Http::with_token(&m, "wrong").get(&path);
        assert_eq!(r.status, 401, "{p:?}");
        let none = call("GET", &format!("{}{path}", m.url()), &[], b"").unwrap();
        assert_eq!(none.status, 401, "{p:?} without a credential");
        let body = r.json();
        match p {
            Provider::DigitalOcean => assert_eq!(
                body,
                json!({"id": "unauthorized", "message": "Unable to authenticate you.", "request_id": body["request_id"]})
            ),
            Provider::Vultr => {
                assert_eq!(body, json!({"error": "Invalid API token.", "status": 401}))
            }
            Provider::Linode => assert_eq!(body["errors"][0]["reason"], "Invalid Token"),
            Provider::Scaleway => assert_eq!(body["type"], "denied_authentication"),
            Provider::Equinix => assert!(body["errors"][0].is_string()),
            Provider::Hivelocity => assert_eq!(body["code"], 401),
            Provider::Aws => unreachable!(),
        }
        assert_eq!(m.count(Op::Verify), 3);
    }
}

#[test]
fn unknown_ids_answer_with_each_providers_not_found_shape() {
    for p in Provider::ALL.into_iter().filter(|p| *p != Provider::Aws) {
        let m = MockServer::new(p);
        let path = match p {
            Provider::DigitalOcean => "/v2/droplets/12345".to_string(),
            Provider::Vultr => "/v2/instances/cb676a46-66fd-4dfb-b839-443f2e6c0b60".into(),
            Provider::Linode => "/v4/linode/instances/123".into(),
            Provider::Scaleway => {
                "/instance/v1/zones/fr-par-1/servers/11111111-2222-4333-8444-555555555555".into()
            }
            Provider::Equinix => "/metal/v1/devices/11111111-2222-4333-8444-555555555555".into(),
            Provider::Hivelocity => "/api/v2/compute/999".into(),
            Provider::Aws => unreachable!(),
        };
        let r = Http::new(&m).get(&path);
        assert_eq!(r.status, 404, "{p:?}");
        let b = r.json();
        let ok = match p {
            Provider::DigitalOcean => b["id"] == "not_found",
            Provider::Vultr => b["status"] == 404 && b["error"].is_string(),
            Provider::Linode => b["errors"][0]["reason"] == "Not found",
            Provider::Scaleway => b["type"] == "unknown_resource",
            Provider::Equinix => b["errors"][0].is_string(),
            Provider::Hivelocity => b["code"] == 404,
            Provider::Aws => unreachable!(),
        };
        assert!(ok, "{p:?}: {b}");
        assert_eq!(m.count(Op::Get), 1);
    }

    let m = MockServer::new(Provider::Aws);
    let cfg = m.config().clone();
    let r = aws::call(
        &m.url(),
        &cfg,
        "us-east-1",
        &[
            ("Action", "DescribeInstances"),
            ("InstanceId.1", "i-0123456789abcdef0"),
        ],
    )
    .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(
        xml(&r.text(), "Code").as_deref(),
        Some("InvalidInstanceID.NotFound")
    );
    assert!(r.text().contains("<Response><Errors><Error>") && r.text().contains("<RequestID>"));
}

// ---------------------------------------------------------------------------------------------
// lifecycles
// ---------------------------------------------------------------------------------------------

#[test]
fn digitalocean_droplet_lifecycle_with_action_objects() {
    let m = MockServer::start(Provider::DigitalOcean, fast());
    let api = Http::new(&m);

    let bad = api.json(
        "POST",
        "/v2/droplets",
        json!({"name": "n1", "region": "nyc3", "size": "s-99vcpu", "image": "ubuntu-24-04-x64"}),
    );
    assert_eq!(
        (bad.status, bad.json()["id"].clone()),
        (422, json!("unprocessable_entity"))
    );
    let missing = api.json(
        "POST",
        "/v2/droplets",
        json!({"name": "n1", "size": "s-1vcpu-1gb"}),
    );
    assert_eq!(missing.status, 422);
    assert!(missing.json()["message"]
        .as_str()
        .unwrap()
        .contains("image"));
    let injected = api.json(
        "POST",
        "/v2/droplets",
        json!({"name": "a\",\"size\":\"x", "size": "s-1vcpu-1gb", "image": "u"}),
    );
    assert_eq!(injected.status, 422, "hostname characters only");

    let r = api.json(
        "POST",
        "/v2/droplets",
        json!({"name": "node-1", "region": "nyc3", "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64",
               "tags": ["capsule", "capsule-abc"], "ssh_keys": [123], "user_data": "#!/bin/sh\n"}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let created = r.json();
    assert_eq!(created["droplet"]["status"], "new");
    assert_eq!(created["droplet"]["networks"]["v4"], json!([]));
    let id = created["droplet"]["id"].as_u64().unwrap();
    let action_href = created["links"]["actions"][0]["href"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(action_href.starts_with(&m.url()), "{action_href}");
    assert_eq!(m.count_creates(), 1);
    assert_eq!(m.nodes()[0].tags, ["capsule", "capsule-abc"]);
    assert_eq!(m.nodes()[0].user_data.as_deref(), Some("#!/bin/sh\n"));

    let (d, polls) = poll_until(
        || api.get(&format!("/v2/droplets/{id}")).json()["droplet"].clone(),
        |d| d["status"] == "active",
    );
    assert_eq!(polls, 2, "one poll in `new`, then active");
    let v4 = d["networks"]["v4"].as_array().unwrap();
    assert_eq!(
        v4[0]["type"], "private",
        "the public address is not first: a reader must filter by type"
    );
    let public = v4.iter().find(|n| n["type"] == "public").unwrap();
    assert!(public["ip_address"]
        .as_str()
        .unwrap()
        .starts_with("203.0.113."));
    assert_eq!(
        api.get(&action_href).json()["action"]["status"],
        "completed"
    );

    let stop = api.json(
        "POST",
        &format!("/v2/droplets/{id}/actions"),
        json!({"type": "shutdown"}),
    );
    assert_eq!(stop.status, 201);
    let action = stop.json()["action"].clone();
    assert_eq!(
        (action["status"].clone(), action["type"].clone()),
        (json!("in-progress"), json!("shutdown"))
    );
    let again = api.json(
        "POST",
        &format!("/v2/droplets/{id}/actions"),
        json!({"type": "power_off"}),
    );
    assert_eq!(again.status, 422, "a pending event blocks another action");
    assert_eq!(
        api.get(&format!("/v2/droplets/{id}")).json()["droplet"]["status"],
        "active",
        "status holds until the action completes"
    );
    let (a, _) = poll_until(
        || api.get(&format!("/v2/actions/{}", action["id"])).json()["action"].clone(),
        |a| a["status"] == "completed",
    );
    assert!(a["completed_at"].is_string());
    assert_eq!(
        api.get(&format!("/v2/droplets/{id}")).json()["droplet"]["status"],
        "off"
    );
    let off_again = api.json(
        "POST",
        &format!("/v2/droplets/{id}/actions"),
        json!({"type": "shutdown"}),
    );
    assert_eq!(
        off_again.json()["message"],
        "Droplet is already powered off."
    );

    assert_eq!(
        api.json(
            "POST",
            &format!("/v2/droplets/{id}/actions"),
            json!({"type": "power_on"})
        )
        .status,
        201
    );
    poll_until(
        || api.get(&format!("/v2/droplets/{id}")).json()["droplet"].clone(),
        |d| d["status"] == "active",
    );

    assert_eq!(api.delete(&format!("/v2/droplets/{id}")).status, 204);
    assert_eq!(api.get(&format!("/v2/droplets/{id}")).status, 404);
    assert_eq!(api.delete(&format!("/v2/droplets/{id}")).status, 404);
    assert!(m.nodes().is_empty());
    let last = m.requests().pop().unwrap();
    assert_eq!(
        (last.method.as_str(), last.path.as_str(), last.status),
        ("DELETE", &*format!("/v2/droplets/{id}"), 404)
    );
    assert_eq!(
        last.header("authorization").unwrap(),
        format!("Bearer {}", m.config().token)
    );
}

#[test]
fn vultr_instance_and_bare_metal_lifecycle() {
    let m = MockServer::start(Provider::Vultr, fast());
    let api = Http::new(&m);
    let bad = api.json(
        "POST",
        "/v2/instances",
        json!({"region": "ewr", "plan": "vc2-1c-1gb", "os_id": 2284, "user_data": "not base64!"}),
    );
    assert_eq!(
        (bad.status, bad.json()["status"].clone()),
        (400, json!(400))
    );
    let no_os = api.json(
        "POST",
        "/v2/instances",
        json!({"region": "ewr", "plan": "vc2-1c-1gb"}),
    );
    assert_eq!(no_os.status, 400);
    let metal_plan = api.json(
        "POST",
        "/v2/instances",
        json!({"region": "ewr", "plan": "vbm-4c-32gb", "os_id": 2284}),
    );
    assert_eq!(
        metal_plan.status, 400,
        "bare-metal plans go to /v2/bare-metals"
    );

    let r = api.json(
        "POST",
        "/v2/instances",
        json!({"region": "ewr", "plan": "vc2-1c-1gb", "os_id": 2284, "label": "node-1", "hostname": "node-1",
               "tags": ["capsule", "capsule-abc"], "user_data": "IyEvYmluL3NoCg=="}),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let inst = r.json()["instance"].clone();
    assert_eq!(
        (inst["status"].clone(), inst["main_ip"].clone()),
        (json!("pending"), json!("0.0.0.0"))
    );
    assert!(inst["default_password"].is_string());
    assert_eq!(m.nodes()[0].user_data.as_deref(), Some("#!/bin/sh\n"));
    let id = inst["id"].as_str().unwrap().to_string();
    let (i, _) = poll_until(
        || api.get(&format!("/v2/instances/{id}")).json()["instance"].clone(),
        |i| i["status"] == "active",
    );
    assert_eq!(
        (i["power_status"].clone(), i["server_status"].clone()),
        (json!("running"), json!("ok"))
    );
    assert_ne!(i["main_ip"], "0.0.0.0");
    assert!(
        i.get("default_password").is_none(),
        "the password is only in the create answer"
    );

    assert_eq!(
        api.send("POST", &format!("/v2/instances/{id}/halt"), &[], b"")
            .status,
        204
    );
    let (i, _) = poll_until(
        || api.get(&format!("/v2/instances/{id}")).json()["instance"].clone(),
        |i| i["power_status"] == "stopped",
    );
    assert_eq!(i["status"], "active", "a halted VM stays `active`");
    assert_eq!(
        api.send("POST", &format!("/v2/instances/{id}/start"), &[], b"")
            .status,
        204
    );
    poll_until(
        || api.get(&format!("/v2/instances/{id}")).json()["instance"].clone(),
        |i| i["power_status"] == "running",
    );

    let bm = api.json(
        "POST",
        "/v2/bare-metals",
        json!({"region": "ewr", "plan": "vbm-4c-32gb", "os_id": 2284, "label": "metal"}),
    );
    assert_eq!(bm.status, 202, "{}", bm.text());
    let bm = bm.json()["bare_metal"].clone();
    assert_eq!(bm["main_ip"], "");
    let bm_id = bm["id"].as_str().unwrap().to_string();
    assert_eq!(
        api.get(&format!("/v2/instances/{bm_id}")).status,
        404,
        "bare metal is not an instance"
    );
    let (b, _) = poll_until(
        || api.get(&format!("/v2/bare-metals/{bm_id}")).json()["bare_metal"].clone(),
        |b| b["status"] == "active",
    );
    assert!(b["main_ip"].as_str().unwrap().contains('.'));

    assert_eq!(api.delete(&format!("/v2/instances/{id}")).status, 204);
    let gone = api.get(&format!("/v2/instances/{id}"));
    assert_eq!(
        (gone.status, gone.json()["status"].clone()),
        (404, json!(404))
    );
}

#[test]
fn linode_lifecycle_with_validation() {
    let m = MockServer::start(Provider::Linode, fast());
    let api = Http::new(&m);
    let body = json!({"type": "g6-nanode-1", "region": "us-east", "image": "linode/ubuntu24.04", "label": "node-1",
                      "root_pass": "Capsule-abc-Lp9!", "authorized_keys": ["ssh-ed25519 AAAA test"],
                      "tags": ["capsule", "capsule-abc"], "metadata": {"user_data": "IyEvYmluL3NoCg=="}});
    let mut no_pass = body.clone();
    no_pass.as_object_mut().unwrap().remove("root_pass");
    let r = api.json("POST", "/v4/linode/instances", no_pass);
    assert_eq!(
        (r.status, r.json()["errors"][0]["field"].clone()),
        (400, json!("root_pass"))
    );
    let mut bad_type = body.clone();
    bad_type["type"] = json!("g6-huge-99");
    assert_eq!(
        api.json("POST", "/v4/linode/instances", bad_type).json()["errors"][0]["field"],
        "type"
    );

    let r = api.json("POST", "/v4/linode/instances", body.clone());
    assert_eq!(r.status, 200, "{}", r.text());
    let l = r.json();
    assert_eq!(l["status"], "provisioning");
    assert!(
        l["ipv4"][0].as_str().unwrap().starts_with("203.0.113."),
        "Linode returns the address at create"
    );
    assert!(
        l["created"].as_str().unwrap().len() == 19,
        "UTC without an offset: {}",
        l["created"]
    );
    let dup = api.json("POST", "/v4/linode/instances", body);
    assert_eq!(
        dup.json()["errors"][0]["reason"],
        "Label must be unique among your linodes"
    );

    let id = l["id"].as_u64().unwrap();
    let path = format!("/v4/linode/instances/{id}");
    let mut seen = Vec::new();
    poll_until(
        || {
            let s = api.get(&path).json()["status"].clone();
            seen.push(s.as_str().unwrap().to_string());
            s
        },
        |s| s == "running",
    );
    seen.dedup();
    assert_eq!(seen, ["provisioning", "booting", "running"]);

    assert_eq!(
        api.json("POST", &format!("{path}/shutdown"), json!({}))
            .json(),
        json!({})
    );
    assert_eq!(
        api.json("POST", &format!("{path}/boot"), json!({})).json()["errors"][0]["reason"],
        "Linode busy."
    );
    poll_until(
        || api.get(&path).json()["status"].clone(),
        |s| s == "offline",
    );
    api.json("POST", &format!("{path}/boot"), json!({}));
    poll_until(
        || api.get(&path).json()["status"].clone(),
        |s| s == "running",
    );

    let d = api.delete(&path);
    assert_eq!((d.status, d.json()), (200, json!({})));
    assert_eq!(api.get(&path).json()["status"], "deleting");
    let (_, _) = poll_until(|| json!(api.get(&path).status), |s| s == 404);
}

#[test]
fn ec2_lifecycle_idempotency_and_region_scope() {
    let m = MockServer::start(Provider::Aws, fast());
    let cfg = m.config().clone();
    let ec2 =
        |region: &str, form: &[(&str, &str)]| aws::call(&m.url(), &cfg, region, form).unwrap();
    let run = [
        ("Action", "RunInstances"),
        ("ImageId", "ami-0abcdef1234567890"),
        ("InstanceType", "t3.micro"),
        ("MinCount", "1"),
        ("MaxCount", "1"),
        ("ClientToken", "capsule-7f3a"),
        ("UserData", "IyEvYmluL3NoCg=="),
        ("TagSpecification.1.ResourceType", "instance"),
        ("TagSpecification.1.Tag.1.Key", "Name"),
        ("TagSpecification.1.Tag.1.Value", "node-1"),
        ("TagSpecification.1.Tag.2.Key", "capsule-id"),
        ("TagSpecification.1.Tag.2.Value", "7f3a"),
    ];
    let missing = ec2("us-east-1", &run[..4]);
    assert_eq!(
        xml(&missing.text(), "Code").as_deref(),
        Some("MissingParameter")
    );

    let r = ec2("us-east-1", &run);
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.text();
    assert!(
        body.starts_with("<?xml")
            && body.contains(
                "<RunInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
            )
    );
    let id = xml(&body, "instanceId").unwrap();
    assert_eq!(
        xml(&xml(&body, "instanceState").unwrap(), "name").as_deref(),
        Some("pending")
    );
    assert!(xml(&body, "ipAddress").is_none());
    let again = ec2("us-east-1", &run);
    assert_eq!(
        xml(&again.text(), "instanceId"),
        Some(id.clone()),
        "same ClientToken, same instance"
    );
    assert_eq!(m.count_creates(), 1);
    let mut other = run;
    other[2] = ("InstanceType", "t3.small");
    let mismatch = ec2("us-east-1", &other);
    assert_eq!(
        xml(&mismatch.text(), "Code").as_deref(),
        Some("IdempotentParameterMismatch")
    );
    let node = m.node(&id).unwrap();
    assert_eq!(
        (
            node.name.as_str(),
            node.tag_value("capsule-id"),
            node.user_data.as_deref()
        ),
        ("node-1", Some("7f3a"), Some("#!/bin/sh\n"))
    );

    let describe = |region: &str| {
        ec2(
            region,
            &[("Action", "DescribeInstances"), ("InstanceId.1", &id)],
        )
        .text()
    };
    let (d, polls) = poll_until(
        || json!(describe("us-east-1")),
        |d| d.as_str().unwrap().contains("<name>running</name>"),
    );
    assert_eq!(polls, 2);
    let d = d.as_str().unwrap().to_string();
    let ip = xml(&d, "ipAddress").expect("a public IP once running");
    assert!(d.contains("<key>capsule-id</key><value>7f3a</value>"));
    assert!(xml(&d, "reservationSet").is_some());
    let elsewhere = ec2(
        "eu-west-1",
        &[("Action", "DescribeInstances"), ("InstanceId.1", &id)],
    );
    assert_eq!(
        xml(&elsewhere.text(), "Code").as_deref(),
        Some("InvalidInstanceID.NotFound"),
        "EC2 is regional"
    );

    let stop = ec2(
        "us-east-1",
        &[("Action", "StopInstances"), ("InstanceId.1", &id)],
    )
    .text();
    assert_eq!(
        xml(&xml(&stop, "currentState").unwrap(), "name").as_deref(),
        Some("stopping")
    );
    assert_eq!(
        xml(&xml(&stop, "previousState").unwrap(), "name").as_deref(),
        Some("running")
    );
    let (d, _) = poll_until(
        || json!(describe("us-east-1")),
        |d| d.as_str().unwrap().contains("<name>stopped</name>"),
    );
    assert!(
        xml(d.as_str().unwrap(), "ipAddress").is_none(),
        "the public IP is released on stop"
    );
    let start = ec2(
        "us-east-1",
        &[("Action", "StartInstances"), ("InstanceId.1", &id)],
    )
    .text();
    assert_eq!(
        xml(&xml(&start, "currentState").unwrap(), "name").as_deref(),
        Some("pending")
    );
    let (d, _) = poll_until(
        || json!(describe("us-east-1")),
        |d| d.as_str().unwrap().contains("<name>running</name>"),
    );
    assert_ne!(
        xml(d.as_str().unwrap(), "ipAddress"),
        Some(ip),
        "a new public IP after start"
    );

    let term = ec2(
        "us-east-1",
        &[("Action", "TerminateInstances"), ("InstanceId.1", &id)],
    )
    .text();
    assert_eq!(
        xml(&xml(&term, "currentState").unwrap(), "name").as_deref(),
        Some("shutting-down")
    );
    let (d, _) = poll_until(
        || json!(describe("us-east-1")),
        |d| d.as_str().unwrap().contains("<name>terminated</name>"),
    );
    assert!(d.as_str().unwrap().contains("<code>48</code>"));
    let start = ec2(
        "us-east-1",
        &[("Action", "StartInstances"), ("InstanceId.1", &id)],
    );
    assert_eq!(
        xml(&start.text(), "Code").as_deref(),
        Some("IncorrectInstanceState")
    );
    let live = ec2(
        "us-east-1",
        &[
            ("Action", "DescribeInstances"),
            ("Filter.1.Name", "instance-state-name"),
            ("Filter.1.Value.1", "pending"),
            ("Filter.1.Value.2", "running"),
        ],
    );
    assert!(
        xml(&live.text(), "instanceId").is_none(),
        "terminated instances can be filtered out"
    );
}

#[test]
fn scaleway_server_is_created_stopped_and_powered_on_by_action() {
    let m = MockServer::start(Provider::Scaleway, fast());
    let api = Http::new(&m);
    let project = m.config().project_id.clone();
    let base = "/instance/v1/zones/fr-par-1/servers";
    let body = json!({"name": "node-1", "commercial_type": "DEV1-S", "image": "ubuntu_noble", "project": project,
                      "tags": ["capsule", "capsule-abc"]});
    let mut inline = body.clone();
    inline["user_data"] = json!("#cloud-config");
    let r = api.json("POST", base, inline);
    assert_eq!(
        (r.status, r.json()["fields"]["user_data"][0].clone()),
        (400, json!("Unknown field."))
    );
    let mut foreign = body.clone();
    foreign["project"] = json!("00000000-0000-4000-8000-000000000000");
    assert_eq!(
        api.json("POST", base, foreign).json()["type"],
        "permissions_denied"
    );

    let r = api.json("POST", base, body);
    assert_eq!(r.status, 201, "{}", r.text());
    let s = r.json()["server"].clone();
    assert_eq!(
        (
            s["state"].clone(),
            s["public_ip"].clone(),
            s["public_ips"].clone()
        ),
        (json!("stopped"), Value::Null, json!([]))
    );
    let id = s["id"].as_str().unwrap().to_string();
    let path = format!("{base}/{id}");
    assert_eq!(
        api.get(&format!("/instance/v1/zones/nl-ams-1/servers/{id}"))
            .status,
        404,
        "zone-scoped"
    );

    let ud = format!("{path}/user_data/cloud-init");
    assert_eq!(
        api.send("PATCH", &ud, &[("Content-Type", "application/json")], b"{}")
            .status,
        400
    );
    assert_eq!(
        api.send(
            "PATCH",
            &ud,
            &[("Content-Type", "text/plain")],
            b"#cloud-config\n"
        )
        .status,
        204
    );
    assert_eq!(api.get(&ud).text(), "#cloud-config\n");
    assert_eq!(m.nodes()[0].user_data.as_deref(), Some("#cloud-config\n"));

    let on = api.json(
        "POST",
        &format!("{path}/action"),
        json!({"action": "poweron"}),
    );
    assert_eq!(
        (on.status, on.json()["task"]["status"].clone()),
        (200, json!("pending"))
    );
    let mut states = Vec::new();
    let (s, _) = poll_until(
        || {
            let s = api.get(&path).json()["server"].clone();
            states.push(s["state"].as_str().unwrap().to_string());
            s
        },
        |s| s["state"] == "running",
    );
    states.dedup();
    assert_eq!(states, ["stopped", "starting", "running"]);
    assert_eq!(s["public_ips"][0]["family"], "inet");
    assert_eq!(s["public_ips"][0]["address"], s["public_ip"]["address"]);

    let del = api.delete(&path);
    assert_eq!(
        (del.status, del.json()["message"].clone()),
        (400, json!("server should be stopped"))
    );
    api.json(
        "POST",
        &format!("{path}/action"),
        json!({"action": "poweroff"}),
    );
    poll_until(
        || api.get(&path).json()["server"]["state"].clone(),
        |s| s == "stopped",
    );
    assert_eq!(api.delete(&path).status, 204);
    assert_eq!(api.get(&path).json()["type"], "unknown_resource");
}

#[test]
fn equinix_device_lifecycle() {
    let m = MockServer::start(Provider::Equinix, fast());
    let api = Http::new(&m);
    let pid = m.config().project_id.clone();
    assert_eq!(
        api.get(&format!("/metal/v1/projects/{pid}")).json()["id"],
        pid.as_str()
    );
    assert_eq!(
        api.get("/metal/v1/projects/00000000-0000-4000-8000-000000000000")
            .status,
        404
    );
    let create = format!("/metal/v1/projects/{pid}/devices");
    let facility = api.json(
        "POST",
        &create,
        json!({"plan": "c3.small.x86", "operating_system": "ubuntu_24_04", "facility": ["da11"]}),
    );
    assert_eq!(facility.status, 422);
    let wrong_project = api.json(
        "POST",
        "/metal/v1/projects/00000000-0000-4000-8000-000000000000/devices",
        json!({}),
    );
    assert_eq!(wrong_project.status, 404);

    let r = api.json(
        "POST",
        &create,
        json!({"plan": "c3.small.x86", "operating_system": "ubuntu_24_04", "metro": "da", "hostname": "node-1",
               "billing_cycle": "hourly", "tags": ["capsule", "capsule-id=abc"], "userdata": "#!/bin/sh"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let d = r.json();
    assert_eq!(
        (d["state"].clone(), d["ip_addresses"].clone()),
        (json!("queued"), json!([]))
    );
    let id = d["id"].as_str().unwrap().to_string();
    let path = format!("/metal/v1/devices/{id}");
    let (d, _) = poll_until(|| api.get(&path).json(), |d| d["state"] == "active");
    let ips = d["ip_addresses"].as_array().unwrap();
    assert_eq!(ips[0]["address_family"], 6, "not a fixed index");
    let v4 = ips
        .iter()
        .find(|a| a["public"] == true && a["address_family"] == 4)
        .unwrap();
    assert!(v4["address"].as_str().unwrap().starts_with("203.0.113."));

    assert_eq!(
        api.json(
            "POST",
            &format!("{path}/actions"),
            json!({"type": "power_off"})
        )
        .status,
        202
    );
    let (_, _) = poll_until(
        || api.get(&path).json()["state"].clone(),
        |s| s == "inactive",
    );
    assert_eq!(
        api.json(
            "POST",
            &format!("{path}/actions"),
            json!({"type": "power_off"})
        )
        .status,
        422
    );
    assert_eq!(
        api.json(
            "POST",
            &format!("{path}/actions"),
            json!({"type": "power_on"})
        )
        .status,
        202
    );
    poll_until(|| api.get(&path).json()["state"].clone(), |s| s == "active");

    assert_eq!(api.delete(&path).status, 204);
    assert_eq!(api.get(&path).json()["state"], "deprovisioning");
    poll_until(|| json!(api.get(&path).status), |s| s == 404);
}

#[test]
fn hivelocity_device_lifecycle() {
    // Shown while provisioning (powerStatus OFF); the real API hides it (the default, below).
    let m = MockServer::start(
        Provider::Hivelocity,
        MockConfig {
            hide_provisioning: false,
            ..fast()
        },
    );
    let api = Http::new(&m);
    let body = json!({"productId": 525, "locationName": "TPA1", "osName": "Ubuntu 22.04", "hostname": "node-1.example.com",
                      "period": "hourly", "tags": ["capsule", "capsule-id=abc"], "script": "#!/bin/sh"});
    let mut short = body.clone();
    short["hostname"] = json!("node-1");
    assert_eq!(
        api.json("POST", "/api/v2/compute/", short).json()["code"],
        400
    );
    let mut string_id = body.clone();
    string_id["productId"] = json!("525");
    assert_eq!(
        api.json("POST", "/api/v2/compute/", string_id).status,
        400,
        "productId is an integer"
    );

    let r = api.json("POST", "/api/v2/compute/", body);
    assert_eq!(r.status, 200, "{}", r.text());
    let d = r.json();
    assert_eq!(
        (d["powerStatus"].clone(), d["primaryIp"].clone()),
        (json!("OFF"), Value::Null)
    );
    let id = d["deviceId"].as_u64().unwrap();
    let (d, _) = poll_until(
        || api.get(&format!("/api/v2/compute/{id}")).json(),
        |d| d["powerStatus"] == "ON",
    );
    assert!(d["primaryIp"].as_str().unwrap().contains('.'));
    assert!(
        api.get("/api/v2/compute/").json().is_array(),
        "a bare array, no paging"
    );

    let power = format!("/api/v2/device/{id}/power");
    let r = api.send("POST", &format!("{power}?action=shutdown"), &[], b"");
    assert_eq!(
        (r.status, r.json()["powerStatus"].clone()),
        (202, json!("ON"))
    );
    poll_until(
        || api.get(&power).json()["powerStatus"].clone(),
        |s| s == "OFF",
    );
    let r = api.send("POST", &format!("{power}?action=shutdown"), &[], b"");
    assert!(r.json()["description"]
        .as_str()
        .unwrap()
        .contains("powered off"));
    assert_eq!(api.delete(&format!("/api/v2/compute/{id}")).status, 204);
    assert_eq!(api.get(&format!("/api/v2/compute/{id}")).status, 404);

    let hidden = MockServer::start(Provider::Hivelocity, fast());
    let api = Http::new(&hidden);
    let id = api
        .json("POST", "/api/v2/compute/", json!({"productId": 525, "locationName": "TPA1", "osName": "Ubuntu 22.04", "hostname": "a.example.com"}))
        .json()["deviceId"]
        .as_u64()
        .unwrap();
    assert_eq!(api.get("/api/v2/compute/").json(), json!([]));
    assert_eq!(api.get(&format!("/api/v2/device/{id}/power")).status, 404);
    let (_, polls) = poll_until(
        || json!(api.get(&format!("/api/v2/compute/{id}")).status),
        |s| s == 200,
    );
    assert_eq!(
        polls, 1,
        "404 while provisioning (the power GET was a poll too), as the real API"
    );
}

// ---------------------------------------------------------------------------------------------
// pagination
// ---------------------------------------------------------------------------------------------

/// Walk every page of a tag-filtered list the way the provider documents; returns the ids and
/// the number of list requests.
fn list_all(m: &MockServer, tag: &str) -> (Vec<String>, usize) {
    let api = Http::new(m);
    let mut ids = Vec::new();
    let mut requests = 0;
    match m.provider() {
        Provider::DigitalOcean => {
            let mut next = Some(format!(
                "{}/v2/droplets?tag_name={tag}&per_page=200",
                m.url()
            ));
            while let Some(url) = next {
                requests += 1;
                let b = api.get(&url).json();
                ids.extend(
                    b["droplets"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d["id"].to_string()),
                );
                assert_eq!(b["meta"]["total"], 5);
                next = b["links"]["pages"]["next"].as_str().map(str::to_string);
            }
        }
        Provider::Vultr => {
            let mut cursor = String::new();
            loop {
                requests += 1;
                let b = api
                    .get(&format!(
                        "/v2/instances?tag={tag}&per_page=500&cursor={cursor}"
                    ))
                    .json();
                ids.extend(
                    b["instances"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d["id"].as_str().unwrap().to_string()),
                );
                cursor = b["meta"]["links"]["next"].as_str().unwrap().to_string();
                if cursor.is_empty() {
                    break;
                }
            }
        }
        Provider::Linode => {
            let filter = json!({"tags": tag}).to_string();
            let mut page = 1;
            loop {
                requests += 1;
                let r = api.send(
                    "GET",
                    &format!("/v4/linode/instances?page={page}&page_size=500"),
                    &[("X-Filter", &filter)],
                    b"",
                );
                let b = r.json();
                ids.extend(
                    b["data"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d["id"].to_string()),
                );
                assert_eq!(b["results"], 5);
                if b["page"] == b["pages"] {
                    break;
                }
                page += 1;
            }
        }
        Provider::Scaleway => {
            let mut page = 1;
            loop {
                requests += 1;
                let r = api.get(&format!(
                    "/instance/v1/zones/fr-par-1/servers?tags={tag}&per_page=100&page={page}"
                ));
                let total: usize = r.header("X-Total-Count").unwrap().parse().unwrap();
                ids.extend(
                    r.json()["servers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d["id"].as_str().unwrap().to_string()),
                );
                if ids.len() >= total {
                    break;
                }
                page += 1;
            }
        }
        Provider::Equinix => {
            let mut next = Some(format!(
                "/metal/v1/projects/{}/devices?tag={tag}",
                m.config().project_id
            ));
            while let Some(href) = next {
                requests += 1;
                let b = api.get(&href).json();
                ids.extend(
                    b["devices"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d["id"].as_str().unwrap().to_string()),
                );
                next = b["meta"]["next"]["href"].as_str().map(str::to_string);
            }
        }
        Provider::Hivelocity => {
            requests += 1;
            let all = api.get("/api/v2/compute/").json();
            ids.extend(
                all.as_array()
                    .unwrap()
                    .iter()
                    .filter(|d| d["tags"].as_array().unwrap().iter().any(|t| t == tag))
                    .map(|d| d["deviceId"].to_string()),
            );
        }
        Provider::Aws => {
            let cfg = m.config().clone();
            let mut token = String::new();
            loop {
                requests += 1;
                let mut form = vec![
                    ("Action", "DescribeInstances"),
                    ("Filter.1.Name", "tag:capsule-id"),
                    ("Filter.1.Value.1", tag),
                    ("MaxResults", "5"),
                ];
                if !token.is_empty() {
                    form.push(("NextToken", &token));
                }
                let body = aws::call(&m.url(), &cfg, "us-east-1", &form)
                    .unwrap()
                    .text();
                ids.extend(xml_all(&body, "instanceId"));
                match xml(&body, "nextToken") {
                    Some(t) => token = t,
                    None => break,
                }
            }
        }
    }
    (ids, requests)
}

#[test]
fn lists_page_through_three_pages_with_each_providers_pagination() {
    for p in Provider::ALL {
        let m = MockServer::start(p, MockConfig::default().with_page_size(2));
        let tag = if p == Provider::Aws {
            "7f3a"
        } else {
            "capsule-7f3a"
        };
        let tag_spec = if p == Provider::Aws {
            "capsule-id=7f3a".to_string()
        } else {
            tag.to_string()
        };
        let mut want = Vec::new();
        for i in 0..7 {
            let mut spec = NodeSpec::named(&format!("node-{i}"));
            if i % 3 != 2 {
                spec = spec.tag(&tag_spec);
            }
            let id = m.add_node(spec);
            if i % 3 != 2 {
                want.push(id);
            }
        }
        assert_eq!(want.len(), 5);
        let (mut got, requests) = list_all(&m, tag);
        got = got
            .into_iter()
            .map(|s| s.trim_matches('"').to_string())
            .collect();
        assert_eq!(got, want, "{p:?}");
        let expected_requests = if p == Provider::Hivelocity { 1 } else { 3 };
        assert_eq!(requests, expected_requests, "{p:?}:\n{}", m.log_summary());
        assert_eq!(m.count(Op::List), expected_requests);
    }
}

#[test]
fn digitalocean_links_can_carry_the_real_host_to_test_endpoint_rewriting() {
    let m = MockServer::start(
        Provider::DigitalOcean,
        MockConfig::default().with_page_size(1).with_public_links(),
    );
    m.add_node(NodeSpec::named("a"));
    m.add_node(NodeSpec::named("b"));
    let b = Http::new(&m).get("/v2/droplets").json();
    assert_eq!(
        b["links"]["pages"]["next"],
        "https://api.digitalocean.com/v2/droplets?page=2&per_page=1"
    );
    assert!(b["links"]["pages"].get("prev").is_none());
}

#[test]
fn provider_specific_list_filters_and_limits() {
    // GPU droplets only with ?type=gpus.
    let m = MockServer::new(Provider::DigitalOcean);
    m.add_node(NodeSpec::named("cpu"));
    m.add_node(NodeSpec::named("gpu").plan("gpu-h100x1-80gb"));
    let api = Http::new(&m);
    assert_eq!(api.get("/v2/droplets").json()["meta"]["total"], 1);
    assert_eq!(
        api.get("/v2/droplets?type=gpus").json()["droplets"][0]["name"],
        "gpu"
    );

    // Linode ignores ?tag= (lists everything) and bounds page_size.
    let m = MockServer::new(Provider::Linode);
    m.add_node(NodeSpec::named("a").tag("x"));
    m.add_node(NodeSpec::named("b"));
    let api = Http::new(&m);
    assert_eq!(api.get("/v4/linode/instances?tag=x").json()["results"], 2);
    assert_eq!(api.get("/v4/linode/instances?page_size=10").status, 400);
    let f = json!({"+or": [{"label": "a"}, {"label": {"+contains": "b"}}]}).to_string();
    assert_eq!(
        api.send("GET", "/v4/linode/instances", &[("X-Filter", &f)], b"")
            .json()["results"],
        2
    );

    // Vultr bare-metal lists take no tag filter.
    let m = MockServer::new(Provider::Vultr);
    m.add_node(NodeSpec::named("m1").plan("vbm-4c-32gb").tag("x"));
    m.add_node(NodeSpec::named("m2").plan("vbm-4c-32gb"));
    assert_eq!(
        Http::new(&m).get("/v2/bare-metals?tag=x").json()["meta"]["total"],
        2
    );

    // Scaleway caps per_page at 100; EC2 MaxResults is 5..1000 and not with InstanceId.
    let m = MockServer::new(Provider::Scaleway);
    assert_eq!(
        Http::new(&m)
            .get("/instance/v1/zones/fr-par-1/servers?per_page=101")
            .status,
        400
    );
    let m = MockServer::new(Provider::Aws);
    let cfg = m.config().clone();
    let r = aws::call(
        &m.url(),
        &cfg,
        "us-east-1",
        &[("Action", "DescribeInstances"), ("MaxResults", "2")],
    )
    .unwrap();
    assert_eq!(
        xml(&r.text(), "Code").as_deref(),
        Some("InvalidParameterValue")
    );
}

// ---------------------------------------------------------------------------------------------
// faults
// ---------------------------------------------------------------------------------------------

#[test]
fn every_nth_request_is_throttled_or_fails() {
    let m = MockServer::start(
        Provider::DigitalOcean,
        MockConfig::default()
            .with_rate_limit_every(2)
            .with_retry_after(1),
    );
    let api = Http::new(&m);
    let statuses: Vec<u16> = (0..4).map(|_| api.get("/v2/account").status).collect();
    assert_eq!(statuses, [200, 429, 200, 429]);
    let r = api.get("/v2/account");
    assert_eq!(r.status, 200);
    let t = api.get("/v2/account");
    assert_eq!(
        t.json(),
        json!({"id": "too_many_requests", "message": "API rate limit exceeded.", "request_id": t.json()["request_id"]})
    );
    assert_eq!(t.header("retry-after"), Some("1"));
    assert!(t.header("ratelimit-limit").is_some());
    assert_eq!(m.requests()[1].fault, Some(Fault::Status429));

    let m = MockServer::start(
        Provider::Linode,
        MockConfig::default().with_error_500_every(3),
    );
    let api = Http::new(&m);
    let statuses: Vec<u16> = (0..6).map(|_| api.get("/v4/profile").status).collect();
    assert_eq!(statuses, [200, 200, 500, 200, 200, 500]);
    m.set_error_500_every(None);
    assert_eq!(api.get("/v4/profile").status, 200);
}

#[test]
fn each_provider_throttles_in_its_own_shape() {
    for p in Provider::ALL {
        let m = MockServer::start(
            p,
            MockConfig::default().with_faults([Fault::Status429, Fault::Status500]),
        );
        if p == Provider::Aws {
            let cfg = m.config().clone();
            let r = aws::call(
                &m.url(),
                &cfg,
                "us-east-1",
                &[("Action", "DescribeRegions")],
            )
            .unwrap();
            assert_eq!(
                (r.status, xml(&r.text(), "Code").as_deref()),
                (503, Some("RequestLimitExceeded"))
            );
            let r = aws::call(
                &m.url(),
                &cfg,
                "us-east-1",
                &[("Action", "DescribeRegions")],
            )
            .unwrap();
            assert_eq!(
                (r.status, xml(&r.text(), "Code").as_deref()),
                (500, Some("InternalError"))
            );
            continue;
        }
        let api = Http::new(&m);
        let path = whoami_path(&m);
        let r = api.get(&path);
        assert_eq!(r.status, 429, "{p:?}");
        let b = r.json();
        match p {
            Provider::DigitalOcean => assert_eq!(b["id"], "too_many_requests"),
            Provider::Vultr => assert_eq!(b["status"], 429),
            Provider::Linode => assert!(b["errors"][0]["reason"].is_string()),
            Provider::Scaleway => assert!(b["message"].is_string()),
            Provider::Equinix => assert!(b["errors"][0].is_string()),
            Provider::Hivelocity => {
                assert_eq!(
                    b,
                    json!({"code": 429, "description": "Your IP is rate limited."})
                );
                assert!(
                    r.header("Retry-After").is_none() && r.header("X-RateLimit-Reset").is_some()
                );
            }
            Provider::Aws => unreachable!(),
        }
        if p != Provider::Hivelocity {
            assert_eq!(r.header("retry-after"), Some("0"), "{p:?}");
        }
        assert_eq!(api.get(&path).status, 500, "{p:?}");
        assert_eq!(api.get(&path).status, 200, "{p:?}");
    }
}

#[test]
fn connection_reset_closes_without_an_answer() {
    let m = MockServer::start(
        Provider::Vultr,
        MockConfig::default().with_faults([Fault::ConnectionReset]),
    );
    let url = format!("{}/v2/account", m.url());
    let auth = format!("Bearer {}", m.config().token);
    let err = call("GET", &url, &[("Authorization", &auth)], b"").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert_eq!(
        call("GET", &url, &[("Authorization", &auth)], b"")
            .unwrap()
            .status,
        200
    );
    assert_eq!(m.requests()[0].status, 0);
}

#[test]
fn a_create_can_succeed_server_side_while_the_client_sees_a_failure() {
    let m = MockServer::start(Provider::DigitalOcean, fast());
    let api = Http::new(&m);
    let body = json!({"name": "n1", "region": "nyc3", "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64", "tags": ["capsule-x"]});
    // The create-only fault waits for the create: the GET before it is untouched.
    m.set_fault(Fault::DelayAfterCreate(Duration::from_millis(150)));
    assert_eq!(api.get("/v2/account").status, 200);
    let started = Instant::now();
    assert_eq!(api.json("POST", "/v2/droplets", body.clone()).status, 202);
    assert!(started.elapsed() >= Duration::from_millis(150));

    m.set_fault(Fault::ResetAfterCreate);
    let url = format!("{}/v2/droplets", m.url());
    let auth = format!("Bearer {}", m.config().token);
    let res = call(
        "POST",
        &url,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body.to_string().as_bytes(),
    );
    assert!(res.is_err(), "no answer");
    m.set_fault(Fault::Status500AfterCreate);
    assert_eq!(api.json("POST", "/v2/droplets", body).status, 500);
    assert_eq!(
        m.count_creates(),
        3,
        "all three creates happened server-side"
    );
    assert_eq!(
        api.get("/v2/droplets?tag_name=capsule-x").json()["meta"]["total"],
        3
    );

    // Targeted faults.
    m.set_fault_on(Op::Get, Fault::Status500);
    assert_eq!(api.get("/v2/account").status, 200);
    let id = m.nodes()[0].id.clone();
    assert_eq!(api.get(&format!("/v2/droplets/{id}")).status, 500);
    assert_eq!(api.get(&format!("/v2/droplets/{id}")).status, 200);
}

// ---------------------------------------------------------------------------------------------
// framework
// ---------------------------------------------------------------------------------------------

#[test]
fn unmet_expectations_and_unmodelled_paths_fail_at_drop() {
    let unmet = std::panic::catch_unwind(|| {
        let m = MockServer::new(Provider::Linode);
        m.expect(Op::Create);
    });
    let msg = unmet
        .unwrap_err()
        .downcast::<String>()
        .map(|s| *s)
        .unwrap_or_default();
    assert!(msg.contains("expected a Create request"), "{msg}");

    let unrouted = std::panic::catch_unwind(|| {
        let m = MockServer::new(Provider::Linode);
        Http::new(&m).get("/v4/linode/volumes");
    });
    let msg = unrouted
        .unwrap_err()
        .downcast::<String>()
        .map(|s| *s)
        .unwrap_or_default();
    assert!(
        msg.contains("unmodelled request GET /v4/linode/volumes"),
        "{msg}"
    );

    let m = MockServer::start(Provider::Linode, MockConfig::default().lenient());
    assert_eq!(Http::new(&m).get("/v4/linode/volumes").status, 404);
    m.expect(Op::Unrouted)
        .expect_request("GET", "/v4/linode/*")
        .expect_times(Op::Create, 0);
    m.verify();
    m.assert_called(Op::Unrouted);
    m.assert_not_called(Op::Create);
}

#[test]
fn env_points_capsule_at_the_mock_with_accepted_credentials() {
    let m = MockServer::new(Provider::DigitalOcean);
    assert_eq!(
        m.env(),
        [
            ("CAPSULE_ENDPOINT_DIGITALOCEAN".to_string(), m.url()),
            ("DIGITALOCEAN_TOKEN".to_string(), m.config().token.clone())
        ]
    );
    let aws = MockServer::new(Provider::Aws);
    let env = aws.env();
    for key in [
        "CAPSULE_ENDPOINT_AWS",
        "AWS_ENDPOINT_URL_EC2",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
    ] {
        assert!(
            env.iter().any(|(k, _)| k == key),
            "{key} missing from {env:?}"
        );
    }
    assert_eq!(
        Provider::Equinix.endpoint_var(),
        "CAPSULE_ENDPOINT_EQUINIX_METAL"
    );
    assert!(m.url().starts_with("http://127.0.0.1:"));
}

#[test]
fn settle_and_seeded_states() {
    let m = MockServer::start(Provider::Scaleway, MockConfig::default());
    let id = m.add_node(NodeSpec::named("off").status("stopped").region("nl-ams-1"));
    let api = Http::new(&m);
    let path = format!("/instance/v1/zones/nl-ams-1/servers/{id}");
    api.json(
        "POST",
        &format!("{path}/action"),
        json!({"action": "poweron"}),
    );
    assert_eq!(
        m.node(&id).unwrap().pending_steps(),
        ["starting", "running"]
    );
    m.settle();
    let n = m.node(&id).unwrap();
    assert!(n.is_settled() && n.status == "running" && n.ip.is_some());
}

#[tokio::test]
async fn reqwest_keeps_connections_alive_and_sees_resets_as_errors() {
    let m = MockServer::new(Provider::DigitalOcean);
    let client = reqwest::Client::new();
    let url = format!("{}/v2/account", m.url());
    for _ in 0..3 {
        let r = client
            .get(&url)
            .bearer_auth(&m.config().token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(
            r.json::<Value>().await.unwrap()["account"]["status"],
            "active"
        );
    }
    m.set_fault(Fault::ConnectionReset);
    assert!(client
        .get(&url)
        .bearer_auth(&m.config().token)
        .send()
        .await
        .is_err());
    let r = client
        .get(&url)
        .bearer_auth(&m.config().token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let big = "x".repeat(70_000);
    let r = client
        .post(format!("{}/v2/droplets", m.url()))
        .bearer_auth(&m.config().token)
        .json(&json!({"name": "big", "size": "s-1vcpu-1gb", "image": "ubuntu-24-04-x64", "user_data": big}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422, "user_data over 64 KiB");
}
