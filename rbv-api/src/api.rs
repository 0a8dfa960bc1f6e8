// SPDX-License-Identifier: MPL-2.0
//! The `/v1` API's bodies: what the client sends and how it reads answers,
//! in both forms the service's documents show.

use serde_json::{Map, Value, json};

pub use crate::names::{JobStatus, ModelName, OutputFormat};

/// The hosted service.
pub const DEFAULT_API_URL: &str = "https://api.removebgvideo.com";
/// The largest upload the service takes.
pub const MAX_UPLOAD_BYTES: u64 = 500 * 1000 * 1000;

/// A job as `GET /v1/jobs/{id}` (or create / start) answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: String,
    pub status: JobStatus,
    /// 0-100.
    pub progress: f64,
    pub output_url: Option<String>,
    pub error: Option<String>,
    /// The whole answer, for fields this client does not read.
    pub raw: Value,
}

impl Job {
    /// Reads a job; `known_id` fills in for answers that leave the id out
    /// (start). The id may be `id` or `job_id`.
    pub fn from_json(v: &Value, known_id: Option<&str>) -> Result<Job, String> {
        let obj = v
            .as_object()
            .ok_or_else(|| format!("expected a JSON object, got {}", kind(v)))?;
        let obj = match obj.get("job").and_then(Value::as_object) {
            Some(inner) => inner,
            None => obj,
        };
        let id = ["id", "job_id"]
            .iter()
            .find_map(|k| obj.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
            .or_else(|| known_id.map(str::to_owned))
            .ok_or("no job id (`id` or `job_id`) in the answer")?;
        let status = match obj.get("status") {
            Some(Value::String(s)) => JobStatus::parse(s),
            None | Some(Value::Null) => JobStatus::Pending,
            Some(other) => return Err(format!("`status` is {}, not a string", kind(other))),
        };
        let progress = match obj.get("progress") {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0).clamp(0.0, 100.0),
            Some(Value::String(s)) => s.trim().parse::<f64>().unwrap_or(0.0).clamp(0.0, 100.0),
            _ => 0.0,
        };
        let output_url = obj
            .get("output_url")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        Ok(Job {
            id,
            status,
            progress,
            output_url,
            error: error_text(obj.get("error")),
            raw: v.clone(),
        })
    }
}

/// An upload's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub video_id: Option<String>,
    pub video_url: String,
    pub size: Option<u64>,
}

impl Upload {
    pub fn from_json(v: &Value) -> Result<Upload, String> {
        let video_url = v
            .get("video_url")
            .or_else(|| v.get("url"))
            .and_then(Value::as_str)
            .ok_or("no `video_url` in the upload answer")?
            .to_owned();
        Ok(Upload {
            video_id: v.get("video_id").and_then(Value::as_str).map(str::to_owned),
            video_url,
            size: v.get("size").and_then(Value::as_u64),
        })
    }
}

/// The text of an `error` field: a string, or an object's `message`
/// (with its `code` when there is one).
fn error_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Object(o) => {
            let message = o.get("message").and_then(Value::as_str);
            let code = o.get("code").and_then(Value::as_str);
            match (code, message) {
                (Some(c), Some(m)) => Some(format!("{c}: {m}")),
                (None, Some(m)) => Some(m.to_owned()),
                (Some(c), None) => Some(c.to_owned()),
                (None, None) => None,
            }
        }
        _ => None,
    }
}

/// What an error answer says: code, message and request id, from
/// `{"error":{"code","message","request_id"}}`, `{"error":"..."}` or a
/// top-level `message`; whatever is missing is filled from the status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
}

