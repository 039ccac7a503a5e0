//! `Mode::InProcess`: an authorization server guarding its own endpoints with its own token
//! lookup, no discovery or JWKS fetched from itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tessera_guard::{Guard, GuardConfig, GuardError, InProcess, Mode};
use tessera_types::clock::ManualClock;
use tessera_types::rfc9068::AccessTokenClaims;
use tessera_types::{ClientId, Issuer, Resource, ScopeSet, UnixTime};

/// Plain http and a port nothing listens on: an in-process authority is never called.
const AUTHORITY: &str = "http://127.0.0.1:1";
const NOW: i64 = 1_700_000_000;

fn claims(iss: &str, aud: &str, exp: i64) -> AccessTokenClaims {
    AccessTokenClaims {
        iss: Some(iss.into()),
        aud: vec![aud.into()],
        exp: UnixTime(exp),
        nbf: None,
        iat: Some(UnixTime(NOW)),
        sub: Some("admin".into()),
        jti: None,
        client_id: Some(ClientId::new("admin").unwrap()),
        scope: Some(ScopeSet::parse("tessera:admin").unwrap()),
        scp: ScopeSet::default(),
        cnf: None,
        other: Default::default(),
    }
}

#[tokio::test]
async fn in_process_mode_asks_the_authority_on_every_request_and_still_checks_audience_issuer_expiry() {
    let known: Arc<Mutex<HashMap<String, AccessTokenClaims>>> = Arc::default();
    let asked = Arc::new(AtomicUsize::new(0));
    let authority = {
        let (known, asked) = (known.clone(), asked.clone());
        move |token: String| {
            asked.fetch_add(1, Ordering::SeqCst);
            let answer = match token.as_str() {
                "down" => Err(GuardError::Unavailable("store down".into())),
                t => Ok(known.lock().unwrap().get(t).cloned()),
            };
            async move { answer }
        }
    };
    let mut db = known.lock().unwrap();
    db.insert("good".into(), claims(AUTHORITY, "tessera-admin", NOW + 60));
    db.insert("other-api".into(), claims(AUTHORITY, "api1", NOW + 60));
    db.insert("foreign".into(), claims("https://elsewhere", "tessera-admin", NOW + 60));
    db.insert("expired".into(), claims(AUTHORITY, "tessera-admin", NOW - 600));
    drop(db);
    let clock = ManualClock::new(UnixTime(NOW));
    let cfg = GuardConfig::new(
        Issuer::new(AUTHORITY).unwrap(),
        Resource::new("tessera-admin").unwrap(),
        Mode::InProcess(InProcess::new(authority)),
    )
    .with_clock(Arc::new(clock));
    // An http authority is fine without `allow_http`: nothing goes over the network.
    let guard = Guard::new(cfg).unwrap();

    let p = guard.authenticate("good").await.unwrap();
    assert_eq!(p.client_id.as_ref().map(ClientId::as_str), Some("admin"));
    assert_eq!(p.issuer, AUTHORITY);
    guard.authenticate("good").await.unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 2, "nothing cached: the authority is asked each time");
    // Revoked at the authority: refused on the very next request.
    known.lock().unwrap().remove("good");
    assert!(matches!(guard.authenticate("good").await, Err(GuardError::InvalidToken(_))));

    for refused in ["other-api", "foreign", "expired", "unknown"] {
        assert!(matches!(guard.authenticate(refused).await, Err(GuardError::InvalidToken(_))), "{refused}");
    }
    assert!(matches!(guard.authenticate("down").await, Err(GuardError::Unavailable(_))));
}
