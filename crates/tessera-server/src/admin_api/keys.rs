//! `/admin/keys`: `tessera key list|rotate`, kept thin (the rotation itself is
//! [`crate::keys::rotate`]'s). Public halves only.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tessera_types::SigningAlg;

use super::problem::Problem;
use super::request::{Admin, OptionalBody};
use super::views;
use crate::admin::parsed;

pub(super) async fn list(admin: Admin) -> Result<Response, Problem> {
    let all: Vec<Value> = admin.store().list_keys().await?.iter().map(views::key).collect();
    Ok(Json(json!({ "keys": all })).into_response())
}

/// Which algorithm rotates (default: the server's first signing algorithm), and whether a new
/// key signs at once (`now`, a compromised key) rather than the next step of the cycle.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Rotation {
    #[serde(default, deserialize_with = "parsed")]
    alg: Option<SigningAlg>,
    #[serde(default)]
    now: bool,
}

pub(super) async fn rotate(admin: Admin, OptionalBody(rotation): OptionalBody<Rotation>) -> Result<Response, Problem> {
    let s = &admin.state.0.app.0;
    let alg = rotation.alg.or_else(|| s.signing_algs.first().copied()).unwrap_or(SigningAlg::ES256);
    let (_, kek) = s.registry.source().ok_or_else(|| Problem::internal("no key-encryption key"))?;
    let st = &admin.state.0;
    let done = if rotation.now {
        let kid = crate::keys::rotate(admin.store(), kek, alg, st.default_lifetime, admin.rng(), admin.now()).await?;
        format!("new active {alg} key {kid} (signing now)")
    } else {
        crate::rotation::force_step(
            admin.store(),
            kek,
            alg,
            st.key_rotation,
            st.default_lifetime,
            admin.rng(),
            admin.now(),
        )
        .await?
    };
    tracing::info!(actor = %admin.actor, %alg, %done, "admin API: rotated signing keys");
    admin.state.reload().await;
    let keys: Vec<Value> = admin.store().list_keys().await?.iter().filter(|k| k.alg == alg).map(views::key).collect();
    Ok((StatusCode::OK, Json(json!({ "done": done, "keys": keys }))).into_response())
}
