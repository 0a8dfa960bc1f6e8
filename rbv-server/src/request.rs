// SPDX-License-Identifier: MPL-2.0
//! Reading `/v1` request bodies as the service documents them, both forms
//! (nested `background` and flat `bg_type` / `bg_color` / `bg_image_url`),
//! and deciding what this server can make of them. Fields it does not know
//! are accepted (clients send fields of their own) and named in the
//! answer's `warnings`, with the field meant when one is close.

use serde_json::{Map, Value, json};

use rbv_api::api::color_from_json;
use rbv_api::{ModelName, OutputFormat};

/// A refused request: HTTP status, error code and a message naming the field.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

pub fn invalid(message: impl Into<String>) -> Refusal {
    Refusal {
        status: 400,
        code: "invalid_request",
        message: message.into(),
    }
}

fn unprocessable(message: impl Into<String>) -> Refusal {
    Refusal {
        status: 422,
        code: "unsupported_output",
        message: message.into(),
    }
}

/// The service's backgrounds (an image URL is fetched when the job runs).
pub use rbv_api::api::Background;

/// What a job runs with; stored as JSON beside the job.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub model: ModelName,
    /// None: not asked for; webm when the background is opaque, mov (ProRes
    /// 4444, alpha kept) when it is transparent.
    pub output_format: Option<OutputFormat>,
    pub background: Background,
    pub text_prompt: Option<String>,
    pub composition: Option<Value>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: ModelName::default(),
            output_format: None,
            background: Background::Transparent,
            text_prompt: None,
            composition: None,
        }
    }
}

/// A `POST /v1/jobs` body.
#[derive(Debug, Clone, PartialEq)]
pub struct Create {
    pub video_url: String,
    pub auto_start: bool,
    pub webhook_url: Option<String>,
    pub metadata: Option<Value>,
    pub settings: Settings,
    /// Fields this server does not read, each said once.
    pub warnings: Vec<String>,
}

/// What create reads besides the settings.
const CREATE_FIELDS: [&str; 4] = ["video_url", "auto_start", "webhook_url", "metadata"];
/// The settings' fields, read by create and start.
const SETTINGS_FIELDS: [&str; 8] = [
    "model",
    "output_format",
    "text_prompt",
    "background",
    "bg_type",
    "bg_color",
    "bg_image_url",
    "composition",
];
const BACKGROUND_FIELDS: [&str; 3] = ["type", "color", "image_url"];

/// Edits from `a` to `b` (Levenshtein), for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut last = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (last + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(here + 1);
            last = here;
        }
    }
    row[b.len()]
}

/// A warning for each key of `o` outside `known` (`at`: where the object
/// is, `background.` for the nested one).
fn unknown_fields(o: &Map<String, Value>, known: &[&str], at: &str) -> Vec<String> {
    o.keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|k| {
            let near = known
                .iter()
                .map(|n| (distance(k, n), n))
                .filter(|(d, n)| *d <= 2.max(n.len() / 4))
                .min();
            let shown: String = k.chars().take(64).collect();
            match near {
                Some((_, n)) => {
                    format!("unknown field `{at}{shown}` ignored (did you mean `{at}{n}`?)")
                }
                None => format!("unknown field `{at}{shown}` ignored"),
            }
        })
        .collect()
}

/// Fields of a settings object this server does not read.
fn unknown_settings(o: &Map<String, Value>, also: &[&str]) -> Vec<String> {
    let known: Vec<&str> = SETTINGS_FIELDS.iter().chain(also).copied().collect();
    let mut w = unknown_fields(o, &known, "");
    if let Some(Value::Object(bg)) = o.get("background") {
        w.extend(unknown_fields(bg, &BACKGROUND_FIELDS, "background."));
    }
    w
}

fn object(body: &Value) -> Result<&Map<String, Value>, Refusal> {
    body.as_object()
        .ok_or_else(|| invalid("the body must be a JSON object"))
}

fn string<'a>(o: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Refusal> {
    match o.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(invalid(format!("{name} must be a string, found {other}"))),
    }
}

fn http_url(name: &str, url: &str) -> Result<String, Refusal> {
    let u = url.trim();
    if (u.starts_with("http://") || u.starts_with("https://")) && u.len() <= 2048 && u.len() > 8 {
        Ok(u.to_owned())
    } else {
        Err(invalid(format!(
            "{name} must be an http(s) URL, found `{url}`"
        )))
    }
}

