// SPDX-License-Identifier: MPL-2.0
//! Every parser of outside input in the core, fuzzed (see `rbv_testkit::fuzz`):
//! colours, compositions, prompts, model sidecars and damaged model files.
//! Inputs that once crashed stay below as regression cases.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use rbv_core::compositor::{parse_color, parse_composition};
use rbv_core::prompt::{Keeps, select, unmatched};
use rbv_testkit as common;
use rbv_testkit::fuzz::{budget, fuzz, text};

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
            b"people, clothing accessories, puppies, the wine glasses",
            b"a , ,an,the ,s,es,ies, \xc3\x9f, ,,,",
            b"\xf0\x9f\x90\xb6 dog, D\xc3\x96G, teddy  bears",
        ],
        |b| {
            let _ = unmatched(&text(b), Keeps::People);
            let _ = unmatched(&text(b), Keeps::SalientSubject);
            // What the detector keeps: always a class or the model's choice.
            let s = select(Some(&text(b)));
            assert!(s.salient || !s.classes.is_empty());
            let _ = s.names();
        },
    );
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
        let _ = rbv_core::model::with_sidecar(rbv_core::model::LIGHT, &model);
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
    // The 438 kB selfie model at 256x256 loads and runs in milliseconds, so
    // the budget covers hundreds of damaged files, not a handful.
    common::init();
    let dir = common::scratch("fuzz-model");
    let whole =
        std::fs::read(rbv_core::paths::model_dir().join("selfie_segmentation.onnx")).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let options = rbv_core::model::RunnerOptions {
        threads: 1,
        ..Default::default()
    };
    let load_and_run = |path: &std::path::Path| {
        rbv_core::model::Segmenter::new(rbv_core::model::HUMAN_SQUARE, Some(path), &options)
            .and_then(|mut s| {
                let (w, h) = s.input_size();
                let rgb = vec![128u8; (w * h * 3) as usize];
                s.run(&rgb, w as usize * 3).map(|_| ())
            })
    };
    let intact = dir.join("intact.onnx");
    std::fs::write(&intact, &whole).unwrap();
    load_and_run(&intact).expect("the undamaged model runs");
    let end = Instant::now() + budget();
    let (mut n, mut errors) = (0, 0);
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
        match catch_unwind(AssertUnwindSafe(|| load_and_run(&path))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                assert!(
                    e.contains(&path.display().to_string()),
                    "the error does not name the damaged file (kept at {}): {e}",
                    path.display()
                );
                errors += 1;
            }
            Err(_) => panic!("a damaged model panicked: kept at {}", path.display()),
        }
        std::fs::remove_file(&path).ok();
        n += 1;
    }
    println!("model files: {n} damaged selfie models, {errors} errors naming the file, no panic");
    assert!(
        errors > 0,
        "none of {n} damaged files was refused: the damage did not reach the loader"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn detector_files_mutated() {
    // The detector's file damaged in its head (names, types, shapes) or cut
    // short: an error naming it, or (where the damage misses what matters)
    // detections on a frame; never a panic.
    common::init();
    let dir = common::scratch("fuzz-detector");
    let whole = std::fs::read(rbv_core::detect::default_path()).unwrap();
    let mut rng = fastrand::Rng::with_seed(11);
    let end = Instant::now() + budget();
    let mut n = 0;
    let options = rbv_core::model::RunnerOptions {
        threads: 1,
        ..Default::default()
    };
    let lb = rbv_core::detect::Letterbox::fit((64, 48), 64);
    let rgb = vec![128u8; (lb.placed.2 * lb.placed.3 * 3) as usize];
    while Instant::now() < end {
        let mut bytes = whole.clone();
        if rng.bool() {
            bytes.truncate(rng.usize(0..whole.len()));
        } else {
            for _ in 0..rng.usize(1..16) {
                let i = rng.usize(0..4096.min(bytes.len()));
                bytes[i] ^= 1 << rng.u8(0..8);
            }
        }
        let path = dir.join(format!("y{n}.onnx"));
        std::fs::write(&path, &bytes).unwrap();
        let result = catch_unwind(AssertUnwindSafe(|| {
            rbv_core::detect::Detector::new(Some(&path), &options).and_then(|mut d| {
                d.run(&rgb, lb.placed.2 as usize * 3, &lb, 0.25, None)
                    .map(|_| ())
            })
        }));
        if result.is_err() {
            panic!("a damaged detector panicked: kept at {}", path.display());
        }
        std::fs::remove_file(&path).ok();
        n += 1;
    }
    println!("detector files: {n} damaged yolov5s-seg files, no panic");
}
