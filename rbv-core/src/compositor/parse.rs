// SPDX-License-Identifier: MPL-2.0
//! Background and composition settings as users write them: colours
//! (`#RRGGBB`, `#RRGGBBAA`, names, the service's 0-1 float triple) and the
//! service's `composition` JSON object.

use serde_json::{Map, Value};

use crate::compositor::{Anchor, Placement};

/// Colour names: the service's presets (green, white, black, blue) and the
/// usual basic names. `green` is the keying green #00FF00 (as a green-screen
/// preset means), not CSS's dark #008000.
const NAMES: &[(&str, [u8; 4])] = &[
    ("black", [0, 0, 0, 255]),
    ("white", [255, 255, 255, 255]),
    ("green", [0, 255, 0, 255]),
    ("lime", [0, 255, 0, 255]),
    ("blue", [0, 0, 255, 255]),
    ("red", [255, 0, 0, 255]),
    ("yellow", [255, 255, 0, 255]),
    ("cyan", [0, 255, 255, 255]),
    ("magenta", [255, 0, 255, 255]),
    ("gray", [128, 128, 128, 255]),
    ("grey", [128, 128, 128, 255]),
    ("transparent", [0, 0, 0, 0]),
];

/// Parses a colour into straight RGBA bytes: `#RRGGBB`, `#RRGGBBAA`, a
/// name (`green`, `white`, ...), or three or four 0-1 floats
/// (`[0.035, 0.635, 0.274]`, brackets optional).
pub fn parse_color(text: &str) -> Result<[u8; 4], String> {
    let t = text.trim();
    let bad = |why: &str| {
        format!(
            "invalid colour '{text}': {why} (use #RRGGBB, #RRGGBBAA, a name such as green, \
             or 0-1 floats such as [0.035,0.635,0.274])"
        )
    };
    if let Some(hex) = t.strip_prefix('#') {
        if !(hex.len() == 6 || hex.len() == 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("not 6 or 8 hex digits"));
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex checked");
        let a = if hex.len() == 8 { byte(6) } else { 255 };
        return Ok([byte(0), byte(2), byte(4), a]);
    }
    if let Some(&(_, rgba)) = NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(t)) {
        return Ok(rgba);
    }
    let inner = t
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(t);
    if inner.contains(',') {
        let values = inner
            .split(',')
            .map(|v| v.trim().parse::<f64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad("not a list of numbers"))?;
        if !(3..=4).contains(&values.len()) {
            return Err(bad("needs 3 or 4 components"));
        }
        if values.iter().any(|v| !(0.0..=1.0).contains(v)) {
            return Err(bad("components must be within 0-1"));
        }
        let b = |i: usize| values.get(i).map_or(255, |v| (v * 255.0).round() as u8);
        return Ok([b(0), b(1), b(2), b(3)]);
    }
    Err(bad("unknown name"))
}

/// `#RRGGBBAA` for a straight RGBA colour.
pub fn color_to_string(c: [u8; 4]) -> String {
    format!("#{:02X}{:02X}{:02X}{:02X}", c[0], c[1], c[2], c[3])
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{what} must be a JSON object, found {v}"))
}

/// Fails on keys other than `allowed`, so a typo is not silently ignored.
fn known_keys(map: &Map<String, Value>, what: &str, allowed: &[&str]) -> Result<(), String> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!(
            "unknown key '{k}' in {what} (known: {})",
            allowed.join(", ")
        )),
        None => Ok(()),
    }
}

fn integer(v: &Value, what: &str, min: i64, max: i64) -> Result<i64, String> {
    let n = v
        .as_f64()
        .filter(|n| n.fract() == 0.0)
        .ok_or_else(|| format!("{what} must be a whole number, found {v}"))? as i64;
    if !(min..=max).contains(&n) {
        return Err(format!("{what} must be within {min}..{max}, found {n}"));
    }
    Ok(n)
}

/// Largest canvas side accepted (GStreamer's own limit is far above any
/// real canvas; this catches typos such as 19200).
pub const MAX_CANVAS: u32 = 16384;
pub const MIN_SCALE: f64 = 0.01;
pub const MAX_SCALE: f64 = 16.0;
pub const MAX_OFFSET: i32 = 32768;

