//! A client's key server, for `jwks_uri` tests: HTTPS on 127.0.0.1 with a development CA of
//! its own (which the authority under test must be told to trust), answering what the test
//! sets and counting the requests it receives.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tessera_server::transport::{self, Listener};

/// What the key server answers.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with this JSON document.
    Json(Value),
    /// This status and no body.
    Status(u16),
    /// 302 to this URL (e.g. [`JwksServer::moved_url`]).
    Redirect(String),
    /// 200 with this body sent in 1 KiB chunks and no `Content-Length`: only reading it
    /// tells its size.
    Streamed(String),
    /// 200 with spaces, without end (a reader that does not stop at its bound never returns).
    Endless,
    /// Nothing, ever: the request is read and left hanging.
    Never,
}

#[derive(Clone)]
struct Shared {
    answer: Arc<Mutex<Answer>>,
    requests: Arc<AtomicUsize>,
    accept: Arc<Mutex<Option<String>>>,
    /// What `/moved` serves, and how often it was asked.
    moved: Arc<Mutex<Option<Value>>>,
    moved_requests: Arc<AtomicUsize>,
}

/// A running key server; stops when dropped with the test's runtime.
pub struct JwksServer {
    /// `https://127.0.0.1:PORT/jwks`.
    pub url: String,
    /// Its CA certificate (PEM): `jwks_uri_ca_file`.
    pub ca: PathBuf,
    shared: Shared,
    _listener: Listener,
    _dir: tempfile::TempDir,
}

impl JwksServer {
    /// Starts one answering `answer`.
    pub async fn start(answer: Answer) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let dev = tessera_server::tls::dev_cert(dir.path()).unwrap();
        let tls = tessera_server::tls::server_config(&dev.cert, &dev.key).unwrap();
        let shared = Shared {
            answer: Arc::new(Mutex::new(answer)),
            requests: Arc::default(),
            accept: Arc::default(),
            moved: Arc::default(),
            moved_requests: Arc::default(),
        };
        let app = axum::Router::new()
            .route("/jwks", axum::routing::get(serve))
            .route("/moved", axum::routing::get(moved))
            .route("/.well-known/openid-configuration", axum::routing::get(moved))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Debug builds running many tests at once lag; shedding is not what these tests test.
        let limits = transport::Limits { max_scheduling_delay: Duration::from_secs(30), ..Default::default() };
        let listener = transport::serve(listener, Some(tls), app, limits).unwrap();
        Self { url: format!("https://127.0.0.1:{port}/jwks"), ca: dev.ca, shared, _listener: listener, _dir: dir }
    }

    /// Answers `answer` from now on.
    pub fn answer(&self, answer: Answer) {
        *self.shared.answer.lock().unwrap() = answer;
    }

    /// `https://127.0.0.1:PORT/moved`: a redirect target on the same server, so that only
    /// the redirect stands between a fetcher and the keys there.
    /// The server's origin, `https://127.0.0.1:PORT`: an issuer whose discovery document
    /// (`/.well-known/openid-configuration`) is what [`Self::serve_moved`] set.
    pub fn origin(&self) -> String {
        self.url.trim_end_matches("/jwks").to_owned()
    }

    pub fn moved_url(&self) -> String {
        self.url.replace("/jwks", "/moved")
    }

    /// Serves `doc` at [`Self::moved_url`].
    pub fn serve_moved(&self, doc: Value) {
        *self.shared.moved.lock().unwrap() = Some(doc);
    }

    /// Requests to `/moved` received so far.
    pub fn moved_requests(&self) -> usize {
        self.shared.moved_requests.load(Ordering::SeqCst)
    }

    /// Requests to `/jwks` received so far.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// The `Accept` header of the last request.
    pub fn last_accept(&self) -> Option<String> {
        self.shared.accept.lock().unwrap().clone()
    }
}

async fn serve(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    *shared.accept.lock().unwrap() = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let answer = shared.answer.lock().unwrap().clone();
    match answer {
        Answer::Json(doc) => axum::Json(doc).into_response(),
        Answer::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Answer::Redirect(to) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
        Answer::Streamed(text) => {
            let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                text.into_bytes().chunks(1024).map(|c| Ok(c.to_vec())).collect();
            Body::from_stream(futures_util::stream::iter(chunks)).into_response()
        }
        Answer::Endless => {
            Body::from_stream(futures_util::stream::repeat_with(|| Ok::<_, std::io::Error>(vec![b' '; 1024])))
                .into_response()
        }
        Answer::Never => std::future::pending().await,
    }
}

async fn moved(State(shared): State<Shared>) -> Response {
    shared.moved_requests.fetch_add(1, Ordering::SeqCst);
    let doc = shared.moved.lock().unwrap().clone();
    match doc {
        Some(doc) => axum::Json(doc).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
