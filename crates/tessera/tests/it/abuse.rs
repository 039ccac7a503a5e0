//! The abuse controls an operator drives from the command line, against `tessera serve`: the
//! failed-authentication log line, per-client issuance limits, and revoking every token of a
//! compromised client.

use std::time::{Duration, Instant};

use crate::cli::{eventually, ok, serve_logging_to, token};
use crate::harness::client_for;

fn generated(out: &str) -> String {
    out.lines().find_map(|l| l.strip_prefix("client_secret: ")).expect("secret printed").to_owned()
}

#[tokio::test]
async fn failed_authentications_are_logged_once_at_warn_without_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let log = d.join("serve.log");
    // Registered before the server starts: no failed attempt while waiting for the registry.
    ok(d, &["init"]);
    ok(d, &["scope", "add", "api", "--resource", "api1"]);
    let secret = generated(&ok(d, &["client", "add", "J", "--scope", "api"]));
    let served = serve_logging_to(d, &["--log-format", "text"], Some(&log));
    let http = client_for(served.ca.as_ref().unwrap());
    let base = format!("https://localhost:{}", served.addr.rsplit(':').next().unwrap());
    assert_eq!(token(&http, &base, "J", &secret).await.0, 200);
    let wrong = "not-the-secret-5d1e9a";
    assert_eq!(token(&http, &base, "J", wrong).await.0, 401);
    assert_eq!(token(&http, &base, "ghost", wrong).await.0, 401);
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if text.matches("client authentication failed").count() >= 2 || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("client authentication failed")).collect();
    assert_eq!(lines.len(), 2, "one line per failure: {text}");
    assert!(lines.iter().all(|l| l.contains("WARN") && l.contains("127.0.0.1")), "{lines:?}");
    assert!(lines[0].contains("client_id=J") && lines[0].contains("WrongSecret"), "{lines:?}");
    assert!(lines[1].contains("client_id=ghost") && lines[1].contains("UnknownClient"), "{lines:?}");
    assert!(!text.contains(wrong) && !text.contains(&secret), "a secret reached the log");
}

#[tokio::test]
async fn operators_set_a_clients_rate_and_revoke_every_token_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let served = serve_logging_to(d, &[], None);
    let http = client_for(served.ca.as_ref().unwrap());
    let base = format!("https://localhost:{}", served.addr.rsplit(':').next().unwrap());
    ok(d, &["scope", "add", "api", "--resource", "api1"]);
    let secret = generated(&ok(d, &["client", "add", "J", "--scope", "api"]));
    let ref_secret = generated(&ok(d, &["client", "add", "R", "--scope", "api", "--token-format", "reference"]));
    let api = generated(&ok(d, &["client", "add", "api1", "--permission", "introspection"]));
    eventually(&http, &base, "api1", "wrong", 401).await;
    eventually(&http, &base, "R", &ref_secret, 200).await;
    let (_, body) = token(&http, &base, "J", &secret).await;
    let jwt = body["access_token"].as_str().unwrap().to_owned();
    let (_, body) = token(&http, &base, "R", &ref_secret).await;
    let reference = body["access_token"].as_str().unwrap().to_owned();
    let active = |t: String| {
        let (http, base, api) = (http.clone(), base.clone(), api.clone());
        async move {
            let r = http.post(format!("{base}/connect/introspect")).basic_auth("api1", Some(api)).form(&[("token", t)]);
            r.send().await.unwrap().json::<serde_json::Value>().await.unwrap()["active"] == true
        }
    };
    assert!(active(jwt.clone()).await && active(reference.clone()).await);

    // A rate of one token per 100 s, bursts of one: the next request is refused.
    let shown = ok(d, &["client", "update", "J", "--issuance-rate", "0.01", "--issuance-burst", "1"]);
    assert!(shown.contains("updated client J"));
    let show: serde_json::Value = serde_json::from_str(&ok(d, &["client", "show", "J"])).unwrap();
    assert_eq!(show["issuance_rate_per_second"], 0.01);
    eventually(&http, &base, "J", &secret, 429).await;
    ok(d, &["client", "update", "J", "--issuance-rate", "default", "--issuance-burst", "default"]);
    eventually(&http, &base, "J", &secret, 200).await;

    // Compromised: every token it holds stops working at introspection.
    for id in ["J", "R"] {
        assert!(ok(d, &["token", "revoke", "--client", id]).contains("revoked every token"));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while active(jwt.clone()).await || active(reference.clone()).await {
        assert!(Instant::now() < deadline, "tokens still active after `token revoke --client`");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = crate::cli::tessera(d, &["token", "revoke", "--client", "nobody"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no client nobody"));
}
