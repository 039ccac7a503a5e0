//! Bulk seeding for the cost curves (`bench/scale/run.py`): writes rows straight into a
//! Tessera SQLite store, in large transactions, instead of going through the CLI one row at a
//! time. Run it while no server has the store open.
//!
//! `scale_seed clients --data-dir D --template ID --prefix P --from A --to B`
//!   copies client ID's `clients` row and its secret rows to clients `P{i:07}` for i in A..B
//!   (same permissions, limits and secret hash: every copy authenticates with ID's secret),
//!   and bumps the registry revision as any registry change does.
//!
//! `scale_seed tokens --data-dir D --from A --to B --exp UNIX [--client C | --client-prefix P --clients N]
//!   [--audience AUD] [--scope S]`
//!   inserts the reference tokens number A..B of [`tessera_bench::scale_token`] (their SHA-256,
//!   as the server stores them), in hash order so the primary-key index grows at its end.
//!
//! Prints one JSON line: rows written and seconds taken.

use std::time::Instant;

use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

fn safe(s: &str) -> &str {
    // Values are inlined into SQL text: only identifier characters pass.
    assert!(
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)),
        "refusing value {s:?}"
    );
    s
}

async fn exec(conn: &mut SqliteConnection, sql: String) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await.expect("SQL");
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mode = std::env::args().nth(1).expect("clients | tokens");
    let opts: std::collections::HashMap<String, String> = {
        let mut m = std::collections::HashMap::new();
        let mut args = std::env::args().skip(2);
        while let Some(a) = args.next() {
            let v = args.next().unwrap_or_else(|| panic!("{a} needs a value"));
            m.insert(a.trim_start_matches("--").to_owned(), v);
        }
        m
    };
    let db = std::path::Path::new(&opts["data-dir"]).join("tessera.db");
    assert!(db.is_file(), "no store at {}", db.display());
    let from: u64 = opts["from"].parse().unwrap();
    let to: u64 = opts["to"].parse().unwrap();
    let mut conn = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&db)).await.unwrap();
    // Bulk load: no journal, no fsync, a large page cache; WAL is restored at the end.
    exec(&mut conn, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-1000000;".into()).await;
    let started = Instant::now();
    match mode.as_str() {
        "clients" => seed_clients(&mut conn, &opts, from, to).await,
        "tokens" => seed_tokens(&mut conn, &opts, from, to).await,
        other => panic!("unknown mode {other}"),
    }
    exec(&mut conn, "PRAGMA journal_mode=WAL;".into()).await;
    conn.close().await.unwrap();
    println!("{}", serde_json::json!({"mode": mode, "rows": to - from, "seconds": started.elapsed().as_secs_f64()}));
}

async fn seed_clients(
    conn: &mut SqliteConnection,
    opts: &std::collections::HashMap<String, String>,
    from: u64,
    to: u64,
) {
    let template = safe(&opts["template"]);
    let prefix = safe(&opts["prefix"]);
    let client_cols = column_names(conn, "clients").await;
    let secret_cols = column_names(conn, "client_secrets").await;
    let pick = |cols: &[String], replace: &[(&str, String)]| {
        cols.iter()
            .map(|c| replace.iter().find(|(k, _)| k == c).map_or_else(|| format!("t.{c}"), |(_, v)| v.clone()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let id = format!("printf('{prefix}%07d', seq.i)");
    // One transaction per million rows.
    let mut lo = from;
    while lo < to {
        let hi = (lo + 1_000_000).min(to);
        let seq =
            format!("WITH RECURSIVE seq(i) AS (SELECT {lo} UNION ALL SELECT i + 1 FROM seq WHERE i < {})", hi - 1);
        exec(
            conn,
            format!(
                "BEGIN; {seq} INSERT INTO clients ({}) SELECT {} FROM seq, clients AS t WHERE t.client_id = '{template}'; \
                 {seq} INSERT INTO client_secrets ({}) SELECT {} FROM seq, client_secrets AS t WHERE t.client_id = '{template}'; \
                 COMMIT;",
                client_cols.join(", "),
                pick(&client_cols, &[("client_id", id.clone())]),
                secret_cols.join(", "),
                pick(
                    &secret_cols,
                    &[("client_id", id.clone()), ("id", "t.id || printf('-%07d', seq.i)".to_owned())]
                ),
            ),
        )
        .await;
        lo = hi;
    }
    // A registry change: running servers (and the next start) see a new revision.
    exec(conn, "UPDATE registry_revision SET revision = revision + 1 WHERE id = 1;".into()).await;
}

async fn column_names(conn: &mut SqliteConnection, table: &str) -> Vec<String> {
    let rows: Vec<(String,)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT name FROM pragma_table_info('{table}')")))
            .fetch_all(&mut *conn)
            .await
            .unwrap();
    rows.into_iter().map(|r| r.0).collect()
}

async fn seed_tokens(
    conn: &mut SqliteConnection,
    opts: &std::collections::HashMap<String, String>,
    from: u64,
    to: u64,
) {
    let exp: i64 = opts["exp"].parse().unwrap();
    let iat = exp - 3600;
    let audience = safe(opts.get("audience").map_or("api1", String::as_str)).to_owned();
    let scope = safe(opts.get("scope").map_or("api", String::as_str)).to_owned();
    let single = opts.get("client").map(|c| safe(c).to_owned());
    let prefix = opts.get("client-prefix").map(|p| safe(p).to_owned());
    let clients: u64 = opts.get("clients").map_or(1, |n| n.parse().unwrap());
    // Handle order: the primary-key index (and the table) grow at their end, page after page.
    let mut keys: Vec<(String, String, u64)> = (from..to)
        .map(|i| {
            let key = tessera_server::token::reference::ReferenceKey::of(&tessera_bench::scale_token(i));
            (key.handle, key.hash, i)
        })
        .collect();
    keys.sort_unstable();
    const ROWS: usize = 2000;
    for tx in keys.chunks(1_000_000) {
        exec(conn, "BEGIN;".into()).await;
        for chunk in tx.chunks(ROWS) {
            let mut sql = String::with_capacity(ROWS * 140);
            sql.push_str(
                "INSERT INTO tokens (handle, hash, jti, client_id, scope, audiences, iat, exp, revoked) VALUES ",
            );
            for (n, (handle, h, i)) in chunk.iter().enumerate() {
                let client = match (&single, &prefix) {
                    (Some(c), _) => c.clone(),
                    (None, Some(p)) => format!("{p}{:07}", i % clients),
                    (None, None) => panic!("--client or --client-prefix"),
                };
                if n > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "('{handle}','{h}','scale{i:017}','{client}','{scope}','[\"{audience}\"]',{iat},{exp},0)"
                ));
            }
            exec(conn, sql).await;
        }
        exec(conn, "COMMIT;".into()).await;
    }
}
