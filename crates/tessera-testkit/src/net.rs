//! Network stand-ins for an authority that misbehaves.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A listener on 127.0.0.1 that accepts connections and never answers: a blackholed authority.
/// Returns its `http://` URL and the count of connections accepted.
pub async fn blackhole() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        // Held, not dropped: a closed socket would be an answer.
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (url, accepted)
}
