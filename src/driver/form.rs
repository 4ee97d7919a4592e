//! Body encodings: AWS-Query form flattening of a JSON body, and the RFC 3986 percent-encoding
//! shared by form bodies and path segments.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

/// Everything but the RFC 3986 unreserved set `A-Z a-z 0-9 - _ . ~` is percent-encoded.
pub const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Percent-encode with [`UNRESERVED`].
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, UNRESERVED).to_string()
}

/// Flatten a JSON value AWS-Query style: objects nest with `.`, arrays become `Name.1`, `Name.2`
/// (1-based), scalars become text; nulls and empty arrays send nothing.
pub fn flatten(value: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk("", value, &mut out);
    out
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Null => {}
        Value::Object(m) => {
            for (k, v) in m {
                walk(&join(prefix, k), v, out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                walk(&join(prefix, &(i + 1).to_string()), v, out);
            }
        }
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        Value::Number(n) => out.push((prefix.to_string(), n.to_string())),
        Value::Bool(b) => out.push((prefix.to_string(), b.to_string())),
    }
}

/// `k=v&k=v`, both sides percent-encoded with the unreserved set.
pub fn urlencode_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattens_query_style() {
        let body = json!({
            "Action": "RunInstances",
            "MinCount": 1,
            "DryRun": false,
            "UserData": null,
            "SecurityGroupId": [],
            "TagSpecification": [{
                "ResourceType": "instance",
                "Tag": [{"Key": "Name", "Value": "node 1"}, {"Key": "capsule-id", "Value": "a/b=c"}]
            }],
            "Placement": {"AvailabilityZone": "us-east-1a"}
        });
        let pairs = flatten(&body);
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "Action",
                "MinCount",
                "DryRun",
                "TagSpecification.1.ResourceType",
                "TagSpecification.1.Tag.1.Key",
                "TagSpecification.1.Tag.1.Value",
                "TagSpecification.1.Tag.2.Key",
                "TagSpecification.1.Tag.2.Value",
                "Placement.AvailabilityZone"
            ]
        );
        let enc = urlencode_pairs(&pairs);
        assert!(enc.starts_with(
            "Action=RunInstances&MinCount=1&DryRun=false&TagSpecification.1.ResourceType=instance"
        ));
        assert!(enc.contains("TagSpecification.1.Tag.1.Value=node%201"));
        assert!(enc.contains("TagSpecification.1.Tag.2.Value=a%2Fb%3Dc"));
    }

    #[test]
    fn encode_keeps_unreserved_only() {
        assert_eq!(encode("aZ09-_.~ /+=&é"), "aZ09-_.~%20%2F%2B%3D%26%C3%A9");
    }
}