pub fn parse_create(body: &Value) -> Result<Create, Refusal> {
    let o = object(body)?;
    let video_url = string(o, "video_url")?.ok_or_else(|| invalid("video_url is required"))?;
    let video_url = http_url("video_url", video_url)?;
    let auto_start = match o.get("auto_start") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(invalid(format!(
                "auto_start must be true or false, found {other}"
            )));
        }
    };
    let webhook_url = string(o, "webhook_url")?
        .map(|u| http_url("webhook_url", u))
        .transpose()?;
    let metadata = match o.get("metadata") {
        None | Some(Value::Null) => None,
        Some(m @ Value::Object(_)) if m.to_string().len() <= 16 * 1024 => Some(m.clone()),
        Some(Value::Object(_)) => return Err(invalid("metadata is over 16 KiB")),
        Some(other) => {
            return Err(invalid(format!(
                "metadata must be an object, found {other}"
            )));
        }
    };
    let mut settings = Settings::default();
    apply(o, &mut settings)?;
    Ok(Create {
        video_url,
        auto_start,
        webhook_url,
        metadata,
        settings,
        warnings: unknown_settings(o, &CREATE_FIELDS),
    })
}

/// A `POST /v1/jobs/{id}/start` body (may be empty): overrides on top of
/// what the job was created with. Answers the warnings for the fields it
/// does not read (create's own fields are read at create only).
pub fn parse_start(body: &Value, settings: &mut Settings) -> Result<Vec<String>, Refusal> {
    if body.is_null() {
        return Ok(Vec::new());
    }
    let o = object(body)?;
    if o.contains_key("video_url") {
        return Err(invalid(
            "video_url cannot be changed by start: create a new job",
        ));
    }
    apply(o, settings)?;
    let mut warnings: Vec<String> = CREATE_FIELDS
        .iter()
        .filter(|f| o.contains_key(**f))
        .map(|f| format!("`{f}` is read at create only: ignored by start"))
        .collect();
    warnings.extend(unknown_settings(o, &CREATE_FIELDS));
    Ok(warnings)
}

fn apply(o: &Map<String, Value>, s: &mut Settings) -> Result<(), Refusal> {
    if let Some(m) = string(o, "model")? {
        s.model = m
            .parse()
            .map_err(|_| invalid(format!("model `{m}` is not one of {}", ModelName::names())))?;
    }
    if let Some(f) = string(o, "output_format")? {
        s.output_format = Some(f.parse().map_err(|_| {
            invalid(format!(
                "output_format `{f}` is not one of {}",
                OutputFormat::names()
            ))
        })?);
    }
    if let Some(p) = string(o, "text_prompt")? {
        if p.chars().count() > 1000 {
            return Err(invalid("text_prompt is over 1000 characters"));
        }
        s.text_prompt = Some(p.to_owned()).filter(|p| !p.trim().is_empty());
    }
    if let Some(bg) = o.get("background").filter(|v| !v.is_null()) {
        s.background = nested_background(bg)?;
    } else if o.contains_key("bg_type")
        || o.contains_key("bg_color")
        || o.contains_key("bg_image_url")
    {
        s.background = flat_background(o)?;
    }
    if let Some(c) = o.get("composition").filter(|v| !v.is_null()) {
        rbv_core::compositor::parse_composition(&c.to_string())
            .map_err(|e| invalid(format!("composition: {e}")))?;
        s.composition = Some(c.clone());
    }
    Ok(())
}

fn color(name: &str, v: Option<&Value>) -> Result<[u8; 3], Refusal> {
    let v = v.ok_or_else(|| invalid(format!("{name} is required for a colour background")))?;
    if let Some(c) = color_from_json(v) {
        return Ok(c);
    }
    // Names as the element takes them (green, white, ...).
    if let Some(s) = v.as_str()
        && let Ok(c) = rbv_core::compositor::parse_color(s)
    {
        return Ok([c[0], c[1], c[2]]);
    }
    Err(invalid(format!(
        "{name} must be three 0-1 floats such as [0.035,0.635,0.274] or #RRGGBB, found {v}"
    )))
}

