//! The cases, written once against `Store`.

use std::collections::BTreeMap;

use tessera_store::{
    AssertionJtiWriter, ClientRecord, ClientUpdate, KeyRecord, KeyStatus, ScopeRecord, SecretRecord, Store, StoreError,
    TokenRecord, TokenWriter, TrustRecord,
};
use tessera_types::{ClientId, Endpoint, Jti, Kid, Permission, Resource, ScopeName, SigningAlg, TokenFormat, UnixTime};

fn scope(name: &str) -> ScopeRecord {
    ScopeRecord {
        name: ScopeName::new(name).unwrap(),
        display_name: Some(format!("{name} API")),
        display_names: BTreeMap::from([("fr-FR".to_string(), format!("API {name}"))]),
        description: None,
        resources: vec![Resource::new(format!("rs_{name}")).unwrap()],
        created_at: UnixTime(1000),
    }
}

fn secret(id: &str) -> SecretRecord {
    SecretRecord::new(id.into(), format!("sha256$hash-of-{id}"), UnixTime(1000))
}

fn client(id: &str) -> ClientRecord {
    ClientRecord {
        client_id: ClientId::new(id).unwrap(),
        display_name: None,
        secrets: vec![secret(&format!("{id}-s1"))],
        permissions: vec![Permission::Endpoint(Endpoint::Token), Permission::Scope(ScopeName::new("a").unwrap())],
        access_token_lifetime: 3600,
        token_format: TokenFormat::Jwt,
        signing_alg: None,
        enabled: true,
        created_at: UnixTime(1000),
        limits: Default::default(),
        tokens_not_before: None,
        jwks: None,
        jwks_uri: None,
        auth_method: None,
        tls: Default::default(),
        require_dpop: false,
    }
}

fn key(kid: &str, alg: SigningAlg) -> KeyRecord {
    KeyRecord {
        kid: Kid::new(kid).unwrap(),
        alg,
        status: KeyStatus::Active,
        sealed_private_key: format!("v1.sealed-{kid}"),
        public_jwk: format!(r#"{{"kid":"{kid}"}}"#),
        created_at: UnixTime(1000),
        activates_at: Some(UnixTime(1000)),
        retired_at: None,
        remove_after: None,
    }
}

fn token(n: usize, exp: i64) -> TokenRecord {
    TokenRecord {
        handle: format!("handle-{n}"),
        hash: format!("hash-{n}"),
        jti: jti(&format!("jti-{n}")),
        client_id: ClientId::new("CC").unwrap(),
        scope: Some("a b".parse().unwrap()),
        audiences: vec![Resource::new("api1").unwrap(), Resource::new("api2").unwrap()],
        iat: UnixTime(exp - 3600),
        exp: UnixTime(exp),
        revoked: false,
        cnf: None,
        workload: None,
    }
}

pub async fn registry_scopes(store: Store) {
    let r0 = store.revision().await.unwrap();
    store.add_scope(&scope("a")).await.unwrap();
    store.add_scope(&scope("b")).await.unwrap();
    assert!(matches!(store.add_scope(&scope("a")).await, Err(StoreError::Conflict(_))));
    assert_eq!(
        store.revision().await.unwrap(),
        r0 + 2,
        "every write bumps the revision once; a refused one not at all"
    );
    assert_eq!(store.get_scope(&ScopeName::new("a").unwrap()).await.unwrap().unwrap(), scope("a"));
    let names: Vec<String> = store.list_scopes().await.unwrap().into_iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(store.remove_scope(&ScopeName::new("a").unwrap()).await.unwrap());
    assert!(!store.remove_scope(&ScopeName::new("a").unwrap()).await.unwrap());
    assert!(store.get_scope(&ScopeName::new("a").unwrap()).await.unwrap().is_none());
}

pub async fn registry_clients(store: Store) {
    store.add_client(&client("CC")).await.unwrap();
    assert!(matches!(store.add_client(&client("CC")).await, Err(StoreError::Conflict(_))));
    let id = ClientId::new("CC").unwrap();
    assert_eq!(store.get_client(&id).await.unwrap().unwrap(), client("CC"));
    assert!(store.set_client_enabled(&id, false, UnixTime(1000)).await.unwrap());
    assert!(!store.get_client(&id).await.unwrap().unwrap().enabled);
    let update = ClientUpdate {
        token_format: Some(TokenFormat::Reference),
        access_token_lifetime: Some(60),
        signing_alg: Some(SigningAlg::EdDSA),
        ..Default::default()
    };
    assert!(store.update_client(&id, &update).await.unwrap());
    let c = store.get_client(&id).await.unwrap().unwrap();
    assert_eq!(
        (c.token_format, c.access_token_lifetime, c.signing_alg),
        (TokenFormat::Reference, 60, Some(SigningAlg::EdDSA))
    );
    assert!(!store.update_client(&ClientId::new("nobody").unwrap(), &update).await.unwrap());
    store.add_client(&client("other")).await.unwrap();
    assert_eq!(store.list_clients().await.unwrap().len(), 2);
    assert!(store.remove_client(&id, UnixTime(1000)).await.unwrap());
    assert!(store.get_client(&id).await.unwrap().is_none());
    assert_eq!(store.list_clients().await.unwrap().len(), 1);
}

pub async fn secrets(store: Store) {
    store.add_client(&client("CC")).await.unwrap();
    let id = ClientId::new("CC").unwrap();
    assert!(store.add_secret(&id, &secret("s2")).await.unwrap());
    assert!(!store.add_secret(&ClientId::new("nobody").unwrap(), &secret("s3")).await.unwrap());
    let ids: Vec<String> = store.get_client(&id).await.unwrap().unwrap().secrets.into_iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), 2);
    assert!(store.remove_secret(&id, "s2").await.unwrap());
    assert!(!store.remove_secret(&id, "s2").await.unwrap());
    assert_eq!(store.get_client(&id).await.unwrap().unwrap().secrets.len(), 1);
    // Removing the client removes its secrets.
    store.remove_client(&id, UnixTime(1000)).await.unwrap();
    store.add_client(&ClientRecord { secrets: vec![], ..client("CC") }).await.unwrap();
    assert!(store.get_client(&id).await.unwrap().unwrap().secrets.is_empty());
}

