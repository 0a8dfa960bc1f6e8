// Fuzzing on the stable toolchain (cargo fuzz needs nightly, which this
// project does not use): every parser that reads outside input gets seeded,
// randomly mutated inputs - byte flips, insertions, deletions, splices of
// other seeds, truncations, deep nesting - and must answer Ok or Err, never
// panic. Bounded: 3 s per parser in CI; `RBV_FUZZ_SECONDS=60 cargo test
// --release --test fuzz_parsers -- --nocapture` for a longer run, which prints
// the inputs tried per parser. Inputs that once crashed stay below as
// regression cases.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use gstrbv::composition::{parse_color, parse_composition};
use gstrbv::prompt::{Keeps, unmatched};
use gstrbv::remote::api::{Job, Upload, color_from_json, error_body};

fn budget() -> Duration {
    Duration::from_secs_f64(
        std::env::var("RBV_FUZZ_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3.0),
    )
}

/// One random mutation of `input`, using the other seeds for splices.
fn mutate(rng: &mut fastrand::Rng, input: &[u8], seeds: &[&[u8]]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.usize(1..4) {
        let at = if v.is_empty() {
            0
        } else {
            rng.usize(0..=v.len())
        };
        match rng.u8(0..7) {
            0 if !v.is_empty() => {
                let i = rng.usize(0..v.len());
                v[i] ^= 1 << rng.u8(0..8);
            }
            1 => v.insert(at, rng.u8(..)),
            2 if at < v.len() => {
                v.remove(at);
            }
            3 => {
                let other = seeds[rng.usize(0..seeds.len())];
                let from = rng.usize(0..=other.len());
                v.splice(at..at, other[from..].iter().copied());
            }
            4 => v.truncate(at),
            5 => {
                let deep = rng.usize(1..3000);
                let (open, close) = if rng.bool() {
                    (b'[', b']')
                } else {
                    (b'{', b'}')
                };
                let mut nest = vec![open; deep];
                nest.extend(std::iter::repeat_n(close, rng.usize(0..=deep)));
                v.splice(at..at, nest);
            }
            _ => {
                let special: &[&[u8]] = &[
                    b"\"",
                    b"\\u0000",
                    b"\xF0\x9F\x98\x80",
                    b"\xff\xfe",
                    b"1e999",
                    b"-0",
                    b"NaN",
                    b"null",
                    b"9999999999999999999999",
                    b"#",
                    b",",
                    b"[]",
                    b"{}",
                ];
                let s = special[rng.usize(0..special.len())];
                v.splice(at..at, s.iter().copied());
            }
        }
    }
    v
}

/// Runs `f` on mutated seeds for the budget; panics name the input.
fn fuzz(name: &str, seeds: &[&[u8]], mut f: impl FnMut(&[u8])) {
    let mut rng = fastrand::Rng::with_seed(0x5eed ^ name.len() as u64);
    let end = Instant::now() + budget();
    let mut n = 0u64;
    for s in seeds {
        f(s);
    }
    while Instant::now() < end {
        for _ in 0..64 {
            let seed = seeds[rng.usize(0..seeds.len())];
            let input = mutate(&mut rng, seed, seeds);
            if catch_unwind(AssertUnwindSafe(|| f(&input))).is_err() {
                panic!("{name} panicked on {:?}", String::from_utf8_lossy(&input));
            }
            n += 1;
        }
    }
    println!("{name}: {n} inputs, no panic");
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn colour_composition_and_prompt_parsers() {
    fuzz(
        "parse_color",
        &[
            b"#00FF00",
            b"#00ff0080",
            b"green",
            b"[0.035,0.635,0.274]",
            b"0.1, 0.2, 0.3, 0.4",
            b"transparent",
        ],
        |b| {
            let _ = parse_color(&text(b));
        },
    );
    fuzz(
        "parse_composition",
        &[
            br#"{"canvas":{"width":1920,"height":1080},"foreground":{"anchor":"bottom-right","scale":0.4,"offset":{"x":-48,"y":-48}}}"#,
            br#"{"foreground":{"anchor":"center"}}"#,
            b"{}",
        ],
        |b| {
            let _ = parse_composition(&text(b));
        },
    );
    fuzz(
        "prompt",
        &[
            b"person, glowing ring",
            b"people,hair ,  face",
            b"product; the dog",
        ],
        |b| {
            let _ = unmatched(&text(b), Keeps::People);
            let _ = unmatched(&text(b), Keeps::SalientSubject);
        },
    );
}

#[test]
fn v1_answer_parsers() {
    let seeds: &[&[u8]] = &[
        br#"{"success":true,"id":"job_1","status":"created","message":"ok"}"#,
        br#"{"job_id":"job_2","status":"pending","progress":"40"}"#,
        br#"{"id":"j","status":"completed","progress":100,"output_url":"https://x/o.webm","error":null}"#,
        br#"{"id":"j","status":"failed","error":{"code":"decode_error","message":"bad"}}"#,
        br#"{"job":{"id":"j","status":"processing"}}"#,
        br#"{"success":true,"video_id":"v","video_url":"https://x/u.mp4","size":12}"#,
        br#"{"error":{"code":"insufficient_credits","message":"m","request_id":"req_1"}}"#,
        br#"{"error":"Job not found"}"#,
        br#"{"message":"Processing failed"}"#,
        b"[0.1,0.2,0.3]",
        b"\"#A0B1C2\"",
    ];
    fuzz("v1 answers", seeds, |b| {
        for status in [200u16, 401, 429, 503] {
            let _ = error_body(status, b);
        }
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(b) {
            let _ = Job::from_json(&v, None);
            let _ = Job::from_json(&v, Some("job_known"));
            let _ = Upload::from_json(&v);
            let _ = color_from_json(&v);
        }
    });
}

/// The server's reading of `/v1` request bodies (create and start, both
/// background forms), and what it decides from them.
#[cfg(feature = "server")]
#[test]
fn v1_request_parsers() {
    use gstrbv::server::request::{Settings, parse_create, parse_start};
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

#[test]
fn model_sidecar_parser() {
    let dir = common::scratch("fuzz-sidecar");
    let model = dir.join("m.onnx");
    std::fs::write(&model, b"not read here").unwrap();
    let sidecar = dir.join("m.json");
    let seeds: &[&[u8]] = &[
        br#"{"normalize":{"scale":255,"mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225]},"output":"min-max","input_size":[320,320]}"#,
        br#"{"normalize":{"scale":"max"},"output":"logits"}"#,
        br#"{"output":"probability","input_size":[256,144]}"#,
    ];
    fuzz("model sidecar", seeds, |b| {
        std::fs::write(&sidecar, b).unwrap();
        let _ = gstrbv::model::with_sidecar(gstrbv::model::LIGHT, &model);
    });
}

#[test]
fn regressions() {
    // Inputs kept from fuzzing runs (none has crashed so far); each must
    // answer, not panic.
    for c in [
        "#",
        "#\u{1F600}",
        "[",
        "[1,",
        "[1e999,0,0]",
        "[-0,0,0]",
        "\u{0}",
    ] {
        let _ = parse_color(c);
    }
    for c in [
        "{\"canvas\":{\"width\":1e999}}",
        "{\"foreground\":{\"scale\":-0}}",
        "[[[[",
        "{\"canvas\":[]}",
    ] {
        let _ = parse_composition(c);
    }
}

#[test]
fn model_files_mutated() {
    // ONNX Runtime reads the model; a damaged file must come back as an
    // error naming it (rbv then reads the metadata it needs from the session).
    common::init();
    let dir = common::scratch("fuzz-model");
    let whole = std::fs::read(gstrbv::runtime::cache_dir().join("models/u2netp.onnx")).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let end = Instant::now() + budget();
    let mut n = 0;
    let options = gstrbv::model::RunnerOptions {
        threads: 1,
        ..Default::default()
    };
    while Instant::now() < end {
        let mut bytes = whole.clone();
        match rng.u8(0..3) {
            0 => bytes.truncate(rng.usize(0..whole.len())),
            1 => {
                for _ in 0..rng.usize(1..64) {
                    let i = rng.usize(0..bytes.len());
                    bytes[i] = rng.u8(..);
                }
            }
            _ => {
                // Damage the graph's head, where names, types and shapes are.
                for _ in 0..rng.usize(1..16) {
                    let i = rng.usize(0..4096.min(bytes.len()));
                    bytes[i] ^= 1 << rng.u8(0..8);
                }
            }
        }
        let path = dir.join(format!("m{n}.onnx"));
        std::fs::write(&path, &bytes).unwrap();
        let result = catch_unwind(AssertUnwindSafe(|| {
            gstrbv::model::Segmenter::new(gstrbv::model::LIGHT, Some(&path), &options).and_then(
                |mut s| {
                    let (w, h) = s.input_size();
                    let rgb = vec![128u8; (w * h * 3) as usize];
                    s.run(&rgb, w as usize * 3).map(|_| ())
                },
            )
        }));
        match result {
            Ok(Ok(())) | Ok(Err(_)) => {}
            Err(_) => panic!("a damaged model panicked: kept at {}", path.display()),
        }
        std::fs::remove_file(&path).ok();
        n += 1;
    }
    println!("model files: {n} damaged u2netp files, no panic");
}