fn nested_background(bg: &Value) -> Result<Background, Refusal> {
    let o = bg
        .as_object()
        .ok_or_else(|| invalid(format!("background must be an object, found {bg}")))?;
    match string(o, "type")? {
        Some("transparent") | None => Ok(Background::Transparent),
        Some("color") => Ok(Background::Color(color(
            "background.color",
            o.get("color"),
        )?)),
        Some("image") => {
            let url = string(o, "image_url")?.ok_or_else(|| {
                invalid("background.image_url is required for an image background")
            })?;
            Ok(Background::Image(http_url("background.image_url", url)?))
        }
        Some(t) => Err(invalid(format!(
            "background.type `{t}` is not one of transparent, color, image"
        ))),
    }
}

fn flat_background(o: &Map<String, Value>) -> Result<Background, Refusal> {
    let preset = |name: &str| {
        let c = rbv_core::compositor::parse_color(name).expect("a known colour name");
        Background::Color([c[0], c[1], c[2]])
    };
    match string(o, "bg_type")? {
        Some("transparent") => Ok(Background::Transparent),
        // bg_color alone means a colour background.
        Some("color") | Some("custom") | None if o.contains_key("bg_color") => {
            Ok(Background::Color(color("bg_color", o.get("bg_color"))?))
        }
        Some("color") | Some("custom") => Err(invalid("bg_color is required with this bg_type")),
        Some(p @ ("green" | "white" | "black" | "blue")) => Ok(preset(p)),
        Some("image") | None => {
            let url = string(o, "bg_image_url")?
                .ok_or_else(|| invalid("bg_image_url is required for an image background"))?;
            Ok(Background::Image(http_url("bg_image_url", url)?))
        }
        Some(t) => Err(invalid(format!(
            "bg_type `{t}` is not one of transparent, color, image, green, white, black, blue, custom"
        ))),
    }
}

