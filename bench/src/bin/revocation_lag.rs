//! Revocation-to-refusal lag at the APIs (issue 12): for each of N tokens, the API accepts it
//! (so its guard has it cached), the client revokes it at the server, and the API is called
//! with it back to back until it refuses; the lag is from the revocation's 200 to the first
//! refusal. Prints p50/p99/max per API as JSON.
//!
//! `revocation_lag --issuer URL --ca PEM --n N
//!      [--rest URL --rest-client ID:SECRET --rest-scope S]
//!      [--greeter URL --greeter-client ID:SECRET --greeter-scope S]`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use tessera_greet::HelloRequest;
use tessera_greet::greeter_client::GreeterClient;

struct Api {
    url: String,
    client: (String, String),
    scope: String,
}

fn pair(v: &str) -> (String, String) {
    let (a, b) = v.split_once(':').expect("ID:SECRET");
    (a.to_owned(), b.to_owned())
}

async fn token(http: &reqwest::Client, issuer: &str, (id, secret): &(String, String), scope: &str) -> String {
    let r = http
        .post(format!("{issuer}/connect/token"))
        .basic_auth(id, Some(secret))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("grant_type=client_credentials&scope={scope}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "token: {}", r.status());
    r.json::<serde_json::Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

async fn revoke(http: &reqwest::Client, issuer: &str, (id, secret): &(String, String), token: &str) -> Instant {
    let r = http
        .post(format!("{issuer}/connect/revoke"))
        .basic_auth(id, Some(secret))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    Instant::now()
}

async fn rest_accepts(http: &reqwest::Client, url: &str, token: &str) -> bool {
    let status = http.get(url).bearer_auth(token).send().await.unwrap().status();
    assert!(status == 200 || status == 401, "the API answered {status}");
    status == 200
}

async fn greeter_accepts(channel: &tonic::transport::Channel, token: &str) -> bool {
    let mut client = GreeterClient::new(channel.clone());
    let mut request = tonic::Request::new(HelloRequest { name: "lag".into() });
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    match client.say_hello(request).await {
        Ok(_) => true,
        Err(s) if s.code() == tonic::Code::Unauthenticated => false,
        Err(s) => panic!("the Greeter answered {s}"),
    }
}

fn summary(name: &str, mut lags: Vec<Duration>) -> String {
    lags.sort();
    let at = |q: f64| lags[((lags.len() as f64 * q) as usize).min(lags.len() - 1)].as_secs_f64() * 1000.0;
    format!(
        "{{\"api\":\"{name}\",\"n\":{},\"p50_ms\":{:.1},\"p99_ms\":{:.1},\"max_ms\":{:.1}}}",
        lags.len(),
        at(0.5),
        at(0.99),
        lags.last().unwrap().as_secs_f64() * 1000.0
    )
}

#[tokio::main]
async fn main() {
    let opts = tessera_bench::named_args();
    let issuer = opts.get("issuer").expect("--issuer").clone();
    let ca = PathBuf::from(opts.get("ca").expect("--ca"));
    let n: usize = opts.get("n").map_or(200, |v| v.parse().unwrap());
    let api = |name: &str| {
        opts.get(name).map(|url| Api {
            url: url.clone(),
            client: pair(opts.get(&format!("{name}-client")).expect("ID:SECRET for the API's client")),
            scope: opts.get(&format!("{name}-scope")).expect("the scope the API requires").clone(),
        })
    };
    let (rest, greeter) = (api("rest"), api("greeter"));
    let pem = std::fs::read(&ca).unwrap();
    let http =
        reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap()).build().unwrap();
    let channel = match &greeter {
        Some(g) => Some(tessera_demo::tls_channel(&g.url, &ca).await.unwrap()),
        None => None,
    };
    let (mut rest_lags, mut greeter_lags) = (Vec::new(), Vec::new());
    for _ in 0..n {
        if let Some(api) = &rest {
            let t = token(&http, &issuer, &api.client, &api.scope).await;
            assert!(rest_accepts(&http, &api.url, &t).await, "a fresh token is accepted");
            let revoked = revoke(&http, &issuer, &api.client, &t).await;
            while rest_accepts(&http, &api.url, &t).await {}
            rest_lags.push(revoked.elapsed());
        }
        if let (Some(api), Some(channel)) = (&greeter, &channel) {
            let t = token(&http, &issuer, &api.client, &api.scope).await;
            assert!(greeter_accepts(channel, &t).await, "a fresh token is accepted");
            let revoked = revoke(&http, &issuer, &api.client, &t).await;
            while greeter_accepts(channel, &t).await {}
            greeter_lags.push(revoked.elapsed());
        }
    }
    if !rest_lags.is_empty() {
        println!("{}", summary("rest", rest_lags));
    }
    if !greeter_lags.is_empty() {
        println!("{}", summary("greeter", greeter_lags));
    }
}