pub fn error_body(status: u16, body: &[u8]) -> ErrorBody {
    let v: Option<Value> = serde_json::from_slice(body).ok();
    let err = v.as_ref().and_then(|v| v.get("error"));
    let field = |k: &str| {
        err.and_then(|e| e.get(k))
            .or_else(|| v.as_ref().and_then(|v| v.get(k)))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let message = match err {
        Some(Value::String(s)) => Some(s.clone()),
        _ => field("message"),
    }
    .or_else(|| {
        // Not JSON: a short plain-text body says more than nothing.
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        (v.is_none() && !text.is_empty() && text.len() <= 200).then(|| text.to_owned())
    });
    let code = field("code").unwrap_or_else(|| default_code(status).to_owned());
    ErrorBody {
        message: message.unwrap_or_else(|| default_code(status).replace('_', " ")),
        code,
        request_id: field("request_id"),
    }
}

fn default_code(status: u16) -> &'static str {
    match status {
        400 => "invalid_request",
        401 => "invalid_api_key",
        402 => "insufficient_credits",
        403 => "forbidden",
        404 => "not_found",
        410 => "gone",
        422 => "unprocessable",
        429 => "rate_limited",
        500 => "internal_error",
        502 => "bad_gateway",
        503 => "unavailable",
        504 => "gateway_timeout",
        _ => "http_error",
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The service's background choices.
#[derive(Debug, Clone, PartialEq)]
pub enum Background {
    Transparent,
    /// Opaque RGB.
    Color([u8; 3]),
    /// An http(s) URL the service fetches.
    Image(String),
}

/// What a job is started with.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSettings {
    pub model: ModelName,
    pub text_prompt: Option<String>,
    pub background: Background,
    /// The service's composition object, sent as is.
    pub composition: Option<Value>,
    pub output_format: OutputFormat,
    pub webhook_url: Option<String>,
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            model: ModelName::Original,
            text_prompt: None,
            background: Background::Transparent,
            composition: None,
            output_format: OutputFormat::Webm,
            webhook_url: None,
        }
    }
}

impl JobSettings {
    /// Refuses what the service would refuse, before any request is made.
    pub fn check(&self) -> Result<(), String> {
        if !self.output_format.keeps_alpha() && self.background == Background::Transparent {
            return Err(
                "mp4 has no alpha: choose a colour or image background, or webm/mov for transparency"
                    .into(),
            );
        }
        if let Background::Image(url) = &self.background
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(format!(
                "the service fetches background images itself: `{url}` must be an http(s) URL"
            ));
        }
        Ok(())
    }

    /// `POST /v1/jobs`: a draft job (`auto_start: false`).
    pub fn create_body(&self, video_url: &str) -> Value {
        let mut body = Map::new();
        body.insert("video_url".into(), video_url.into());
        body.insert("auto_start".into(), false.into());
        body.insert("model".into(), self.model.as_str().into());
        body.insert("output_format".into(), self.output_format.as_str().into());
        if let Some(url) = &self.webhook_url {
            body.insert("webhook_url".into(), url.clone().into());
        }
        Value::Object(body)
    }

    /// `POST /v1/jobs/{id}/start`: model, prompt, background, composition
    /// and format. Colours go as the documented 0-1 float triple.
    pub fn start_body(&self) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), self.model.as_str().into());
        body.insert("output_format".into(), self.output_format.as_str().into());
        if let Some(p) = self.text_prompt.as_deref().filter(|p| !p.trim().is_empty()) {
            body.insert("text_prompt".into(), p.into());
        }
        let background = match &self.background {
            Background::Transparent => json!({"type": "transparent"}),
            Background::Color(rgb) => {
                let f = |c: u8| (f64::from(c) / 255.0 * 10_000.0).round() / 10_000.0;
                json!({"type": "color", "color": [f(rgb[0]), f(rgb[1]), f(rgb[2])]})
            }
            Background::Image(url) => json!({"type": "image", "image_url": url}),
        };
        body.insert("background".into(), background);
        if let Some(c) = &self.composition {
            body.insert("composition".into(), c.clone());
        }
        Value::Object(body)
    }
}

