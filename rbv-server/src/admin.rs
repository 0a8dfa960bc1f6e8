// SPDX-License-Identifier: MPL-2.0
//! The `/v1/admin` routes' pure parts: who may call them, what their bodies
//! must hold, and what they show (a key's listing, the running settings;
//! never a secret).

use serde_json::{Map, Value, json};

use crate::Config;
use crate::request::{Refusal, invalid};
use crate::store::{KeyInfo, iso, keys};

/// The environment variable that turns the routes on.
pub const TOKEN_ENV: &str = "RBV_ADMIN_TOKEN";

/// Shortest admin token taken: it guards every key.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why a configured admin token is refused at start, if it is.
pub fn token_problem(token: &str) -> Option<String> {
    if token.chars().count() < MIN_TOKEN_LEN {
        Some(format!(
            "{TOKEN_ENV} is {} characters long: use at least {MIN_TOKEN_LEN} \
             (for example `openssl rand -hex 32`)",
            token.chars().count()
        ))
    } else if !token.bytes().all(|b| b.is_ascii_graphic()) {
        Some(format!(
            "{TOKEN_ENV} holds spaces or characters an HTTP header cannot carry: \
             use letters, digits and punctuation only"
        ))
    } else {
        None
    }
}

/// What the `X-Admin-Token` header of a request amounts to.
#[derive(Debug, PartialEq)]
pub enum Access {
    /// No token configured: the routes are not there.
    Off,
    Missing,
    Wrong,
    Granted,
}

/// Checks a request's token against the configured one (in constant time).
pub fn access(configured: Option<&str>, given: Option<&str>) -> Access {
    match (configured, given.map(str::trim).filter(|g| !g.is_empty())) {
        (None, _) => Access::Off,
        (Some(_), None) => Access::Missing,
        (Some(t), Some(g)) if crate::crypto::same(g, t) => Access::Granted,
        (Some(_), Some(_)) => Access::Wrong,
    }
}

/// A `POST /v1/admin/keys` body.
#[derive(Debug, PartialEq)]
pub struct NewKey {
    pub client_id: String,
    pub note: String,
    /// None: no credit limit.
    pub credits: Option<f64>,
}

const MAX_CLIENT_ID: usize = 128;
const MAX_NOTE: usize = 1000;

fn object<'a>(body: &'a Value, fields: &[&str]) -> Result<&'a Map<String, Value>, Refusal> {
    let o = body.as_object().ok_or_else(|| {
        invalid(format!(
            "the body must be a JSON object with {}",
            fields.join(", ")
        ))
    })?;
    // An operator's typo must not pass unnoticed (a note dropped, a limit
    // not set): fields these routes do not know are refused.
    if let Some(unknown) = o.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(invalid(format!(
            "unknown field `{unknown}`: expected {}",
            fields.join(", ")
        )));
    }
    Ok(o)
}

fn text(o: &Map<String, Value>, name: &str, max: usize) -> Result<Option<String>, Refusal> {
    let s = match o.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.trim(),
        Some(other) => return Err(invalid(format!("{name} must be a string, found {other}"))),
    };
    if s.chars().count() > max {
        return Err(invalid(format!(
            "{name} is {} characters long: at most {max}",
            s.chars().count()
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(invalid(format!("{name} holds control characters")));
    }
    Ok(Some(s.to_owned()))
}

pub fn parse_new_key(body: &Value) -> Result<NewKey, Refusal> {
    let o = object(body, &["client_id", "note", "credits"])?;
    let client_id = text(o, "client_id", MAX_CLIENT_ID)?
        .filter(|c| !c.is_empty())
        .ok_or_else(|| invalid("client_id is required: who the key is for"))?;
    let note = text(o, "note", MAX_NOTE)?.unwrap_or_default();
    let credits = match o.get("credits") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_f64() {
            Some(c) if c.is_finite() && c >= 0.0 => Some(c),
            _ => {
                return Err(invalid(format!(
                    "credits must be a number of credits, 0 or more (null: no limit), found {v}"
                )));
            }
        },
    };
    Ok(NewKey {
        client_id,
        note,
        credits,
    })
}

/// The `key_fingerprint` of a disable or enable body, lower-cased.
pub fn parse_fingerprint(body: &Value) -> Result<String, Refusal> {
    let o = object(body, &["key_fingerprint"])?;
    let f = text(o, "key_fingerprint", 64)?
        .ok_or_else(|| invalid("key_fingerprint is required"))?
        .to_ascii_lowercase();
    if f.len() != keys::FINGERPRINT_LEN || !f.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(format!(
            "key_fingerprint must be {} hex characters (as GET /v1/admin/keys lists them), \
             found `{f}`",
            keys::FINGERPRINT_LEN
        )));
    }
    Ok(f)
}

/// A key as the admin routes list it.
pub fn key_json(k: &KeyInfo) -> Value {
    json!({
        "key_id": k.id,
        "key_fingerprint": k.fingerprint,
        "client_id": k.client_id,
        "note": k.note,
        "credits": k.credits,
        "enabled": k.enabled,
        "created_at": iso(k.created_at),
        "last_used_at": k.last_used_at.map(iso),
    })
}

