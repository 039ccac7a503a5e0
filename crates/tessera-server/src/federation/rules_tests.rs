use proptest::prelude::*;
use serde_json::json;

use super::*;

fn rule(id: i64, client: &str, conditions: &[&str]) -> Rule {
    Rule { id, client: client.into(), conditions: conditions.iter().map(|c| Condition::parse(c).unwrap()).collect() }
}

/// A projected service-account token as the Kubernetes API server issues it (TokenRequest
/// API, `kubernetes.io` private claim; kubernetes.io/docs/reference/access-authn-authz/
/// service-accounts-admin, "Bound service account tokens").
fn kubernetes(ns: &str, sa: &str) -> Value {
    json!({
        "aud": ["https://tessera.example"],
        "exp": 1_800_003_600, "iat": 1_800_000_000, "nbf": 1_800_000_000,
        "iss": "https://kubernetes.default.svc.cluster.local",
        "jti": "4b3c5f0e-6c2f-4a5e-9d3e-2f6b1c0d9a8e",
        "kubernetes.io": {
            "namespace": ns,
            "node": { "name": "node-1", "uid": "8e6a9c2b-1d4f-4b7e-a3c5-0f2d6e8b9a1c" },
            "pod": { "name": format!("{sa}-7d9f8c6b5-x2k4p"), "uid": "2c1e5a7b-9d3f-4e6a-b8c0-1f4d7e2a6b9c" },
            "serviceaccount": { "name": sa, "uid": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d" }
        },
        "sub": format!("system:serviceaccount:{ns}:{sa}")
    })
}

/// A GitHub Actions OIDC token's claims (docs.github.com, "About security hardening with
/// OpenID Connect", example subject claims and custom claims).
fn github(owner: &str, repo: &str, git_ref: &str, environment: Option<&str>) -> Value {
    let mut c = json!({
        "jti": "example-id", "iss": "https://token.actions.githubusercontent.com",
        "aud": "https://tessera.example",
        "sub": format!("repo:{owner}/{repo}:ref:{git_ref}"),
        "ref": git_ref, "ref_type": "branch", "repository": format!("{owner}/{repo}"),
        "repository_owner": owner, "repository_id": "74", "repository_owner_id": "65",
        "run_id": "example-run-id", "run_number": "10", "run_attempt": "2",
        "actor": "octocat", "workflow": "example-workflow", "event_name": "workflow_dispatch",
        "job_workflow_ref": format!("{owner}/{repo}/.github/workflows/deploy.yml@{git_ref}"),
        "runner_environment": "github-hosted",
        "iat": 1_800_000_000, "nbf": 1_800_000_000, "exp": 1_800_000_300
    });
    if let Some(env) = environment {
        c["environment"] = env.into();
        c["sub"] = format!("repo:{owner}/{repo}:environment:{env}").into();
    }
    c
}

/// A JWT-SVID (SPIFFE JWT-SVID standard §3: `sub` is the SPIFFE ID, `aud` required).
fn spiffe(id: &str) -> Value {
    json!({ "sub": id, "aud": ["https://tessera.example"], "exp": 1_800_000_300, "iat": 1_800_000_000 })
}

#[test]
fn globs_match_within_one_segment_with_one_star_and_across_with_two() {
    let p = |t| Pattern::parse(t).unwrap();
    assert!(p("system:serviceaccount:payments:*").matches("system:serviceaccount:payments:api"));
    assert!(!p("system:serviceaccount:payments:*").matches("system:serviceaccount:payments-2:api"));
    // `*` never crosses a separator; `**` does.
    assert!(!p("spiffe://prod.acme/ns/billing/*").matches("spiffe://prod.acme/ns/billing/sa/api"));
    assert!(p("spiffe://prod.acme/ns/billing/**").matches("spiffe://prod.acme/ns/billing/sa/api"));
    assert!(!p("spiffe://prod.acme/ns/billing/**").matches("spiffe://prod.acme/ns/billing-evil/sa/api"));
    assert!(p("repo:acme/*:ref:refs/heads/main").matches("repo:acme/app:ref:refs/heads/main"));
    assert!(!p("repo:acme/*:ref:refs/heads/main").matches("repo:acme/app/x:ref:refs/heads/main"));
    // `*` may match an empty run, and a prefix within a segment.
    assert!(p("api-*").matches("api-"));
    assert!(p("api-*").matches("api-v2"));
    assert!(!p("api-*").matches("api"));
    // Exact means exact; alternatives are any of them.
    assert!(p("prod").matches("prod") && !p("prod").matches("production") && !p("prod").matches("Prod"));
    assert!(p("staging|prod").matches("prod") && !p("staging|prod").matches("dev"));
    assert!(p("**").matches("") && p("**").matches("a/b:c"));
    for bad in ["", "a||b", "|a", "a***", &"x".repeat(MAX_PATTERN_LEN + 1)] {
        assert!(Pattern::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn issue_15_examples_map_workloads_to_clients() {
    let rules = RuleSet::new(vec![
        rule(1, "deployer", &["repository_owner=acme", "ref=refs/heads/main", "environment=prod"]),
        rule(2, "payments", &["sub=system:serviceaccount:payments:*"]),
        rule(3, "billing", &["sub=spiffe://prod.acme/ns/billing/**"]),
        rule(4, "reader", &["/kubernetes.io/namespace=staging|qa", "/kubernetes.io/serviceaccount/name=reader"]),
    ]);
    let client = |claims: &Value| rules.first_match(claims).map(|r| r.client.clone());
    assert_eq!(client(&github("acme", "app", "refs/heads/main", Some("prod"))), Some("deployer".into()));
    assert_eq!(client(&github("acme", "app", "refs/heads/feature", Some("prod"))), None);
    assert_eq!(client(&github("acme", "app", "refs/heads/main", None)), None, "no environment claim");
    assert_eq!(client(&github("evil", "app", "refs/heads/main", Some("prod"))), None);
    // Pods share service accounts: every pod of payments:* gets the client.
    assert_eq!(client(&kubernetes("payments", "api")), Some("payments".into()));
    assert_eq!(client(&kubernetes("payments", "default")), Some("payments".into()));
    assert_eq!(client(&kubernetes("payments-evil", "api")), None);
    assert_eq!(client(&spiffe("spiffe://prod.acme/ns/billing/sa/invoicer")), Some("billing".into()));
    assert_eq!(client(&spiffe("spiffe://dev.acme/ns/billing/sa/invoicer")), None);
    // Nested claims by JSON Pointer (Kubernetes' claim name holds a dot).
    assert_eq!(client(&kubernetes("qa", "reader")), Some("reader".into()));
    assert_eq!(client(&kubernetes("prod", "reader")), None);
}

#[test]
fn the_first_rule_in_order_wins_and_explain_says_why_the_others_missed() {
    let rules = RuleSet::new(vec![
        rule(20, "narrow", &["sub=system:serviceaccount:payments:api"]),
        rule(10, "broad", &["sub=system:serviceaccount:payments:*"]),
        rule(30, "never", &["aud=nobody"]),
    ]);
    // Order is by id (the order added), not by how specific a rule is.
    assert_eq!(rules.first_match(&kubernetes("payments", "api")).unwrap().client, "broad");
    let e = rules.explain(&kubernetes("billing", "api"));
    assert_eq!(e.matched, None);
    assert_eq!(
        e.misses.iter().map(|(id, m)| (*id, m.to_string())).collect::<Vec<_>>(),
        [
            (10, "sub does not match system:serviceaccount:payments:*".to_owned()),
            (20, "sub does not match system:serviceaccount:payments:api".to_owned()),
            (30, "aud does not match nobody".to_owned()),
        ]
    );
    let e = RuleSet::new(vec![rule(1, "x", &["environment=prod"])]).explain(&kubernetes("a", "b"));
    assert_eq!(e.misses[0].1, Miss::Absent("environment".into()));
    // Array claims: one element is enough (`aud`).
    let aud = RuleSet::new(vec![rule(1, "x", &["aud=https://tessera.example"])]);
    assert!(aud.first_match(&kubernetes("a", "b")).is_some());
}

#[test]
fn ten_thousand_rules_only_evaluate_the_indexed_candidates() {
    let rules: Vec<Rule> = (0..10_000)
        .map(|i| {
            rule(i, &format!("c{i}"), &[&format!("/kubernetes.io/namespace=ns-{i}"), "sub=system:serviceaccount:*:*"])
        })
        .collect();
    let set = RuleSet::new(rules);
    let claims = kubernetes("ns-9999", "api");
    assert_eq!(set.candidates(&claims), vec![9999]);
    assert_eq!(set.first_match(&claims).unwrap().client, "c9999");
    assert!(set.first_match(&kubernetes("ns-x", "api")).is_none());
}

fn arb_segment() -> impl Strategy<Value = String> {
    prop_oneof![Just("a".to_owned()), Just("b".to_owned()), Just("ab".to_owned()), Just(String::new())]
}

fn arb_value() -> impl Strategy<Value = String> {
    proptest::collection::vec((arb_segment(), prop_oneof![Just("/"), Just(":"), Just("")]), 0..4)
        .prop_map(|parts| parts.into_iter().map(|(s, sep)| format!("{s}{sep}")).collect())
}

fn arb_pattern() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof![Just("a"), Just("b"), Just("/"), Just(":"), Just("*"), Just("**")], 1..6)
        .prop_map(|parts| {
            // `***` is refused by design: keep generated patterns valid.
            let mut s = String::new();
            for p in parts {
                if p.starts_with('*') && s.ends_with('*') {
                    s.push('a');
                }
                s.push_str(p);
            }
            s
        })
}

/// A reference matcher by plain recursion, to check the dynamic programme against.
fn reference(p: &[char], v: &[char]) -> bool {
    match p {
        [] => v.is_empty(),
        ['*', '*', rest @ ..] => (0..=v.len()).any(|i| reference(rest, &v[i..])),
        ['*', rest @ ..] => {
            (0..=v.len()).take_while(|&i| i == 0 || !is_separator(v[i - 1])).any(|i| reference(rest, &v[i..]))
        }
        [c, rest @ ..] => v.first() == Some(c) && reference(rest, &v[1..]),
    }
}

proptest! {
    #[test]
    fn glob_agrees_with_a_reference_matcher(pattern in arb_pattern(), value in arb_value()) {
        let p = Pattern::parse(&pattern).unwrap();
        let (pc, vc): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
        prop_assert_eq!(p.matches(&value), reference(&pc, &vc), "{} vs {}", pattern, value);
    }

    #[test]
    fn the_index_never_changes_the_outcome(
        specs in proptest::collection::vec((0..4usize, arb_pattern(), prop_oneof![Just("ns-1"), Just("ns-2"), Just("*")]), 1..12),
        ns in prop_oneof![Just("ns-1"), Just("ns-2"), Just("ns-3")],
        sa in prop_oneof![Just("a"), Just("ab"), Just("b")],
    ) {
        let rules: Vec<Rule> = specs.iter().enumerate().map(|(i, (kind, pat, nsp))| {
            let mut conditions = vec![format!("/kubernetes.io/namespace={nsp}")];
            if *kind > 0 { conditions.push(format!("/kubernetes.io/serviceaccount/name={pat}")); }
            if *kind > 2 { conditions.reverse(); }
            Rule { id: i as i64, client: format!("c{i}"), conditions: conditions.iter().map(|c| Condition::parse(c).unwrap()).collect() }
        }).collect();
        let set = RuleSet::new(rules);
        let claims = kubernetes(ns, sa);
        prop_assert_eq!(set.first_match(&claims).map(|r| r.id), set.explain(&claims).matched.map(|r| r.id));
    }
}
