//! The registry across processes: restarts, seeding from the config file, and what is (not)
//! at rest. Changes at run time and rotations are tested on the router in tessera-server.

use std::os::unix::fs::PermissionsExt;

use tessera_server::FileConfig;
use tessera_testkit::{Authority as _, jwt_payload as payload};

use crate::harness::TestServer;

const CC: &str = "grant_type=client_credentials";

#[tokio::test]
async fn a_restart_keeps_clients_and_signing_keys() {
    let s = TestServer::start().await;
    s.seed_scenario().await;
    let (_, _, body) = s.token_basic("CC", "cc_secret", CC).await;
    let token = body["access_token"].as_str().unwrap().to_string();
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, &["ES256"], FileConfig::default()).await;
    let jwks = s.get_json("/.well-known/jwks").await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1, "no new key on restart");
    assert_eq!(jwks["keys"][0]["kid"], kid.as_str());
    let (status, _, again) = s.token_basic("CC", "cc_secret", CC).await;
    assert_eq!(status, 200);
    assert_eq!(jsonwebtoken::decode_header(again["access_token"].as_str().unwrap()).unwrap().kid.unwrap(), kid);
}

fn seed_config() -> FileConfig {
    let toml = r#"
        [[scopes]]
        name = "dataEventRecords"
        display_name = "dataEventRecords API"
        display_names = { "fr-FR" = "API dataEventRecords" }
        resources = ["rs_dataEventRecordsApi"]

        [[clients]]
        client_id = "CC"
        secret = "cc_secret"
        display_name = "CC for DataEventRecordsApi"
        scopes = ["dataEventRecords"]
        access_token_lifetime = 600
        allow_weak_secret = true

        [[clients]]
        client_id = "generated"
        scopes = ["dataEventRecords"]
    "#;
    FileConfig::parse(toml, "seed_config").unwrap()
}

#[tokio::test]
async fn config_seeding_is_idempotent() {
    let s = TestServer::start_with(&["ES256"], seed_config()).await;
    let generated = &s.running.as_ref().unwrap().generated_secrets;
    assert_eq!(generated.len(), 1);
    assert_eq!(generated[0].0.as_str(), "generated");
    let secret = generated[0].1.expose().to_string();
    let (status, _, body) = s.token_basic("CC", "cc_secret", CC).await;
    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], 600);
    assert_eq!(s.token_basic("generated", &secret, CC).await.0, 200);
    let scope = s.store.get_scope(&tessera_types::ScopeName::new("dataEventRecords").unwrap()).await.unwrap().unwrap();
    assert_eq!(scope.display_names["fr-FR"], "API dataEventRecords");
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, &["ES256"], seed_config()).await;
    assert!(s.running.as_ref().unwrap().generated_secrets.is_empty(), "existing clients are left alone");
    assert_eq!(s.store.list_clients().await.unwrap().len(), 2);
    assert_eq!(s.token_basic("generated", &secret, CC).await.0, 200, "the first secret still works");
}

#[tokio::test]
async fn secrets_tokens_and_private_keys_are_never_at_rest_in_clear() {
    let s = TestServer::start_with(&["ES256"], seed_config()).await;
    let generated = s.running.as_ref().unwrap().generated_secrets[0].1.expose().to_string();
    let (_, _, body) = s.token_basic("CC", "cc_secret", CC).await;
    let token = body["access_token"].as_str().unwrap().to_string();
    let jti = payload(&token)["jti"].as_str().unwrap().to_string();
    let dir = s.stop().await;
    let mut at_rest = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && path.file_name().unwrap().to_str().unwrap().starts_with("tessera.db") {
            at_rest.extend(std::fs::read(&path).unwrap());
            // Database files are owner-only.
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600, "{}", path.display());
        }
    }
    assert!(!at_rest.is_empty());
    let contains = |needle: &str| at_rest.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(!contains("cc_secret"));
    assert!(!contains(&generated));
    assert!(!contains(&token));
    assert!(!contains(&jti));
    assert!(contains("$argon2id$"), "imported secrets are argon2id hashes");
    let kek = dir.path().join("key-encryption.key");
    assert_eq!(std::fs::metadata(&kek).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777, 0o700);
    let store = tessera_store::Store::open_embedded(dir.path()).await.unwrap();
    for k in store.list_keys().await.unwrap() {
        assert!(k.sealed_private_key.starts_with("v1."), "sealed");
        assert!(!k.public_jwk.contains("\"d\""));
    }
}

/// CC (JWT), REF (reference tokens) and the API client `api` (introspection), with their scope.
pub fn seed_config_for_tests() -> FileConfig {
    let clients = r#"
        [[clients]]
        client_id = "CC"
        secret = "cc_secret"
        scopes = ["dataEventRecords"]
        allow_weak_secret = true

        [[clients]]
        client_id = "REF"
        secret = "ref_secret"
        scopes = ["dataEventRecords"]
        token_format = "reference"
        allow_weak_secret = true

        [[clients]]
        client_id = "api"
        secret = "api_secret"
        permissions = ["introspection"]
        allow_weak_secret = true
    "#;
    let mut file = seed_config();
    file.scopes[0].resources = vec![tessera_types::Resource::new("api").unwrap()];
    file.clients = FileConfig::parse(clients, "seed_config_for_tests").unwrap().clients;
    file
}