/// Reads a 0-1 float triple or a `#RRGGBB` string as the service sends or
/// takes colours.
pub fn color_from_json(v: &Value) -> Option<[u8; 3]> {
    match v {
        Value::Array(a) if a.len() == 3 => {
            let mut rgb = [0u8; 3];
            for (out, c) in rgb.iter_mut().zip(a) {
                let c = c.as_f64()?;
                if !(0.0..=1.0).contains(&c) {
                    return None;
                }
                *out = (c * 255.0).round() as u8;
            }
            Some(rgb)
        }
        Value::String(s) => {
            let hex = s.strip_prefix('#')?;
            if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let n = u32::from_str_radix(hex, 16).ok()?;
            Some([(n >> 16) as u8, (n >> 8) as u8, n as u8])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_job_forms() {
        let a = Job::from_json(
            &json!({"success":true,"id":"job_1","status":"created","message":"ok"}),
            None,
        )
        .unwrap();
        assert_eq!((a.id.as_str(), &a.status), ("job_1", &JobStatus::Created));
        let b = Job::from_json(&json!({"job_id":"job_2","status":"pending"}), None).unwrap();
        assert_eq!((b.id.as_str(), &b.status), ("job_2", &JobStatus::Pending));
        let c = Job::from_json(
            &json!({"success":true,"status":"processing"}),
            Some("job_3"),
        )
        .unwrap();
        assert_eq!(c.id, "job_3");
        assert!(Job::from_json(&json!({"status":"processing"}), None).is_err());
        assert!(
            Job::from_json(&json!([1]), None)
                .unwrap_err()
                .contains("an array")
        );
    }

    #[test]
    fn reads_progress_output_and_errors() {
        let done = Job::from_json(
            &json!({"id":"j","status":"completed","progress":100,"output_url":"https://x/o.webm","error":null}),
            None,
        )
        .unwrap();
        assert_eq!(done.status, JobStatus::Completed);
        assert!(done.status.is_terminal());
        assert_eq!(done.output_url.as_deref(), Some("https://x/o.webm"));
        assert_eq!(done.error, None);
        let failed = Job::from_json(
            &json!({"id":"j","status":"failed","progress":"40","error":{"code":"decode_error","message":"bad file"}}),
            None,
        )
        .unwrap();
        assert_eq!(failed.progress, 40.0);
        assert_eq!(failed.error.as_deref(), Some("decode_error: bad file"));
        let odd = Job::from_json(&json!({"id":"j","status":"warming_up"}), None).unwrap();
        assert!(!odd.status.is_terminal());
        assert_eq!(odd.status.as_str(), "warming_up");
    }

    #[test]
    fn reads_error_bodies() {
        let nested = error_body(
            402,
            br#"{"error":{"code":"insufficient_credits","message":"Top up","request_id":"req_9"}}"#,
        );
        assert_eq!(
            nested,
            ErrorBody {
                code: "insufficient_credits".into(),
                message: "Top up".into(),
                request_id: Some("req_9".into())
            }
        );
        let flat = error_body(404, br#"{"error":"Job not found"}"#);
        assert_eq!(
            (flat.code.as_str(), flat.message.as_str()),
            ("not_found", "Job not found")
        );
        let top = error_body(500, br#"{"message":"Processing failed"}"#);
        assert_eq!(top.message, "Processing failed");
        let junk = error_body(502, b"<html>bad gateway</html>");
        assert_eq!(
            (junk.code.as_str(), junk.message.as_str()),
            ("bad_gateway", "<html>bad gateway</html>")
        );
        let empty = error_body(401, b"");
        assert_eq!(empty.message, "invalid api key");
    }

    #[test]
    fn writes_create_and_start_bodies() {
        let s = JobSettings {
            model: ModelName::Pro,
            text_prompt: Some("person, guitar".into()),
            background: Background::Color([9, 162, 70]),
            composition: Some(json!({"canvas":{"width":1920,"height":1080}})),
            output_format: OutputFormat::Mp4,
            webhook_url: None,
        };
        s.check().unwrap();
        assert_eq!(
            s.create_body("https://x/in.mp4"),
            json!({"video_url":"https://x/in.mp4","auto_start":false,"model":"pro","output_format":"mp4"})
        );
        let start = s.start_body();
        assert_eq!(
            start["background"],
            json!({"type":"color","color":[0.0353,0.6353,0.2745]})
        );
        assert_eq!(
            color_from_json(&start["background"]["color"]),
            Some([9, 162, 70])
        );
        assert_eq!(start["text_prompt"], "person, guitar");
        assert_eq!(start["composition"]["canvas"]["width"], 1920);
    }

    #[test]
    fn refuses_what_the_service_refuses() {
        let mut s = JobSettings {
            output_format: OutputFormat::Mp4,
            ..Default::default()
        };
        assert!(s.check().unwrap_err().contains("mp4 has no alpha"));
        s.output_format = OutputFormat::Webm;
        s.model = ModelName::Light;
        s.background = Background::Image("/tmp/bg.jpg".into());
        assert!(s.check().unwrap_err().contains("http(s) URL"));
    }

    #[test]
    fn colours_both_ways() {
        assert_eq!(color_from_json(&json!("#00ff7F")), Some([0, 255, 127]));
        assert_eq!(color_from_json(&json!([1, 0.5, 0])), Some([255, 128, 0]));
        assert_eq!(color_from_json(&json!([1.5, 0, 0])), None);
        assert_eq!(color_from_json(&json!("green")), None);
    }
}
