//! Scopes.

use sqlx::Row;
use sqlx::any::AnyRow;
use tessera_types::{Resource, ScopeName, UnixTime};

use serde_json::json;

use super::audit::Change;
use super::{Store, StoreError, corrupt, json, unique_violation};
use crate::AuditAction;
use crate::model::ScopeRecord;

impl Store {
    /// Registers a scope; [`StoreError::Conflict`] if the name is taken.
    pub async fn add_scope(&self, scope: &ScopeRecord) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
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
        let detail = json!({
            "display_name": scope.display_name,
            "description": scope.description,
            "resources": scope.resources.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        });
        self.commit_change(tx, Change::new(AuditAction::ScopeAdded, scope.name.as_str(), detail)).await?;
        Ok(())
    }

    /// Replaces a scope's display names, description and resources; `false` if there is none.
    pub async fn update_scope(&self, scope: &ScopeRecord) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE scopes SET display_name = $1, display_names = $2, description = $3, resources = $4 WHERE name = $5",
        )
        .bind(scope.display_name.clone())
        .bind(serde_json::to_string(&scope.display_names).expect("map serialises"))
        .bind(scope.description.clone())
        .bind(serde_json::to_string(&scope.resources).expect("list serialises"))
        .bind(scope.name.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        self.commit_if_changed(tx, n, || {
            let detail = json!({
                "display_name": scope.display_name,
                "description": scope.description,
                "resources": scope.resources.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            });
            Change::new(AuditAction::ScopeUpdated, scope.name.as_str(), detail)
        })
        .await
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
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM scopes WHERE name = $1")
            .bind(name.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        self.commit_if_changed(tx, n, || Change::new(AuditAction::ScopeRemoved, name.as_str(), json!({}))).await
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
