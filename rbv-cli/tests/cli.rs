// SPDX-License-Identifier: MPL-2.0
// The `rbv` command: a real clip through the local backend, and the remote
// job flow against the fake `/v1` service on 127.0.0.1, with progress lines
// and exit codes that tell bad input, API errors and network failures apart.

use rbv_testkit as common;
use rbv_testkit::fake_api;

use std::path::Path;
use std::process::{Command, Output};

use fake_api::{Behaviour, FakeApi, Fault};

const KEY: &str = "rbv_cli_key_0123456789abcdefSECRET";

fn rbv(args: &[&str], key: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rbv"));
    c.args(args).env_remove("RBV_API_KEY");
    if let Some(k) = key {
        c.env("RBV_API_KEY", k);
    }
    let out = c.output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !text.contains("abcdefSECRET"),
        "the key was printed: {text}"
    );
    out
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One decoded frame's matte: the share of clear (alpha < 16) and solid
/// (alpha > 240) pixels, and the highest alpha in its four 8x8 corners.
#[derive(Debug)]
struct Matte {
    clear: f64,
    solid: f64,
    corners: u8,
}

/// Frames, and each frame's matte, decoded by GStreamer.
fn decode(path: &Path) -> (usize, Vec<Matte>) {
    let mut mattes = Vec::new();
    let eos = common::for_each_sample(
        &format!(
            "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGBA ! appsink name=sink sync=false",
            path.display()
        ),
        |s| {
            let info = gst_video::VideoInfo::from_caps(s.caps().unwrap()).unwrap();
            let (w, h) = (info.width() as usize, info.height() as usize);
            let stride = info.stride()[0] as usize;
            let map = s.buffer().unwrap().map_readable().unwrap();
            let alpha = |x: usize, y: usize| map[y * stride + x * 4 + 3];
            let all = (0..h).flat_map(|y| (0..w).map(move |x| (x, y)));
            let share = |f: fn(u8) -> bool| {
                all.clone().filter(|&(x, y)| f(alpha(x, y))).count() as f64 / (w * h) as f64
            };
            let corners = [(0, 0), (w - 8, 0), (0, h - 8), (w - 8, h - 8)]
                .into_iter()
                .flat_map(|(x0, y0)| (0..64).map(move |i| (x0 + i % 8, y0 + i / 8)))
                .map(|(x, y)| alpha(x, y))
                .max()
                .unwrap();
            mattes.push(Matte {
                clear: share(|a| a < 16),
                solid: share(|a| a > 240),
                corners,
            });
            true
        },
    );
    assert!(eos, "{} did not decode to EOS", path.display());
    (mattes.len(), mattes)
}

fn encode(description: &str) {
    let p = common::launch(description);
    use gst::prelude::*;
    p.set_state(gst::State::Playing).unwrap();
    assert!(common::wait_for_error(&p).is_none(), "{description}");
    p.set_state(gst::State::Null).unwrap();
}

