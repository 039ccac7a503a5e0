//! What the server counts for its operators (issue 16), rendered in the Prometheus text
//! format on the `metrics_listen` listener only, never on the public one.
//!
//! Every label comes from a closed set, so the number of series is bounded by construction:
//! routes, grant types and error codes are enums, authentication failure reasons are the
//! variants of each method's failure enum, and the `client_id` label is only ever a client
//! that authenticated (registered, then); a request that did not authenticate counts under
//! `unknown`.
//!
//! Why not the `metrics` facade and `metrics-exporter-prometheus`: the exporter, even with
//! its default features off, brings some fifteen crates (a second `rand` and `hashbrown`,
//! `evmap`, `quanta` with `raw-cpuid`, a DDSketch), and the facade hashes a key on every
//! record. These label sets are known at compile time, so a struct of atomics records with
//! one relaxed add and no lookup, and the text format is fifty lines ([`text`]).
//!
//! Off ([`Metrics::off`]) when no `metrics_listen` is configured: nobody would read them.

mod histogram;
pub(crate) mod listener;
mod process;
pub(crate) mod text;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tessera_store::BatchCommit;
use tessera_types::{ClientId, ErrorCode, GrantType, UnixTime};

use self::histogram::{BATCH_BUCKETS, Histogram, LATENCY_BUCKETS};
pub use self::text::CONTENT_TYPE;
use self::text::Text;

/// Which endpoint a request was for: the label of the latency histograms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    #[allow(missing_docs)]
    Token,
    #[allow(missing_docs)]
    Introspect,
    #[allow(missing_docs)]
    Revoke,
    /// The revocation feed (long polls: their latency is mostly waiting).
    Events,
    /// Both discovery documents.
    Discovery,
    #[allow(missing_docs)]
    Jwks,
    /// `/healthz` and `/readyz`.
    Health,
    /// Anything else (404s, mostly).
    Other,
}

impl Route {
    const ALL: [Route; 8] = [
        Route::Token,
        Route::Introspect,
        Route::Revoke,
        Route::Events,
        Route::Discovery,
        Route::Jwks,
        Route::Health,
        Route::Other,
    ];

    /// The route of a request path.
    pub fn of(path: &str) -> Self {
        match path {
            "/connect/token" => Self::Token,
            "/connect/introspect" => Self::Introspect,
            "/connect/revoke" => Self::Revoke,
            "/connect/events" => Self::Events,
            "/.well-known/oauth-authorization-server" | "/.well-known/openid-configuration" => Self::Discovery,
            "/.well-known/jwks" => Self::Jwks,
            "/healthz" | "/readyz" => Self::Health,
            _ => Self::Other,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Introspect => "introspect",
            Self::Revoke => "revoke",
            Self::Events => "events",
            Self::Discovery => "discovery",
            Self::Jwks => "jwks",
            Self::Health => "health",
            Self::Other => "other",
        }
    }
}

/// A limit that refused (or, in monitor mode, let through) a request in the application;
/// the listener's own limits are counted by [`crate::transport::Counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limited {
    /// 429: the client id or address backs off after failed authentications.
    AuthBackoff,
    /// 429: too many secret verifications in progress from one address.
    KdfPerAddress,
    /// 503: the secret verification pool is full.
    KdfBusy,
    /// 429: the client's issuance rate.
    IssuanceRate,
    /// Issued past the issuance rate, in monitor mode.
    IssuanceRateMonitored,
    /// 429: the client's cap on live reference tokens.
    LiveTokens,
    /// 503: the registry snapshot went unconfirmed past `registry_max_stale_ms`.
    RegistryStale,
    /// A revocation-feed long poll answered at once: too many were waiting.
    LongPolls,
}

impl Limited {
    const ALL: [Limited; 8] = [
        Limited::AuthBackoff,
        Limited::KdfPerAddress,
        Limited::KdfBusy,
        Limited::IssuanceRate,
        Limited::IssuanceRateMonitored,
        Limited::LiveTokens,
        Limited::RegistryStale,
        Limited::LongPolls,
    ];

