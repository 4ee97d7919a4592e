//! Request authorisation: `bearer`, `header` and `sigv4` (AWS Signature Version 4, signed with
//! the official `aws-sigv4` crate over the exact body bytes).
//!
//! The only place that calls `Secret::expose()`; what it returns goes straight onto the wire.

use crate::catalog::schema::Auth;
use crate::credentials::Credentials;
use crate::secret::Secret;
use std::time::SystemTime;

/// Resolved authorisation for one provider.
#[derive(Clone, Debug)]
pub enum Authorizer {
    None,
    /// A header whose whole value is secret (`Authorization: Bearer …`, `X-Auth-Token: …`).
    Header {
        name: String,
        prefix: &'static str,
        value: Secret,
    },
    SigV4 {
        service: String,
        access_key: Secret,
        secret_key: Secret,
        session_token: Option<Secret>,
    },
}

/// The credential fields an auth scheme needs (the session token is optional).
pub fn required_fields(auth: &Auth) -> Vec<&str> {
    auth.credential_fields()
        .into_iter()
        .filter(|(k, _)| *k != "session_token_field")
        .map(|(_, f)| f)
        .collect()
}

impl Authorizer {
    /// Build from the catalog's `[api.auth]`; `Err(field)` names a missing credential field.
    pub fn from_catalog(auth: &Auth, creds: &Credentials) -> Result<Authorizer, String> {
        let need = |f: &str| creds.get(f).cloned().ok_or_else(|| f.to_string());
        Ok(match auth {
            Auth::Bearer { field } => Authorizer::Header {
                name: "Authorization".into(),
                prefix: "Bearer ",
                value: need(field)?,
            },
            Auth::Header { field, header } => Authorizer::Header {
                name: if header.is_empty() {
                    "Authorization".into()
                } else {
                    header.clone()
                },
                prefix: "",
                value: need(field)?,
            },
            Auth::Sigv4 {
                service,
                access_key_field,
                secret_key_field,
                session_token_field,
            } => Authorizer::SigV4 {
                service: service.clone(),
                access_key: need(access_key_field)?,
                secret_key: need(secret_key_field)?,
                session_token: if session_token_field.is_empty() {
                    None
                } else {
                    creds.get(session_token_field).cloned()
                },
            },
            Auth::Missing => Authorizer::None,
        })
    }

    /// Header names whose values are secret (for redaction in logs and dry runs).
    pub fn secret_header_names(&self) -> Vec<String> {
        match self {
            Authorizer::None => vec![],
            Authorizer::Header { name, .. } => vec![name.clone()],
            Authorizer::SigV4 { .. } => vec!["Authorization".into(), "X-Amz-Security-Token".into()],
        }
    }

    /// Secret values, to scrub from error messages.
    pub fn secret_values(&self) -> Vec<String> {
        match self {
            Authorizer::None => vec![],
            Authorizer::Header { value, .. } => vec![value.expose().to_string()],
            Authorizer::SigV4 {
                secret_key,
                session_token,
                ..
            } => {
                let mut v = vec![secret_key.expose().to_string()];
                if let Some(t) = session_token {
                    v.push(t.expose().to_string());
                }
                v
            }
        }
    }

    /// Headers to show in a dry run: the auth headers with `(redacted)` values.
    pub fn redacted_headers(&self) -> Vec<(String, String)> {
        match self {
            Authorizer::None => vec![],
            Authorizer::Header { name, .. } => vec![(name.clone(), "(redacted)".into())],
            Authorizer::SigV4 { session_token, .. } => {
                let mut v = vec![("Authorization".to_string(), "(redacted)".to_string())];
                if session_token.is_some() {
                    v.push(("X-Amz-Security-Token".into(), "(redacted)".into()));
                }
                v
            }
        }
    }

    /// The auth headers for one request. `region` is the signing region and `service_as` the
    /// signing service when the operation names its own (sigv4 only; empty = the API's).
    pub fn headers(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
        region: &str,
        service_as: &str,
    ) -> Result<Vec<(String, String)>, String> {
        match self {
            Authorizer::None => Ok(vec![]),
            Authorizer::Header {
                name,
                prefix,
                value,
            } => Ok(vec![(name.clone(), format!("{prefix}{}", value.expose()))]),
            Authorizer::SigV4 {
                service,
                access_key,
                secret_key,
                session_token,
            } => sigv4_headers(
                &SigV4Input {
                    method,
                    url,
                    headers,
                    body,
                    access_key: access_key.expose(),
                    secret_key: secret_key.expose(),
                    session_token: session_token.as_ref().map(|t| t.expose()),
                    region,
                    service: if service_as.is_empty() {
                        service
                    } else {
                        service_as
                    },
                },
                SystemTime::now(),
            ),
        }
    }
}