#[test]
fn local_writes_a_playable_file_with_alpha() {
    common::init();
    let dir = common::scratch("cli-local");
    let clip = dir.join("clip.webm");
    common::short_clip("vtest.avi", 20, &clip);
    let out = dir.join("out.mkv");
    let o = rbv(
        &[
            "local",
            clip.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--model",
            "human",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("wrote"), "{}", stderr(&o));
    let (frames, mattes) = decode(&out);
    assert_eq!(frames, 20);
    // Distant pedestrians on a big street (under 1 % of the frame, and the
    // detector clears what is not a person): in every frame most of the
    // street is clear but not all of it, its corners too, and on average
    // people are solid (an all-clear or all-solid matte fails).
    for (i, m) in mattes.iter().enumerate() {
        assert!(
            (0.5..0.999).contains(&m.clear) && m.corners < 16,
            "frame {i}: the background was not removed: {m:?}"
        );
    }
    let solid = mattes.iter().map(|m| m.solid).sum::<f64>() / mattes.len() as f64;
    println!("solid share {solid:.4} on average");
    assert!(solid > 0.001, "solid share {solid:.4}: no one kept");

    // Bad options are bad input (exit 2), named.
    for (args, want) in [
        (
            vec!["--background-color", "chartreuse-ish"],
            "background-color",
        ),
        (
            vec!["--scale", "99"],
            "--scale 99: '99' is not a number from 0.01 to 16",
        ),
        (
            vec!["--model", "bogus"],
            "'bogus' is not one of human, light, original, pro",
        ),
        (vec!["--api-key", "x"], "--api-key is for rbv remote"),
        (vec!["--frobnicate", "1"], "--frobnicate: no such option"),
    ] {
        let mut a = vec!["local", clip.to_str().unwrap(), "-o", out.to_str().unwrap()];
        a.extend(args);
        let o = rbv(&a, None);
        assert_eq!(o.status.code(), Some(2), "{a:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{a:?}: {}", stderr(&o));
    }
    let o = rbv(
        &["local", "/nonexistent.mp4", "-o", out.to_str().unwrap()],
        None,
    );
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn remote_shows_progress_and_writes_the_services_file() {
    common::init();
    let dir = common::scratch("cli-remote");
    let served = dir.join("served.webm");
    encode(&format!(
        "videotestsrc pattern=red num-buffers=12 ! video/x-raw,width=96,height=64,framerate=12/1 ! \
         vp8enc deadline=1 ! webmmux ! filesink location={}",
        served.display()
    ));
    let input = dir.join("talk.mp4");
    std::fs::write(&input, vec![1u8; 10_000]).unwrap();
    let api = FakeApi::start(Behaviour {
        key: KEY.into(),
        output: std::fs::read(&served).unwrap(),
        polls: 3,
        fail_with: None,
        alt_forms: false,
    });
    let out = dir.join("out.webm");
    let o = rbv(
        &[
            "remote",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--api-url",
            &api.url,
            "--poll-interval",
            "20",
            "--model",
            "light",
            "--background",
            "color",
            "--background-color",
            "#0000ff",
            "--canvas-width",
            "1280",
            "--canvas-height",
            "720",
            "--anchor",
            "bottom-right",
            "--scale",
            "0.5",
        ],
        Some(KEY),
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("job job_") && err.contains("processing: ") && err.contains("completed: 100%"),
        "{err}"
    );
    assert!(err.contains(&format!("wrote {}", out.display())), "{err}");
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(&served).unwrap()
    );
    assert_eq!(decode(&out).0, 12, "a playable file");
    let start = &api.starts()[0];
    assert_eq!(start.body["model"], "light");
    assert_eq!(
        start.body["background"]["color"],
        serde_json::json!([0.0, 0.0, 1.0])
    );
    assert_eq!(start.body["composition"]["canvas"]["width"], 1280);
    assert_eq!(
        start.body["composition"]["foreground"]["anchor"],
        "bottom-right"
    );
    assert_eq!(start.body["composition"]["foreground"]["scale"], 0.5);
}

#[test]
fn remote_exit_codes_tell_failures_apart() {
    common::init();
    let dir = common::scratch("cli-codes");
    let input = dir.join("a.webm");
    std::fs::write(&input, vec![1u8; 1000]).unwrap();
    let out = dir.join("o.webm");
    let (i, o) = (input.to_str().unwrap(), out.to_str().unwrap());
    let behaviour = || Behaviour {
        key: KEY.into(),
        output: vec![1; 100],
        polls: 0,
        fail_with: None,
        alt_forms: false,
    };

    // No key: bad input.
    let r = rbv(
        &["remote", i, "-o", o, "--api-url", "http://127.0.0.1:9"],
        None,
    );
    assert_eq!(r.status.code(), Some(2), "{}", stderr(&r));
    assert!(stderr(&r).contains("no API key"));
    // Wrong key: the service refuses (3).
    let api = FakeApi::start(behaviour());
    let r = rbv(
        &["remote", i, "-o", o, "--api-url", &api.url],
        Some("not-the-key-000000000"),
    );
    assert_eq!(r.status.code(), Some(3), "{}", stderr(&r));
    assert!(stderr(&r).contains("401 invalid_api_key"), "{}", stderr(&r));
    // A failed job (3).
    let api = FakeApi::start(Behaviour {
        fail_with: Some("bad input video".into()),
        ..behaviour()
    });
    let r = rbv(
        &[
            "remote",
            i,
            "-o",
            o,
            "--api-url",
            &api.url,
            "--poll-interval",
            "20",
        ],
        Some(KEY),
    );
    assert_eq!(r.status.code(), Some(3));
    assert!(stderr(&r).contains("bad input video"));
    // Nobody listening, or a server that stops answering: network (4).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = rbv(
        &[
            "remote",
            i,
            "-o",
            o,
            "--api-url",
            &format!("http://127.0.0.1:{port}"),
            "--timeout",
            "2",
        ],
        Some(KEY),
    );
    assert_eq!(r.status.code(), Some(4), "{}", stderr(&r));
    let api = FakeApi::start(behaviour());
    api.fault(
        "upload",
        &vec![Fault::Stall(std::time::Duration::from_secs(5)); 3],
    );
    let r = rbv(
        &[
            "remote",
            i,
            "-o",
            o,
            "--api-url",
            &api.url,
            "--timeout",
            "2",
        ],
        Some(KEY),
    );
    assert_eq!(r.status.code(), Some(4), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("did not finish within 2 s"),
        "{}",
        stderr(&r)
    );
    // Options the service cannot take: bad input.
    let r = rbv(&["remote", i, "-o", o, "--background", "blur"], Some(KEY));
    assert_eq!(r.status.code(), Some(2));
    let r = rbv(&["remote", i, "-o", "/tmp/x.mp4"], Some(KEY));
    assert_eq!(r.status.code(), Some(2));
    assert!(stderr(&r).contains("mp4 has no alpha"), "{}", stderr(&r));
}

