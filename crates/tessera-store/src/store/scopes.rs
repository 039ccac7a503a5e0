//! Scopes.

use sqlx::Row;
use sqlx::any::AnyRow;
use tessera_types::{Resource, ScopeName, UnixTime};

use super::{Store, StoreError, corrupt, json, unique_violation};
use crate::model::ScopeRecord;

impl Store {
    /// Registers a scope; [`StoreError::Conflict`] if the name is taken.
    pub async fn add_scope(&self, scope: &ScopeRecord) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let res = sqlx::query(
            "INSERT INTO scopes (name, display_name, display_names, description, resources, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(scope.name.as_str())
        .bind(scope.display_name.clone())
        .bind(serde_json::to_string(&scope.display_names).expect("map serialises"))
        .bind(scope.description.clone())
        .bind(serde_json::to_string(&scope.resources).expect("list serialises"))
        .bind(scope.created_at.0)
        .execute(&mut *tx)
        .await;
        match res {
            Err(e) if unique_violation(&e) => {
                return Err(StoreError::Conflict(format!("scope {}", scope.name)));
            }
            r => r?,
        };
        Self::commit_change(tx).await?;
        Ok(())
    }

    /// Every scope, by name.
    pub async fn list_scopes(&self) -> Result<Vec<ScopeRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM scopes ORDER BY name").fetch_all(&self.pool).await?;
        rows.iter().map(scope_from_row).collect()
    }

    #[allow(missing_docs)]
    pub async fn get_scope(&self, name: &ScopeName) -> Result<Option<ScopeRecord>, StoreError> {
        let row =
            sqlx::query("SELECT * FROM scopes WHERE name = $1").bind(name.as_str()).fetch_optional(&self.pool).await?;
        row.as_ref().map(scope_from_row).transpose()
    }

    /// Removes a scope; `false` if there was none.
    pub async fn remove_scope(&self, name: &ScopeName) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("DELETE FROM scopes WHERE name = $1")
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        Self::commit_if_changed(tx, n).await
    }
}

fn scope_from_row(row: &AnyRow) -> Result<ScopeRecord, StoreError> {
    let name: String = row.try_get("name")?;
    Ok(ScopeRecord {
        name: ScopeName::new(name).map_err(corrupt)?,
        display_name: row.try_get("display_name")?,
        display_names: json(row, "display_names")?,
        description: row.try_get("description")?,
        resources: json::<Vec<Resource>>(row, "resources")?,
        created_at: UnixTime(row.try_get("created_at")?),
    })
}