pub async fn keys_one_active_per_algorithm(store: Store) {
    assert!(store.add_first_active_key(&key("k1", SigningAlg::ES256)).await.unwrap());
    assert!(!store.add_first_active_key(&key("k2", SigningAlg::ES256)).await.unwrap(), "already one active");
    assert!(store.add_first_active_key(&key("r1", SigningAlg::RS256)).await.unwrap());
    store.add_active_key(&key("k3", SigningAlg::ES256), UnixTime(5000)).await.unwrap();
    let keys = store.list_keys().await.unwrap();
    let status = |kid: &str| keys.iter().find(|k| k.kid.as_str() == kid).map(|k| k.status);
    assert_eq!(status("k1"), Some(KeyStatus::Retired));
    assert_eq!(status("k2"), None);
    assert_eq!(status("k3"), Some(KeyStatus::Active));
    assert_eq!(status("r1"), Some(KeyStatus::Active));
    assert!(!store.remove_retired_key(&Kid::new("k3").unwrap(), UnixTime(1000)).await.unwrap(), "active keys stay");
    assert!(store.remove_retired_key(&Kid::new("k1").unwrap(), UnixTime(1000)).await.unwrap());
    assert_eq!(store.list_keys().await.unwrap().len(), 2);
}

pub async fn concurrent_first_keys_agree_on_one(store: Store) {
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(
            async move { store.add_first_active_key(&key(&format!("k{i}"), SigningAlg::ES256)).await },
        ));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
    let active = store.list_keys().await.unwrap().into_iter().filter(|k| k.status == KeyStatus::Active).count();
    assert_eq!(active, 1);
}

pub async fn reference_tokens(store: Store) {
    store.insert_tokens(&[token(1, 5000), token(2, 5000)]).await.unwrap();
    assert_eq!(store.find_token("handle-1", "hash-1").await.unwrap().unwrap(), token(1, 5000));
    assert!(store.find_token("handle-9", "hash-9").await.unwrap().is_none());
    assert!(store.revoke_token("handle-1", "hash-1", UnixTime(1000)).await.unwrap());
    assert!(!store.revoke_token("handle-9", "hash-9", UnixTime(1000)).await.unwrap());
    assert!(store.find_token("handle-1", "hash-1").await.unwrap().unwrap().revoked);
    assert!(!store.find_token("handle-2", "hash-2").await.unwrap().unwrap().revoked);
    // A duplicate handle fails the whole batch: nothing half-written.
    assert!(store.insert_tokens(&[token(3, 5000), token(1, 5000)]).await.is_err());
    assert!(store.find_token("handle-3", "hash-3").await.unwrap().is_none());
}

/// A handle finds a token only with its hash; a row stored before handles (keyed by its
/// hash's leading characters, as migration 0017 copied it) is found by its hash alone.
pub async fn reference_tokens_need_handle_and_hash(store: Store) {
    let hash = "Zm9yLXRoZS1sZWdhY3ktcm93LWtleWVkLWJ5LWhhc2g";
    let legacy = TokenRecord {
        handle: hash[..tessera_store::LEGACY_HANDLE_CHARS].to_owned(),
        hash: hash.to_owned(),
        ..token(7, 5000)
    };
    store.insert_tokens(&[token(1, 5000), legacy.clone()]).await.unwrap();
    assert!(store.find_token("handle-1", "hash-2").await.unwrap().is_none());
    assert!(store.find_token("handle-2", "hash-1").await.unwrap().is_none());
    assert!(store.find_token("handle-1", "").await.unwrap().is_none());
    // The legacy row, whatever handle a presented token has.
    assert_eq!(store.find_token("handle-of-any-token", hash).await.unwrap(), Some(legacy.clone()));
    assert!(store.find_token("handle-of-any-token", &hash[..30]).await.unwrap().is_none());
    assert!(store.revoke_token("handle-1", hash, UnixTime(1000)).await.unwrap());
    assert!(store.find_token("handle-1", hash).await.unwrap().unwrap().revoked);
    assert!(!store.revoke_token("handle-1", "hash-7", UnixTime(1000)).await.unwrap());
    assert!(!store.find_token("handle-1", "hash-1").await.unwrap().unwrap().revoked);
}