/// Everything SigV4 signs.
pub struct SigV4Input<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub session_token: Option<&'a str>,
    pub region: &'a str,
    pub service: &'a str,
}

/// Sign a request; returns the headers to add (`X-Amz-Date`, `Authorization`, and
/// `X-Amz-Security-Token` with a session token).
pub fn sigv4_headers(
    input: &SigV4Input<'_>,
    time: SystemTime,
) -> Result<Vec<(String, String)>, String> {
    use aws_credential_types::Credentials as AwsCredentials;
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
    use aws_sigv4::sign::v4;
    use aws_smithy_runtime_api::client::identity::Identity;

    let identity: Identity = AwsCredentials::new(
        input.access_key,
        input.secret_key,
        input.session_token.map(str::to_string),
        None,
        "capsule",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(input.region)
        .name(input.service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| format!("cannot sign the request: {e}"))?
        .into();
    let req = SignableRequest::new(
        input.method,
        input.url,
        input
            .headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
            .map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(input.body),
    )
    .map_err(|e| format!("cannot sign the request: {e}"))?;
    let (instructions, _sig) = sign(req, &params)
        .map_err(|e| format!("cannot sign the request: {e}"))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    // The official vectors: /work/shared/reference/sigv4-test-suite (AWS SigV4 test suite).
    const AK: &str = "AKIDEXAMPLE";
    const SK: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    /// The host of the official test vectors, read from the suite's own request file
    /// (`tests/fixtures/sigv4`, copied from the AWS signing test suite).
    fn vector_url() -> String {
        let req = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/sigv4/get-vanilla/get-vanilla.req"
        ));
        let host = req
            .lines()
            .find_map(|l| l.strip_prefix("Host:"))
            .expect("the vector names its host")
            .trim();
        format!("https://{host}/")
    }

    fn time() -> SystemTime {
        // 2015-08-30T12:36:00Z
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160)
    }

    fn sign(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        token: Option<&str>,
    ) -> Vec<(String, String)> {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        sigv4_headers(
            &SigV4Input {
                method,
                url,
                headers: &headers,
                body,
                access_key: AK,
                secret_key: SK,
                session_token: token,
                region: "us-east-1",
                service: "service",
            },
            time(),
        )
        .unwrap()
    }

    fn header<'a>(h: &'a [(String, String)], name: &str) -> &'a str {
        h.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    /// Every vector of AWS's suite copied under `tests/fixtures/sigv4` (plain, query, header
    /// order, form body, a signed session token): its request, signed at the suite's time with
    /// its key, carries exactly its `.authz` and its own `X-Amz-Date`.
    #[test]
    fn the_suite_vectors_sign_to_their_authorization() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sigv4");
        let mut dirs: Vec<_> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for dir in &dirs {
            let name = dir.file_name().unwrap().to_str().unwrap();
            let read = |ext: &str| std::fs::read_to_string(dir.join(format!("{name}.{ext}")));
            let (req, want) = (read("req").unwrap(), read("authz").unwrap());
            let (head, body) = req.split_once("\n\n").unwrap_or((&req, ""));
            let mut lines = head.lines();
            let (method, target) = lines.next().unwrap().split_once(' ').unwrap();
            let target = target.rsplit_once(' ').unwrap().0;
            let (mut host, mut date, mut token) = ("", "", None);
            let mut headers = Vec::new();
            for line in lines {
                let (k, v) = line.split_once(':').unwrap();
                match k.to_ascii_lowercase().as_str() {
                    "host" => host = v,
                    "x-amz-date" => date = v,
                    "x-amz-security-token" => token = Some(v),
                    _ => headers.push((k, v)),
                }
            }
            let url = format!("https://{host}{target}");
            let h = sign(method, &url, &headers, body.as_bytes(), token);
            assert_eq!(header(&h, "authorization"), want.trim(), "{name}");
            assert_eq!(header(&h, "x-amz-date"), date, "{name}");
            if let Some(token) = token {
                assert_eq!(header(&h, "x-amz-security-token"), token, "{name}");
            }
        }
        assert!(dirs.len() >= 7, "{} vectors", dirs.len());
    }

    #[test]
    fn get_vanilla_with_session_token() {
        // Vector from the smithy-rs suite (reference/apis/aws-ec2.md §1).
        let h = sign(
            "GET",
            &vector_url(),
            &[],
            b"",
            Some("6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"),
        );
        assert!(header(&h, "authorization").ends_with(
            "SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8"
        ));
    }

    #[test]
    fn post_form_body_changes_signature() {
        let authorization = |body: &[u8]| {
            let form = [("Content-Type", "application/x-www-form-urlencoded")];
            header(
                &sign("POST", &vector_url(), &form, body, None),
                "authorization",
            )
            .to_string()
        };
        assert_ne!(
            authorization(b"Param1=value1"),
            authorization(b"Param1=value2")
        );
    }
}
