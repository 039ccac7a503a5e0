//! Issue 16, the registry kept in a file: `tessera apply` plans and reconciles (create,
//! update, secrets by reference, --prune, --dry-run), `tessera export` writes what `apply`
//! reads back with no change, and a client applied from a file gets tokens from the server.

use std::path::Path;

use tessera_server::declarative::{self, Context, RegistryFile};
use tessera_testkit::Authority as _;

use crate::cli::{ok, tessera};
use crate::harness::TestServer;

fn registry(dir: &Path, lifetime: u32) -> std::path::PathBuf {
    let (key, _) = tessera_jose::SigningKey::generate(tessera_types::SigningAlg::ES256).unwrap();
    let jwk = serde_json::to_value(key.public_jwk()).unwrap();
    let jwk_toml: toml::Value = toml::Value::try_from(jwk).unwrap();
    std::fs::write(dir.join("shop.secret"), "shop_secret_from_a_file_0123456789\n").unwrap();
    let text = format!(
        r#"
[[scopes]]
name = "orders"
resources = ["orders-api"]
display_name = "Orders"

[[clients]]
client_id = "shop"
scopes = ["orders"]
access_token_lifetime = {lifetime}
secret_file = "shop.secret"

[[clients]]
client_id = "reader"
scopes = ["orders"]
token_format = "reference"

[[trusts]]
name = "cluster"
issuer = "https://kubernetes.default.svc"
kind = "kubernetes"
jwks = {{ keys = [{jwk_toml}] }}

[[trusts.rules]]
client = "reader"
match = ["namespace=orders"]
"#
    );
    let path = dir.join("registry.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn issue16_apply_plans_reconciles_and_export_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["init"]);
    ok(d, &["client", "add", "stray"]);
    let file = registry(d, 600);
    let f = file.to_str().unwrap();
    let dry = ok(d, &["apply", "-f", f, "--dry-run"]);
    assert!(
        dry.contains("+ scope orders") && dry.contains("+ client shop") && dry.contains("+ trust cluster (1 rules)"),
        "{dry}"
    );
    assert!(ok(d, &["client", "list"]).lines().count() == 1, "a dry run changes nothing");
    let out = ok(d, &["apply", "-f", f]);
    assert!(out.contains("applied"), "{out}");
    // `reader` references no secret: one is generated and shown once; `shop`'s comes from its file.
    assert!(out.contains("client_secret of reader: tsec_"), "{out}");
    assert!(!out.contains("shop_secret_from_a_file"), "{out}");
    assert!(ok(d, &["apply", "-f", f]).contains("no changes"));

    // Export, then apply the export: nothing to do. No secret in it.
    let exported = d.join("exported.toml");
    ok(d, &["export", "-o", exported.to_str().unwrap()]);
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(!text.contains("shop_secret") && !text.contains("tsec_") && !text.contains("argon2"), "{text}");
    assert!(text.contains("# client shop holds secrets"), "{text}");
    let again = ok(d, &["apply", "-f", exported.to_str().unwrap()]);
    assert!(again.contains("no changes"), "{again}\n{text}");

    // A change: planned by name, applied; the secret file's new value is added beside the old.
    let file = registry(d, 900);
    std::fs::write(d.join("shop.secret"), "shop_rotated_secret_0123456789ab\n").unwrap();
    let out = ok(d, &["apply", "-f", file.to_str().unwrap()]);
    assert!(out.contains("~ client shop (access_token_lifetime)"), "{out}");
    assert!(out.contains("+ secret of client shop"), "{out}");
    let show: serde_json::Value = serde_json::from_str(&ok(d, &["client", "show", "shop"])).unwrap();
    assert_eq!((show["access_token_lifetime"].as_i64(), show["secrets"].as_array().unwrap().len()), (Some(900), 2));

    // --prune removes what the file does not name.
    let out = ok(d, &["apply", "-f", f, "--prune"]);
    assert!(out.contains("- client stray"), "{out}");
    assert!(!ok(d, &["client", "list"]).contains("stray"));
    // Every change is in the audit trail.
    assert!(ok(d, &["audit", "list", "--client", "shop"]).contains("client.updated"));

    // Refused: a secret inline, an unknown scope, an unknown table.
    for (bad, why) in [
        ("[[clients]]\nclient_id = \"x\"\nsecret = \"abcdefghijklmnop0123\"\n", "never written in a registry file"),
        ("[[clients]]\nclient_id = \"x\"\nscopes = [\"nope\"]\n", "scope nope"),
        ("[server]\nlisten = \"0.0.0.0:1\"\n", "unknown table"),
    ] {
        let path = d.join("bad.toml");
        std::fs::write(&path, bad).unwrap();
        let out = tessera(d, &["apply", "-f", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(why), "{bad}: {err}");
    }
}

#[tokio::test]
async fn issue16_a_client_applied_from_a_file_gets_tokens_with_its_referenced_secret() {
    let s = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = registry(dir.path(), 600);
    let file = RegistryFile::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
    let rng = tessera_server::clock::SystemRandom::default();
    let bounds = tessera_server::limits::Limits::default().client_keys;
    let cx = Context { default_lifetime: 3600, bounds: &bounds, rng: &rng, now: s.now() };
    let steps = declarative::plan(&s.store, file, &cx, false).await.unwrap();
    assert_eq!(steps.len(), 4, "{steps:?}");
    declarative::apply(&s.store, steps, &cx).await.unwrap();
    s.sync().await;
    let (status, _, body) =
        s.token_basic("shop", "shop_secret_from_a_file_0123456789", "grant_type=client_credentials&scope=orders").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 600);
}
