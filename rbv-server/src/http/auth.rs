// SPDX-License-Identifier: MPL-2.0
//! Who is asking: the request's context, and for the `/v1` routes the
//! caller's key, checked (and its rate limit spent) by an extractor before
//! the handler runs.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::{ApiError, Ctx};
use crate::App;
use crate::store::Key;

/// The request's context (request id, what its log line names), which the
/// `observe` middleware made.
pub struct Cx(pub Arc<Ctx>);

impl<S: Send + Sync> FromRequestParts<S> for Cx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Cx(ctx(parts)))
    }
}

pub(super) fn ctx(parts: &Parts) -> Arc<Ctx> {
    parts
        .extensions
        .get::<Arc<Ctx>>()
        .cloned()
        .expect("observe() runs first")
}

/// A caller with a valid key, within its rate limit.
pub struct Caller {
    pub key: Key,
    pub ctx: Arc<Ctx>,
}

impl FromRequestParts<Arc<App>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let ctx = ctx(parts);
        let key = check(app, &ctx, &parts.headers)?;
        Ok(Caller { key, ctx })
    }
}

/// The caller's key, checked, and its rate limit spent.
fn check(app: &App, ctx: &Ctx, headers: &HeaderMap) -> Result<Key, ApiError> {
    let secret = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ctx,
                401,
                "missing_api_key",
                "send your API key in the X-Api-Key header",
            )
        })?;
    let key = app
        .store
        .key_by_secret(secret)
        .map_err(|e| ApiError::internal(ctx, e))?
        .ok_or_else(|| ApiError::new(ctx, 401, "invalid_api_key", "the API key is not valid"))?;
    ctx.key(&key.id);
    let per_minute = f64::from(app.config.rate_limit);
    if per_minute > 0.0 {
        let mut buckets = app.rate.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let (tokens, last) = buckets.entry(key.id.clone()).or_insert((per_minute, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * per_minute / 60.0).min(per_minute);
        *last = now;
        if *tokens < 1.0 {
            let wait = ((1.0 - *tokens) * 60.0 / per_minute).ceil().max(1.0) as u64;
            return Err(ApiError::rate_limited(
                ctx,
                &format!(
                    "over {} requests per minute for this key",
                    app.config.rate_limit
                ),
                wait,
            ));
        }
        *tokens -= 1.0;
    }
    Ok(key)
}
