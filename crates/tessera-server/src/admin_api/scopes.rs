//! `/admin/scopes`: `tessera scope add|list|show|remove`.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tessera_types::ScopeName;

use super::builtin;
use super::problem::Problem;
use super::request::{Admin, Body, Segments};
use super::{segment, views};
use crate::admin::{self, ScopeSpec};

fn name(text: &str) -> Result<ScopeName, Problem> {
    ScopeName::new(text).map_err(|e| Problem::Invalid(e.to_string()))
}

/// Registered scopes, then the built-in ones.
pub(super) async fn list(admin: Admin) -> Result<Response, Problem> {
    let registered = admin.store().list_scopes().await?;
    let all: Vec<_> = registered
        .iter()
        .map(|s| views::scope(s, false))
        .chain(builtin::scopes().iter().map(|s| views::scope(s, true)))
        .collect();
    Ok(Json(json!({ "scopes": all })).into_response())
}

pub(super) async fn add(admin: Admin, Body(spec): Body<ScopeSpec>) -> Result<Response, Problem> {
    let record = admin::add_scope(admin.store(), spec, admin.now()).await?;
    tracing::info!(actor = %admin.actor, scope = %record.name, "admin API: added scope");
    admin.state.reload().await;
    let location = format!("/admin/scopes/{}", segment(record.name.as_str()));
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(views::scope(&record, false))).into_response())
}

pub(super) async fn show(admin: Admin, Segments(text): Segments<String>) -> Result<Response, Problem> {
    let name = name(&text)?;
    if let Some(b) = builtin::scope(&name) {
        return Ok(Json(views::scope(b, true)).into_response());
    }
    let record = admin.store().get_scope(&name).await?.ok_or_else(|| Problem::NotFound(format!("no scope {name}")))?;
    Ok(Json(views::scope(&record, false)).into_response())
}

pub(super) async fn remove(admin: Admin, Segments(text): Segments<String>) -> Result<Response, Problem> {
    let name = name(&text)?;
    if builtin::scope(&name).is_some() {
        return Err(Problem::Conflict(format!("scope {name} is built in")));
    }
    if !admin.store().remove_scope(&name).await? {
        return Err(Problem::NotFound(format!("no scope {name}")));
    }
    tracing::info!(actor = %admin.actor, scope = %name, "admin API: removed scope");
    admin.state.reload().await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
