// SPDX-License-Identifier: MPL-2.0
//! `/v1/admin`: keys and settings for operators, behind `X-Admin-Token`.
//! The new key's secret is in the one answer that creates it and nowhere
//! else: not in a log line, not in a listing.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use serde_json::json;

use super::{Answer, ApiError, Ctx, json_body, ok};
use crate::App;
use crate::admin::{self, Access};

/// A request that carried the admin token.
pub struct Admin(pub Arc<Ctx>);

impl FromRequestParts<Arc<App>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let ctx = super::auth::ctx(parts);
        let given = parts
            .headers
            .get("x-admin-token")
            .and_then(|v| v.to_str().ok());
        match admin::access(app.config.admin_token.as_deref(), given) {
            Access::Granted => Ok(Admin(ctx)),
            // Without a token configured the routes do not exist.
            Access::Off => Err(ApiError::new(
                &ctx,
                404,
                "not_found",
                format!(
                    "no route {} {} (the admin routes are on when the server starts with {})",
                    parts.method,
                    parts.uri.path(),
                    admin::TOKEN_ENV
                ),
            )),
            Access::Missing => Err(ApiError::new(
                &ctx,
                401,
                "missing_admin_token",
                "send the admin token in the X-Admin-Token header",
            )),
            Access::Wrong => Err(ApiError::new(
                &ctx,
                401,
                "invalid_admin_token",
                "the admin token is not valid",
            )),
        }
    }
}

pub async fn config(State(app): State<Arc<App>>, Admin(_): Admin) -> Answer {
    ok(admin::config_json(&app.config, &app.public_url, app.ffmpeg))
}

pub async fn list_keys(State(app): State<Arc<App>>, Admin(ctx): Admin) -> Answer {
    let keys = app
        .store
        .list_keys()
        .map_err(|e| ApiError::internal(&ctx, e))?;
    ok(json!({"items": keys.iter().map(admin::key_json).collect::<Vec<_>>()}))
}

pub async fn create_key(State(app): State<Arc<App>>, Admin(ctx): Admin, body: Body) -> Answer {
    let body = json_body(&ctx, body, false).await?;
    let new = admin::parse_new_key(&body).map_err(|r| ApiError::refused(&ctx, r))?;
    let (info, secret) = app
        .store
        .create_key_noted(&new.client_id, &new.note, new.credits)
        .map_err(|e| ApiError::internal(&ctx, e))?;
    ctx.key(&info.id);
    let mut shown = admin::key_json(&info);
    shown["api_key"] = json!(secret);
    ok(shown)
}

pub async fn disable_key(state: State<Arc<App>>, admin: Admin, body: Body) -> Answer {
    set_enabled(state, admin, body, false).await
}

pub async fn enable_key(state: State<Arc<App>>, admin: Admin, body: Body) -> Answer {
    set_enabled(state, admin, body, true).await
}

async fn set_enabled(
    State(app): State<Arc<App>>,
    Admin(ctx): Admin,
    body: Body,
    enabled: bool,
) -> Answer {
    let body = json_body(&ctx, body, false).await?;
    let fingerprint = admin::parse_fingerprint(&body).map_err(|r| ApiError::refused(&ctx, r))?;
    let Some(info) = app
        .store
        .set_key_enabled(&fingerprint, enabled)
        .map_err(|e| ApiError::internal(&ctx, e))?
    else {
        return Err(ApiError::new(
            &ctx,
            404,
            "not_found",
            format!("no key has the fingerprint {fingerprint}"),
        ));
    };
    ctx.key(&info.id);
    ok(admin::key_json(&info))
}
