// SPDX-License-Identifier: MPL-2.0
//! The settings on plain values: refusals, read-back, the specs' flags.

use super::*;

fn set(
    s: &mut Settings,
    name: &str,
    value: glib::Value,
    running: Running,
) -> Result<Effect, String> {
    let prepared = prepare(name, &value);
    s.set(name, &value, prepared, running)
}

fn idle() -> Running {
    Running::default()
}

#[test]
fn refused_values_name_why_and_keep_the_old_one() {
    gst::init().unwrap();
    let mut s = Settings::default();
    set(&mut s, "background-color", "#102030".to_value(), idle()).unwrap();
    assert_eq!(s.color, [0x10, 0x20, 0x30, 255]);
    assert!(
        set(
            &mut s,
            "background-color",
            "chartreuse-ish".to_value(),
            idle()
        )
        .is_err()
    );
    assert_eq!(
        (s.color, s.color_text.as_str()),
        ([0x10, 0x20, 0x30, 255], "#102030")
    );
    let e = set(&mut s, "composition", "{bad".to_value(), idle()).unwrap_err();
    assert!(e.starts_with("'{bad':"), "{e}");
    assert_eq!(s.placement, compositor::Placement::default());
    assert!(set(&mut s, "api-url", "ftp://x".to_value(), idle()).is_err());
    assert!(set(&mut s, "video-url", "/tmp/in.mp4".to_value(), idle()).is_err());
    let e = set(
        &mut s,
        "background-image",
        "/nonexistent.png".to_value(),
        idle(),
    )
    .unwrap_err();
    assert!(e.contains("/nonexistent.png"), "{e}");
    assert_eq!(s.image_error.as_deref(), Some(e.as_str()));
}

#[test]
fn running_elements_refuse_what_cannot_change_then() {
    gst::init().unwrap();
    let mut s = Settings::default();
    let local = Running {
        local: true,
        remote: false,
    };
    let e = set(&mut s, "backend", Backend::Remote.to_value(), local).unwrap_err();
    assert!(e.contains("cannot change while the element runs"), "{e}");
    assert!(e.contains("local stays"), "{e}");
    assert_eq!(s.backend, Backend::Local);
    let e = set(
        &mut s,
        "background",
        BackgroundMode::Image.to_value(),
        local,
    )
    .unwrap_err();
    assert!(e.contains("needs a readable background-image"), "{e}");
    set(
        &mut s,
        "background",
        BackgroundMode::Image.to_value(),
        idle(),
    )
    .unwrap();
    assert_eq!(
        set(&mut s, "text-prompt", Some("person").to_value(), local),
        Ok(Effect::PromptChanged)
    );
}

#[test]
fn refusals_before_the_start_are_kept_until_a_value_is_taken() {
    gst::init().unwrap();
    let mut s = Settings::default();
    set(&mut s, "background-color", "notacolour".to_value(), idle()).unwrap_err();
    set(&mut s, "composition", "{bad".to_value(), idle()).unwrap_err();
    let all = s.refusals().unwrap();
    assert!(
        all.contains("background-color: invalid colour 'notacolour'"),
        "{all}"
    );
    assert!(all.contains("#RRGGBB"), "{all}");
    assert!(all.contains("composition: '{bad'"), "{all}");
    set(&mut s, "background-color", "white".to_value(), idle()).unwrap();
    set(&mut s, "composition", "{}".to_value(), idle()).unwrap();
    assert_eq!(s.refusals(), None);
    // A local image path is the remote start's to refuse (it wants a URL).
    set(
        &mut s,
        "background-image",
        "/nonexistent/bg.png".to_value(),
        idle(),
    )
    .unwrap_err();
    assert!(s.refusals().unwrap().contains("/nonexistent/bg.png"));
    set(&mut s, "backend", Backend::Remote.to_value(), idle()).unwrap();
    assert_eq!(s.refusals(), None);
    set(&mut s, "backend", Backend::Local.to_value(), idle()).unwrap();
    set(
        &mut s,
        "background-image",
        None::<String>.to_value(),
        idle(),
    )
    .unwrap();
    assert_eq!(s.refusals(), None);
    // While running a refusal is a warning only: the pipeline plays on.
    let local = Running {
        local: true,
        remote: false,
    };
    set(&mut s, "background-color", "notacolour".to_value(), local).unwrap_err();
    set(&mut s, "model", Model::Light.to_value(), local).unwrap_err();
    assert_eq!(s.refusals(), None);
    assert_eq!(s.model, DEFAULT_MODEL);
}

#[test]
fn start_only_properties_say_so_in_their_specs() {
    gst::init().unwrap();
    for p in property_specs() {
        if !p.flags().contains(glib::ParamFlags::WRITABLE) {
            continue;
        }
        let ready = p.flags().contains(gst::PARAM_FLAG_MUTABLE_READY);
        let playing = p.flags().contains(gst::PARAM_FLAG_MUTABLE_PLAYING);
        assert!(ready ^ playing, "{}: one of READY or PLAYING", p.name());
    }
    for name in [
        "model",
        "mode",
        "backend",
        "execution-provider",
        "api-url",
        "detector",
    ] {
        assert!(!changeable_while_running(name), "{name}");
    }
    for name in ["background", "text-prompt", "smoothing", "composition"] {
        assert!(changeable_while_running(name), "{name}");
    }
}

#[test]
fn values_read_back_and_the_key_as_its_fingerprint() {
    gst::init().unwrap();
    let mut s = Settings::default();
    let key = "rbv_live_0123456789abcdefWXYZ";
    set(&mut s, "api-key", Some(key).to_value(), idle()).unwrap();
    let shown: Option<String> = s.get("api-key").get().unwrap();
    let shown = shown.unwrap();
    assert!(!shown.contains("0123456789"), "{shown}");
    set(&mut s, "scale", 0.5f64.to_value(), idle()).unwrap();
    let json: Option<String> = s.get("composition").get().unwrap();
    assert!(json.unwrap().contains("\"scale\":0.5"));
    let format = s.get("output-format");
    assert_eq!(
        glib::EnumValue::from_value(&format).unwrap().1.nick(),
        "webm"
    );
    // Every spec'd property reads back.
    for p in properties() {
        assert_eq!(s.get(p.name()).type_(), p.value_type(), "{}", p.name());
    }
}
