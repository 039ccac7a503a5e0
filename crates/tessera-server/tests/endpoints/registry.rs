//! The registry at run time: changes without restart, secret and key rotation. Restarts,
//! seeding from the config file and what is (not) at rest need a process: the binary crate.

use tessera_server::admin;
use tessera_server::clock::{Clock as _, SystemRandom};
use tessera_server::keys::{self, Kek};
use tessera_testkit::{Authority as _, TestApp, assert_oauth_error};
use tessera_types::{ClientId, SigningAlg};

use crate::jwt::validate;

const CC: &str = "grant_type=client_credentials";

#[tokio::test]
async fn changes_made_while_running_take_effect_without_restart() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    assert_eq!(s.token_basic("CC", "cc_secret", CC).await.0, 200);
    let cc = ClientId::new("CC").unwrap();
    s.store.set_client_enabled(&cc, false, s.now()).await.unwrap();
    s.sync().await;
    assert_oauth_error(&s.token_basic("CC", "cc_secret", CC).await, 401, "invalid_client");
    s.store.set_client_enabled(&cc, true, s.now()).await.unwrap();
    s.sync().await;
    assert_eq!(s.token_basic("CC", "cc_secret", CC).await.0, 200);
    // A new scope shows in discovery; a removed client is gone.
    s.add_scope("later", &["api9"]).await;
    let d = s.get_json("/.well-known/openid-configuration").await;
    assert!(d["scopes_supported"].as_array().unwrap().iter().any(|v| v == "later"));
    s.store.remove_client(&cc, s.now()).await.unwrap();
    s.sync().await;
    assert_oauth_error(&s.token_basic("CC", "cc_secret", CC).await, 401, "invalid_client");
}

#[tokio::test]
async fn secret_rotation_without_downtime() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    let (new_id, generated) = admin::add_secret(
        &s.store,
        &tessera_types::ClientId::new("CC").unwrap(),
        None,
        false,
        None,
        &SystemRandom::default(),
        s.clock.now(),
    )
    .await
    .unwrap();
    let generated = generated.unwrap();
    assert!(generated.expose().starts_with("tsec_"));
    s.sync().await;
    // Both work during the rotation.
    assert_eq!(s.token_basic("CC", "cc_secret", CC).await.0, 200);
    assert_eq!(s.token_basic("CC", generated.expose(), CC).await.0, 200);
    // Retire the old one: it stops working at once, even though its success was cached.
    let client = s.store.get_client(&ClientId::new("CC").unwrap()).await.unwrap().unwrap();
    let old = client.secrets.iter().find(|x| x.id != new_id).unwrap();
    s.store.remove_secret(&client.client_id, &old.id).await.unwrap();
    s.sync().await;
    assert_oauth_error(&s.token_basic("CC", "cc_secret", CC).await, 401, "invalid_client");
    assert_eq!(s.token_basic("CC", generated.expose(), CC).await.0, 200);
}

#[tokio::test]
async fn key_rotation_keeps_the_old_key_published() {
    let s = TestApp::start().await;
    s.seed_scenario().await;
    let (_, _, before) = s.token_basic("CC", "cc_secret", CC).await;
    let old_token = before["access_token"].as_str().unwrap().to_string();
    let kek = Kek::load_or_create(&s.settings.kek_file, &SystemRandom::default()).unwrap();
    let new_kid =
        keys::rotate(&s.store, &kek, SigningAlg::ES256, &SystemRandom::default(), s.clock.now()).await.unwrap();
    s.sync().await;
    let jwks = s.get_json("/.well-known/jwks").await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert_eq!(jwks["keys"][0]["kid"], new_kid.as_str(), "newest first");
    let (_, _, after) = s.token_basic("CC", "cc_secret", CC).await;
    let new_token = after["access_token"].as_str().unwrap();
    assert_eq!(jsonwebtoken::decode_header(new_token).unwrap().kid.unwrap(), new_kid.as_str());
    // Tokens signed by the retired key still validate from the published JWKS.
    validate(&s, &old_token, "rs_dataEventRecordsApi").await;
    validate(&s, new_token, "rs_dataEventRecordsApi").await;
}
