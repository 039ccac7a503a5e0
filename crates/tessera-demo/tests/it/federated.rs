//! Issue 15 in the seed scenario: the demo's worker has no secret; its projected token from
//! the simulated cluster gets it a token, and a token of another service account does not.

use tessera_demo::{FEDERATED_CLIENT, SERVICE_ACCOUNT};

#[tokio::test]
async fn issue15_the_demo_shows_a_worker_with_no_secret_acting_through_its_projected_token() {
    let dir = std::env::temp_dir().join(format!("tessera-demo-federated-test-{}", std::process::id()));
    let lines = std::sync::Mutex::new(Vec::new());
    let result = tessera_demo::demo_reporting(&dir, &|line| lines.lock().unwrap().push(line.to_owned())).await;
    // The projected token and the cluster's keys were written where a pod would find them.
    let token = std::fs::read_to_string(dir.join("cluster/token"));
    let _ = std::fs::remove_dir_all(&dir);
    let lines = lines.into_inner().unwrap();
    assert!(result.is_ok(), "{result:?}\n{lines:#?}");
    let line = lines.iter().find(|l| l.starts_with("federated worker:")).unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(line.contains(SERVICE_ACCOUNT) && line.contains(FEDERATED_CLIENT) && line.ends_with("200 OK"), "{line}");
    let token = token.expect("the projected token file");
    let claims = tessera_testkit::jwt_payload(&token);
    assert_eq!(claims["sub"], SERVICE_ACCOUNT);
    assert_eq!(claims["kubernetes.io"]["namespace"], "demo");
}