/// The settings the server runs with. Secrets show only whether they are
/// set.
pub fn config_json(c: &Config, public_url: &str, ffmpeg: bool) -> Value {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "listen": c.listen.to_string(),
        "public_url": public_url,
        "data_dir": c.data_dir.to_string_lossy(),
        "database": if c.database.is_some() { "postgres" } else { "sqlite" },
        "storage": c.storage.describe(),
        "heavy_workers": c.heavy_workers,
        "light_workers": c.light_workers,
        "queue_size": c.queue_size,
        "rate_limit_per_minute": c.rate_limit,
        "link_ttl_seconds": c.link_ttl.as_secs(),
        "max_upload_bytes": c.max_upload_bytes,
        "upload_quota_bytes": c.upload_quota_bytes,
        "retention_seconds": c.retention.as_secs(),
        "job_timeout_seconds": c.job_timeout.as_secs(),
        "max_pixels": c.max_pixels,
        "max_frames": c.max_frames,
        "max_duration_seconds": c.max_duration.as_secs(),
        "max_image_pixels": c.max_image_pixels,
        "max_canvas_pixels": c.max_canvas_pixels,
        "max_attempts": c.max_attempts,
        "segment_seconds": c.segment_seconds.as_secs(),
        "header_timeout_seconds": c.header_timeout.as_secs_f64(),
        "body_timeout_seconds": c.body_timeout.as_secs_f64(),
        "keep_alive_timeout_seconds": c.keep_alive_timeout.as_secs_f64(),
        "max_connections": c.max_connections,
        "allow_private_urls": c.allow_private.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "metrics_public": c.metrics_public,
        "metrics_token_set": c.metrics_token.is_some(),
        "webhook_secret_set": c.webhook_secret.is_some(),
        "webhook_retries": c.webhook_retries,
        "webhook_retry_delay_seconds": c.webhook_retry_delay.as_secs_f64(),
        "ffmpeg": ffmpeg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_short_or_unsendable_are_refused_at_start() {
        assert!(token_problem("short").unwrap().contains("5 characters"));
        assert!(
            token_problem("a token with spaces in")
                .unwrap()
                .contains("spaces")
        );
        assert_eq!(token_problem("0123456789abcdef"), None);
    }

    #[test]
    fn access_tells_off_missing_wrong_and_granted() {
        let t = Some("0123456789abcdef");
        assert_eq!(access(None, Some("anything")), Access::Off);
        assert_eq!(access(t, None), Access::Missing);
        assert_eq!(access(t, Some("  ")), Access::Missing);
        assert_eq!(access(t, Some("0123456789abcdeF")), Access::Wrong);
        assert_eq!(access(t, Some("0123456789abcdef")), Access::Granted);
    }

    #[test]
    fn new_key_bodies_name_what_is_wrong() {
        let k = parse_new_key(&json!({"client_id": " acme ", "note": "farm"})).unwrap();
        assert_eq!(
            k,
            NewKey {
                client_id: "acme".into(),
                note: "farm".into(),
                credits: None
            }
        );
        let k = parse_new_key(&json!({"client_id": "a", "credits": 12.5})).unwrap();
        assert_eq!(k.credits, Some(12.5));
        for (body, says) in [
            (json!([]), "JSON object"),
            (json!({}), "client_id is required"),
            (json!({"client_id": ""}), "client_id is required"),
            (json!({"client_id": 7}), "client_id must be a string"),
            (
                json!({"client_id": "a", "notes": "x"}),
                "unknown field `notes`",
            ),
            (json!({"client_id": "a\u{7}"}), "control characters"),
            (json!({"client_id": "x".repeat(129)}), "129 characters"),
            (
                json!({"client_id": "a", "note": "n".repeat(1001)}),
                "at most 1000",
            ),
            (json!({"client_id": "a", "credits": -1}), "credits must be"),
            (json!({"client_id": "a", "credits": "5"}), "credits must be"),
        ] {
            let e = parse_new_key(&body).unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.message.contains(says), "{body}: {}", e.message);
        }
    }

    #[test]
    fn fingerprints_are_sixteen_hex_characters() {
        assert_eq!(
            parse_fingerprint(&json!({"key_fingerprint": "0123456789ABCDEF"})).unwrap(),
            "0123456789abcdef"
        );
        for (body, says) in [
            (json!({}), "key_fingerprint is required"),
            (json!({"key_fingerprint": "0123"}), "16 hex characters"),
            (
                json!({"key_fingerprint": "0123456789abcdeg"}),
                "16 hex characters",
            ),
            (
                json!({"key_fingerprint": "x", "key_id": "k"}),
                "unknown field `key_id`",
            ),
        ] {
            let e = parse_fingerprint(&body).unwrap_err();
            assert!(e.message.contains(says), "{body}: {}", e.message);
        }
    }

    #[test]
    fn config_shows_no_secret() {
        let c = Config {
            metrics_token: Some("metrics-secret-value".into()),
            webhook_secret: Some("webhook-secret-value".into()),
            database: Some("postgres://rbv:db-secret-value@h/rbv".into()),
            ..Config::default()
        };
        let shown = config_json(&c, "http://h", true).to_string();
        assert!(!shown.contains("secret-value"), "{shown}");
        let v: Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(v["metrics_token_set"], true);
        assert_eq!(v["webhook_secret_set"], true);
        assert_eq!(v["rate_limit_per_minute"], 600);
        assert_eq!(v["database"], "postgres");
    }
}
