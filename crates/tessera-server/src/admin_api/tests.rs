//! The committed OpenAPI document against the route table the router is built from.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{AdminScope, OPENAPI, OPENAPI_PATH, Op};

fn doc() -> Value {
    serde_json::from_str(OPENAPI).expect("openapi.json parses")
}

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// (method, path) of every operation the document describes.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (key, _) in item.as_object().expect("path item") {
            if METHODS.contains(&key.as_str()) {
                found.insert((key.to_uppercase(), path.clone()));
            }
        }
    }
    found
}

#[test]
fn issue_16_the_openapi_document_describes_exactly_the_routes_of_the_router() {
    let doc = doc();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut routed: BTreeSet<(String, String)> =
        Op::ALL.iter().map(|op| op.route()).map(|(m, p, _)| (m.as_str().to_owned(), p.to_owned())).collect();
    routed.insert(("GET".into(), OPENAPI_PATH.into()));
    let described = documented(&doc);
    let missing: Vec<_> = routed.difference(&described).collect();
    let extra: Vec<_> = described.difference(&routed).collect();
    assert!(missing.is_empty(), "routes missing from openapi.json: {missing:?}");
    assert!(extra.is_empty(), "openapi.json describes routes the router does not serve: {extra:?}");
}

#[test]
fn issue_16_each_operation_documents_the_scopes_its_guard_accepts() {
    let doc = doc();
    let declared: BTreeSet<String> =
        doc["components"]["securitySchemes"]["tessera"]["flows"]["clientCredentials"]["scopes"]
            .as_object()
            .expect("scopes")
            .keys()
            .cloned()
            .collect();
    let built_in: BTreeSet<String> = AdminScope::all().map(|s| s.name().to_string()).collect();
    assert_eq!(declared, built_in);
    for op in Op::ALL {
        let (method, path, need) = op.route();
        let operation = &doc["paths"][path][method.as_str().to_lowercase()];
        // OpenAPI: requirement objects are alternatives; each names one scope here.
        let documented: BTreeSet<String> = operation["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{op:?}: no security"))
            .iter()
            .map(|r| {
                let scopes = r["tessera"].as_array().expect("tessera scopes");
                assert_eq!(scopes.len(), 1, "{op:?}: one scope per alternative");
                scopes[0].as_str().unwrap().to_owned()
            })
            .collect();
        let accepted: BTreeSet<String> = need.satisfied_by().iter().map(|s| s.name().to_string()).collect();
        assert_eq!(documented, accepted, "{op:?}");
        let params: BTreeSet<String> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_owned)
            .collect();
        let named: BTreeSet<String> = operation["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        let target = p["$ref"].as_str().expect("parameters by $ref");
                        let key = target.rsplit('/').next().unwrap();
                        doc["components"]["parameters"][key]["name"].as_str().expect("parameter name").to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(params, named, "{op:?}: path parameters");
    }
}

#[test]
fn openapi_references_all_resolve() {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let doc = doc();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{r}: only local references"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
}

#[test]
fn location_segments_are_percent_encoded() {
    assert_eq!(super::segment("api"), "api");
    assert_eq!(super::segment("a/b?c#d e%"), "a%2Fb%3Fc%23d%20e%25");
    assert_eq!(super::segment("tessera:admin"), "tessera:admin");
}

#[test]
fn only_tokens_shaped_as_ours_reach_the_store() {
    use crate::token::reference::looks_like_reference;
    assert!(looks_like_reference(&"a".repeat(43)));
    assert!(looks_like_reference("abcdefghijklmnopqrstuvwxyz-_0123456789ABCDE"));
    assert!(!looks_like_reference(&"a".repeat(42)));
    assert!(!looks_like_reference(&"a".repeat(44)));
    assert!(!looks_like_reference("abcdefghijklmnopqrstuvwxyz+/0123456789ABCDE"));
}