/// Parses the service's `composition` object:
/// `{"canvas":{"width":1920,"height":1080},"foreground":{"anchor":"center","scale":1,"offset":{"x":0,"y":0}}}`.
/// Every part is optional; what is left out takes its default (canvas = input
/// size, centre, scale 1, no offset). Unknown keys and out-of-range values
/// are errors naming them.
pub fn parse_composition(json: &str) -> Result<Placement, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("invalid JSON: {e}"))?;
    let root = object(&v, "composition")?;
    known_keys(root, "composition", &["canvas", "foreground"])?;
    let mut p = Placement::default();
    if let Some(canvas) = root.get("canvas") {
        let canvas = object(canvas, "canvas")?;
        known_keys(canvas, "canvas", &["width", "height"])?;
        let side = |k: &str| -> Result<u32, String> {
            canvas.get(k).map_or(Ok(0), |v| {
                integer(v, &format!("canvas.{k}"), 0, i64::from(MAX_CANVAS)).map(|n| n as u32)
            })
        };
        p.canvas_width = side("width")?;
        p.canvas_height = side("height")?;
    }
    if let Some(fg) = root.get("foreground") {
        let fg = object(fg, "foreground")?;
        known_keys(fg, "foreground", &["anchor", "scale", "offset"])?;
        if let Some(a) = fg.get("anchor") {
            let name = a
                .as_str()
                .ok_or_else(|| format!("foreground.anchor must be a string, found {a}"))?;
            p.anchor = Anchor::parse(name).ok_or_else(|| {
                format!(
                    "unknown anchor '{name}' (known: {})",
                    Anchor::ALL.map(Anchor::name).join(", ")
                )
            })?;
        }
        if let Some(s) = fg.get("scale") {
            let scale = s
                .as_f64()
                .ok_or_else(|| format!("foreground.scale must be a number, found {s}"))?;
            if !(MIN_SCALE..=MAX_SCALE).contains(&scale) {
                return Err(format!(
                    "foreground.scale must be within {MIN_SCALE}..{MAX_SCALE}, found {scale}"
                ));
            }
            p.scale = scale;
        }
        if let Some(o) = fg.get("offset") {
            let o = object(o, "foreground.offset")?;
            known_keys(o, "foreground.offset", &["x", "y"])?;
            let max = i64::from(MAX_OFFSET);
            let axis = |k: &str| -> Result<i32, String> {
                o.get(k).map_or(Ok(0), |v| {
                    integer(v, &format!("foreground.offset.{k}"), -max, max).map(|n| n as i32)
                })
            };
            p.offset_x = axis("x")?;
            p.offset_y = axis("y")?;
        }
    }
    Ok(p)
}

/// The service's `composition` object for `p` (what the `composition`
/// property reads back).
pub fn composition_to_json(p: &Placement) -> String {
    serde_json::json!({
        "canvas": {"width": p.canvas_width, "height": p.canvas_height},
        "foreground": {
            "anchor": p.anchor.name(),
            "scale": p.scale,
            "offset": {"x": p.offset_x, "y": p.offset_y},
        },
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_in_every_documented_form() {
        assert_eq!(parse_color("#00FF00").unwrap(), [0, 255, 0, 255]);
        assert_eq!(
            parse_color(" #1a2B3c80 ").unwrap(),
            [0x1a, 0x2b, 0x3c, 0x80]
        );
        assert_eq!(parse_color("green").unwrap(), [0, 255, 0, 255]);
        assert_eq!(parse_color("White").unwrap(), [255; 4]);
        assert_eq!(
            parse_color("[0.035,0.635,0.274]").unwrap(),
            [9, 162, 70, 255]
        );
        assert_eq!(parse_color("0, 1, 0.5, 0.5").unwrap(), [0, 255, 128, 128]);
        assert_eq!(color_to_string([9, 162, 70, 255]), "#09A246FF");
        for bad in [
            "",
            "#12345",
            "#GGGGGG",
            "greenish",
            "[1,2,3]",
            "[0.1,0.2]",
            "0.1,x,0.3",
            "#",
        ] {
            let err = parse_color(bad).unwrap_err();
            assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
        }
    }

    #[test]
    fn the_services_composition_object_parses() {
        let p = parse_composition(
            r#"{"canvas":{"width":1920,"height":1080},
                "foreground":{"anchor":"bottom-right","scale":0.4,"offset":{"x":-40,"y":-30}}}"#,
        )
        .unwrap();
        assert_eq!(
            p,
            Placement {
                canvas_width: 1920,
                canvas_height: 1080,
                anchor: Anchor::BottomRight,
                scale: 0.4,
                offset_x: -40,
                offset_y: -30,
            }
        );
        // Round trip through what the property reads back.
        assert_eq!(parse_composition(&composition_to_json(&p)).unwrap(), p);
        // Parts left out take their defaults.
        assert_eq!(parse_composition("{}").unwrap(), Placement::default());
        let p = parse_composition(r#"{"foreground":{"scale":1}}"#).unwrap();
        assert_eq!(p, Placement::default());
    }

    #[test]
    fn bad_composition_names_the_problem() {
        for (json, needle) in [
            ("{", "invalid JSON"),
            ("[]", "composition must be a JSON object"),
            (r#"{"canvas":{"width":-5}}"#, "canvas.width"),
            (r#"{"canvas":{"width":19.5}}"#, "whole number"),
            (r#"{"canvas":{"width":99999}}"#, "99999"),
            (r#"{"foreground":{"scale":-1}}"#, "found -1"),
            (r#"{"foreground":{"scale":"big"}}"#, "\"big\""),
            (r#"{"foreground":{"anchor":"middle"}}"#, "'middle'"),
            (r#"{"foreground":{"ofset":{"x":1}}}"#, "'ofset'"),
            (r#"{"canvass":{}}"#, "'canvass'"),
            (r#"{"foreground":{"offset":{"x":1e9}}}"#, "offset.x"),
        ] {
            let err = parse_composition(json).unwrap_err();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }
}
