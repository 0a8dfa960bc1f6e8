// SPDX-License-Identifier: MPL-2.0
// `rbv serve` over real HTTP on 127.0.0.1: jobs keep the input's sound in
// the formats that hold it (a long upload cut into segments too), in sync
// with the picture as the decoded output shows; what a request asked that
// the job will not do is named in the answers' `warnings`: fields the
// server does not know (the request still works), prompt terms no class
// matches, a format without sound.

use rbv_testkit as common;
use rbv_testkit::av::{assert_in_sync, decode_av, flash_and_beep};
use rbv_testkit::serve;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use serve::Srv;

const JOB_TIME: Duration = Duration::from_secs(180);

async fn upload(srv: &Srv, file: &Path, name: &str) -> String {
    let a = srv.upload(&srv.key, file, name).await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["video_url"].as_str().unwrap().to_owned()
}

/// Runs a job to completion and downloads its output to `out`.
async fn finished(srv: &Srv, body: Value, out: &Path) -> Value {
    let created = srv.create(&srv.key, body).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let (job, _) = srv.wait(&srv.key, &id, JOB_TIME).await;
    assert_eq!(job["status"], "completed", "{job}");
    let (status, bytes) = srv.download(job["output_url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    std::fs::write(out, bytes).unwrap();
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_keep_the_sound_in_sync_segments_too() {
    common::init();
    let dir = common::scratch("serve-sound");
    let clip = dir.join("talk.mp4");
    // 3 s; the flash and the beep at 2.0 s.
    flash_and_beep(&clip, 3, 50);
    // Uploads over 1 s are cut into 1 s segments (three here) that two
    // workers share, then joined.
    let srv = serve::start(&dir.join("data"), |c| {
        c.segment_seconds = Duration::from_secs(1);
        c.light_workers = 2;
    })
    .await;
    let url = upload(&srv, &clip, "talk.mp4").await;
    for (format, background) in [
        ("mov", json!({"type": "transparent"})),
        ("webm", json!({"type": "transparent"})),
        // Over a colour the flash is gone (no one in it): the sound's
        // length is what this one checks.
        ("mp4", json!({"type": "color", "color": "#202830"})),
    ] {
        let out = dir.join(format!("out.{format}"));
        let job = finished(
            &srv,
            json!({"video_url": url, "model": "human", "output_format": format,
                "background": background}),
            &out,
        )
        .await;
        assert_eq!(job["warnings"], json!([]), "{job}");
        let d = decode_av(&out);
        assert_eq!(d.frames, 75, "{format}");
        assert_in_sync(&d, &format!("serve {format} (3 segments)"));
        if format != "mp4" {
            assert!(d.flash.is_some(), "{format}: {d:?}");
        }
    }
    srv.server.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_request_did_not_do_is_named_in_warnings() {
    common::init();
    let dir = common::scratch("serve-warnings");
    let clip = dir.join("clip.webm");
    common::scaled_clip("demo_input.webm", 6, 320, 180, &clip);
    let srv = serve::start(&dir.join("data"), |_| {}).await;
    let url = upload(&srv, &clip, "clip.webm").await;

    // A misspelt field: the job still runs (transparent, as no background
    // was given), and the answer names the field and the one meant.
    let body = json!({"video_url": url, "model": "human", "output_format": "mov",
        "bakground": {"type": "color", "color": "#00FF00"},
        "text_prompt": "people and bus, flurbish", "client_ref": "order-7"});
    let created = srv.create(&srv.key, body).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let warnings = created.body["warnings"].as_array().unwrap().clone();
    assert_eq!(
        warnings[..2],
        [
            json!("unknown field `bakground` ignored (did you mean `background`?)"),
            json!("unknown field `client_ref` ignored"),
        ],
        "{}",
        created.body
    );
    // "people and bus" is two terms; "flurbish" names nothing.
    let prompt = "text_prompt: 'flurbish' name no class this server's detector knows (COCO's \
                  80: person, dog, car, chair, bottle, ...) and is ignored; keeping person, bus";
    assert_eq!(warnings[2], prompt, "{}", created.body);
    assert_eq!(warnings.len(), 3);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let (job, _) = srv.wait(&srv.key, &id, JOB_TIME).await;
    assert_eq!(job["status"], "completed", "{job}");
    // The job's own JSON keeps what its settings will not do.
    assert_eq!(job["warnings"], json!([prompt]), "{job}");
    assert_eq!(job["background"]["type"], "transparent");
    let out = dir.join("out.mov");
    let (_, bytes) = srv.download(job["output_url"].as_str().unwrap()).await;
    std::fs::write(&out, bytes).unwrap();
    let (frames, _, _, pixels) = serve::decode(&out);
    assert_eq!(frames, 6);
    assert!(
        pixels[0][3] < 16,
        "transparent: the misspelt background was not used"
    );

    // A draft started with a field start does not read, and an unknown one.
    let draft = srv
        .create(
            &srv.key,
            json!({"video_url": url, "auto_start": false, "output_format": "gif"}),
        )
        .await;
    assert_eq!(draft.status, 200, "{}", draft.body);
    let no_sound = "output_format gif holds no sound: the video's sound, if it has any, is not \
                    in the output (mov, mp4 and webm keep it)";
    assert_eq!(draft.body["warnings"], json!([no_sound]), "{}", draft.body);
    let did = draft.body["id"].as_str().unwrap().to_owned();
    let started = srv
        .post(
            Some(&srv.key),
            &format!("/v1/jobs/{did}/start"),
            &json!({"model": "human", "webhook_url": "https://example.com/h", "modle": "pro"})
                .to_string(),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.body);
    assert_eq!(
        started.body["warnings"],
        json!([
            "`webhook_url` is read at create only: ignored by start",
            "unknown field `modle` ignored (did you mean `model`?)",
            no_sound
        ]),
        "{}",
        started.body
    );
    let (job, _) = srv.wait(&srv.key, &did, JOB_TIME).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["model"], "human");
    assert_eq!(job["warnings"], json!([no_sound]), "{job}");
    srv.server.stop().await;
    std::fs::remove_dir_all(&dir).ok();
}
