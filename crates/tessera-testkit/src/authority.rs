//! What tests do to an authorization server, whichever way they reach it (a socket or the
//! router as a service): seed the registry, then call the endpoints.

use serde_json::Value;
use tessera_server::admin::{self, ClientSpec, ScopeSpec};
use tessera_server::clock::SystemRandom;
use tessera_store::Store;
use tessera_types::{ClientId, ClientSecret, Resource, ScopeName, TokenFormat, UnixTime};

use crate::http::Reply;

/// An authorization server under test. The transport-specific part is small (store, clock,
/// how to wait for the registry, how to send); seeding and the endpoint calls are shared.
// Tests call these on a concrete type and never send the futures across threads.
#[allow(async_fn_in_trait)]
pub trait Authority {
    /// A handle on the server's store, as the CLI would open it.
    fn store(&self) -> &Store;
    /// The server's clock: registrations are stamped with it.
    fn now(&self) -> UnixTime;
    /// The issuer identifier the server announces.
    fn issuer(&self) -> &str;
    /// Returns once the server serves the store's current registry revision.
    async fn sync(&self);
    /// POSTs a form to `path` with Basic credentials.
    async fn post_form(&self, path: &str, id: &str, secret: &str, body: &str) -> Reply;
    /// GETs `path`, asserts a 200 and returns the JSON body.
    async fn get_json(&self, path: &str) -> Value;

    /// Registers a scope granting audience `resources`.
    async fn add_scope(&self, name: &str, resources: &[&str]) {
        let new = ScopeSpec {
            resources: resources.iter().map(|r| Resource::new(*r).unwrap()).collect(),
            ..ScopeSpec::new(scope(name))
        };
        admin::add_scope(self.store(), new, self.now()).await.unwrap();
        self.sync().await;
    }

    /// Registers a client with an imported secret.
    async fn add_client(&self, id: &str, secret: &str, scopes: &[&str], permissions: &[&str]) {
        self.add_client_with(ClientSpec {
            secret: Some(ClientSecret::new(secret).unwrap()),
            scopes: scopes.iter().map(|s| scope(s)).collect(),
            permissions: permissions.iter().map(|p| p.parse().unwrap()).collect(),
            ..client(id)
        })
        .await;
    }

    /// Registers a client and returns the generated secret, if one was generated. The tests'
    /// sample secrets are accepted below the strength floor.
    async fn add_client_with(&self, new: ClientSpec) -> Option<ClientSecret> {
        let new = ClientSpec { allow_weak_secret: true, ..new };
        let (_, generated) =
            admin::add_client(self.store(), new, 3600, &Default::default(), &SystemRandom::default(), self.now())
                .await
                .unwrap();
        self.sync().await;
        generated
    }

    /// The seed scenario: scope dataEventRecords (resource rs_dataEventRecordsApi) and
    /// client CC / cc_secret.
    async fn seed_scenario(&self) {
        self.add_scope("dataEventRecords", &["rs_dataEventRecordsApi"]).await;
        self.add_client("CC", "cc_secret", &["dataEventRecords"], &[]).await;
    }

    /// The seed scenario with reference tokens, and the API registered as a client that may
    /// introspect (its client_id is its resource name, as in the seed).
    async fn seed_reference_scenario(&self) {
        self.add_scope("dataEventRecords", &["rs_dataEventRecordsApi"]).await;
        self.add_client_with(ClientSpec {
            secret: Some(ClientSecret::new("cc_secret").unwrap()),
            scopes: vec![scope("dataEventRecords")],
            token_format: Some(TokenFormat::Reference),
            ..client("CC")
        })
        .await;
        self.add_client("rs_dataEventRecordsApi", "api_secret", &[], &["introspection"]).await;
    }

    /// POSTs a form to the token endpoint with Basic credentials.
    async fn token_basic(&self, id: &str, secret: &str, body: &str) -> Reply {
        self.post_form("/connect/token", id, secret, body).await
    }

    /// An access token from the token endpoint, or a panic.
    async fn token(&self, id: &str, secret: &str) -> String {
        let (status, _, body) = self.token_basic(id, secret, "grant_type=client_credentials").await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// Introspects `token` as client `id`; asserts a 200 that is not cached.
    async fn introspect_as(&self, id: &str, secret: &str, token: &str) -> Value {
        let (status, h, body) = self.post_form("/connect/introspect", id, secret, &format!("token={token}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(h["cache-control"], "no-store");
        body
    }
}

/// A client for a config file's `[[clients]]`: imported secret, scopes, extra permissions,
/// token format; weak sample secrets allowed.
pub fn seed_client(id: &str, secret: &str, scopes: &[&str], permissions: &[&str], format: &str) -> ClientSpec {
    ClientSpec {
        secret: Some(ClientSecret::new(secret).unwrap()),
        scopes: scopes.iter().map(|s| scope(s)).collect(),
        permissions: permissions.iter().map(|p| p.parse().unwrap()).collect(),
        token_format: Some(format.parse().unwrap()),
        allow_weak_secret: true,
        ..client(id)
    }
}

/// A client to register with this id and every other setting left to its default.
pub fn client(id: &str) -> ClientSpec {
    ClientSpec::new(ClientId::new(id).unwrap())
}

/// A scope name, or a panic.
pub fn scope(name: &str) -> ScopeName {
    ScopeName::new(name).unwrap()
}

/// A client secret, or a panic.
pub fn secret(value: &str) -> Option<ClientSecret> {
    Some(ClientSecret::new(value).unwrap())
}
