//! Reading answers: XML → JSON conversion, JSON pointers with `*`, [`Field`] / [`Pick`]
//! evaluation and status mapping. Pure functions over `serde_json::Value`; no I/O.

use crate::catalog::schema::{Field, Pick};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Convert an XML document to JSON: `{ root: … }`. An element becomes an object keyed by the local
/// names (namespaces dropped) of its children; a text-only element becomes a string; repeated
/// children become an array; an element whose name is in `list_elements` is always inside an
/// array. Attributes are ignored. Nesting deeper than [`MAX_XML_DEPTH`] is an error (as
/// serde_json refuses JSON deeper than 128), so no value too deep to drop is ever built; so is
/// a document of more than [`MAX_XML_ELEMENTS`] elements (tiny elements cost a hundred times
/// their size once converted).
pub fn xml_to_json(xml: &str, list_elements: &[String]) -> Result<Value, String> {
    use quick_xml::events::Event;
    use quick_xml::Reader;

    struct Open {
        name: String,
        children: Vec<(String, Value)>,
        text: String,
    }

    fn close(open: Open, list_elements: &[String]) -> (String, Value) {
        if open.children.is_empty() {
            return (open.name, Value::String(open.text));
        }
        let mut map: Map<String, Value> = Map::new();
        for (name, v) in open.children {
            let always_list = list_elements.iter().any(|l| l == &name);
            match map.get_mut(&name) {
                // A child value is never an array itself, so an array here was made by an earlier
                // repetition (or because the name is always a list).
                Some(Value::Array(a)) => a.push(v),
                Some(existing) => {
                    let prev = existing.take();
                    *existing = Value::Array(vec![prev, v]);
                }
                None => {
                    if always_list {
                        map.insert(name, Value::Array(vec![v]));
                    } else {
                        map.insert(name, v);
                    }
                }
            }
        }
        (open.name, Value::Object(map))
    }

    let mut reader = Reader::from_str(xml);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<(String, Value)> = None;
    let mut elements = 0usize;
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| format!("invalid XML: {e}"))?;
        if matches!(ev, Event::Start(_) | Event::Empty(_)) {
            elements += 1;
            if elements > MAX_XML_ELEMENTS {
                return Err(format!(
                    "invalid XML: more than {MAX_XML_ELEMENTS} elements"
                ));
            }
        }
        match ev {
            Event::Start(e) => {
                if stack.len() >= MAX_XML_DEPTH {
                    return Err(format!(
                        "invalid XML: nested deeper than {MAX_XML_DEPTH} levels"
                    ));
                }
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                stack.push(Open {
                    name,
                    children: Vec::new(),
                    text: String::new(),
                });
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                let item = close(
                    Open {
                        name,
                        children: Vec::new(),
                        text: String::new(),
                    },
                    list_elements,
                );
                match stack.last_mut() {
                    Some(parent) => parent.children.push(item),
                    None => root = Some(item),
                }
            }
            Event::End(_) => {
                let open = stack.pop().ok_or("invalid XML: unbalanced end tag")?;
                let item = close(open, list_elements);
                match stack.last_mut() {
                    Some(parent) => parent.children.push(item),
                    None => root = Some(item),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    let s = t.unescape().map_err(|e| format!("invalid XML: {e}"))?;
                    top.text.push_str(&s);
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&c.into_inner()));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("invalid XML: unclosed element".into());
    }
    let (name, value) = root.ok_or("invalid XML: no root element")?;
    let mut m = Map::new();
    m.insert(name, value);
    Ok(Value::Object(m))
}

/// Deepest element nesting [`xml_to_json`] accepts (serde_json's JSON limit is 128 too).
pub const MAX_XML_DEPTH: usize = 128;
/// Most elements [`xml_to_json`] converts: a page of 1000 EC2 instances has about 250,000.
pub const MAX_XML_ELEMENTS: usize = 500_000;

/// The pointer segment for "every value of an object".
const MEMBERS: &str = "{*}";
/// The pointer segment for "an optional grouping level": every value of an object, while an
/// array (or any other value) passes through as is.
const GROUPS: &str = "{*?}";

fn unescape_segment(s: &str) -> String {
    s.replace("~1", "/").replace("~0", "~")
}