    /// `(limiter, decision)` labels.
    fn labels(self) -> (&'static str, &'static str) {
        match self {
            Self::AuthBackoff => ("auth_backoff", "429"),
            Self::KdfPerAddress => ("kdf_per_address", "429"),
            Self::KdfBusy => ("kdf_pool", "503"),
            Self::IssuanceRate => ("issuance_rate", "429"),
            Self::IssuanceRateMonitored => ("issuance_rate", "monitored"),
            Self::LiveTokens => ("live_reference_tokens", "429"),
            Self::RegistryStale => ("registry_stale", "503"),
            Self::LongPolls => ("event_long_polls", "answered_early"),
        }
    }
}

/// What a store error interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// A request's read or write (introspection, revocation, reference tokens, DPoP).
    Request,
    /// The registry poller's revision check or reload (counted by the registry handle).
    RegistryRefresh,
    /// The pruning pass.
    Prune,
    /// The readiness probe's ping.
    Readiness,
}

impl StoreOp {
    const ALL: [StoreOp; 4] = [StoreOp::Request, StoreOp::RegistryRefresh, StoreOp::Prune, StoreOp::Readiness];

    fn label(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::RegistryRefresh => "registry_refresh",
            Self::Prune => "prune",
            Self::Readiness => "readiness",
        }
    }
}

/// Every [`ErrorCode`], in the order of the token request counters' slots (slot 0 is
/// success). The match in [`code_slot`] makes a new code a compile error here.
const CODES: [ErrorCode; 11] = [
    ErrorCode::InvalidRequest,
    ErrorCode::InvalidClient,
    ErrorCode::InvalidGrant,
    ErrorCode::UnauthorizedClient,
    ErrorCode::UnsupportedGrantType,
    ErrorCode::InvalidScope,
    ErrorCode::InvalidTarget,
    ErrorCode::ServerError,
    ErrorCode::TemporarilyUnavailable,
    ErrorCode::InvalidDpopProof,
    ErrorCode::UseDpopNonce,
];

fn code_slot(code: ErrorCode) -> usize {
    1 + match code {
        ErrorCode::InvalidRequest => 0,
        ErrorCode::InvalidClient => 1,
        ErrorCode::InvalidGrant => 2,
        ErrorCode::UnauthorizedClient => 3,
        ErrorCode::UnsupportedGrantType => 4,
        ErrorCode::InvalidScope => 5,
        ErrorCode::InvalidTarget => 6,
        ErrorCode::ServerError => 7,
        ErrorCode::TemporarilyUnavailable => 8,
        ErrorCode::InvalidDpopProof => 9,
        ErrorCode::UseDpopNonce => 10,
    }
}

/// Grant slots: the three grants, then "none" (missing or unsupported `grant_type`).
const GRANTS: [&str; 4] = ["client_credentials", "jwt_bearer", "token_exchange", "none"];

fn grant_slot(grant: Option<GrantType>) -> usize {
    match grant {
        Some(GrantType::ClientCredentials) => 0,
        Some(GrantType::JwtBearer) => 1,
        Some(GrantType::TokenExchange) => 2,
        None => 3,
    }
}

/// One client's token requests: by grant, then by outcome (issued, or the error code).
struct TokenCounters([[AtomicU64; 12]; 4]);

impl Default for TokenCounters {
    fn default() -> Self {
        Self(std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))))
    }
}

/// Group-commit statistics of one writer.
struct BatchStats {
    sizes: Histogram,
    latency: Histogram,
    failed: AtomicU64,
}

impl BatchStats {
    fn new() -> Self {
        Self {
            sizes: Histogram::new(BATCH_BUCKETS),
            latency: Histogram::new(LATENCY_BUCKETS),
            failed: AtomicU64::new(0),
        }
    }
}

