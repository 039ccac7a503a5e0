//! The seed scenario's DPoP client (RFC 9449): `CC_dpop`, registered in `examples/seed.toml`
//! with `require_dpop`, gets tokens bound to a key it generates and calls both APIs with a fresh
//! proof per call; its token, stolen, is refused by both as `Bearer` and with a proof signed by
//! the thief's own key. Against the real server and guards, in `tessera demo` and on its own.

use std::sync::Mutex;

use tessera_client::{ClientConfig, ClientError, DpopKey, TokenSource};
use tessera_demo::{Answer, DPOP_CLIENT, Presenting, demo_reporting, greeter_with_token, rest_with_token, token_jkt};
use tessera_types::{ClientId, ErrorCode, ScopeSet};

use crate::World;

/// The seed's DPoP client with its sample secret, proving possession of `key` when given.
fn source(w: &World, key: Option<&DpopKey>) -> TokenSource {
    let id = ClientId::new(DPOP_CLIENT).unwrap();
    let secret = tessera_demo::sample_secret(&id).expect("examples/seed.toml gives CC_dpop a secret");
    let config = ClientConfig::new(w.server().issuer.clone(), id, secret)
        .scope(ScopeSet::parse("dataEventRecords api1").unwrap())
        .with_http_client(w.http.clone());
    TokenSource::new(match key {
        Some(key) => config.with_dpop(key.clone()),
        None => config,
    })
}

#[tokio::test]
async fn rfc9449_5_the_seed_dpop_client_gets_no_token_without_a_proof() {
    let w = World::start().await;
    let before = w.server().tokens_issued();
    match source(&w, None).token().await {
        Err(ClientError::Refused { error: ErrorCode::InvalidDpopProof, .. }) => {}
        other => panic!("require_dpop in examples/seed.toml: {other:?}"),
    }
    assert_eq!(w.server().tokens_issued(), before, "nothing issued");
}

/// §7.2: a DPoP-bound token is no bearer token; §4.3 item 12: the proof must be signed by the
/// key the token is bound to. Each refusal is checked against the same call made with the
/// owner's key, which is served: what differs is only the key.
#[tokio::test]
async fn rfc9449_a_stolen_dpop_bound_token_is_refused_by_both_apis_as_bearer_and_with_the_thiefs_proof() {
    let w = World::start().await;
    let key = DpopKey::generate().unwrap();
    let token = source(&w, Some(&key)).token().await.unwrap();
    assert!(token.dpop_bound, "token_type DPoP");
    assert_eq!(token_jkt(token.access_token.expose()), Some(key.thumbprint()), "cnf.jkt");
    let stolen = token.access_token.expose();
    let thief = DpopKey::generate().unwrap();
    assert_ne!(thief.thumbprint(), key.thumbprint());

    let url = format!("{}/weatherforecast", w.api.url());
    let rest = |how| rest_with_token(&w.http, &url, stolen, how);
    assert_eq!(rest(Presenting::Dpop(&key)).await.unwrap(), Answer::Served, "the owner's proof");
    let bearer = rest(Presenting::Bearer).await.unwrap();
    assert!(matches!(&bearer, Answer::Http { status: 401, challenge } if challenge.starts_with("Bearer ")), "{bearer}");
    assert_eq!(bearer.error(), Some("invalid_token"), "{bearer}");
    let forged = rest(Presenting::Dpop(&thief)).await.unwrap();
    assert!(matches!(&forged, Answer::Http { status: 401, challenge } if challenge.starts_with("DPoP ")), "{forged}");
    assert_eq!(forged.error(), Some("invalid_dpop_proof"), "{forged}");
    assert!(forged.to_string().contains("the proof's key is not the key the token is bound to"), "{forged}");

    let greeter_url = w.greeter.url();
    let greeter = |how| greeter_with_token(&greeter_url, &w.ca, stolen, how);
    assert_eq!(greeter(Presenting::Dpop(&key)).await.unwrap(), Answer::Served, "the owner's proof");
    match greeter(Presenting::Bearer).await.unwrap() {
        Answer::Grpc { code: tonic::Code::Unauthenticated, message } => {
            assert_eq!(message, "invalid token: a DPoP-bound token must be presented with the DPoP scheme")
        }
        other => panic!("{other:?}"),
    }
    match greeter(Presenting::Dpop(&thief)).await.unwrap() {
        Answer::Grpc { code: tonic::Code::Unauthenticated, message } => {
            assert_eq!(message, "invalid DPoP proof: the proof's key is not the key the token is bound to")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn rfc9449_tessera_demo_shows_the_dpop_client_and_its_stolen_token_refused() {
    // A directory of its own: the other demo tests may run at once.
    let dir = std::env::temp_dir().join(format!("tessera-demo-dpop-test-{}", std::process::id()));
    let lines = Mutex::new(Vec::new());
    let result = demo_reporting(&dir, &|line| lines.lock().unwrap().push(line.to_owned())).await;
    let _ = std::fs::remove_dir_all(&dir);
    let lines = lines.into_inner().unwrap();
    assert!(result.is_ok(), "{result:?}\n{lines:#?}");
    let at =
        |wanted: &dyn Fn(&str) -> bool| lines.iter().position(|l| wanted(l)).unwrap_or_else(|| panic!("{lines:#?}"));
    let bound =
        at(&|l| l.starts_with("CC_dpop: token_type DPoP, cnf.jkt ") && l.ends_with("(a key generated for this run)"));
    let greeted = at(&|l| l == "Greeting: Hello GreeterClient (CC_dpop: Authorization: DPoP, a fresh proof per call)");
    let served =
        at(&|l| l == "REST API /weatherforecast: 200 OK for CC_dpop (Authorization: DPoP, a fresh proof per call)");
    let bearer = "stolen DPoP-bound token replayed as Bearer";
    let grpc_bearer = at(&|l| {
        l == format!(
            "{bearer}: the Greeter refuses it (Unauthenticated: invalid token: a DPoP-bound token must be presented with the DPoP scheme)"
        )
    });
    let rest_bearer = at(&|l| {
        l.starts_with(&format!(
            "{bearer}: the REST API refuses it (401, WWW-Authenticate: Bearer realm=\"api1\", error=\"invalid_token\""
        ))
    });
    let thief = "stolen DPoP-bound token with the thief's own proof (jkt ";
    let grpc_thief = at(&|l| {
        l.starts_with(thief)
            && l.ends_with(
                "the Greeter refuses it (Unauthenticated: invalid DPoP proof: the proof's key is not the key the token is bound to)",
            )
    });
    let rest_thief = at(&|l| {
        l.starts_with(thief)
            && l.contains(
                "the REST API refuses it (401, WWW-Authenticate: DPoP realm=\"api1\", error=\"invalid_dpop_proof\", \
                 error_description=\"the proof's key is not the key the token is bound to\"",
            )
    });
    // The thief's key is not the client's: the shortened thumbprints differ.
    let jkt = |l: &str, after: &str| l.split(after).nth(1).unwrap().split("...").next().unwrap().to_owned();
    assert_ne!(jkt(&lines[bound], "cnf.jkt "), jkt(&lines[grpc_thief], "(jkt "));
    let finished = at(&|l| l == "demo finished: everything shut down");
    let order = [bound, greeted, served, grpc_bearer, rest_bearer, grpc_thief, rest_thief, finished];
    assert!(order.is_sorted(), "{order:?}\n{lines:#?}");
}