/// Every value a pointer reaches. `""` is the value itself; a `*` segment steps into every
/// element of an array or every value of an object keyed by index (`{"0": …, "1": …}`); any other
/// value passes through unchanged. A `{*}` segment steps into every value of an object whatever
/// its keys (`/terms/OnDemand/{*}/priceDimensions/{*}/pricePerUnit/USD`). A `{*?}` segment is a
/// grouping level an answer may or may not have: it steps into every value of an object and lets
/// an array through unchanged, so `/{*?}` reads one flat array and the same items grouped into a
/// map of arrays (`{"ATL2": [...], "NYC1": [...]}`) alike.
pub fn resolve_all<'a>(root: &'a Value, pointer: &str) -> Vec<&'a Value> {
    let mut cur: Vec<&Value> = vec![root];
    if pointer.is_empty() {
        return cur;
    }
    let path = pointer.strip_prefix('/').unwrap_or(pointer);
    for raw in path.split('/') {
        let mut next = Vec::new();
        for v in cur {
            if raw == MEMBERS {
                if let Value::Object(m) = v {
                    next.extend(m.values());
                }
                continue;
            }
            if raw == GROUPS {
                match v {
                    Value::Object(m) => next.extend(m.values()),
                    Value::Null => {}
                    other => next.push(other),
                }
                continue;
            }
            if raw == "*" {
                match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m)
                        if !m.is_empty() && m.keys().all(|k| k.parse::<usize>().is_ok()) =>
                    {
                        next.extend(m.values())
                    }
                    Value::Null => {}
                    other => next.push(other),
                }
                continue;
            }
            let seg = unescape_segment(raw);
            match v {
                Value::Object(m) => {
                    if let Some(x) = m.get(&seg) {
                        next.push(x);
                    }
                }
                Value::Array(a) => {
                    if let Ok(i) = seg.parse::<usize>() {
                        if let Some(x) = a.get(i) {
                            next.push(x);
                        }
                    }
                }
                _ => {}
            }
        }
        cur = next;
        if cur.is_empty() {
            break;
        }
    }
    cur
}

/// Whether a pointer leads somewhere in an answer: each named segment exists, up to a `*` or
/// up to an empty value (`null`, `""` as an empty XML element, an index past an array's end),
/// which is an empty result rather than a missing one. `""` reaches any value but `null`.
pub fn reaches(root: &Value, pointer: &str) -> bool {
    if pointer.is_empty() {
        return !root.is_null();
    }
    let mut cur = root;
    for raw in pointer.strip_prefix('/').unwrap_or(pointer).split('/') {
        if raw == "*" || raw == MEMBERS || raw == GROUPS {
            return true;
        }
        cur = match cur {
            Value::Object(m) => match m.get(&unescape_segment(raw)) {
                Some(v) => v,
                None => return false,
            },
            Value::Array(a) => match raw.parse::<usize>() {
                Ok(i) => match a.get(i) {
                    Some(v) => v,
                    None => return true,
                },
                Err(_) => return false,
            },
            Value::Null => return true,
            Value::String(s) => return s.is_empty(),
            _ => return false,
        };
    }
    true
}

/// All elements a list pointer reaches: arrays are flattened one level, objects are elements.
pub fn elements<'a>(root: &'a Value, pointer: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    for v in resolve_all(root, pointer) {
        match v {
            Value::Array(a) => out.extend(a.iter()),
            Value::Null => {}
            Value::String(s) if s.is_empty() => {} // an empty XML list element
            other => out.push(other),
        }
    }
    out
}

/// A copy of `root` holding only what `pointers` can reach, for an item kept after its page is
/// gone: an object keeps the members a pointer names (each projected by the rest of that
/// pointer), and the value at the end of a pointer, at a wildcard segment (`*`, `{*}`, `{*?}`),
/// or anything that is not an object is kept whole. Every pointer (and any pointer that names
/// no more than they do) reads the copy as it reads `root`.
pub fn project(root: &Value, pointers: &[&str]) -> Value {
    let paths: Vec<Vec<String>> = pointers
        .iter()
        .map(|p| {
            if p.is_empty() {
                Vec::new()
            } else {
                p.strip_prefix('/')
                    .unwrap_or(p)
                    .split('/')
                    .map(str::to_string)
                    .collect()
            }
        })
        .collect();
    let rests: Vec<&[String]> = paths.iter().map(Vec::as_slice).collect();
    project_rests(root, &rests)
}