/// The server's metrics. Cheap to share (`Arc`); recording never blocks on a scrape.
pub struct Metrics {
    on: bool,
    clients: RwLock<HashMap<ClientId, Arc<TokenCounters>>>,
    unknown: TokenCounters,
    latency: Vec<Histogram>,
    /// By route, then status class (1xx..5xx).
    responses: Vec<[AtomicU64; 5]>,
    /// `(method, reason)`; authentication failures are not the hot path (a failure costs a
    /// KDF or a signature check), so a map under a mutex is fine.
    auth_failures: Mutex<BTreeMap<(&'static str, String), u64>>,
    limited: [AtomicU64; 8],
    /// Active, inactive, refused.
    introspections: [AtomicU64; 3],
    /// Revoked (or already unknown: §2.2 answers 200 alike), refused.
    revocations: [AtomicU64; 2],
    /// Reference tokens, assertion ids.
    batches: [BatchStats; 2],
    store_errors: [AtomicU64; 4],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("on", &self.on).finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::off()
    }
}

impl Metrics {
    fn new(on: bool) -> Self {
        Self {
            on,
            clients: RwLock::new(HashMap::new()),
            unknown: TokenCounters::default(),
            latency: Route::ALL.iter().map(|_| Histogram::new(LATENCY_BUCKETS)).collect(),
            responses: Route::ALL.iter().map(|_| std::array::from_fn(|_| AtomicU64::new(0))).collect(),
            auth_failures: Mutex::new(BTreeMap::new()),
            limited: std::array::from_fn(|_| AtomicU64::new(0)),
            introspections: std::array::from_fn(|_| AtomicU64::new(0)),
            revocations: std::array::from_fn(|_| AtomicU64::new(0)),
            batches: [BatchStats::new(), BatchStats::new()],
            store_errors: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Recording.
    pub fn on() -> Self {
        Self::new(true)
    }

    /// Recording nothing (every call returns at its first branch).
    pub fn off() -> Self {
        Self::new(false)
    }

    /// Whether anything is recorded.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// A request answered on `route` with `status` after `took`.
    pub fn request(&self, route: Route, status: u16, took: Duration) {
        if !self.on {
            return;
        }
        let r = Route::ALL.iter().position(|x| *x == route).unwrap_or(Route::ALL.len() - 1);
        self.latency[r].record(took.as_secs_f64());
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[r][class].fetch_add(1, Ordering::Relaxed);
    }

    /// A token request's outcome: `client` is the client that authenticated, if one did.
    pub(crate) fn token_request(&self, client: Option<&ClientId>, grant: Option<GrantType>, error: Option<ErrorCode>) {
        if !self.on {
            return;
        }
        let slot = error.map_or(0, code_slot);
        let g = grant_slot(grant);
        let Some(client) = client else {
            self.unknown.0[g][slot].fetch_add(1, Ordering::Relaxed);
            return;
        };
        if let Some(c) = self.clients.read().expect("metrics lock").get(client) {
            c.0[g][slot].fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut clients = self.clients.write().expect("metrics lock");
        clients.entry(client.clone()).or_default().0[g][slot].fetch_add(1, Ordering::Relaxed);
    }

    /// A failed client authentication; `reason` is a variant of the method's failure enum.
    pub(crate) fn auth_failure(&self, method: &'static str, reason: &str) {
        if !self.on {
            return;
        }
        let reason = snake_case(reason);
        *self.auth_failures.lock().expect("metrics lock").entry((method, reason)).or_insert(0) += 1;
    }

    pub(crate) fn limited(&self, what: Limited) {
        if !self.on {
            return;
        }
        let i = Limited::ALL.iter().position(|x| *x == what).expect("listed");
        self.limited[i].fetch_add(1, Ordering::Relaxed);
    }

    /// An introspection answer: `Some(active)`, or `None` when the request was refused.
    pub(crate) fn introspection(&self, active: Option<bool>) {
        if self.on {
            let i = match active {
                Some(true) => 0,
                Some(false) => 1,
                None => 2,
            };
            self.introspections[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn revocation(&self, ok: bool) {
        if self.on {
            self.revocations[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn store_error(&self, op: StoreOp) {
        if self.on {
            let i = StoreOp::ALL.iter().position(|x| *x == op).expect("listed");
            self.store_errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A group commit of the store's writers.
    pub fn batch(&self, commit: BatchCommit) {
        if !self.on {
            return;
        }
        let b = &self.batches[usize::from(commit.writer != "reference token")];
        b.sizes.record(commit.size as f64);
        b.latency.record(commit.took.as_secs_f64());
        if !commit.ok {
            b.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The scrape answer: these counters, what the [`Sources`] hold now, and the process.
    pub fn render(&self, sources: &Sources<'_>) -> String {
        let mut t = Text::default();
        self.render_requests(&mut t);
        self.render_rest(&mut t, sources);
        sources.render(&mut t);
        process::render(&mut t);
        t.0
    }

    fn render_requests(&self, t: &mut Text) {
        let name = "tessera_token_requests_total";
        t.family(name, "Token requests by authenticated client, grant type and outcome.", "counter");
        let clients = self.clients.read().expect("metrics lock");
        let mut all: Vec<(&str, &TokenCounters)> = clients.iter().map(|(id, c)| (id.as_str(), &**c)).collect();
        all.sort_by_key(|(id, _)| *id);
        all.push(("unknown", &self.unknown));
        for (client, counters) in all {
            for (g, by_outcome) in counters.0.iter().enumerate() {
                for (slot, n) in by_outcome.iter().enumerate() {
                    let n = n.load(Ordering::Relaxed);
                    if n == 0 {
                        continue;
                    }
                    let (result, error) =
                        if slot == 0 { ("issued", "") } else { ("refused", CODES[slot - 1].as_str()) };
                    let labels =
                        [("client_id", client), ("grant_type", GRANTS[g]), ("result", result), ("error", error)];
                    t.sample(name, &labels, n as f64);
                }
            }
        }
        drop(clients);

        let name = "tessera_request_duration_seconds";
        t.family(name, "Time from request head to response head, by endpoint.", "histogram");
        for (route, h) in Route::ALL.iter().zip(&self.latency) {
            t.histogram(name, &[("endpoint", route.label())], h.snapshot());
        }
        let name = "tessera_http_responses_total";
        t.family(name, "Responses by endpoint and status class.", "counter");
        for (route, classes) in Route::ALL.iter().zip(&self.responses) {
            for (i, n) in classes.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let class = format!("{}xx", i + 1);
                    t.sample(name, &[("endpoint", route.label()), ("status", &class)], n as f64);
                }
            }
        }
    }

    fn render_rest(&self, t: &mut Text, sources: &Sources<'_>) {
        let name = "tessera_client_auth_failures_total";
        t.family(name, "Failed client authentications by method and reason.", "counter");
        for ((method, reason), n) in self.auth_failures.lock().expect("metrics lock").iter() {
            t.sample(name, &[("method", method), ("reason", reason)], *n as f64);
        }
        let name = "tessera_limited_total";
        t.family(
            name,
            "Requests a limit refused (or let through in monitor mode), by limiter and decision.",
            "counter",
        );
        for (what, n) in Limited::ALL.iter().zip(&self.limited) {
            let (limiter, decision) = what.labels();
            t.sample(name, &[("limiter", limiter), ("decision", decision)], n.load(Ordering::Relaxed) as f64);
        }
        let name = "tessera_introspections_total";
        t.family(name, "Introspection requests by answer (RFC 7662).", "counter");
        for (result, n) in ["active", "inactive", "refused"].iter().zip(&self.introspections) {
            t.sample(name, &[("result", result)], n.load(Ordering::Relaxed) as f64);
        }
        let name = "tessera_revocations_total";
        t.family(name, "Revocation requests by answer (RFC 7009).", "counter");
        for (result, n) in ["ok", "refused"].iter().zip(&self.revocations) {
            t.sample(name, &[("result", result)], n.load(Ordering::Relaxed) as f64);
        }
        let writers = ["reference_token", "assertion_jti"];
        let name = "tessera_store_batch_size";
        t.family(name, "Writes per group commit, by writer.", "histogram");
        for (w, b) in writers.iter().zip(&self.batches) {
            t.histogram(name, &[("writer", w)], b.sizes.snapshot());
        }
        let name = "tessera_store_commit_duration_seconds";
        t.family(name, "Group commit latency, by writer.", "histogram");
        for (w, b) in writers.iter().zip(&self.batches) {
            t.histogram(name, &[("writer", w)], b.latency.snapshot());
        }
        let name = "tessera_store_errors_total";
        t.family(name, "Store operations that failed, by what they served.", "counter");
        for (w, b) in writers.iter().zip(&self.batches) {
            let op = format!("{w}_commit");
            t.sample(name, &[("operation", &op)], b.failed.load(Ordering::Relaxed) as f64);
        }
        for (op, n) in StoreOp::ALL.iter().zip(&self.store_errors) {
            // The poller counts its own failures (it runs with or without metrics).
            let n = match op {
                StoreOp::RegistryRefresh => sources.registry.refresh_failures(),
                _ => n.load(Ordering::Relaxed),
            };
            t.sample(name, &[("operation", op.label())], n as f64);
        }
    }
}

/// What is read, not counted, at scrape time.
pub struct Sources<'a> {
    /// The registry handle (revision, confirmation age, keys).
    pub registry: &'a crate::RegistryHandle,
    /// The listener's counters.
    pub transport: Option<&'a crate::transport::Counters>,
    /// Access tokens issued since start.
    pub tokens_issued: u64,
    /// Now, for key ages.
    pub now: UnixTime,
}

impl Sources<'_> {
    fn render(&self, t: &mut Text) {
        t.counter("tessera_tokens_issued_total", "Access tokens issued since start.", self.tokens_issued as f64);
        if let Some(c) = self.transport {
            let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
            t.counter("tessera_connections_accepted_total", "Connections accepted.", load(&c.accepted));
            t.counter("tessera_connections_idle_closed_total", "Connections closed for idling.", load(&c.idle_closed));
            let name = "tessera_listener_limited_total";
            t.family(name, "Connections and requests the listener's limits refused, by limiter.", "counter");
            t.sample(name, &[("limiter", "max_connections"), ("decision", "closed")], load(&c.refused));
            t.sample(name, &[("limiter", "concurrency"), ("decision", "503")], load(&c.shed));
            t.sample(name, &[("limiter", "request_timeout"), ("decision", "503")], load(&c.timed_out));
        }
        let registry = self.registry.get();
        t.gauge("tessera_registry_revision", "Registry revision served.", registry.revision as f64);
        t.gauge(
            "tessera_registry_unconfirmed_seconds",
            "Time since the store last confirmed the registry snapshot (staleness).",
            self.registry.unconfirmed_for().as_secs_f64(),
        );
        t.counter(
            "tessera_registry_refresh_failures_total",
            "Registry refreshes that failed (the last good snapshot is kept).",
            self.registry.refresh_failures() as f64,
        );
        let name = "tessera_signing_key_age_seconds";
        t.family(name, "Age of each published signing key, by kid, algorithm and phase.", "gauge");
        for k in registry.key_info() {
            let age = self.now.0.saturating_sub(k.created_at.0).max(0) as f64;
            t.sample(name, &[("kid", k.kid.as_str()), ("alg", k.alg.as_str()), ("phase", k.phase)], age);
        }
    }
}

/// `UnknownClient` → `unknown_client`; a variant with data keeps only its name.
fn snake_case(debug: &str) -> String {
    let name = debug.split(['(', ' ', '{']).next().unwrap_or(debug);
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_reasons_become_snake_case_names() {
        assert_eq!(snake_case("UnknownClient"), "unknown_client");
        assert_eq!(snake_case("Certificate(Expired)"), "certificate");
        assert_eq!(snake_case("TooLongLived"), "too_long_lived");
    }

    #[test]
    fn off_records_nothing() {
        let m = Metrics::off();
        m.token_request(None, None, Some(ErrorCode::InvalidClient));
        m.limited(Limited::AuthBackoff);
        assert_eq!(m.unknown.0[3][code_slot(ErrorCode::InvalidClient)].load(Ordering::Relaxed), 0);
        let m = Metrics::on();
        m.token_request(None, None, Some(ErrorCode::InvalidClient));
        assert_eq!(m.unknown.0[3][code_slot(ErrorCode::InvalidClient)].load(Ordering::Relaxed), 1);
    }
}
