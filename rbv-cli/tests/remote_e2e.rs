// SPDX-License-Identifier: MPL-2.0
// The remote backend end to end against `rbv serve` (not a stand-in): the
// element and the `rbv remote` command upload, create, start, poll and
// download from a real server on 127.0.0.1 whose workers run the local
// backend.

use rbv_testkit as common;
use rbv_testkit::serve;

use std::path::{Path, PathBuf};
use std::process::Command;

use gst::prelude::*;

fn clip(dir: &Path) -> PathBuf {
    common::init();
    let p = dir.join("clip.webm");
    common::scaled_clip("demo_input.webm", 8, 320, 180, &p);
    p
}

/// rbvremove backend=remote on `clip` to EOS or error (blocking).
fn play(clip: &Path, url: &str, key: &str, props: &str) -> common::Played {
    let p = common::launch(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! rbvremove name=rbv backend=remote \
         api-url={url} model=human poll-interval=50 {props} ! video/x-raw,format=RGBA ! \
         appsink name=sink sync=false",
        clip.display()
    ));
    // The key from code, never in a launch line (GStreamer logs those).
    p.by_name("rbv").unwrap().set_property("api-key", key);
    common::play(&p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn element_remote_backend_against_rbv_serve() {
    let dir = common::scratch("e2e-element");
    let clip = clip(&dir);
    let srv = serve::start(&dir.join("data"), |_| {}).await;
    // The element's default format (webm: VP9 with alpha, through the
    // server's ffmpeg) and mov (ProRes 4444).
    for (props, format) in [("", "webm"), ("output-format=mov", "mov")] {
        let (c, u, k) = (clip.clone(), srv.url.clone(), srv.key.clone());
        let played = tokio::task::spawn_blocking(move || play(&c, &u, &k, props))
            .await
            .unwrap();
        assert!(played.error.is_none(), "{format}: {:?}", played.error);
        assert_eq!(played.frames.len(), 8, "{format}");
        let info = gst_video::VideoInfo::from_caps(played.frames[0].caps().unwrap()).unwrap();
        assert_eq!((info.width(), info.height()), (320, 180));
        // The server's cut: transparent background, the person kept.
        let map = played.frames[4].buffer().unwrap().map_readable().unwrap();
        let alpha: Vec<u8> = map.chunks(4).map(|p| p[3]).collect();
        let clear = alpha.iter().filter(|&&a| a < 16).count() as f64 / alpha.len() as f64;
        let solid = alpha.iter().filter(|&&a| a > 240).count() as f64 / alpha.len() as f64;
        assert!(
            clear > 0.2 && solid > 0.05,
            "{format}: clear {clear:.2} solid {solid:.2}"
        );
        let last = played.jobs.last().expect("rbv-job messages");
        assert_eq!(last.get::<String>("status").unwrap(), "completed");
        let job_id = last.get::<String>("job-id").unwrap();
        let job = srv
            .get(Some(&srv.key), &format!("/v1/jobs/{job_id}"))
            .await
            .body;
        assert_eq!(
            (job["model"].as_str(), job["output_format"].as_str()),
            (Some("human"), Some(format))
        );
        assert_eq!(job["attempts"], 1);
    }
    srv.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbv_remote_command_against_rbv_serve() {
    let dir = common::scratch("e2e-command");
    let clip = clip(&dir);
    let srv = serve::start(&dir.join("data"), |_| {}).await;
    let out = dir.join("out.mp4");
    let (url, key, o) = (srv.url.clone(), srv.key.clone(), out.clone());
    let run = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_rbv"))
            .args(["remote"])
            .arg(&clip)
            .arg("-o")
            .arg(&o)
            .args([
                "--api-url",
                &url,
                "--model",
                "light",
                "--background",
                "color",
            ])
            .args(["--background-color", "#0000FF", "--poll-interval", "50"])
            .env("RBV_API_KEY", &key)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(stderr.contains("completed"), "{stderr}");
    // The clip has no sound: the command says what came back.
    assert!(
        stderr.contains("(picture only: the service's mp4 has no sound)"),
        "{stderr}"
    );
    let (frames, w, h, pixels) = serve::decode(&out);
    assert_eq!((frames, w, h), (8, 320, 180));
    let px = &pixels[0][..4];
    assert!(
        px[2] > 200 && px[0] < 60 && px[1] < 60,
        "blue background: {px:?}"
    );

    // A clip with sound: the server keeps it, and the command says so.
    let talk = dir.join("talk.mp4");
    rbv_testkit::av::flash_and_beep(&talk, 2, 25);
    let out = dir.join("talk.webm");
    let (url, key, o) = (srv.url.clone(), srv.key.clone(), out.clone());
    let run = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_rbv"))
            .args(["remote"])
            .arg(&talk)
            .arg("-o")
            .arg(&o)
            .args(["--api-url", &url, "--model", "human"])
            .args(["--poll-interval", "50"])
            .env("RBV_API_KEY", &key)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("wrote {} (picture and sound)", out.display())),
        "{stderr}"
    );
    let d = rbv_testkit::av::decode_av(&out);
    assert!(
        d.sound.is_some() && (d.sound_seconds() - d.picture_seconds()).abs() <= 0.04,
        "{d:?}"
    );
    srv.server.stop().await;
}
