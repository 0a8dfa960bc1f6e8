// SPDX-License-Identifier: MPL-2.0
//! The server's reading of `/v1` request bodies, fuzzed (see `rbv_testkit::fuzz`).

use rbv_server::request::{Settings, parse_create, parse_start};
use rbv_testkit::fuzz::fuzz;

/// The server's reading of `/v1` request bodies (create and start, both
/// background forms), and what it decides from them.
#[test]
fn v1_request_parsers() {
    let seeds: &[&[u8]] = &[
        br#"{"video_url":"https://x/a.mp4","model":"pro","output_format":"mov","auto_start":false}"#,
        br#"{"video_url":"http://h/u.webm","bg_type":"custom","bg_color":[0.035,0.635,0.274]}"#,
        br#"{"video_url":"http://h/u.webm","bg_type":"image","bg_image_url":"https://x/b.png","webhook_url":"https://x/h"}"#,
        br##"{"video_url":"http://h/u.webm","background":{"type":"color","color":"#00B140"},"metadata":{"a":[1,2]}}"##,
        br#"{"model":"pro","text_prompt":"person, clothing accessories, glowing ring","background":{"type":"transparent"},"composition":{"canvas":{"width":1920,"height":1080},"foreground":{"anchor":"center","scale":1,"offset":{"x":0,"y":0}}}}"#,
        br#"{"output_format":"png_sequence","bg_type":"green"}"#,
        b"null",
    ];
    fuzz("v1 requests", seeds, |b| {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(b) {
            if let Ok(c) = parse_create(&v) {
                let _ = c.settings.resolved_format(true);
                let _ = c.settings.resolved_format(false);
                let back = Settings::from_json(&c.settings.to_json());
                assert_eq!(
                    back.as_ref().ok(),
                    Some(&c.settings),
                    "stored settings read back"
                );
            }
            let mut s = Settings::default();
            if parse_start(&v, &mut s).is_ok() {
                let _ = s.resolved_format(false);
            }
        }
    });
}