pub async fn group_commit_under_concurrency(store: Store) {
    let writer = TokenWriter::spawn(store.clone());
    let mut tasks = Vec::new();
    for n in 0..300 {
        let writer = writer.clone();
        tasks.push(tokio::spawn(async move { writer.insert(token(n, 9000)).await }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // Every acknowledged insert is there.
    assert_eq!(store.token_counts().await.unwrap().0, 300);
    for n in [0, 150, 299] {
        assert!(store.find_token(&format!("handle-{n}"), &format!("hash-{n}")).await.unwrap().is_some());
    }
}

pub async fn revocations(store: Store) {
    let cc = ClientId::new("CC").unwrap();
    assert!(!store.is_jti_revoked(&jti("j1")).await.unwrap());
    store.revoke_jti(&jti("j1"), &cc, UnixTime(5000), &[], UnixTime(1000)).await.unwrap();
    store.revoke_jti(&jti("j1"), &cc, UnixTime(5000), &[], UnixTime(1000)).await.unwrap();
    assert!(store.is_jti_revoked(&jti("j1")).await.unwrap());
    assert!(!store.is_jti_revoked(&jti("j2")).await.unwrap());
    assert_eq!(store.token_counts().await.unwrap().1, 1);
}

pub async fn pruning(store: Store) {
    let cc = ClientId::new("CC").unwrap();
    store.insert_tokens(&[token(1, 1000), token(2, 2000), token(3, 3000)]).await.unwrap();
    store.revoke_jti(&jti("old"), &cc, UnixTime(1500), &[], UnixTime(1000)).await.unwrap();
    store.revoke_jti(&jti("new"), &cc, UnixTime(2500), &[], UnixTime(1000)).await.unwrap();
    assert_eq!(store.prune(UnixTime(999), 1).await.unwrap(), (0, 0));
    assert_eq!(store.prune(UnixTime(2001), 1).await.unwrap(), (2, 1));
    assert_eq!(store.token_counts().await.unwrap(), (1, 1));
    assert!(store.find_token("handle-3", "hash-3").await.unwrap().is_some());
    assert!(store.is_jti_revoked(&jti("new")).await.unwrap());
}

pub async fn concurrent_writers_lose_nothing(store: Store) {
    let r0 = store.revision().await.unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                store.add_client(&client(&format!("c{w}-{i}"))).await.unwrap();
                store
                    .add_secret(&ClientId::new(format!("c{w}-{i}")).unwrap(), &secret(&format!("c{w}-{i}-s2")))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let clients = store.list_clients().await.unwrap();
    assert_eq!(clients.len(), 80);
    assert!(clients.iter().all(|c| c.secrets.len() == 2));
    assert_eq!(store.revision().await.unwrap(), r0 + 160, "every write counted once");
}

/// Issue 10: the key-encryption key check value is recorded once; the first writer wins, so
/// instances racing with different keys agree on one and the loser refuses.
pub async fn kek_check_first_writer_wins(store: Store) {
    assert_eq!(store.kek_check().await.unwrap(), None);
    let concurrent = (0..4).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.record_kek_check(&format!("hmac-sha256:{i}"), UnixTime(1000)).await.unwrap() })
    });
    let mut winners = Vec::new();
    for h in concurrent {
        winners.push(h.await.unwrap());
    }
    winners.dedup();
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(store.record_kek_check("hmac-sha256:other", UnixTime(2000)).await.unwrap(), winners[0]);
    assert_eq!(store.kek_check().await.unwrap().as_deref(), Some(winners[0].as_str()));
}

fn jti(value: &str) -> Jti {
    Jti::new(value).unwrap()
}

pub async fn client_assertion_jtis_are_used_once_and_pruned(store: Store) {
    let (cc, other) = (ClientId::new("CC").unwrap(), ClientId::new("other").unwrap());
    assert!(store.use_assertion_jti(&cc, "h1", UnixTime(1000)).await.unwrap());
    // RFC 7523 section 3 item 7: the same jti again is a replay...
    assert!(!store.use_assertion_jti(&cc, "h1", UnixTime(1000)).await.unwrap());
    // ...but ids are per client: another client's jti is its own.
    assert!(store.use_assertion_jti(&other, "h1", UnixTime(1000)).await.unwrap());
    assert!(store.use_assertion_jti(&cc, "h2", UnixTime(3000)).await.unwrap());
    assert_eq!(store.prune_assertion_jtis(UnixTime(999), 1).await.unwrap(), 0);
    assert_eq!(store.prune_assertion_jtis(UnixTime(2000), 1).await.unwrap(), 2);
    // Pruned once expired, the id could be recorded again (the assertion is refused by
    // its exp by then anyway); the unexpired one is still remembered.
    assert!(!store.use_assertion_jti(&cc, "h2", UnixTime(3000)).await.unwrap());
}

pub async fn client_assertion_jtis_group_commit_one_outcome_per_row(store: Store) {
    let cc = ClientId::new("CC").unwrap();
    assert!(store.use_assertion_jti(&cc, "seen", UnixTime(1000)).await.unwrap());
    let writer = AssertionJtiWriter::spawn(store.clone());
    // Concurrent uses share a transaction; each still gets its own outcome: a fresh id, one
    // used before the batch, and the same fresh id twice (only one of the two may win).
    let row = |h: &str| writer.use_jti(cc.clone(), h.to_owned(), UnixTime(1000));
    let (a, b, c, d) = tokio::join!(row("fresh"), row("seen"), row("twice"), row("twice"));
    assert!(a.unwrap());
    assert!(!b.unwrap());
    assert_eq!([c.unwrap(), d.unwrap()].iter().filter(|won| **won).count(), 1);
    let direct = store
        .use_assertion_jtis(&[(cc.clone(), "x".into(), UnixTime(9)), (cc.clone(), "x".into(), UnixTime(9))])
        .await
        .unwrap();
    assert_eq!(direct, [true, false]);
}

