//! Schema migrations, applied in order on open, serialised across instances on PostgreSQL.

use super::{Backend, Store, StoreError};

/// Migrations, applied in order on open, each in a transaction with the row that records it:
/// applied once. Most are idempotent SQL as well; 0017 rebuilds a table and is not.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/0001_registry.sql")),
    (2, include_str!("../../migrations/0002_tokens.sql")),
    (3, include_str!("../../migrations/0003_one_active_key.sql")),
    (4, include_str!("../../migrations/0004_kek_check.sql")),
    (5, include_str!("../../migrations/0005_client_limits.sql")),
    (6, include_str!("../../migrations/0006_client_keys.sql")),
    (7, include_str!("../../migrations/0007_mutual_tls.sql")),
    (8, include_str!("../../migrations/0008_client_jwks_uri.sql")),
    (9, include_str!("../../migrations/0009_revocation_events.sql")),
    (10, include_str!("../../migrations/0010_require_dpop.sql")),
    (11, include_str!("../../migrations/0011_trusts.sql")),
    (12, include_str!("../../migrations/0012_workload_uses.sql")),
    (13, include_str!("../../migrations/0013_key_phases.sql")),
    (15, include_str!("../../migrations/0015_secret_lifecycle.sql")),
    (16, include_str!("../../migrations/0016_audit.sql")),
    (17, include_str!("../../migrations/0017_token_handles.sql")),
];

impl Store {
    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Postgres {
            // One migrator at a time across instances; released with the session otherwise.
            sqlx::query("SELECT pg_advisory_lock(727361)").execute(&mut *conn).await?;
        }
        let result = Self::migrate_on(&mut conn, MIGRATIONS).await;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_unlock(727361)").execute(&mut *conn).await?;
        }
        result
    }

    async fn migrate_on(conn: &mut sqlx::AnyConnection, migrations: &[(i64, &'static str)]) -> Result<(), StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS tessera_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut *conn)
        .await?;
        for (version, sql) in migrations {
            let applied: Option<i64> = sqlx::query_scalar("SELECT version FROM tessera_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&mut *conn)
                .await?;
            if applied.is_some() {
                continue;
            }
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            sqlx::raw_sql(*sql).execute(&mut *tx).await?;
            sqlx::query(
                "INSERT INTO tessera_migrations (version, applied_at) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING",
            )
            .bind(*version)
            .bind(0_i64)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            tracing::info!(version, "applied store migration");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Connection as _;
    use tessera_types::UnixTime;

    use super::*;

    const HASH: &str = "q0Xr5mH1b2yJzB7cW8nLp3tUvA9sD4fGhK6eN0iOwRk";

    /// A database as the last release before token handles left it: migrations up to 0016,
    /// a live reference token and an expired one.
    async fn store_before_handles(url: &str) {
        let before: Vec<(i64, &'static str)> = MIGRATIONS.iter().copied().filter(|(v, _)| *v < 17).collect();
        let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
        Store::migrate_on(&mut conn, &before).await.unwrap();
        sqlx::query(
            "INSERT INTO tokens (hash, jti, client_id, scope, audiences, iat, exp, revoked) \
             VALUES ($1, 'j1', 'CC', 'a', '[\"api1\"]', 1000, 5000, 0), ('other', 'j2', 'CC', NULL, '[]', 1000, 1500, 0)",
        )
        .bind(HASH)
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }

    /// After migration 0017 the older token is found by its hash, revoked, pruned.
    async fn older_tokens_still_work(store: &Store) {
        let found = store.find_token("any-handle-of-a-token", HASH).await.unwrap().expect("kept");
        assert_eq!((found.handle.as_str(), found.jti.as_str(), found.exp), (&HASH[..22], "j1", UnixTime(5000)));
        assert!(store.find_token("any-handle-of-a-token", "not-its-hash").await.unwrap().is_none());
        assert!(store.revoke_token("another-handle", HASH, UnixTime(2000)).await.unwrap());
        assert!(store.find_token("x", HASH).await.unwrap().unwrap().revoked);
        assert_eq!(store.prune(UnixTime(2000), 10).await.unwrap(), (1, 0));
        assert_eq!(store.token_counts().await.unwrap().0, 1);
    }

    #[tokio::test]
    async fn sqlite_reference_tokens_stored_before_handles_are_found_after_the_migration() {
        let dir = tempfile::tempdir().unwrap();
        sqlx::any::install_default_drivers();
        store_before_handles(&crate::sqlite::prepare(dir.path()).unwrap()).await;
        older_tokens_still_work(&Store::open_embedded(dir.path()).await.unwrap()).await;
    }

    #[tokio::test]
    async fn postgres_reference_tokens_stored_before_handles_are_found_after_the_migration() {
        let Some(base) = tessera_testkit::postgres::shared_base_url() else {
            eprintln!("SKIPPED the migration on PostgreSQL: no PostgreSQL");
            return;
        };
        let url = tessera_testkit::postgres::fresh_database(&base).await;
        store_before_handles(&url).await;
        older_tokens_still_work(&Store::connect_postgres(&url, 2).await.unwrap()).await;
    }
}