#[test]
fn local_names_what_went_wrong_and_bad_input_exits_2() {
    common::init();
    let dir = common::scratch("cli-errors");
    let zidane = common::data("zidane.jpg");
    let zidane = zidane.to_str().unwrap();
    let out = |name: &str| dir.join(name).to_str().unwrap().to_owned();

    let o = rbv(&["--version"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let version = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(version.trim(), format!("rbv {}", env!("CARGO_PKG_VERSION")));

    let text_file = dir.join("notes.mp4");
    std::fs::write(&text_file, "this is a text file, not a video\n".repeat(50)).unwrap();
    let random = dir.join("random.mkv");
    std::fs::write(
        &random,
        (0..20_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let not_a_mask = common::data("not_a_mask.onnx");
    let missing_dir = dir.join("no-such-dir");
    let cases: Vec<(Vec<String>, Vec<String>)> = vec![
        // The element's own error, not "the pipeline does not start".
        (
            vec![
                zidane.into(),
                "-o".into(),
                out("z_%d.png"),
                "--model-path".into(),
                not_a_mask.display().to_string(),
            ],
            vec![not_a_mask.display().to_string()],
        ),
        (
            vec![
                zidane.into(),
                "-o".into(),
                out("z_%d.png"),
                "--model-path".into(),
                missing_dir.join("m.onnx").display().to_string(),
            ],
            vec![format!(
                "model-path {}",
                missing_dir.join("m.onnx").display()
            )],
        ),
        (
            vec![zidane.into(), "-o".into(), "/nonexistent/dir/x.mkv".into()],
            vec!["/nonexistent/dir/x.mkv".into()],
        ),
        (
            vec![text_file.display().to_string(), "-o".into(), out("t.mkv")],
            vec![
                text_file.display().to_string(),
                "cannot be read as a video".into(),
            ],
        ),
        (
            vec![random.display().to_string(), "-o".into(), out("r.mkv")],
            vec![random.display().to_string()],
        ),
        (
            vec![dir.display().to_string(), "-o".into(), out("d.mkv")],
            vec![format!("{}: is a directory", dir.display())],
        ),
        (
            vec![zidane.into(), "-o".into(), out("z.avi")],
            vec![".mov (ProRes 4444".into()],
        ),
    ];
    for (args, wants) in cases {
        let mut a = vec!["local"];
        a.extend(args.iter().map(String::as_str));
        let o = rbv(&a, None);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{a:?}: {err}");
        assert!(!err.contains("does not start"), "{a:?}: {err}");
        for want in wants {
            assert!(err.contains(&want), "{a:?}: no {want} in {err}");
        }
    }

    // One picture in, one picture out.
    let o = rbv(&["local", zidane, "-o", &out("cut.png")], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let (frames, mattes) = decode(&dir.join("cut.png"));
    assert_eq!(frames, 1);
    assert!(
        mattes[0].clear > 0.2 && mattes[0].solid > 0.05,
        "{:?}",
        mattes[0]
    );
    // A video to one picture is refused, with the pattern to use.
    let clip = dir.join("clip.webm");
    common::short_clip("vtest.avi", 3, &clip);
    let o = rbv(
        &["local", clip.to_str().unwrap(), "-o", &out("v.png")],
        None,
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("3 frames") && err.contains("%05d.png"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn local_writes_what_editors_open_with_alpha() {
    common::init();
    let dir = common::scratch("cli-editors");
    let clip = dir.join("clip.webm");
    common::short_clip("vtest.avi", 6, &clip);
    // ProRes 4444 (.mov) and VP9 with alpha (.webm), through the server's code.
    for name in ["cut.mov", "cut.webm"] {
        let out = dir.join(name);
        let o = rbv(
            &["local", clip.to_str().unwrap(), "-o", out.to_str().unwrap()],
            None,
        );
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let (frames, mattes) = decode(&out);
        assert_eq!(frames, 6, "{name}");
        for m in &mattes {
            assert!(
                (0.5..0.999).contains(&m.clear),
                "{name}: no alpha kept: {m:?}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn ctrl_c_finishes_a_shorter_complete_file_and_says_so() {
    use std::io::{BufRead, BufReader};
    common::init();
    let dir = common::scratch("cli-ctrl-c");
    // 6 s of picture with sound.
    let clip = dir.join("talk.webm");
    encode(&format!(
        "videotestsrc num-buffers=150 pattern=ball ! video/x-raw,width=320,height=240,framerate=25/1 ! \
         vp8enc deadline=1 ! webmmux name=m ! filesink location={} \
         audiotestsrc num-buffers=300 ! audioconvert ! opusenc ! m.",
        clip.display()
    ));
    let out = dir.join("cut.mkv");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rbv"))
        .args(["local", clip.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .args(["--model", "light"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut text = String::new();
    // The first progress line: frames, rate.
    for line in lines.by_ref() {
        let line = line.unwrap();
        text.push_str(&line);
        text.push('\n');
        if line.starts_with("removing the background:") {
            assert!(line.contains("frames") && line.contains("fps"), "{line}");
            break;
        }
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    for line in lines {
        text.push_str(&line.unwrap());
        text.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("stopping: finishing"), "{text}");
    assert!(
        text.contains("interrupted:") && text.contains("is complete"),
        "{text}"
    );
    assert!(text.contains(", with the input's sound"), "{text}");
    // A complete file (it decodes to its end), shorter than the input.
    let (frames, _) = decode(&out);
    assert!((1..150).contains(&frames), "{frames} frames:\n{text}");
    // Its sound ends with its picture (the input's runs 6 s).
    let d = rbv_testkit::av::decode_av(&out);
    assert!(
        d.sound.is_some() && (d.sound_seconds() - d.picture_seconds()).abs() <= 0.04,
        "{d:?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Every frame of `path` decoded to RGBA, as bytes.
fn rgba_frames(path: &Path) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let eos = common::for_each_sample(
        &format!(
            "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGBA ! \
             appsink name=sink sync=false",
            path.display()
        ),
        |s| {
            frames.push(s.buffer().unwrap().map_readable().unwrap().to_vec());
            true
        },
    );
    assert!(eos, "{} did not decode to EOS", path.display());
    frames
}

/// `mode=sync` (the default): the same input gives the same output, byte
/// for byte, run after run. 12 s of people walking in and out, so the
/// detector runs on the first frame, for what comes in, and as refreshes,
/// on its own thread beside frames that do not wait for it unless due.
#[test]
fn local_gives_the_same_bytes_on_every_run() {
    common::init();
    let dir = common::scratch("cli-same-bytes");
    let clip = dir.join("walk.webm");
    common::scaled_clip("vtest.avi", 120, 640, 480, &clip);
    let runs: Vec<Vec<Vec<u8>>> = ["a.mkv", "b.mkv"]
        .iter()
        .map(|name| {
            let out = dir.join(name);
            let o = rbv(
                &["local", clip.to_str().unwrap(), "-o", out.to_str().unwrap()],
                None,
            );
            assert!(o.status.success(), "{}", stderr(&o));
            rgba_frames(&out)
        })
        .collect();
    assert_eq!(runs[0].len(), 120);
    assert_eq!(runs[0].len(), runs[1].len());
    for (i, (a, b)) in runs[0].iter().zip(&runs[1]).enumerate() {
        let differ = a.iter().zip(b).filter(|(x, y)| x != y).count();
        assert_eq!(
            differ, 0,
            "frame {i}: {differ} bytes differ between two runs"
        );
    }
    // Not a clip the detector leaves alone: some of it was cut away.
    let clear = runs[0][60].chunks_exact(4).filter(|p| p[3] == 0).count();
    assert!(clear > runs[0][60].len() / 8, "{clear} clear pixels");
    std::fs::remove_dir_all(&dir).ok();
}
