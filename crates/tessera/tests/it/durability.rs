//! Nothing acknowledged is lost to a crash: the server is killed with SIGKILL while clients
//! are being answered, restarted, and every token and revocation it acknowledged still holds.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;

use crate::cli::{ok, register_api, serve};
use crate::harness::{FORM, client_for};

async fn post(http: &reqwest::Client, url: &str, id: &str, secret: &str, body: String) -> Option<(u16, String)> {
    let r = http.post(url).basic_auth(id, Some(secret)).header(CONTENT_TYPE, FORM).body(body).send().await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.ok()?))
}

#[tokio::test]
async fn sigkill_loses_no_acknowledged_token_or_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(d, &["init"]);
    register_api(d, &[], &[("CC", "cc_secret", Some("reference")), ("J", "j_secret", None)]);
    // A fixed issuer: the port changes across the restart, the issuer of the tokens must not.
    let mut served = serve(d, &["--issuer", "https://tessera.test"]);
    let http = client_for(served.ca.as_ref().unwrap());
    let base = format!("https://localhost:{}", served.addr.rsplit(':').next().unwrap());

    // Workers issue tokens and revoke every third one, recording only what was acknowledged.
    // A refusal (429 while 24 workers start verifying one secret at once, 503 while a debug
    // build lags) is tried again; no answer at all ends a worker: the server is gone.
    let issued: Arc<Mutex<Vec<String>>> = Arc::default();
    let revoked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..24 {
        let (http, base, issued, revoked) = (http.clone(), base.clone(), issued.clone(), revoked.clone());
        workers.push(tokio::spawn(async move {
            let (id, secret) = if w % 4 == 0 { ("J", "j_secret") } else { ("CC", "cc_secret") };
            let mut n = 0;
            loop {
                let token_url = format!("{base}/connect/token");
                let Some((status, body)) =
                    post(&http, &token_url, id, secret, "grant_type=client_credentials".into()).await
                else {
                    return;
                };
                if status != 200 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                let token = v["access_token"].as_str().unwrap().to_string();
                n += 1;
                if n % 3 == 0 {
                    let revoke_url = format!("{base}/connect/revoke");
                    match post(&http, &revoke_url, id, secret, format!("token={token}")).await {
                        Some((200, _)) => revoked.lock().unwrap().push(token),
                        // Refused: not revoked.
                        Some(_) => issued.lock().unwrap().push(token),
                        // No answer: the revocation may or may not have happened.
                        None => return,
                    }
                } else {
                    issued.lock().unwrap().push(token);
                }
            }
        }));
    }
    // Kill in the middle of the traffic, without warning, once enough has been acknowledged.
    let enough = || issued.lock().unwrap().len() >= 60 && revoked.lock().unwrap().len() >= 25;
    let give_up = Instant::now() + Duration::from_secs(30);
    while !enough() && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = served.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
    let _ = served.child.wait();
    for w in workers {
        w.await.unwrap();
    }
    let issued = issued.lock().unwrap().clone();
    let revoked = revoked.lock().unwrap().clone();
    assert!(issued.len() > 50, "only {} tokens were issued before the kill", issued.len());
    assert!(revoked.len() > 20, "only {} revocations before the kill", revoked.len());

    let served = serve(d, &["--issuer", "https://tessera.test"]);
    let http = client_for(served.ca.as_ref().unwrap());
    let base = format!("https://localhost:{}", served.addr.rsplit(':').next().unwrap());
    let introspect = format!("{base}/connect/introspect");
    for token in &issued {
        let (status, body) =
            post(&http, &introspect, "rs_dataEventRecordsApi", "api_secret", format!("token={token}")).await.unwrap();
        assert_eq!(status, 200);
        assert!(body.contains(r#""active":true"#), "acknowledged token lost: {body} {token}");
    }
    for token in &revoked {
        let (_, body) =
            post(&http, &introspect, "rs_dataEventRecordsApi", "api_secret", format!("token={token}")).await.unwrap();
        assert_eq!(body, r#"{"active":false}"#, "acknowledged revocation lost");
    }
}
