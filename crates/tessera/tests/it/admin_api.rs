//! Issue 16: the admin REST API over real TLS sockets, guarded by the server's own tokens,
//! and the CLI's `--server` through it.

use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};
use tessera_server::admin::ClientSpec;
use tessera_testkit::{Authority as _, TestServer, client, jwt_payload, scope, secret};
use tessera_types::TokenFormat;

use crate::harness::split;

type Reply = (u16, HeaderMap, Value);

/// A token for the admin API (RFC 8707 `resource=tessera-admin`) as client `id`.
async fn admin_token(srv: &TestServer, id: &str, pw: &str) -> String {
    let (status, _, body) = srv.token_basic(id, pw, "grant_type=client_credentials&resource=tessera-admin").await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn call(srv: &TestServer, token: Option<&str>, method: Method, path: &str, body: Option<Value>) -> Reply {
    let mut req = srv.http.request(method, srv.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    split(req.send().await.unwrap()).await
}

/// A client allowed `scopes`, with a weak sample secret `<id>_secret`.
async fn admin_client(srv: &TestServer, id: &str, scopes: &[&str]) -> String {
    srv.add_client_with(ClientSpec {
        secret: secret(&format!("{id}_secret")),
        scopes: scopes.iter().map(|s| scope(s)).collect(),
        ..client(id)
    })
    .await;
    admin_token(srv, id, &format!("{id}_secret")).await
}

fn challenge(h: &HeaderMap) -> String {
    h.get_all("www-authenticate").iter().map(|v| v.to_str().unwrap()).collect::<Vec<_>>().join(" | ")
}

fn assert_problem(reply: &Reply, status: u16, kind: &str) {
    let (s, h, body) = reply;
    assert_eq!(*s, status, "{body}");
    assert_eq!(h[CONTENT_TYPE], "application/problem+json", "{body}");
    assert_eq!(body["type"], format!("urn:tessera:problem:{kind}"), "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert!(body["title"].is_string(), "{body}");
}

#[tokio::test]
async fn issue_16_without_a_token_every_admin_route_answers_401_with_a_bearer_challenge() {
    let srv = TestServer::start().await;
    // The served document is the committed one, and needs no token.
    let doc = srv.get_json("/admin/openapi.json").await;
    assert_eq!(doc, serde_json::from_str::<Value>(tessera_server::admin_api::OPENAPI).unwrap());
    let mut routes = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if path == "/admin/openapi.json" {
            continue;
        }
        let concrete = path.replace("{id}", "1").replace(['{', '}'], "");
        for (method, _) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            // Served (not 404 or 405), and guarded before anything is read.
            let (status, h, _) = call(&srv, None, method.clone(), &concrete, Some(json!({}))).await;
            assert_eq!(status, 401, "{method} {concrete}");
            assert!(challenge(&h).starts_with(r#"Bearer realm="tessera-admin""#), "{method} {concrete}: {h:?}");
            routes += 1;
        }
    }
    assert_eq!(routes, 20);
    // A token of another API's audience is not an admin token.
    srv.seed_scenario().await;
    let other = srv.token("CC", "cc_secret").await;
    let (status, h, _) = call(&srv, Some(&other), Method::GET, "/admin/clients", None).await;
    assert_eq!(status, 401);
    assert!(challenge(&h).contains(r#"error="invalid_token""#), "{h:?}");
}

#[tokio::test]
async fn issue_16_a_token_without_the_needed_admin_scope_is_403_insufficient_scope() {
    let srv = TestServer::start().await;
    let scopes_reader = admin_client(&srv, "scopes-reader", &["tessera:scopes:read"]).await;
    assert_eq!(jwt_payload(&scopes_reader)["aud"], "tessera-admin");
    let (status, _, body) = call(&srv, Some(&scopes_reader), Method::GET, "/admin/scopes", None).await;
    assert_eq!(status, 200, "{body}");
    let (status, h, _) = call(&srv, Some(&scopes_reader), Method::GET, "/admin/clients", None).await;
    assert_eq!(status, 403);
    let c = challenge(&h);
    assert!(c.contains(r#"error="insufficient_scope""#) && c.contains("tessera:clients:read"), "{c}");
}

#[tokio::test]
async fn issue_16_a_read_scope_cannot_write() {
    let srv = TestServer::start().await;
    let reader = admin_client(&srv, "clients-reader", &["tessera:clients:read"]).await;
    let (status, _, body) = call(&srv, Some(&reader), Method::GET, "/admin/clients", None).await;
    assert_eq!(status, 200);
    assert!(body["clients"].as_array().unwrap().iter().any(|c| c["client_id"] == "clients-reader"));
    for (method, path) in [
        (Method::POST, "/admin/clients"),
        (Method::DELETE, "/admin/clients/clients-reader"),
        (Method::PATCH, "/admin/clients/clients-reader"),
    ] {
        let (status, h, _) = call(&srv, Some(&reader), method.clone(), path, Some(json!({"client_id": "x"}))).await;
        assert_eq!(status, 403, "{method} {path}");
        assert!(challenge(&h).contains("tessera:clients:write"));
    }
    // The write scope reads too.
    let writer = admin_client(&srv, "clients-writer", &["tessera:clients:write"]).await;
    assert_eq!(call(&srv, Some(&writer), Method::GET, "/admin/clients/clients-reader", None).await.0, 200);
}

#[tokio::test]
async fn issue_16_an_admin_token_creates_a_scope_and_a_client_which_then_gets_tokens() {
    let srv = TestServer::start().await;
    let admin = admin_client(&srv, "ops", &["tessera:admin"]).await;
    let body = json!({ "name": "orders", "resources": ["orders-api"], "description": "Orders" });
    let (status, h, created) = call(&srv, Some(&admin), Method::POST, "/admin/scopes", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(h["location"], "/admin/scopes/orders");
    assert_eq!(created["resources"], json!(["orders-api"]));

    let body = json!({ "client_id": "shop", "scopes": ["orders"], "display_name": "Shop" });
    let (status, h, created) = call(&srv, Some(&admin), Method::POST, "/admin/clients", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(h["cache-control"], "no-store");
    let shop_secret = created["client_secret"].as_str().expect("a generated secret, shown once").to_owned();
    assert_eq!(created["client"]["secrets"][0]["kind"], "generated");
    assert!(!created.to_string().contains("hash"), "no secret hash in answers: {created}");

    // At once, not at the next registry poll.
    let (status, _, token) = srv.token_basic("shop", &shop_secret, "grant_type=client_credentials").await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(jwt_payload(token["access_token"].as_str().unwrap())["aud"], "orders-api");

    // Shown again: never the secret.
    let (status, _, shown) = call(&srv, Some(&admin), Method::GET, "/admin/clients/shop", None).await;
    assert_eq!(status, 200);
    assert!(shown.get("client_secret").is_none() && !shown.to_string().contains(&shop_secret));

    // Rotation: a second secret, generated, works; the first is removed by id.
    let first_id = shown["secrets"][0]["id"].as_str().unwrap().to_owned();
    let (status, h, added) = call(&srv, Some(&admin), Method::POST, "/admin/clients/shop/secrets", None).await;
    assert_eq!((status, h["cache-control"].to_str().unwrap()), (201, "no-store"), "{added}");
    let second = added["client_secret"].as_str().unwrap().to_owned();
    let path = format!("/admin/clients/shop/secrets/{first_id}");
    assert_eq!(call(&srv, Some(&admin), Method::DELETE, &path, None).await.0, 204);
    assert_eq!(srv.token_basic("shop", &second, "grant_type=client_credentials").await.0, 200);
    assert_eq!(srv.token_basic("shop", &shop_secret, "grant_type=client_credentials").await.0, 401);

    // PATCH: disabled, it gets no token; the change shows in the answer.
    let patch = json!({ "enabled": false, "display_name": "Shop (paused)", "issuance_burst": 5 });
    let (status, _, patched) = call(&srv, Some(&admin), Method::PATCH, "/admin/clients/shop", Some(patch)).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!((patched["enabled"].as_bool(), patched["issuance_burst"].as_i64()), (Some(false), Some(5)));
    assert_eq!(srv.token_basic("shop", &second, "grant_type=client_credentials").await.0, 401);

    // An expiry for the remaining secret, in the client's view.
    let path = format!("/admin/clients/shop/secrets/{}", added["id"].as_str().unwrap());
    let (status, _, expiry) = call(&srv, Some(&admin), Method::PATCH, &path, Some(json!({ "expires_in": 3600 }))).await;
    assert_eq!(status, 200, "{expiry}");
    let (_, _, shown) = call(&srv, Some(&admin), Method::GET, "/admin/clients/shop", None).await;
    assert_eq!(shown["secrets"][0]["expires_at"], expiry["expires_at"]);
    // A secret added with an expiry: the answer names the expiry that was stored.
    let body = Some(json!({ "expires_in": 600 }));
    let (status, _, third) = call(&srv, Some(&admin), Method::POST, "/admin/clients/shop/secrets", body).await;
    assert_eq!(status, 201, "{third}");
    let (_, _, shown) = call(&srv, Some(&admin), Method::GET, "/admin/clients/shop", None).await;
    let stored = shown["secrets"].as_array().unwrap().iter().find(|s| s["id"] == third["id"]).unwrap();
    assert!(third["expires_at"].is_number(), "{third}");
    assert_eq!(stored["expires_at"], third["expires_at"]);

    assert_eq!(call(&srv, Some(&admin), Method::DELETE, "/admin/clients/shop", None).await.0, 204);
    assert_problem(&call(&srv, Some(&admin), Method::GET, "/admin/clients/shop", None).await, 404, "not-found");
    // Every change is in the audit trail as made by the admin client.
    let query = tessera_store::AuditQuery { subject: Some("shop".into()), ..Default::default() };
    let trail = srv.store.list_audit(&query).await.unwrap();
    // (The refused token requests above are security events, by the peer.)
    let changes: Vec<String> = trail
        .iter()
        .filter(|e| e.action != tessera_store::AuditAction::AuthFailed)
        .map(|e| format!("{} {:?}", e.actor, e.action))
        .collect();
    let by_ops = |a: &str| format!("admin-api:ops {a}");
    let expected = [
        "ClientAdded",
        "SecretAdded",
        "SecretRemoved",
        "ClientUpdated",
        "ClientDisabled",
        "SecretExpirySet",
        "SecretAdded",
        "ClientRemoved",
    ];
    assert_eq!(changes, expected.map(by_ops), "{trail:?}");
    assert_eq!(call(&srv, Some(&admin), Method::DELETE, "/admin/scopes/orders", None).await.0, 204);
}

#[tokio::test]
async fn issue_16_admin_errors_are_rfc9457_problems() {
    let srv = TestServer::start().await;
    let admin = admin_client(&srv, "ops", &["tessera:admin"]).await;
    let post = |path: &'static str, body: &'static str, content_type: &'static str| {
        let req = srv.http.post(srv.url(path)).bearer_auth(&admin).header(CONTENT_TYPE, content_type).body(body);
        async move { split(req.send().await.unwrap()).await }
    };
    assert_problem(&post("/admin/scopes", "{not json", "application/json").await, 400, "malformed-body");
    let unknown = post("/admin/scopes", r#"{"name":"a","colour":"red"}"#, "application/json").await;
    assert_problem(&unknown, 400, "malformed-body");
    assert!(unknown.2["detail"].as_str().unwrap().contains("colour"), "{}", unknown.2);
    assert_problem(&post("/admin/scopes", r#"{"name":"a"}"#, "text/plain").await, 415, "unsupported-media-type");
    let big = format!(r#"{{"name":"a","description":"{}"}}"#, "x".repeat(300 * 1024));
    let req = srv.http.post(srv.url("/admin/scopes")).bearer_auth(&admin).header(CONTENT_TYPE, "application/json");
    assert_problem(&split(req.body(big).send().await.unwrap()).await, 413, "body-too-large");

    let scope = json!({ "name": "orders", "resources": ["orders-api"] });
    assert_eq!(call(&srv, Some(&admin), Method::POST, "/admin/scopes", Some(scope.clone())).await.0, 201);
    assert_problem(&call(&srv, Some(&admin), Method::POST, "/admin/scopes", Some(scope)).await, 409, "conflict");
    let builtin = json!({ "name": "tessera:admin", "resources": ["elsewhere"] });
    assert_problem(&call(&srv, Some(&admin), Method::POST, "/admin/scopes", Some(builtin)).await, 409, "conflict");
    assert_problem(
        &call(&srv, Some(&admin), Method::DELETE, "/admin/scopes/tessera:admin", None).await,
        409,
        "conflict",
    );
    assert_problem(&call(&srv, Some(&admin), Method::GET, "/admin/scopes/nope", None).await, 404, "not-found");
    assert_problem(&call(&srv, Some(&admin), Method::GET, "/admin/trusts/nope", None).await, 404, "not-found");

    // Validation: an unregistered scope, a weak imported secret, a path on the server.
    let bad = [
        json!({ "client_id": "c", "scopes": ["unregistered"] }),
        json!({ "client_id": "c", "secret": "short" }),
        json!({ "client_id": "c", "jwks_file": "/etc/passwd" }),
        json!({ "client_id": "c", "access_token_lifetime": 0 }),
    ];
    for body in bad {
        let reply = call(&srv, Some(&admin), Method::POST, "/admin/clients", Some(body.clone())).await;
        assert_problem(&reply, 400, "invalid-value");
        assert!(!reply.2.to_string().contains("short\""), "the refused secret is not echoed: {}", reply.2);
    }
    let path = "/admin/trusts/t/rules/not-a-number";
    assert_problem(&call(&srv, Some(&admin), Method::DELETE, path, None).await, 400, "invalid-value");
}

#[tokio::test]
async fn issue_16_reference_tokens_work_and_a_revoked_admin_token_is_refused_at_once() {
    let srv = TestServer::start().await;
    srv.add_client_with(ClientSpec {
        secret: secret("ops_secret"),
        scopes: vec![scope("tessera:admin")],
        token_format: Some(TokenFormat::Reference),
        ..client("ops")
    })
    .await;
    let token = admin_token(&srv, "ops", "ops_secret").await;
    assert!(!token.contains('.'), "a reference token");
    assert_eq!(call(&srv, Some(&token), Method::GET, "/admin/keys", None).await.0, 200);
    let (status, _, _) = srv.post_form("/connect/revoke", "ops", "ops_secret", &format!("token={token}")).await;
    assert_eq!(status, 200);
    // Nothing cached: the next request asks the server's own lookup.
    let (status, h, _) = call(&srv, Some(&token), Method::GET, "/admin/keys", None).await;
    assert_eq!(status, 401);
    assert!(challenge(&h).contains("invalid_token"));
}

#[tokio::test]
async fn issue_16_keys_list_and_rotate_and_trusts_with_rules() {
    let srv = TestServer::start().await;
    let admin = admin_client(&srv, "ops", &["tessera:keys:write", "tessera:trusts:write"]).await;
    let (_, _, before) = call(&srv, Some(&admin), Method::GET, "/admin/keys", None).await;
    let before = before["keys"].as_array().unwrap().clone();
    assert_eq!(before.len(), 1);
    assert!(before[0].get("sealed_private_key").is_none() && before[0]["public_jwk"].get("d").is_none());
    // The next step of the cycle: the next key is published, not yet signing; again: it signs.
    let (status, _, rotated) = call(&srv, Some(&admin), Method::POST, "/admin/keys/rotate", None).await;
    assert_eq!(status, 200, "{rotated}");
    let phases = |doc: &serde_json::Value| -> Vec<String> {
        doc["keys"].as_array().unwrap().iter().map(|k| k["status"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(phases(&rotated), ["active", "next"], "{rotated}");
    let (_, _, rotated) =
        call(&srv, Some(&admin), Method::POST, "/admin/keys/rotate", Some(json!({ "alg": "ES256" }))).await;
    assert_eq!(phases(&rotated), ["retired", "active"], "{rotated}");
    assert!(rotated["keys"][0]["remove_after"].is_i64(), "kept until its tokens expire");
    let (_, _, after) = call(&srv, Some(&admin), Method::GET, "/admin/keys", None).await;
    assert_eq!(phases(&after).len(), 2);
    // The old key's token still passes (retired keys stay published), and a new one too.
    assert_eq!(call(&srv, Some(&admin), Method::GET, "/admin/keys", None).await.0, 200);
    let fresh = admin_token(&srv, "ops", "ops_secret").await;
    assert_eq!(jwt_payload(&fresh)["aud"], "tessera-admin");

    // Trusts: inline keys, a rule inline, then one more; removed one by one.
    srv.add_client("ci", "ci_secret_ci_secret", &[], &[]).await;
    let jwks = json!({ "keys": [ tessera_jose::SigningKey::generate(tessera_types::SigningAlg::ES256).unwrap().0.public_jwk() ] });
    let trust = json!({
        "name": "gha", "issuer": "https://token.actions.githubusercontent.com", "kind": "github-actions",
        "jwks": jwks, "rules": [{ "client": "ci", "match": ["repository=acme/*"] }]
    });
    let (status, h, created) = call(&srv, Some(&admin), Method::POST, "/admin/trusts", Some(trust)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(h["location"], "/admin/trusts/gha");
    assert_eq!(created["rules"][0]["client"], "ci");
    let rule = json!({ "client": "ci", "match": ["ref=refs/heads/main"] });
    let (status, _, added) = call(&srv, Some(&admin), Method::POST, "/admin/trusts/gha/rules", Some(rule)).await;
    assert_eq!(status, 201, "{added}");
    let bad_rule = json!({ "client": "nobody", "match": ["sub=x"] });
    let reply = call(&srv, Some(&admin), Method::POST, "/admin/trusts/gha/rules", Some(bad_rule)).await;
    assert_problem(&reply, 400, "invalid-value");
    let path = format!("/admin/trusts/gha/rules/{}", added["id"]);
    assert_eq!(call(&srv, Some(&admin), Method::DELETE, &path, None).await.0, 204);
    assert_problem(&call(&srv, Some(&admin), Method::DELETE, &path, None).await, 404, "not-found");
    let (_, _, listed) = call(&srv, Some(&admin), Method::GET, "/admin/trusts", None).await;
    assert_eq!(listed["trusts"][0]["rules"].as_array().unwrap().len(), 1);
    assert_eq!(call(&srv, Some(&admin), Method::DELETE, "/admin/trusts/gha", None).await.0, 204);
}

#[tokio::test]
async fn issue_16_the_cli_with_server_adds_and_lists_a_client_through_the_api() {
    let srv = TestServer::start().await;
    srv.add_scope("orders", &["orders-api"]).await;
    srv.add_client("ops", "ops_secret", &["tessera:admin"], &[]).await;
    let issuer = srv.running().issuer.to_string();
    let secret_file = srv.dir.path().join("admin-secret");
    std::fs::write(&secret_file, "ops_secret\n").unwrap();
    // No store options: another machine, with only the server's URL, its CA and credentials.
    let elsewhere = tempfile::tempdir().unwrap();
    // Not a blocking `output()`: the server runs on this test's runtime.
    let cli = |args: &[&str], secret_from_env: bool| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
        c.args(args)
            .current_dir(elsewhere.path())
            .env("TESSERA_SERVER", &issuer)
            .env("TESSERA_SERVER_CA_FILE", srv.ca())
            .env("TESSERA_ADMIN_CLIENT_ID", "ops")
            .env_remove("TESSERA_DATA_DIR");
        if secret_from_env {
            c.env("TESSERA_ADMIN_CLIENT_SECRET", "ops_secret");
        } else {
            c.arg("--admin-client-secret-file").arg(&secret_file);
        }
        async move {
            let out = c.output().await.unwrap();
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            (out.status.success(), text(&out.stdout), text(&out.stderr))
        }
    };
    let (ok, out, err) = cli(&["client", "add", "shop", "--scope", "orders"], true).await;
    assert!(ok, "{err}");
    assert!(out.contains("added client shop"), "{out}");
    let shop_secret = out.lines().find_map(|l| l.strip_prefix("client_secret: ")).expect("generated secret").to_owned();
    assert_eq!(srv.token_basic("shop", &shop_secret, "grant_type=client_credentials").await.0, 200);

    let (ok, out, err) = cli(&["client", "list"], false).await;
    assert!(ok, "{err}");
    assert!(out.lines().any(|l| l.starts_with("shop\tenabled\tsecrets=1\tkeys=0\t")), "{out}");
    let (ok, out, err) = cli(&["scope", "list"], true).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("orders\tresources=orders-api")
            && out.contains("tessera:admin\tresources=tessera-admin\t(built in)"),
        "{out}"
    );
    let (ok, out, _) = cli(&["client", "show", "shop"], true).await;
    assert!(ok && serde_json::from_str::<Value>(&out).unwrap()["client_id"] == "shop", "{out}");
    let (ok, _, err) = cli(&["trust", "list"], true).await;
    assert!(ok, "{err}");
    let (ok, out, err) = cli(&["client", "remove", "shop"], true).await;
    assert!(ok && out.contains("removed client shop"), "{err}");
    // A refusal comes back in the server's words; what the API cannot do says so.
    let (ok, _, err) = cli(&["client", "show", "shop"], true).await;
    assert!(!ok && err.contains("No such resource: no client shop"), "{err}");
    let (ok, _, err) = cli(&["key", "remove", "x"], true).await;
    assert!(!ok && err.contains("works on the store only"), "{err}");
    // Wrong credentials: the token endpoint's refusal, nothing done.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["client", "list", "--server", &issuer, "--server-ca"])
        .arg(srv.ca())
        .env("TESSERA_ADMIN_CLIENT_ID", "ops")
        .env("TESSERA_ADMIN_CLIENT_SECRET", "wrong")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_client"));
}

#[tokio::test]
async fn issue_16_rfc9449_a_dpop_bound_admin_token_needs_its_proof_at_the_admin_api() {
    let srv = TestServer::start().await;
    srv.add_client_with(ClientSpec {
        secret: secret("ops_secret"),
        scopes: vec![scope("tessera:admin")],
        require_dpop: true,
        ..client("ops")
    })
    .await;
    let key = tessera_client::DpopKey::generate().unwrap();
    let mut cfg = tessera_client::ClientConfig::new(
        tessera_types::Issuer::new(srv.issuer()).unwrap(),
        tessera_types::ClientId::new("ops").unwrap(),
        tessera_types::ClientSecret::new("ops_secret").unwrap(),
    )
    .with_dpop(key)
    .with_http_client(srv.http.clone());
    cfg.resources = vec![tessera_types::Resource::new("tessera-admin").unwrap()];
    let admin = tessera_client::AuthorizedClient::new(srv.http.clone(), tessera_client::TokenSource::new(cfg));
    // With a fresh proof for each request (htu: the issuer's URL of the route).
    let url = format!("{}/admin/clients", srv.issuer());
    let r = admin.send(admin.http().get(&url)).await.unwrap();
    assert_eq!(r.status(), 200);
    // The same token as a bearer token: refused (RFC 9449 §7.1).
    let token = admin.source().token().await.unwrap();
    assert!(token.dpop_bound);
    let (status, h, _) = call(&srv, Some(token.access_token.expose()), Method::GET, "/admin/clients", None).await;
    assert_eq!(status, 401);
    assert!(challenge(&h).contains("invalid_token"), "{h:?}");
}