fn project_rests(v: &Value, rests: &[&[String]]) -> Value {
    let Value::Object(m) = v else {
        return v.clone();
    };
    let whole = |r: &&[String]| match r.first() {
        None => true,
        Some(seg) => seg == "*" || seg == MEMBERS || seg == GROUPS,
    };
    if rests.iter().any(whole) {
        return v.clone();
    }
    let segs: Vec<String> = rests.iter().map(|r| unescape_segment(&r[0])).collect();
    let mut out = Map::new();
    for (k, child) in m {
        let next: Vec<&[String]> = rests
            .iter()
            .zip(&segs)
            .filter(|(_, seg)| *seg == k)
            .map(|(r, _)| &r[1..])
            .collect();
        if !next.is_empty() {
            out.insert(k.clone(), project_rests(child, &next));
        }
    }
    Value::Object(out)
}

/// A scalar as text: strings as is, numbers and booleans printed; null, objects and arrays none.
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The texts of every field named one of `names`, at any depth of the tree (a generated root
/// password in a create answer, a listed node or an error body alike).
pub fn texts_named(root: &Value, names: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if names.is_empty() {
        return out;
    }
    let mut stack = vec![root];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    if names.iter().any(|n| n == k) {
                        out.extend(text(child));
                    }
                    stack.push(child);
                }
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    out
}

/// The text at a pointer, if any.
pub fn text_at(root: &Value, pointer: &str) -> Option<String> {
    resolve_all(root, pointer).into_iter().find_map(text)
}

fn filter_matches(element: &Value, filter: &BTreeMap<String, String>) -> bool {
    filter.iter().all(|(ptr, want)| {
        let got = text_at(element, ptr);
        if let Some(neg) = want.strip_prefix('!') {
            got.as_deref() != Some(neg)
        } else if let Some(prefix) = want.strip_prefix('~') {
            got.is_some_and(|g| g.starts_with(prefix))
        } else {
            got.as_deref() == Some(want.as_str())
        }
    })
}

/// Evaluate a [`Pick`]: the first element of `list` matching `where`, then `value` inside it.
pub fn pick(root: &Value, p: &Pick) -> Option<String> {
    elements(root, &p.list)
        .into_iter()
        .filter(|e| filter_matches(e, &p.filter))
        .find_map(|e| text_at(e, &p.value).filter(|s| !s.is_empty()))
}

/// Evaluate a [`Field`]; an empty pointer and an empty result are `None`.
pub fn field(root: &Value, f: &Field) -> Option<String> {
    match f {
        Field::Pointer(p) if p.is_empty() => None,
        Field::Pointer(p) => text_at(root, p).filter(|s| !s.is_empty()),
        Field::Pick(p) => pick(root, p),
        Field::First(alts) => alts.iter().find_map(|f| field(root, f)),
    }
}

/// `true` when a field is configured (not an empty pointer).
pub fn field_set(f: &Field) -> bool {
    match f {
        Field::Pointer(p) => !p.is_empty(),
        Field::Pick(_) => true,
        Field::First(alts) => alts.iter().any(field_set),
    }
}