impl Settings {
    /// What a job with these settings, written in `format`, will not do as
    /// asked: said in the job's answers and its log.
    pub fn warnings(&self, format: OutputFormat) -> Vec<String> {
        let mut w = Vec::new();
        if let Some(prompt) = &self.text_prompt {
            let s = rbv_core::prompt::select(Some(prompt));
            if !s.unknown.is_empty() {
                let list = s
                    .unknown
                    .iter()
                    .map(|t| format!("'{t}'"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let keeping = match (s.salient, s.classes.is_empty()) {
                    (true, true) => "whatever stands out".to_string(),
                    (true, false) => format!("whatever stands out ({} asked too)", s.names()),
                    (false, _) => s.names(),
                };
                w.push(format!(
                    "text_prompt: {list} name no class this server's detector knows (COCO's 80: \
                     person, dog, car, chair, bottle, ...) and {} ignored; keeping {keeping}",
                    if s.unknown.len() == 1 { "is" } else { "are" }
                ));
            }
        }
        if !matches!(
            format,
            OutputFormat::Mov | OutputFormat::Mp4 | OutputFormat::Webm
        ) {
            w.push(format!(
                "output_format {format} holds no sound: the video's sound, if it has any, is \
                 not in the output (mov, mp4 and webm keep it)"
            ));
        }
        w
    }

    /// The format the job will be written in, or why this server cannot.
    /// `ffmpeg`: whether the server has ffmpeg, which writes the formats
    /// GStreamer 1.22 cannot: WebM with alpha (VP9), GIF and animated WebP.
    pub fn resolved_format(&self, ffmpeg: bool) -> Result<OutputFormat, Refusal> {
        let transparent = self.background == Background::Transparent;
        let f = match self.output_format {
            Some(f) => f,
            // The service's default, where it can keep alpha here.
            None if transparent && !ffmpeg => OutputFormat::Mov,
            None => OutputFormat::Webm,
        };
        if transparent && !f.keeps_alpha() {
            return Err(unprocessable(
                "mp4 has no alpha: choose a colour or image background, or webm / mov / png_sequence for transparency",
            ));
        }
        if rbv_runner::needs_ffmpeg(f, transparent) && !ffmpeg {
            return Err(unprocessable(format!(
                "this server cannot write {f}{} without ffmpeg (GStreamer 1.22 has no encoder for it): \
                 choose mov (ProRes 4444) or png_sequence, or install ffmpeg on the server",
                if f == OutputFormat::Webm {
                    " with alpha"
                } else {
                    ""
                }
            )));
        }
        Ok(f)
    }

    pub fn to_json(&self) -> Value {
        let bg = match &self.background {
            Background::Transparent => json!({"type": "transparent"}),
            Background::Color(c) => {
                json!({"type": "color", "color": format!("#{:02X}{:02X}{:02X}", c[0], c[1], c[2])})
            }
            Background::Image(u) => json!({"type": "image", "image_url": u}),
        };
        json!({
            "model": self.model.as_str(),
            "output_format": self.output_format.map(OutputFormat::as_str),
            "background": bg,
            "text_prompt": self.text_prompt,
            "composition": self.composition,
        })
    }

    /// Reads what `to_json` stored.
    pub fn from_json(v: &Value) -> Result<Settings, Refusal> {
        let o = object(v)?;
        let mut s = Settings::default();
        apply(o, &mut s)?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(v: Value) -> Result<Create, Refusal> {
        parse_create(&v)
    }

    #[test]
    fn both_background_forms_give_the_same_settings() {
        let nested = create(json!({"video_url": "https://x/a.mp4",
            "background": {"type": "color", "color": [0.0, 1.0, 0.0]}}))
        .unwrap();
        let flat = create(
            json!({"video_url": "https://x/a.mp4", "bg_type": "color", "bg_color": "#00FF00"}),
        )
        .unwrap();
        assert_eq!(nested.settings.background, Background::Color([0, 255, 0]));
        assert_eq!(nested.settings, flat.settings);
        let preset = create(json!({"video_url": "https://x/a.mp4", "bg_type": "black"})).unwrap();
        assert_eq!(preset.settings.background, Background::Color([0, 0, 0]));
        let image = create(json!({"video_url": "https://x/a.mp4", "bg_type": "image", "bg_image_url": "http://x/b.png"})).unwrap();
        assert_eq!(
            image.settings.background,
            Background::Image("http://x/b.png".into())
        );
    }

    #[test]
    fn defaults_and_draft() {
        let c = create(json!({"video_url": "http://127.0.0.1:1/uploads/a.webm"})).unwrap();
        assert!(c.auto_start);
        assert_eq!(c.settings.model, ModelName::Original);
        assert_eq!(
            c.settings.resolved_format(true).unwrap(),
            OutputFormat::Webm
        );
        assert_eq!(
            c.settings.resolved_format(false).unwrap(),
            OutputFormat::Mov
        );
        let d = create(
            json!({"video_url": "http://h/a.webm", "auto_start": false, "bg_type": "green"}),
        )
        .unwrap();
        assert!(!d.auto_start);
        assert_eq!(
            d.settings.resolved_format(false).unwrap(),
            OutputFormat::Webm
        );
    }

    #[test]
    fn start_overrides_what_create_set() {
        let mut s = create(json!({"video_url": "http://h/a.webm", "model": "light"}))
            .unwrap()
            .settings;
        parse_start(
            &json!({"model": "pro", "text_prompt": "person, ring",
            "background": {"type": "transparent"},
            "composition": {"canvas": {"width": 1920, "height": 1080},
                "foreground": {"anchor": "center", "scale": 1, "offset": {"x": 0, "y": 0}}}}),
            &mut s,
        )
        .unwrap();
        assert_eq!(s.model, ModelName::Pro);
        assert_eq!(s.text_prompt.as_deref(), Some("person, ring"));
        assert!(s.composition.is_some());
        assert_eq!(Settings::from_json(&s.to_json()).unwrap(), s);
        parse_start(&Value::Null, &mut s).unwrap();
        assert!(parse_start(&json!({"video_url": "http://h/b.webm"}), &mut s).is_err());
    }

    #[test]
    fn unknown_fields_are_accepted_and_named() {
        let c = create(json!({"video_url": "http://h/a.webm",
            "bakground": {"type": "color", "color": "#00FF00"},
            "background": {"type": "transparent", "colour": "red"},
            "client_ref": "abc-1", "model": "human"}))
        .unwrap();
        assert_eq!(c.settings.background, Background::Transparent);
        assert_eq!(
            c.warnings,
            [
                "unknown field `bakground` ignored (did you mean `background`?)",
                "unknown field `client_ref` ignored",
                "unknown field `background.colour` ignored (did you mean `background.color`?)",
            ]
        );
        let known = create(json!({"video_url": "http://h/a.webm", "auto_start": false,
            "bg_type": "green", "metadata": {"x": 1}, "text_prompt": "dog"}))
        .unwrap();
        assert!(known.warnings.is_empty(), "{:?}", known.warnings);
        let mut s = known.settings;
        let w = parse_start(
            &json!({"model": "light", "webhook_url": "https://h/w", "modle": "pro"}),
            &mut s,
        )
        .unwrap();
        assert_eq!(s.model, ModelName::Light);
        assert_eq!(
            w,
            [
                "`webhook_url` is read at create only: ignored by start",
                "unknown field `modle` ignored (did you mean `model`?)",
            ]
        );
        assert_eq!(distance("bakground", "background"), 1);
        assert_eq!(distance("", "abc"), 3);
    }

    #[test]
    fn settings_warn_of_ignored_prompt_terms_and_formats_without_sound() {
        let with = |prompt: &str| Settings {
            text_prompt: Some(prompt.into()),
            ..Settings::default()
        };
        assert!(
            with("people and bus")
                .warnings(OutputFormat::Mov)
                .is_empty()
        );
        assert_eq!(
            with("flurbish zorp").warnings(OutputFormat::Webm),
            [
                "text_prompt: 'flurbish zorp' name no class this server's detector knows \
              (COCO's 80: person, dog, car, chair, bottle, ...) and is ignored; keeping person"
            ]
        );
        let w = with("dog, glowing ring + sky").warnings(OutputFormat::Gif);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("'glowing ring', 'sky'") && w[0].contains("keeping dog"),
            "{w:?}"
        );
        assert!(
            w[1].starts_with("output_format gif holds no sound"),
            "{w:?}"
        );
        assert!(Settings::default().warnings(OutputFormat::Mp4).is_empty());
    }

    #[test]
    fn refusals_name_the_field() {
        let e = |v: Value| create(v).unwrap_err();
        assert!(e(json!({})).message.contains("video_url"));
        assert!(
            e(json!({"video_url": "/etc/passwd"}))
                .message
                .contains("video_url")
        );
        assert!(
            e(json!({"video_url": "http://h/a", "model": "huge"}))
                .message
                .contains("model")
        );
        assert!(
            e(json!({"video_url": "http://h/a", "output_format": "avi"}))
                .message
                .contains("output_format")
        );
        assert!(
            e(json!({"video_url": "http://h/a", "bg_type": "color"}))
                .message
                .contains("bg_color")
        );
        assert!(e(json!({"video_url": "http://h/a", "background": {"type": "color", "color": [2, 0, 0]}})).message.contains("color"));
        assert!(
            e(json!({"video_url": "http://h/a", "composition": {"canvas": {"width": -1}}}))
                .message
                .contains("composition")
        );
        assert!(
            e(json!({"video_url": "http://h/a", "auto_start": "yes"}))
                .message
                .contains("auto_start")
        );
        assert!(
            e(json!({"video_url": "http://h/a", "webhook_url": "ftp://x"}))
                .message
                .contains("webhook_url")
        );
        assert_eq!(e(json!([1])).status, 400);
    }

    #[test]
    fn formats_this_server_cannot_write_are_422() {
        let fmt = |v: Value, ffmpeg: bool| {
            create(v)
                .unwrap()
                .settings
                .resolved_format(ffmpeg)
                .map(|f| f.as_str())
                .map_err(|r| (r.status, r.message))
        };
        let mp4 = fmt(
            json!({"video_url": "http://h/a", "output_format": "mp4"}),
            true,
        )
        .unwrap_err();
        assert!(mp4.0 == 422 && mp4.1.contains("mp4 has no alpha"));
        for f in ["webm", "gif", "webp"] {
            let body = json!({"video_url": "http://h/a", "output_format": f});
            assert_eq!(fmt(body.clone(), true).unwrap(), f);
            let e = fmt(body, false).unwrap_err();
            assert!(e.0 == 422 && e.1.contains("without ffmpeg"), "{e:?}");
        }
        let opaque =
            json!({"video_url": "http://h/a", "output_format": "webm", "bg_type": "white"});
        assert_eq!(fmt(opaque, false).unwrap(), "webm");
        let mp4 = json!({"video_url": "http://h/a", "output_format": "mp4", "bg_type": "white"});
        assert_eq!(fmt(mp4, false).unwrap(), "mp4");
        let png = json!({"video_url": "http://h/a", "output_format": "png_sequence"});
        assert_eq!(fmt(png, false).unwrap(), "png_sequence");
    }
}
