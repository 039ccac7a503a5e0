//! Schema migrations, applied in order on open, serialised across instances on PostgreSQL.

use super::{Backend, Store, StoreError};

/// Migrations, applied in order on open; each is idempotent SQL.
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
    (15, include_str!("../../migrations/0015_secret_lifecycle.sql")),
    (16, include_str!("../../migrations/0016_audit.sql")),
];

impl Store {
    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Postgres {
            // One migrator at a time across instances; released with the session otherwise.
            sqlx::query("SELECT pg_advisory_lock(727361)").execute(&mut *conn).await?;
        }
        let result = Self::migrate_on(&mut conn).await;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_unlock(727361)").execute(&mut *conn).await?;
        }
        result
    }

    async fn migrate_on(conn: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS tessera_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut *conn)
        .await?;
        for (version, sql) in MIGRATIONS {
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