fn norm(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '-' && *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Map a raw status through `api.status` (state name → raw values); matching ignores case, `-`
/// and `_`. Returns the common state, or `None` when the raw value is not listed.
pub fn map_status(
    table: &BTreeMap<crate::catalog::schema::CommonState, Vec<String>>,
    raw: &str,
) -> Option<crate::catalog::schema::CommonState> {
    let n = norm(raw);
    table
        .iter()
        .find(|(_, raws)| raws.iter().any(|r| norm(r) == n))
        .map(|(state, _)| *state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn texts_named_finds_fields_at_any_depth() {
        let v = json!({"instance": {"id": "a", "default_password": "pw-one"},
                       "instances": [{"default_password": "pw-two"}, {"default_password": null}]});
        let mut found = texts_named(&v, &["default_password".to_string()]);
        found.sort();
        assert_eq!(found, ["pw-one", "pw-two"]);
        assert!(texts_named(&v, &[]).is_empty());
    }

    #[test]
    fn a_projection_reads_as_the_whole_item() {
        let v = json!({
            "id": 7, "name": "big", "junk": {"a": [1, 2, 3]},
            "cpu": {"cores": 8, "threads": 16},
            "terms": {"OnDemand": {"X.1": {"price": {"USD": "0.5"}}}, "Reserved": {"Y": 1}},
            "list": [{"r": "a"}, {"r": "b"}], "a/b": {"c": "slash"}, "n": {"0": "z"},
        });
        let ptrs = [
            "/id",
            "/cpu/cores",
            "/terms/OnDemand/{*}/price/USD",
            "/list/*/r",
            "/a~1b/c",
            "/n/*",
            "/missing/x",
            "/name/deeper",
        ];
        let p = project(&v, &ptrs);
        for ptr in ptrs {
            assert_eq!(text_at(&p, ptr), text_at(&v, ptr), "{ptr}");
            assert_eq!(reaches(&p, ptr), reaches(&v, ptr), "{ptr}");
            assert_eq!(elements(&p, ptr), elements(&v, ptr), "{ptr}");
        }
        assert_eq!(
            text_at(&p, "/terms/OnDemand/{*}/price/USD").as_deref(),
            Some("0.5")
        );
        assert_eq!(
            p,
            json!({
                "id": 7, "name": "big", "cpu": {"cores": 8},
                "terms": {"OnDemand": {"X.1": {"price": {"USD": "0.5"}}}},
                "list": [{"r": "a"}, {"r": "b"}], "a/b": {"c": "slash"}, "n": {"0": "z"},
            })
        );
        // An empty pointer is the whole item; no pointer keeps no member.
        assert_eq!(project(&v, &["", "/id"]), v);
        assert_eq!(project(&v, &[]), json!({}));
        assert_eq!(project(&json!("text"), &["/id"]), json!("text"));
    }

    #[test]
    fn reaches_tells_missing_from_empty() {
        let v = json!({"droplets": [], "meta": {"total": 0}, "set": ""});
        assert!(reaches(&v, "/droplets"));
        assert!(reaches(&v, "/set/item/*/x"));
        assert!(reaches(&v, "/droplets/0/id"));
        assert!(!reaches(&v, "/servers"));
        assert!(!reaches(&json!({}), "/droplets"));
        assert!(!reaches(&Value::Null, ""));
        assert!(!reaches(&json!({"a": 3}), "/a/b"));
        assert!(reaches(&json!({"a": [{"b": 1}]}), "/a/*/c"));
    }

    #[test]
    fn deep_xml_is_an_error_not_a_crash() {
        let n = 2_000_000;
        let deep = format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        let err = xml_to_json(&deep, &[]).unwrap_err();
        assert!(err.contains("deeper than 128"), "{err}");
        // Unclosed too (a truncated answer).
        assert!(xml_to_json(&"<a>".repeat(n), &[]).is_err());
        let ok = format!(
            "{}x{}",
            "<a>".repeat(MAX_XML_DEPTH),
            "</a>".repeat(MAX_XML_DEPTH)
        );
        assert!(xml_to_json(&ok, &[]).is_ok());
        let wide = format!("<r>{}</r>", "<a/>".repeat(MAX_XML_ELEMENTS));
        let err = xml_to_json(&wide, &[]).unwrap_err();
        assert!(err.contains("more than 500000 elements"), "{err}");
    }

    const DESCRIBE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://compute.example.com/doc/2016-11-15/">
    <requestId>8f7724cf-496f-496e-8fe3-example</requestId>
    <reservationSet>
        <item>
            <reservationId>r-1234567890abcdef0</reservationId>
            <ownerId>123456789012</ownerId>
            <groupSet/>
            <instancesSet>
                <item>
                    <instanceId>i-1234567890abcdef0</instanceId>
                    <imageId>ami-bff32ccc</imageId>
                    <instanceState>
                        <code>16</code>
                        <name>running</name>
                    </instanceState>
                    <instanceType>t3.micro</instanceType>
                    <launchTime>2018-05-08T16:46:19.000Z</launchTime>
                    <placement><availabilityZone>us-east-1a</availabilityZone></placement>
                    <ipAddress>54.194.252.215</ipAddress>
                    <tagSet>
                        <item><key>Name</key><value>node-1</value></item>
                        <item><key>capsule-id</key><value>capsule-7f3a</value></item>
                    </tagSet>
                </item>
            </instancesSet>
        </item>
        <item>
            <reservationId>r-2</reservationId>
            <instancesSet>
                <item>
                    <instanceId>i-2</instanceId>
                    <instanceState><code>80</code><name>stopped</name></instanceState>
                    <tagSet><item><key>Name</key><value>a &amp; b</value></item></tagSet>
                </item>
            </instancesSet>
        </item>
    </reservationSet>
    <nextToken/>
</DescribeInstancesResponse>"#;

    fn list() -> Vec<String> {
        vec!["item".into()]
    }

    #[test]
    fn xml_describe_instances() {
        let v = xml_to_json(DESCRIBE, &list()).unwrap();
        let nodes = elements(
            &v,
            "/DescribeInstancesResponse/reservationSet/item/*/instancesSet/item",
        );
        assert_eq!(nodes.len(), 2);
        assert_eq!(
            text_at(nodes[0], "/instanceId").unwrap(),
            "i-1234567890abcdef0"
        );
        assert_eq!(text_at(nodes[0], "/instanceState/name").unwrap(), "running");
        assert_eq!(text_at(nodes[1], "/instanceState/name").unwrap(), "stopped");
        assert_eq!(text_at(nodes[1], "/tagSet/item/0/value").unwrap(), "a & b");
        assert_eq!(
            text_at(&v, "/DescribeInstancesResponse/nextToken").unwrap(),
            ""
        );
        assert_eq!(
            text_at(
                &v,
                "/DescribeInstancesResponse/reservationSet/item/0/groupSet"
            )
            .unwrap(),
            ""
        );
        let p = Pick {
            list: "/tagSet/item".into(),
            filter: [("/key".to_string(), "capsule-id".to_string())].into(),
            value: "/value".into(),
        };
        assert_eq!(pick(nodes[0], &p).unwrap(), "capsule-7f3a");
        assert_eq!(pick(nodes[1], &p), None);
    }

    #[test]
    fn xml_error_body_and_repeats() {
        let e = "<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance ID 'i-1' does not exist</Message></Error></Errors><RequestID>ea96</RequestID></Response>";
        let v = xml_to_json(e, &list()).unwrap();
        assert_eq!(
            text_at(&v, "/Response/Errors/Error/Code").unwrap(),
            "InvalidInstanceID.NotFound"
        );
        let r = xml_to_json("<a><b>1</b><b>2</b><c>3</c></a>", &[]).unwrap();
        assert_eq!(r, json!({"a": {"b": ["1", "2"], "c": "3"}}));
        assert!(xml_to_json("<a><b></a>", &[]).is_err());
    }

    #[test]
    fn members_segment_reads_every_value_of_a_map() {
        let v = json!({"terms": {"OnDemand": {"SKU.A": {"priceDimensions": {"SKU.A.R": {"pricePerUnit": {"USD": "0.0114"}}}}}}});
        let p = "/terms/OnDemand/{*}/priceDimensions/{*}/pricePerUnit/USD";
        assert_eq!(text_at(&v, p).as_deref(), Some("0.0114"));
        assert!(reaches(&v, p));
        assert!(resolve_all(&json!({"terms": ["x"]}), "/terms/{*}").is_empty());
    }

    #[test]
    fn groups_segment_reads_a_flat_array_and_a_grouped_map_alike() {
        let ids = |v: &Value| -> Vec<String> {
            let mut out: Vec<String> = elements(v, "/{*?}")
                .iter()
                .filter_map(|e| text_at(e, "/id"))
                .collect();
            out.sort();
            out
        };
        let flat = json!([{"id": 1, "dc": "A"}, {"id": 2, "dc": "B"}, {"id": 3, "dc": "B"}]);
        let grouped =
            json!({"A": [{"id": 1, "dc": "A"}], "B": [{"id": 2, "dc": "B"}, {"id": 3, "dc": "B"}]});
        assert_eq!(ids(&flat), ["1", "2", "3"]);
        assert_eq!(ids(&grouped), ["1", "2", "3"]);
        // An empty map and an empty array are no items; both are reachable answers.
        assert!(elements(&json!({}), "/{*?}").is_empty());
        assert!(elements(&json!([]), "/{*?}").is_empty());
        assert!(reaches(&json!({}), "/{*?}") && reaches(&flat, "/{*?}"));
        // Deeper: a grouping level inside a named field.
        let inner = json!({"items": {"g": [{"id": 7}]}});
        assert_eq!(
            text_at(elements(&inner, "/items/{*?}")[0], "/id").unwrap(),
            "7"
        );
        assert_eq!(
            elements(&json!({"items": [{"id": 8}]}), "/items/{*?}").len(),
            1
        );
        // `{*}` still refuses an array where `{*?}` lets it through.
        assert!(resolve_all(&json!({"t": ["x"]}), "/t/{*}").is_empty());
        assert_eq!(resolve_all(&json!({"t": ["x"]}), "/t/{*?}").len(), 1);
    }

    #[test]
    fn pointer_star_flattens() {
        let v = json!({"r": [{"i": [{"id": 1}, {"id": 2}]}, {"i": [{"id": 3}]}], "n": null});
        let ids: Vec<_> = elements(&v, "/r/*/i")
            .iter()
            .filter_map(|e| text_at(e, "/id"))
            .collect();
        assert_eq!(ids, ["1", "2", "3"]);
        assert_eq!(text_at(&v, "/r/1/i/0/id").unwrap(), "3");
        assert_eq!(text_at(&v, "/n"), None);
        assert!(resolve_all(&v, "/missing/x").is_empty());
        let esc = json!({"a/b": {"~": "x"}});
        assert_eq!(text_at(&esc, "/a~1b/~0").unwrap(), "x");
    }

    #[test]
    fn pick_with_filters() {
        let v = json!({
            "networks": {"v4": [
                {"type": "private", "ip_address": "10.0.0.2", "public": false},
                {"type": "public", "ip_address": "203.0.113.7", "public": true}
            ]},
            "tags": ["capsule", "capsule-abc"]
        });
        let p = |list: &str, w: &[(&str, &str)], val: &str| Pick {
            list: list.into(),
            filter: w
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            value: val.into(),
        };
        assert_eq!(
            pick(
                &v,
                &p("/networks/v4", &[("/type", "public")], "/ip_address")
            )
            .unwrap(),
            "203.0.113.7"
        );
        assert_eq!(
            pick(
                &v,
                &p("/networks/v4", &[("/public", "true")], "/ip_address")
            )
            .unwrap(),
            "203.0.113.7"
        );
        assert_eq!(
            pick(
                &v,
                &p("/networks/v4", &[("/type", "!public")], "/ip_address")
            )
            .unwrap(),
            "10.0.0.2"
        );
        assert_eq!(
            pick(&v, &p("/tags", &[("", "~capsule-")], "")).unwrap(),
            "capsule-abc"
        );
        assert_eq!(pick(&v, &p("/tags", &[("", "nope")], "")), None);
        assert_eq!(
            field(&v, &Field::Pointer("/tags/0".into())).unwrap(),
            "capsule"
        );
        assert_eq!(field(&v, &Field::Pointer(String::new())), None);
        let first = Field::First(vec![
            Field::Pointer("/missing".into()),
            Field::Pointer("/tags/0".into()),
        ]);
        assert_eq!(field(&v, &first).as_deref(), Some("capsule"));
        assert!(field_set(&first));
        assert!(!field_set(&Field::First(vec![Field::Pointer(
            String::new()
        )])));
    }

    #[test]
    fn status_mapping_ignores_case_dash_underscore() {
        use crate::catalog::schema::CommonState;
        let t: BTreeMap<CommonState, Vec<String>> = [
            (
                CommonState::Running,
                vec!["active".to_string(), "IN_USE".to_string()],
            ),
            (CommonState::Deleting, vec!["shutting-down".to_string()]),
        ]
        .into();
        assert_eq!(map_status(&t, "Active"), Some(CommonState::Running));
        assert_eq!(map_status(&t, "in-use"), Some(CommonState::Running));
        assert_eq!(map_status(&t, "SHUTTING_DOWN"), Some(CommonState::Deleting));
        assert_eq!(map_status(&t, "weird"), None);
    }
}