pub async fn client_keys_and_auth_method_round_trip(store: Store) {
    use tessera_types::rfc7517::{Jwk, JwkSet};
    let jwk = Jwk {
        kty: "OKP".into(),
        kid: "k1".into(),
        use_: None,
        alg: Some("EdDSA".into()),
        crv: Some("Ed25519".into()),
        x: Some("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into()),
        y: None,
        n: None,
        e: None,
    };
    let with_keys = ClientRecord {
        jwks: Some(JwkSet { keys: vec![jwk] }),
        auth_method: Some(tessera_types::ClientAuthMethod::PrivateKeyJwt),
        ..client("CC")
    };
    store.add_client(&with_keys).await.unwrap();
    let id = ClientId::new("CC").unwrap();
    assert_eq!(store.get_client(&id).await.unwrap().unwrap(), with_keys);
    let update = ClientUpdate { jwks: Some(None), auth_method: Some(None), ..Default::default() };
    assert!(store.update_client(&id, &update).await.unwrap());
    assert_eq!(store.get_client(&id).await.unwrap().unwrap(), client("CC"));
}

pub async fn mutual_tls_registration_and_bound_tokens_round_trip(store: Store) {
    use tessera_types::rfc8705::{CertificateThumbprint, Confirmation, TlsClientRegistration, TlsClientSubject};
    let thumbprint = CertificateThumbprint::from_sha256(&[9; 32]);
    let with_tls = ClientRecord {
        tls: TlsClientRegistration {
            certificates: vec![thumbprint.clone(), CertificateThumbprint::from_sha256(&[8; 32])],
            subject: Some(TlsClientSubject::SanUri("spiffe://example.org/ns/a/sa/b".into())),
        },
        auth_method: Some(tessera_types::ClientAuthMethod::SelfSignedTlsClientAuth),
        require_dpop: true,
        ..client("CC")
    };
    store.add_client(&with_tls).await.unwrap();
    let id = ClientId::new("CC").unwrap();
    assert_eq!(store.get_client(&id).await.unwrap().unwrap(), with_tls);
    let update = ClientUpdate {
        tls: Some(TlsClientRegistration::default()),
        auth_method: Some(None),
        require_dpop: Some(false),
        ..Default::default()
    };
    assert!(store.update_client(&id, &update).await.unwrap());
    assert_eq!(store.get_client(&id).await.unwrap().unwrap(), client("CC"));
    // RFC 8705 section 3.2: introspection of a bound reference token reports its cnf.
    let bound = TokenRecord { cnf: Some(Confirmation::certificate(thumbprint)), ..token(1, 5000) };
    store.insert_tokens(&[bound.clone(), token(2, 5000)]).await.unwrap();
    assert_eq!(store.find_token("handle-1", "hash-1").await.unwrap().unwrap(), bound);
    assert_eq!(store.find_token("handle-2", "hash-2").await.unwrap().unwrap().cnf, None);
}

/// RFC 7591 §2: a client has `jwks` or `jwks_uri`, never both; setting one replaces the other.
pub async fn client_jwks_uri_round_trips_and_replaces_the_key_set(store: Store) {
    use tessera_types::JwksUri;
    use tessera_types::rfc7517::{Jwk, JwkSet};
    let jwk = Jwk {
        kty: "OKP".into(),
        kid: "k1".into(),
        use_: None,
        alg: Some("EdDSA".into()),
        crv: Some("Ed25519".into()),
        x: Some("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into()),
        y: None,
        n: None,
        e: None,
    };
    let set = JwkSet { keys: vec![jwk] };
    let uri = JwksUri::new("https://svc.example/jwks.json").unwrap();
    let id = ClientId::new("CC").unwrap();
    let remote = ClientRecord { jwks_uri: Some(uri.clone()), ..client("CC") };
    store.add_client(&remote).await.unwrap();
    assert_eq!(store.get_client(&id).await.unwrap().unwrap(), remote);
    assert_eq!(store.list_clients().await.unwrap()[0].jwks_uri.as_ref(), Some(&uri));

    let both = ClientRecord { jwks: Some(set.clone()), ..remote.clone() };
    assert!(matches!(
        store.add_client(&ClientRecord { client_id: ClientId::new("X").unwrap(), ..both }).await,
        Err(StoreError::Config(_))
    ));
    let both = ClientUpdate { jwks: Some(Some(set.clone())), jwks_uri: Some(Some(uri.clone())), ..Default::default() };
    assert!(matches!(store.update_client(&id, &both).await, Err(StoreError::Config(_))));

    let inline = ClientUpdate { jwks: Some(Some(set.clone())), ..Default::default() };
    assert!(store.update_client(&id, &inline).await.unwrap());
    let got = store.get_client(&id).await.unwrap().unwrap();
    assert_eq!((got.jwks.as_ref(), got.jwks_uri.as_ref()), (Some(&set), None), "the key set replaced the URI");

    let back = ClientUpdate { jwks_uri: Some(Some(uri.clone())), ..Default::default() };
    assert!(store.update_client(&id, &back).await.unwrap());
    assert_eq!(store.get_client(&id).await.unwrap().unwrap(), remote, "the URI replaced the key set");

    let none = ClientUpdate { jwks_uri: Some(None), ..Default::default() };
    assert!(store.update_client(&id, &none).await.unwrap());
    assert_eq!(store.get_client(&id).await.unwrap().unwrap(), client("CC"));
}

/// Issue 12: every revocation is an event in the same commit, numbered in order, told only to
/// the tokens' audiences (key removals to everyone), once per change, and pruned after the
/// tokens it is about have expired.
pub async fn revocation_events_are_recorded_in_order_filtered_and_pruned(store: Store) {
    use tessera_types::rfc8417::{EventSeq, RevocationEvent};
    let cc = ClientId::new("CC").unwrap();
    let (api1, api2) = (ClientId::new("api1").unwrap(), ClientId::new("api2").unwrap());
    let other = ClientId::new("other-api").unwrap();
    let now = UnixTime(1000);
    store.add_scope(&scope("a")).await.unwrap(); // resources: rs_a
    store.add_client(&client("CC")).await.unwrap(); // may request scope a
    assert_eq!(store.latest_event().await.unwrap(), EventSeq(0));

    // A JWT for api1 and api2; revoking it twice tells once.
    let aud = [Resource::new("api1").unwrap(), Resource::new("api2").unwrap()];
    store.revoke_jti(&jti("j1"), &cc, UnixTime(5000), &aud, now).await.unwrap();
    store.revoke_jti(&jti("j1"), &cc, UnixTime(5000), &aud, now).await.unwrap();
    // A reference token (audiences api1, api2 in `token`), revoked twice: once.
    store.insert_tokens(&[token(1, 4000)]).await.unwrap();
    assert!(store.revoke_token("handle-1", "hash-1", now).await.unwrap());
    assert!(store.revoke_token("handle-1", "hash-1", now).await.unwrap());
    // Client-wide: audiences are the resources of the client's scopes (rs_a).
    store.revoke_client_tokens(&cc, UnixTime(1100)).await.unwrap();
    assert!(store.set_client_enabled(&cc, false, now).await.unwrap());
    assert!(store.set_client_enabled(&cc, false, now).await.unwrap(), "no change, no event");
    assert!(store.set_client_enabled(&cc, true, now).await.unwrap());
    // A removed key: everyone.
    store.add_active_key(&key("k1", SigningAlg::ES256), UnixTime(5000)).await.unwrap();
    store.add_active_key(&key("k2", SigningAlg::ES256), UnixTime(5000)).await.unwrap();
    assert!(store.remove_retired_key(&Kid::new("k1").unwrap(), now).await.unwrap());
    assert_eq!(store.latest_event().await.unwrap(), EventSeq(6));

    let kinds = |events: &[tessera_store::StoredEvent]| -> Vec<(i64, &'static str)> {
        events.iter().map(|e| (e.seq.0, e.event.event_type())).collect()
    };
    let for_api1 = store.events_after(EventSeq(0), &api1, 100).await.unwrap();
    assert_eq!(
        kinds(&for_api1),
        [
            (1, "urn:tessera:secevent:token-revoked"),
            (2, "urn:tessera:secevent:token-revoked"),
            (6, "urn:tessera:secevent:key-removed")
        ]
    );
    assert_eq!(
        for_api1[0].event,
        RevocationEvent::TokenRevoked { jti: jti("j1"), exp: UnixTime(5000), client_id: cc.clone(), token_hash: None }
    );
    let RevocationEvent::TokenRevoked { token_hash, .. } = &for_api1[1].event else { panic!("{:?}", for_api1[1]) };
    assert_eq!(token_hash.as_deref(), Some("hash-1"));
    assert_eq!(kinds(&store.events_after(EventSeq(0), &api2, 100).await.unwrap()).len(), 3);
    let rs_a = ClientId::new("rs_a").unwrap();
    assert_eq!(
        kinds(&store.events_after(EventSeq(0), &rs_a, 100).await.unwrap()),
        [
            (3, "urn:tessera:secevent:client-tokens-revoked"),
            (4, "urn:tessera:secevent:client-disabled"),
            (5, "urn:tessera:secevent:client-enabled"),
            (6, "urn:tessera:secevent:key-removed")
        ]
    );
    // Outside every audience: only the key removal.
    assert_eq!(
        kinds(&store.events_after(EventSeq(0), &other, 100).await.unwrap()),
        [(6, "urn:tessera:secevent:key-removed")]
    );
    // By position and limit.
    assert_eq!(
        kinds(&store.events_after(EventSeq(1), &api1, 1).await.unwrap()),
        [(2, "urn:tessera:secevent:token-revoked")]
    );
    assert!(store.events_after(EventSeq(6), &api1, 100).await.unwrap().is_empty());

    // Token events go once their tokens have expired (exp + 300 s); client and key events
    // after the longest token lifetime.
    assert_eq!(store.prune_events(UnixTime(4301), 1).await.unwrap(), 1, "the reference token's, exp 4000");
    assert_eq!(kinds(&store.events_after(EventSeq(0), &api1, 100).await.unwrap()).len(), 2);
    assert_eq!(store.prune_events(UnixTime(5301), 500).await.unwrap(), 1, "the JWT's, exp 5000");
    assert_eq!(store.prune_events(UnixTime(1100 + 7 * 24 * 3600 + 301), 500).await.unwrap(), 4);
    assert!(store.events_after(EventSeq(0), &rs_a, 100).await.unwrap().is_empty());
    assert_eq!(store.latest_event().await.unwrap(), EventSeq(6), "positions are never reused");
}

/// Issue 15: a trust and its rules round trip; rule ids follow the order added, also after a
/// removal; a trust's removal takes its rules; every change moves the registry revision.
pub async fn trusts_and_rules_round_trip_in_order_and_go_together(store: Store) {
    let trust = TrustRecord {
        name: "cluster".into(),
        kind: "kubernetes".into(),
        issuer: "https://kubernetes.default.svc.cluster.local".into(),
        jwks_uri: None,
        jwks: Some(r#"{"keys":[]}"#.into()),
        ca_pem: None,
        audience: Some("https://tessera.example".into()),
        max_token_age: Some(3600),
        max_lifetime: None,
        max_uses: Some(1),
        created_at: UnixTime(1000),
    };
    let r0 = store.revision().await.unwrap();
    store.add_trust(&trust).await.unwrap();
    assert!(matches!(store.add_trust(&trust).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.get_trust("cluster").await.unwrap(), Some(trust.clone()));
    assert!(store.revision().await.unwrap() > r0);
    let id = |c: &str| ClientId::new(c).unwrap();
    let conds = |c: &str| vec![c.to_owned()];
    assert_eq!(store.add_trust_rule("cluster", &id("a"), &conds("sub=x"), UnixTime(1)).await.unwrap(), 1);
    assert_eq!(store.add_trust_rule("cluster", &id("b"), &conds("sub=y|z"), UnixTime(2)).await.unwrap(), 2);
    assert!(store.add_trust_rule("nowhere", &id("a"), &conds("sub=x"), UnixTime(1)).await.is_err());
    assert!(store.remove_trust_rule("cluster", 1).await.unwrap());
    assert!(!store.remove_trust_rule("cluster", 1).await.unwrap());
    assert_eq!(store.add_trust_rule("cluster", &id("c"), &conds("sub=w"), UnixTime(3)).await.unwrap(), 3);
    // The last rule removed: its id is not given again.
    assert!(store.remove_trust_rule("cluster", 3).await.unwrap());
    assert_eq!(store.add_trust_rule("cluster", &id("c"), &conds("sub=w"), UnixTime(3)).await.unwrap(), 4);
    let rules = store.list_trust_rules("cluster").await.unwrap();
    assert_eq!(rules.iter().map(|r| (r.id, r.client_id.as_str())).collect::<Vec<_>>(), [(2, "b"), (4, "c")]);
    assert_eq!(rules[0].conditions, conds("sub=y|z"));
    let r1 = store.revision().await.unwrap();
    assert!(store.remove_trust("cluster").await.unwrap());
    assert!(store.revision().await.unwrap() > r1);
    assert!(store.get_trust("cluster").await.unwrap().is_none());
    assert!(store.list_trust_rules("cluster").await.unwrap().is_empty(), "rules go with their trust");
    assert!(store.list_trusts().await.unwrap().is_empty());
}

pub async fn uses_are_counted_to_their_bound_under_concurrency(store: Store) {
    let trust = ClientId::new("trust:ci").unwrap();
    // 16 concurrent uses of one token bounded to 5: exactly 5 pass, wherever they land.
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (store, trust) = (store.clone(), trust.clone());
            tokio::spawn(async move { store.count_use(&trust, "tok", UnixTime(1000), 5).await.unwrap() })
        })
        .collect();
    let mut passed = 0;
    for t in tasks {
        passed += usize::from(t.await.unwrap());
    }
    assert_eq!(passed, 5);
    assert!(store.count_use(&trust, "other", UnixTime(1000), 5).await.unwrap(), "each token has its own count");
    // A single-use row (the batched path) counts as one use.
    assert!(store.use_assertion_jti(&trust, "once", UnixTime(1000)).await.unwrap());
    assert!(store.count_use(&trust, "once", UnixTime(1000), 2).await.unwrap());
    assert!(!store.count_use(&trust, "once", UnixTime(1000), 2).await.unwrap());
    // Pruned with assertion ids once expired: counted afresh after.
    assert_eq!(store.prune_assertion_jtis(UnixTime(2000), 100).await.unwrap(), 3);
}

pub async fn reference_tokens_keep_their_workload(store: Store) {
    let workload = tessera_types::rfc9068::Workload {
        iss: "https://kubernetes.default.svc".into(),
        sub: "system:serviceaccount:payments:api".into(),
        trust: "cluster".into(),
        rule: 7,
    };
    let t = TokenRecord { workload: Some(workload), ..token(1, 5000) };
    store.insert_tokens(&[t.clone(), token(2, 5000)]).await.unwrap();
    assert_eq!(store.find_token("handle-1", "hash-1").await.unwrap().unwrap(), t);
    assert_eq!(store.find_token("handle-2", "hash-2").await.unwrap().unwrap().workload, None);
}

pub async fn audit_entries_are_recorded_with_their_change_in_order_and_pruned(store: Store) {
    use tessera_store::{AuditAction, AuditEntry, AuditQuery};
    let clock = tessera_types::clock::ManualClock::new(UnixTime(1000));
    let alice = store.acting_as("cli:alice", std::sync::Arc::new(clock.clone()));
    alice.add_scope(&scope("orders")).await.unwrap();
    clock.advance(10);
    // A change that fails records nothing: the entry goes with its change.
    assert!(alice.add_scope(&scope("orders")).await.is_err());
    assert!(!alice.remove_scope(&ScopeName::new("absent").unwrap()).await.unwrap());
    store
        .acting_as("seed", std::sync::Arc::new(clock.clone()))
        .remove_scope(&ScopeName::new("orders").unwrap())
        .await
        .unwrap();
    let event = |n: i64| AuditEntry {
        seq: 0,
        at: UnixTime(2000 + n),
        actor: "peer:10.0.0.1".into(),
        action: AuditAction::AuthFailed,
        target: "shop".into(),
        detail: serde_json::json!({ "n": n }),
    };
    store.record_audit(&[event(1), event(2)]).await.unwrap();
    let all = store.list_audit(&AuditQuery::default()).await.unwrap();
    let summary: Vec<_> = all.iter().map(|e| (e.at.0, e.actor.as_str(), e.action, e.target.as_str())).collect();
    assert_eq!(
        summary,
        [
            (1000, "cli:alice", AuditAction::ScopeAdded, "orders"),
            (1010, "seed", AuditAction::ScopeRemoved, "orders"),
            (2001, "peer:10.0.0.1", AuditAction::AuthFailed, "shop"),
            (2002, "peer:10.0.0.1", AuditAction::AuthFailed, "shop"),
        ]
    );
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "numbered in commit order");
    assert_eq!(all[0].detail["resources"], serde_json::json!(["rs_orders"]));
    let store_ref = &store;
    let only = |q: AuditQuery| async move { store_ref.list_audit(&q).await.unwrap().len() };
    assert_eq!(only(AuditQuery { subject: Some("shop".into()), ..Default::default() }).await, 2);
    assert_eq!(only(AuditQuery { action: Some(AuditAction::ScopeRemoved), ..Default::default() }).await, 1);
    assert_eq!(only(AuditQuery { since: Some(UnixTime(2002)), ..Default::default() }).await, 1);
    let latest = store.list_audit(&AuditQuery { limit: Some(1), ..Default::default() }).await.unwrap();
    assert_eq!(latest[0].at, UnixTime(2002), "the latest, when limited");
    assert_eq!(store.prune_audit(UnixTime(2000), 1).await.unwrap(), 2);
    assert_eq!(store.list_audit(&AuditQuery::default()).await.unwrap().len(), 2);
}

/// The registry snapshot's read of clients on SQLite's own connection (issue 17) decodes every
/// field as `list_clients` does through sqlx, secrets (expiry, last use) and key sets included,
/// at the revision it reports; on PostgreSQL there is no such read.
pub async fn clients_read_on_the_embedded_connection_equal_list_clients(store: Store) {
    use tessera_types::rfc7517::{Jwk, JwkSet};
    use tessera_types::rfc8705::{CertificateThumbprint, TlsClientRegistration, TlsClientSubject};
    let jwk = Jwk {
        kty: "OKP".into(),
        kid: "k1".into(),
        use_: None,
        alg: Some("EdDSA".into()),
        crv: Some("Ed25519".into()),
        x: Some("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into()),
        y: None,
        n: None,
        e: None,
    };
    let mut clients = vec![
        ClientRecord { secrets: vec![], ..client("A-none") },
        ClientRecord {
            display_name: Some("Keys".into()),
            jwks: Some(JwkSet { keys: vec![jwk] }),
            auth_method: Some(tessera_types::ClientAuthMethod::PrivateKeyJwt),
            secrets: vec![],
            token_format: TokenFormat::Reference,
            signing_alg: Some(SigningAlg::ES256),
            ..client("b-keys")
        },
        ClientRecord {
            secrets: vec![
                secret("c-s2"),
                SecretRecord { expires_at: Some(UnixTime(9000)), created_at: UnixTime(1500), ..secret("c-s1") },
                SecretRecord { created_at: UnixTime(2000), ..secret("c-s0") },
            ],
            limits: tessera_store::ClientLimits {
                issuance_rate_milli: Some(2500),
                issuance_burst: Some(0),
                max_live_tokens: Some(7),
            },
            access_token_lifetime: 60,
            require_dpop: true,
            tls: TlsClientRegistration {
                certificates: vec![CertificateThumbprint::from_sha256(&[9; 32])],
                subject: Some(TlsClientSubject::SanUri("spiffe://example.org/c".into())),
            },
            ..client("c-many")
        },
        ClientRecord {
            jwks_uri: Some(tessera_types::JwksUri::new("https://d.example/jwks".to_string()).unwrap()),
            ..client("d-uri")
        },
        ClientRecord { enabled: false, ..client("e-off") },
        client("e-one"),
    ];
    for c in &clients {
        store.add_client(c).await.unwrap();
    }
    let off = ClientId::new("e-off").unwrap();
    store.set_client_enabled(&off, false, UnixTime(1100)).await.unwrap();
    store.revoke_client_tokens(&off, UnixTime(1200)).await.unwrap();
    let used = [("c-s1", UnixTime(3000))];
    store.touch_secrets(&used).await.unwrap();
    let listed = store.list_clients().await.unwrap();
    // What was written is what the sqlx path reads (secrets in creation order).
    clients.sort_by(|a, b| a.client_id.as_str().cmp(b.client_id.as_str()));
    clients[2].secrets.sort_by_key(|s| (s.created_at, s.id.clone()));
    clients[2].secrets[1].last_used_at = Some(UnixTime(3000));
    clients[4].tokens_not_before = Some(UnixTime(1200));
    assert_eq!(listed, clients);
    let revision = store.revision().await.unwrap();
    let reader = store.clone();
    let read = tokio::task::spawn_blocking(move || {
        let mut read = Vec::new();
        reader.read_clients_blocking(&mut |c| read.push(c)).map(|r| r.map(|rev| (rev, read)))
    })
    .await
    .unwrap();
    match store.backend() {
        tessera_store::Backend::Sqlite => {
            let (at, read) = read.expect("an embedded read").unwrap();
            assert_eq!(at, revision);
            assert_eq!(read, listed);
        }
        tessera_store::Backend::Postgres => assert!(read.is_none()),
    }
}

/// Live reference tokens are counted for the clients asked about only (those with a cap):
/// expired and revoked ones left out, a client without any absent, none asked about: none.
pub async fn live_token_counts_cover_the_capped_clients_only(store: Store) {
    let of = |n: usize, client: &str, exp: i64, revoked: bool| TokenRecord {
        client_id: ClientId::new(client).unwrap(),
        revoked,
        ..token(n, exp)
    };
    let mut tokens = Vec::new();
    for n in 0..5 {
        tokens.push(of(n, "capped", 5000, false));
    }
    tokens.push(of(5, "capped", 1500, false)); // expired at 2000
    tokens.push(of(6, "capped", 2000, false)); // expires at 2000: not live
    tokens.push(of(7, "capped", 5000, true)); // revoked
    tokens.push(of(8, "other-capped", 5000, false));
    for n in 9..20 {
        tokens.push(of(n, "uncapped", 5000, false));
    }
    store.insert_tokens(&tokens).await.unwrap();
    let now = UnixTime(2000);
    let id = |s: &str| ClientId::new(s).unwrap();
    assert!(store.live_token_counts(now, Some(&[])).await.unwrap().is_empty());
    let asked = [id("capped"), id("other-capped"), id("no-tokens")];
    let want = std::collections::HashMap::from([("capped".to_string(), 5), ("other-capped".to_string(), 1)]);
    assert_eq!(store.live_token_counts(now, Some(&asked)).await.unwrap(), want);
    // Many capped clients: one pass over the table, the same answer.
    let mut many: Vec<ClientId> = (0..5000).map(|n| id(&format!("c{n}"))).collect();
    many.extend(asked.iter().cloned());
    assert_eq!(store.live_token_counts(now, Some(&many)).await.unwrap(), want);
    // Every client: the uncapped one too.
    let all = store.live_token_counts(now, None).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!((all["capped"], all["other-capped"], all["uncapped"]), (5, 1, 11));
}

/// Secrets' last use is written in multi-row statements across several transactions: every
/// listed secret gets its time, a time never moves back, an unknown id changes nothing, and
/// an empty list writes nothing.
pub async fn secrets_last_use_is_written_in_chunks_and_never_moves_back(store: Store) {
    let n = 5_000;
    let mut c = client("many");
    c.secrets = (0..n).map(|i| secret(&format!("s{i:05}"))).collect();
    store.add_client(&c).await.unwrap();
    let revision = store.revision().await.unwrap();
    store.touch_secrets(&[]).await.unwrap();
    let ids: Vec<String> = (0..n).map(|i| format!("s{i:05}")).collect();
    // Many rows at a few times (as the server writes them, to the minute) and some alone.
    let mut used: Vec<(&str, UnixTime)> =
        ids.iter().enumerate().map(|(i, id)| (id.as_str(), UnixTime(2000 + (i % 7) as i64))).collect();
    used.push(("no-such-secret", UnixTime(9999)));
    store.touch_secrets(&used).await.unwrap();
    // Older times for every even secret, a newer one for s00001: only the newer is taken.
    let older: Vec<_> = ids.iter().step_by(2).map(|id| (id.as_str(), UnixTime(1500))).collect();
    store.touch_secrets(&older).await.unwrap();
    store.touch_secrets(&[("s00001", UnixTime(8000))]).await.unwrap();
    let read = store.get_client(&c.client_id).await.unwrap().unwrap();
    let mut times: Vec<_> = read.secrets.iter().map(|s| (s.id.clone(), s.last_used_at)).collect();
    times.sort();
    assert_eq!(times.len(), n);
    for (i, (id, at)) in times.iter().enumerate() {
        assert_eq!(id, &format!("s{i:05}"));
        let want = if i == 1 { 8000 } else { 2000 + (i % 7) as i64 };
        assert_eq!(*at, Some(UnixTime(want)), "{id}");
    }
    // Not a registry change.
    assert_eq!(store.revision().await.unwrap(), revision);
}
