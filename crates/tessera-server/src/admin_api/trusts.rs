//! `/admin/trusts`: `tessera trust add|list|show|remove` and `trust rule add|remove`.
//! `trust test` stays on the command line (it reads a token file and explains).

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tessera_store::TrustRecord;

use super::problem::Problem;
use super::request::{Admin, Body, Segments};
use super::{segment, views};
use crate::federation::trusts::{self, RuleSpec, TrustSpec};

async fn load(admin: &Admin, name: &str) -> Result<TrustRecord, Problem> {
    admin.store().get_trust(name).await?.ok_or_else(|| Problem::NotFound(format!("no trust {name}")))
}

async fn view(admin: &Admin, t: &TrustRecord) -> Result<Value, Problem> {
    Ok(views::trust(t, &admin.store().list_trust_rules(&t.name).await?))
}

pub(super) async fn list(admin: Admin) -> Result<Response, Problem> {
    let mut all = Vec::new();
    for t in admin.store().list_trusts().await? {
        all.push(view(&admin, &t).await?);
    }
    Ok(Json(json!({ "trusts": all })).into_response())
}

/// The seed file's `[[trusts]]` entry as JSON, rules included; keys inline (`jwks`), never
/// a file on the server.
pub(super) async fn add(admin: Admin, Body(spec): Body<TrustSpec>) -> Result<Response, Problem> {
    if spec.jwks_file.is_some() || spec.ca_file.is_some() {
        return Err(Problem::Invalid(
            "jwks_file and ca_file name files on the server; send jwks inline (a trust's own CA is set with the CLI)"
                .into(),
        ));
    }
    let now = admin.now();
    let rules = spec.rules.clone();
    let record = trusts::add_trust(admin.store(), spec, &admin.state.0.key_bounds, now).await?;
    for rule in &rules {
        if let Err(e) = trusts::add_rule(admin.store(), &record.name, &rule.client, &rule.matches, now).await {
            // All or nothing: a trust without the rules asked for would map nothing, or less.
            admin.store().remove_trust(&record.name).await?;
            return Err(e.into());
        }
    }
    tracing::info!(actor = %admin.actor, trust = %record.name, rules = rules.len(), "admin API: added trust");
    admin.state.reload().await;
    let location = format!("/admin/trusts/{}", segment(&record.name));
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(view(&admin, &record).await?)).into_response())
}

pub(super) async fn show(admin: Admin, Segments(name): Segments<String>) -> Result<Response, Problem> {
    let t = load(&admin, &name).await?;
    Ok(Json(view(&admin, &t).await?).into_response())
}

pub(super) async fn remove(admin: Admin, Segments(name): Segments<String>) -> Result<Response, Problem> {
    if !admin.store().remove_trust(&name).await? {
        return Err(Problem::NotFound(format!("no trust {name}")));
    }
    tracing::info!(actor = %admin.actor, trust = %name, "admin API: removed trust");
    admin.state.reload().await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Appends a rule (`{"client": "payments", "match": ["sub=..."]}`), evaluated after the
/// trust's other rules.
pub(super) async fn add_rule(
    admin: Admin,
    Segments(name): Segments<String>,
    Body(rule): Body<RuleSpec>,
) -> Result<Response, Problem> {
    load(&admin, &name).await?;
    let id = trusts::add_rule(admin.store(), &name, &rule.client, &rule.matches, admin.now()).await?;
    tracing::info!(actor = %admin.actor, trust = %name, rule = id, "admin API: added trust rule");
    admin.state.reload().await;
    let location = format!("/admin/trusts/{}/rules/{id}", segment(&name));
    let body = json!({ "id": id, "client": rule.client, "match": rule.matches });
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(body)).into_response())
}

pub(super) async fn remove_rule(
    admin: Admin,
    Segments((name, id)): Segments<(String, String)>,
) -> Result<Response, Problem> {
    let id: i64 = id.parse().map_err(|_| Problem::Invalid(format!("rule id {id:?} is not a number")))?;
    load(&admin, &name).await?;
    if !admin.store().remove_trust_rule(&name, id).await? {
        return Err(Problem::NotFound(format!("trust {name} has no rule {id}")));
    }
    tracing::info!(actor = %admin.actor, trust = %name, rule = id, "admin API: removed trust rule");
    admin.state.reload().await;
    Ok(StatusCode::NO_CONTENT.into_response())
}
