//! Connection hygiene: nobody holds a connection, a request head or a body open for long.

use std::net::IpAddr;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use tessera_server::FileConfig;
use tessera_server::limits::LimitsFile;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::harness::{Server, connect, http, read_until_closed, trickle};

fn fast(limits: LimitsFile) -> FileConfig {
    FileConfig {
        limits: LimitsFile {
            header_read_timeout_ms: Some(600),
            first_request_timeout_ms: Some(600),
            idle_timeout_ms: Some(600),
            request_timeout_ms: Some(800),
            ..limits
        },
        ..Default::default()
    }
}

const HEAD: &[u8] = b"POST /connect/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";

#[tokio::test]
async fn a_request_head_trickled_byte_by_byte_is_cut_off() {
    let s = Server::start(fast(LimitsFile::default())).await;
    let mut c = connect(s.addr, None).await;
    let held = trickle(&mut c, HEAD, Duration::from_millis(100), Duration::from_secs(10)).await;
    assert!(held < Duration::from_secs(3), "the head was trickled for {held:?}");
    s.stop().await;
}

#[tokio::test]
async fn over_tls_a_stalled_handshake_and_a_trickled_head_are_cut_off() {
    let s = Server::start_with(fast(LimitsFile::default()), true).await;
    // A TCP connection that never starts its TLS handshake.
    let mut idle = connect(s.addr, None).await;
    let (_, closed) = read_until_closed(&mut idle, Duration::from_secs(3)).await;
    assert!(closed, "a connection without a handshake was kept");
    // A real handshake, then a head trickled inside TLS.
    let pem = std::fs::read(s.ca.as_ref().unwrap()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = connect(s.addr, None).await;
    let mut tls = connector.connect("localhost".try_into().unwrap(), tcp).await.unwrap();
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 256];
    let mut closed = false;
    for b in HEAD.iter().cycle().take(200) {
        if tls.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(100), tls.read(&mut buf)).await {
            closed = true;
            break;
        }
    }
    assert!(closed && started.elapsed() < Duration::from_secs(3), "trickled head held {:?}", started.elapsed());
    s.stop().await;
}

#[tokio::test]
async fn a_body_trickled_byte_by_byte_gets_503_within_the_request_timeout() {
    let s = Server::start(fast(LimitsFile::default())).await;
    let mut c = connect(s.addr, None).await;
    c.write_all(b"POST /connect/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n")
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(5) {
        if c.write_all(b"g").await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(100), c.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if !got.is_empty() {
            break;
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 503"), "answer: {text:?}");
    assert!(text.to_ascii_lowercase().contains("retry-after: 1"), "answer: {text:?}");
    assert!(started.elapsed() < Duration::from_secs(3), "held {:?}", started.elapsed());
    s.stop().await;
}

#[tokio::test]
async fn idle_connections_are_closed_before_and_between_requests_http1_and_http2() {
    let s = Server::start(fast(LimitsFile::default())).await;
    // Never sends a request.
    let mut silent = connect(s.addr, None).await;
    let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(3)).await;
    assert!(closed, "a connection that never sent a request was kept");

    // One request, then keep-alive silence.
    let mut kept = connect(s.addr, None).await;
    kept.write_all(b"GET /.well-known/jwks HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (got, closed) = read_until_closed(&mut kept, Duration::from_secs(3)).await;
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    assert!(closed, "an idle keep-alive connection was kept");

    // HTTP/2 with prior knowledge: preface and SETTINGS, then silence.
    let mut h2 = connect(s.addr, None).await;
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
    let (got, closed) = read_until_closed(&mut h2, Duration::from_secs(3)).await;
    assert!(!got.is_empty(), "the server spoke HTTP/2");
    assert!(closed, "an idle HTTP/2 connection was kept");
    // HTTP/1 connections may go to hyper's head timeout first; HTTP/2 has only the watchdog.
    assert!(s.running().transport_counters().idle_closed.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    s.stop().await;
}

#[tokio::test]
async fn the_connection_caps_hold_and_free_slots_serve_again() {
    let limits = LimitsFile {
        max_connections: Some(12),
        max_connections_per_ip: Some(8),
        first_request_timeout_ms: Some(30_000),
        ..Default::default()
    };
    let s = Server::start(FileConfig { limits, ..Default::default() }).await;
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    // One address fills its share...
    let mut mine = Vec::new();
    for _ in 0..8 {
        mine.push(connect(s.addr, None).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut refused = connect(s.addr, None).await;
    let (_, closed) = read_until_closed(&mut refused, Duration::from_secs(1)).await;
    assert!(closed, "a ninth connection from one address was kept");
    // ...another address still gets in, up to the global cap.
    let mut theirs = Vec::new();
    for _ in 0..4 {
        theirs.push(connect(s.addr, Some(other)).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut over = connect(s.addr, Some(other)).await;
    let (_, closed) = read_until_closed(&mut over, Duration::from_secs(1)).await;
    assert!(closed, "a connection past max_connections was kept");
    assert!(s.running().transport_counters().refused.load(std::sync::atomic::Ordering::Relaxed) >= 2);
    // Closing idle connections frees their slots.
    mine.clear();
    theirs.clear();
    let mut served = None;
    for _ in 0..50 {
        if let Ok(r) = http().get(s.url("/.well-known/jwks")).send().await {
            served = Some(r.status().as_u16());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(served, Some(200));
    s.stop().await;
}

#[tokio::test]
async fn an_oversized_request_head_is_refused() {
    let s = Server::start(FileConfig::default()).await;
    let mut c = connect(s.addr, None).await;
    let mut head = b"GET /.well-known/jwks HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..40 {
        head.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "a".repeat(1000)).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    let _ = c.write_all(&head).await;
    let (got, closed) = read_until_closed(&mut c, Duration::from_secs(3)).await;
    let text = String::from_utf8_lossy(&got);
    assert!(closed);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 431"), "answer: {text:?}");
    assert!(!text.starts_with("HTTP/1.1 200"));
    s.stop().await;
}

#[tokio::test]
async fn a_client_sending_an_oversized_body_first_still_reads_its_413() {
    let s = Server::start(FileConfig::default()).await;
    let mut c = connect(s.addr, None).await;
    let body = vec![b'a'; 4 << 20];
    let head = format!(
        "POST /connect/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let (mut read, mut write) = c.into_split();
    // Keep sending the body while the answer comes back, as a naive client does.
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&body).await;
        write
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let _ = writer.await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 413"), "answer: {text:?}");
    assert!(text.contains("invalid_request"));
    s.stop().await;
}

#[tokio::test]
async fn past_the_concurrency_limit_requests_are_shed_with_503_at_once() {
    let limits =
        LimitsFile { max_concurrent_requests: Some(3), request_timeout_ms: Some(20_000), ..Default::default() };
    let s = Server::start(FileConfig { limits, ..Default::default() }).await;
    // Three requests whose bodies never come occupy every slot.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = connect(s.addr, None).await;
        c.write_all(b"POST /connect/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n")
            .await
            .unwrap();
        held.push(c);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = tokio::time::Instant::now();
    let r = http().get(s.url("/.well-known/jwks")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert!(started.elapsed() < Duration::from_secs(1));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    // Issue 16: the probes are answered all the same (an orchestrator must not restart an
    // instance for being busy).
    for probe in ["/healthz", "/readyz"] {
        assert_eq!(http().get(s.url(probe)).send().await.unwrap().status(), 200, "{probe}");
    }
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(http().get(s.url("/.well-known/jwks")).send().await.unwrap().status(), 200);
    assert!(s.running().transport_counters().shed.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    s.stop().await;
}
