// SPDX-License-Identifier: MPL-2.0
// `rbv serve` over real HTTP on 127.0.0.1: every endpoint and error of the
// `/v1` contract, real jobs through rbvremove and the encoders, webhooks to
// a real receiver, signed links, limits and restarts.

use rbv_testkit as common;
use rbv_testkit::serve;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use serve::Srv;

const JOB_TIME: Duration = Duration::from_secs(120);

/// 8 frames of the demo clip (a person) at 320x180.
fn clip(dir: &Path) -> PathBuf {
    common::init();
    let p = dir.join("clip.webm");
    common::scaled_clip("demo_input.webm", 8, 320, 180, &p);
    p
}

async fn uploaded(srv: &Srv, clip: &Path) -> String {
    let a = srv.upload(&srv.key, clip, "clip.webm").await;
    assert_eq!(a.status, 200, "{}", a.body);
    a.body["video_url"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft_start_poll_download_nested_form() {
    let dir = common::scratch("serve-flow");
    let clip = clip(&dir);
    let srv = serve::start(&dir.join("data"), |_| {}).await;

    // A path-like name is shown back (its last part) but never used on disk.
    let up = srv.upload(&srv.key, &clip, "../../etc/passwd.webm").await;
    assert_eq!(up.status, 200, "{}", up.body);
    assert_eq!(up.body["success"], true);
    assert_eq!(up.body["filename"], "passwd.webm");
    assert_eq!(
        up.body["size"].as_u64().unwrap(),
        std::fs::metadata(&clip).unwrap().len()
    );
    let video_id = up.body["video_id"].as_str().unwrap();
    assert_eq!(srv.kept(true).await, vec![format!("{video_id}.webm")]);
    let video_url = up.body["video_url"].as_str().unwrap();

    let created = srv
        .create(
            &srv.key,
            json!({"video_url": video_url, "auto_start": false, "model": "light"}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.body["status"], "created");
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["job_id"], id.as_str());
    assert!(
        created.headers["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );

    let start = json!({"model": "human", "output_format": "mp4",
        "background": {"type": "color", "color": [0.0, 1.0, 0.0]},
        "composition": {"canvas": {"width": 400, "height": 300},
            "foreground": {"anchor": "bottom-center", "scale": 0.5, "offset": {"x": 0, "y": 0}}}});
    let started = srv
        .post(
            Some(&srv.key),
            &format!("/v1/jobs/{id}/start"),
            &start.to_string(),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.body);
    assert_eq!(started.body["status"], "pending");

    let (job, progress) = srv.wait(&srv.key, &id, JOB_TIME).await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["progress"], 100.0);
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "progress only rises: {progress:?}"
    );
    assert_eq!(job["model"], "human");
    assert_eq!(job["output_format"], "mp4");
    assert_eq!(job["billing_status"], "charged");
    assert_eq!(job["attempts"], 1);
    let secs = job["duration_seconds"].as_f64().unwrap();
    assert!(secs > 0.0 && secs < 2.0, "{secs}");
    let credits = job["credits_used"].as_f64().unwrap();
    assert!(
        (credits - 45.0 * secs / 60.0).abs() < 0.011,
        "{credits} for {secs} s"
    );
    for field in [
        "created_at",
        "started_at",
        "completed_at",
        "output_expires_at",
    ] {
        assert!(
            job[field].as_str().unwrap().ends_with('Z'),
            "{field}: {job}"
        );
    }

    // The link needs no key; the file is the composed video.
    let url = job["output_url"].as_str().unwrap();
    let (status, bytes) = srv.download(url).await;
    assert_eq!(status, 200);
    let out = dir.join("out.mp4");
    std::fs::write(&out, &bytes).unwrap();
    let (frames, w, h, pixels) = serve::decode(&out);
    assert_eq!((frames, w, h), (8, 400, 300));
    // Top-left corner is the green background (the person is scaled to
    // half, at the bottom centre).
    let px = &pixels[0][..4];
    assert!(px[1] > 200 && px[0] < 60 && px[2] < 60, "{px:?}");

    let list = srv.get(Some(&srv.key), "/v1/jobs?limit=10").await;
    assert_eq!(list.body["total"], 1);
    assert_eq!(list.body["items"][0]["id"], id.as_str());
    let done = srv.get(Some(&srv.key), "/v1/jobs?status=completed").await;
    assert_eq!(done.body["total"], 1);
    let summary = srv.get(Some(&srv.key), "/v1/usage/summary?days=7").await;
    assert_eq!(summary.status, 200);
    assert_eq!(summary.body["total_jobs"], 1);
    assert_eq!(summary.body["completed_jobs"], 1);
    assert_eq!(summary.body["credits_used"].as_f64().unwrap(), credits);
    assert_eq!(summary.body["daily"].as_array().unwrap().len(), 1);
    let events = srv.get(Some(&srv.key), "/v1/usage/events?limit=5").await;
    assert_eq!(events.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(events.body["items"][0]["job_id"], id.as_str());

    // Completed is final.
    let again = srv
        .post(Some(&srv.key), &format!("/v1/jobs/{id}/start"), "")
        .await;
    assert_eq!((again.status, again.code()), (409, "invalid_state"));
    srv.server.stop().await;
}

/// Share of clear and of solid pixels in frame 4 of a decoded file.
fn alpha_split(path: &Path) -> (usize, u32, u32, f64, f64) {
    let (frames, w, h, pixels) = serve::decode(path);
    let alpha: Vec<u8> = pixels[4].chunks(4).map(|p| p[3]).collect();
    let clear = alpha.iter().filter(|&&a| a < 16).count() as f64 / alpha.len() as f64;
    let solid = alpha.iter().filter(|&&a| a > 240).count() as f64 / alpha.len() as f64;
    (frames, w, h, clear, solid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_output_format_from_both_forms() {
    let dir = common::scratch("serve-formats");
    let clip = clip(&dir);
    let srv = serve::start(&dir.join("data"), |c| c.light_workers = 2).await;
    assert!(srv.server.app.ffmpeg, "set-up installs ffmpeg");
    let video_url = uploaded(&srv, &clip).await;
    let human = |extra: Value| {
        let mut body = json!({"video_url": video_url, "model": "human"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    let requests = [
        // No format asked, transparent: the service's default, webm (VP9 + alpha).
        ("webm", human(json!({"bg_type": "transparent"}))),
        ("mov", human(json!({"output_format": "mov"}))),
        (
            "png_sequence",
            human(json!({"output_format": "png_sequence"})),
        ),
        ("gif", human(json!({"output_format": "gif"}))),
        ("webp", human(json!({"output_format": "webp"}))),
        (
            "webm",
            json!({"video_url": video_url, "model": "light", "bg_type": "custom", "bg_color": "#0000FF"}),
        ),
    ];
    let mut ids = Vec::new();
    for (format, body) in &requests {
        let a = srv.create(&srv.key, body.clone()).await;
        assert_eq!(a.status, 200, "{format}: {}", a.body);
        assert_eq!(a.body["status"], "pending");
        ids.push(a.body["id"].as_str().unwrap().to_owned());
    }
    for ((format, _), id) in requests.iter().zip(&ids) {
        let (job, _) = srv.wait(&srv.key, id, JOB_TIME).await;
        assert_eq!(job["status"], "completed", "{job}");
        assert_eq!(job["output_format"], *format);
        let r = srv
            .http
            .get(job["output_url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        let mime = r.headers()["content-type"].to_str().unwrap().to_owned();
        let bytes = r.bytes().await.unwrap().to_vec();
        let out = dir.join(format!("{id}.out"));
        std::fs::write(&out, &bytes).unwrap();
        match (*format, job["background"]["type"].as_str()) {
            ("webm" | "mov", Some("transparent")) => {
                let (frames, w, h, clear, solid) = alpha_split(&out);
                assert_eq!((frames, w, h), (8, 320, 180), "{format}");
                assert!(
                    clear > 0.2 && solid > 0.05,
                    "{format} keeps alpha: clear {clear:.2}, solid {solid:.2}"
                );
            }
            ("webm", _) => {
                assert_eq!(job["background"]["color"], "#0000FF");
                let (frames, _, _, pixels) = serve::decode(&out);
                assert_eq!(frames, 8);
                assert!(pixels[0].chunks(4).all(|p| p[3] == 255), "opaque");
            }
            ("png_sequence", _) => {
                assert_eq!(mime, "application/zip");
                let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
                assert_eq!(zip.len(), 8);
                assert_eq!(zip.by_index(0).unwrap().name().unwrap(), "frame_00000.png");
            }
            ("gif", _) => {
                assert_eq!(mime, "image/gif");
                assert!(bytes.starts_with(b"GIF89a"), "a GIF");
            }
            _ => {
                assert_eq!(mime, "image/webp");
                assert!(
                    bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP",
                    "a WebP"
                );
                // Animated: one ANMF chunk per frame.
                let frames = bytes.windows(4).filter(|w| w == b"ANMF").count();
                assert_eq!(frames, 8);
            }
        }
    }
    srv.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_follow_the_contract() {
    let dir = common::scratch("serve-errors");
    let clip = clip(&dir);
    let srv = serve::start(&dir.join("data"), |c| {
        c.light_workers = 0;
        c.heavy_workers = 0;
        c.max_upload_bytes = 200_000;
    })
    .await;
    let key = srv.key.clone();
    let (_, other) = srv.server.app.store.create_key("other", None).unwrap();

    // Keys.
    for path in [
        "/v1/jobs",
        "/v1/jobs/job_x",
        "/v1/usage/summary",
        "/v1/usage/events",
    ] {
        let a = srv.get(None, path).await;
        assert_eq!((a.status, a.code()), (401, "missing_api_key"), "{path}");
        let a = srv.get(Some("rbv_wrong"), path).await;
        assert_eq!((a.status, a.code()), (401, "invalid_api_key"), "{path}");
    }
    let a = srv.post(None, "/v1/jobs", "{}").await;
    assert_eq!(a.status, 401);

    // Bodies: the request id in the body is the one in the header.
    let a = srv.post(Some(&key), "/v1/jobs", "{\"video_url\": ").await;
    assert_eq!((a.status, a.code()), (400, "invalid_request"));
    assert!(a.message().contains("not valid JSON"), "{}", a.message());
    assert_eq!(
        a.body["error"]["request_id"],
        a.headers["x-request-id"].to_str().unwrap()
    );
    let huge = format!(
        "{{\"video_url\":\"http://h/a.webm\",\"metadata\":{{\"x\":\"{}\"}}}}",
        "a".repeat(2_000_000)
    );
    let a = srv.post(Some(&key), "/v1/jobs", &huge).await;
    assert_eq!((a.status, a.code()), (413, "request_too_large"));
    let a = srv.post(Some(&key), "/v1/jobs", "{}").await;
    assert!(
        a.status == 400 && a.message().contains("video_url"),
        "{}",
        a.body
    );
    let a = srv
        .create(
            &key,
            json!({"video_url": "http://h/a.webm", "model": "giant"}),
        )
        .await;
    assert!(
        a.status == 400 && a.message().contains("model"),
        "{}",
        a.body
    );
    let a = srv
        .create(
            &key,
            json!({"video_url": "http://h/a.webm", "output_format": "mp4"}),
        )
        .await;
    assert_eq!((a.status, a.code()), (422, "unsupported_output"));
    assert!(a.message().contains("mp4 has no alpha"));
    // Jobs: unknown, another key's, wrong state, bad query.
    let a = srv.get(Some(&key), "/v1/jobs/job_doesnotexist").await;
    assert_eq!(
        (a.status, a.code(), a.message()),
        (404, "not_found", "Job not found")
    );
    let mine = srv
        .create(
            &key,
            json!({"video_url": "http://127.0.0.1:9/a.webm", "model": "human"}),
        )
        .await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    let id = mine.body["id"].as_str().unwrap();
    assert_eq!(
        srv.get(Some(&other), &format!("/v1/jobs/{id}"))
            .await
            .status,
        404
    );
    assert_eq!(
        srv.post(Some(&other), &format!("/v1/jobs/{id}/start"), "")
            .await
            .status,
        404
    );
    assert_eq!(srv.get(Some(&other), "/v1/jobs").await.body["total"], 0);
    let a = srv
        .post(Some(&key), &format!("/v1/jobs/{id}/start"), "")
        .await;
    assert_eq!((a.status, a.code()), (409, "invalid_state"));
    let a = srv.get(Some(&key), "/v1/jobs?limit=0").await;
    assert!(a.status == 400 && a.message().contains("limit"));
    let a = srv.get(Some(&key), "/v1/jobs?status=sleeping").await;
    assert_eq!(a.status, 400);
    let a = srv.get(Some(&key), "/v1/usage/summary?days=91").await;
    assert!(a.status == 400 && a.message().contains("days"));
    let a = srv.get(Some(&key), "/v1/usage/events?limit=101").await;
    assert_eq!(a.status, 400);
    let a = srv.get(Some(&key), "/v1/nothing").await;
    assert_eq!((a.status, a.code()), (404, "not_found"));

    // Uploads: wrong type, too large, no file field, not multipart,
    // another key's upload.
    let text = dir.join("notes.webm");
    std::fs::write(&text, "#!/bin/sh\nthis is not a video at all\n".repeat(20)).unwrap();
    let a = srv.upload(&key, &text, "notes.webm").await;
    assert_eq!(
        (a.status, a.code()),
        (400, "invalid_file_type"),
        "{}",
        a.body
    );
    let big = dir.join("big.webm");
    let mut bytes = std::fs::read(&clip).unwrap();
    bytes.resize(300_000, 0);
    std::fs::write(&big, bytes).unwrap();
    let a = srv.upload(&key, &big, "big.webm").await;
    assert_eq!((a.status, a.code()), (400, "file_too_large"), "{}", a.body);
    assert!(a.message().contains("file too large"));
    assert!(
        srv.kept(true).await.is_empty(),
        "nothing kept from refused uploads"
    );
    let form = reqwest::multipart::Form::new().text("video", "x");
    let r = srv
        .http
        .post(format!("{}/v1/uploads", srv.url))
        .header("X-Api-Key", &key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = srv
        .http
        .post(format!("{}/v1/uploads", srv.url))
        .header("X-Api-Key", &key)
        .body("raw")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let theirs = srv.upload(&other, &clip, "c.webm").await;
    assert_eq!(theirs.status, 200);
    let a = srv
        .create(&key, json!({"video_url": theirs.body["video_url"]}))
        .await;
    assert!(
        a.status == 400 && a.message().contains("no upload of this key"),
        "{}",
        a.body
    );

    // Output links: unsigned or tampered.
    let (s, _) = srv
        .download(&format!("{}/outputs/{id}/{id}.mov", srv.url))
        .await;
    assert_eq!(s, 403);
    let (s, _) = srv
        .download(&format!(
            "{}/outputs/{id}/{id}.mov?expires=99999999999&signature=00",
            srv.url
        ))
        .await;
    assert_eq!(s, 403);
    srv.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_job_is_reported_not_charged_and_restartable() {
    let dir = common::scratch("serve-failed");
    let clip = clip(&dir);
    // A WebM cut after its headers: sniffs as WebM, holds no frame.
    let cut = dir.join("cut.webm");
    std::fs::write(&cut, &std::fs::read(&clip).unwrap()[..600]).unwrap();
    let srv = serve::start(&dir.join("data"), |_| {}).await;
    // Uploaded, it is refused at once: the whole file is demuxed at upload.
    let up = srv.upload(&srv.key, &cut, "cut.webm").await;
    assert_eq!(
        (up.status, up.code()),
        (400, "invalid_file_type"),
        "{}",
        up.body
    );
    assert!(up.message().contains("no video frames"), "{}", up.body);
    // Fetched from elsewhere, the job fails.
    let base = common_file_server(&dir).await;
    let a = srv
        .post(
            Some(&srv.key),
            "/v1/jobs",
            &json!({"video_url": format!("{base}/cut.webm"), "model": "human", "bg_type": "black"})
                .to_string(),
        )
        .await;
    let id = a.body["id"].as_str().unwrap().to_owned();
    let (job, _) = srv.wait(&srv.key, &id, JOB_TIME).await;
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("video"), "{error}");
    assert_eq!(job["billing_status"], "not_charged");
    assert!(job["output_url"].is_null());
    assert_eq!(
        srv.get(Some(&srv.key), "/v1/usage/events").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // A new start retries it.
    let again = srv
        .post(
            Some(&srv.key),
            &format!("/v1/jobs/{id}/start"),
            "{\"model\":\"light\"}",
        )
        .await;
    assert_eq!(
        (again.status, again.body["status"].as_str()),
        (200, Some("pending")),
        "{}",
        again.body
    );
    let (job, _) = srv.wait(&srv.key, &id, JOB_TIME).await;
    assert_eq!(
        (
            job["status"].as_str(),
            job["attempts"].as_i64(),
            job["model"].as_str()
        ),
        (Some("failed"), Some(2), Some("light"))
    );
    srv.server.stop().await;
}

/// A plain file server on 127.0.0.1 for the files in `dir`: `{base}/name`.
async fn common_file_server(dir: &Path) -> String {
    let files = dir.to_path_buf();
    let app = axum::Router::new().route(
        "/files/{name}",
        axum::routing::get(
            move |axum::extract::Path(name): axum::extract::Path<String>| {
                let files = files.clone();
                async move { std::fs::read(files.join(name)).unwrap() }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/files", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// A webhook receiver on 127.0.0.1 that fails every `job.started` delivery
/// and the first three of `job.completed`.
async fn receiver() -> (String, serve::Deliveries) {
    serve::webhook_receiver(|event, before| {
        if event == "job.completed" && before >= 3 {
            200
        } else {
            500
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_and_recorded() {
    use hmac::Mac;
    let dir = common::scratch("serve-webhooks");
    let clip = clip(&dir);
    let (hook, got) = receiver().await;
    let secret = "whsec_test_secret";
    let srv = serve::start(&dir.join("data"), |c| {
        c.webhook_secret = Some(secret.into())
    })
    .await;
    let video_url = uploaded(&srv, &clip).await;
    let a = srv.create(&srv.key, json!({"video_url": video_url, "model": "human", "output_format": "png_sequence", "webhook_url": hook, "metadata": {"order": 7}})).await;
    let id = a.body["id"].as_str().unwrap().to_owned();
    let (job, _) = srv.wait(&srv.key, &id, JOB_TIME).await;
    assert_eq!(job["status"], "completed");
    // The docs promise 3 retries: job.started, refused every time, is
    // tried 4 times and ends failed; job.completed, refused 3 times, is
    // delivered on its 4th try.
    let mut job = job;
    for _ in 0..200 {
        job = srv
            .get(Some(&srv.key), &format!("/v1/jobs/{id}"))
            .await
            .body;
        let ev = job["webhook_events"].as_array().unwrap();
        if ev.len() == 2 && ev.iter().all(|e| e["state"] != "pending") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ev = job["webhook_events"].as_array().unwrap();
    assert_eq!(ev.len(), 2, "{job}");
    assert_eq!(
        (
            ev[0]["event"].as_str(),
            ev[0]["state"].as_str(),
            ev[0]["attempts"].as_i64()
        ),
        (Some("job.started"), Some("failed"), Some(4)),
        "{job}"
    );
    assert_eq!(
        (
            ev[1]["event"].as_str(),
            ev[1]["state"].as_str(),
            ev[1]["attempts"].as_i64()
        ),
        (Some("job.completed"), Some("delivered"), Some(4)),
        "{job}"
    );

    // Nothing comes after the last try.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 8);
    // Each event's tries carry one delivery id, its own.
    for event in ["job.started", "job.completed"] {
        let tries: Vec<_> = got
            .iter()
            .filter(|g| g.0["x-webhook-event"] == event)
            .collect();
        assert_eq!(tries.len(), 4, "{event}");
        let first_id = &tries[0].0["x-webhook-delivery-id"];
        assert!(
            tries
                .iter()
                .all(|g| g.0["x-webhook-delivery-id"] == first_id),
            "{event}: one delivery id for its retries"
        );
    }
    assert_ne!(
        got.iter()
            .find(|g| g.0["x-webhook-event"] == "job.started")
            .unwrap()
            .0["x-webhook-delivery-id"],
        got.iter()
            .find(|g| g.0["x-webhook-event"] == "job.completed")
            .unwrap()
            .0["x-webhook-delivery-id"]
    );
    for (headers, body, _) in &got {
        let ts = headers["x-webhook-timestamp"].to_str().unwrap();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{ts}.{body}").as_bytes());
        let expect = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(headers["x-webhook-signature"].to_str().unwrap(), expect);
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["event"], headers["x-webhook-event"].to_str().unwrap());
        assert_eq!(v["data"]["id"], id.as_str());
        assert_eq!(v["data"]["metadata"]["order"], 7);
    }
    let done: Value = serde_json::from_str(
        &got.iter()
            .find(|g| g.0["x-webhook-event"] == "job.completed" && g.2 == 200)
            .unwrap()
            .1,
    )
    .unwrap();
    assert_eq!(done["event"], "job.completed");
    assert_eq!(done["data"]["status"], "completed");
    assert!(
        done["data"]["output_url"]
            .as_str()
            .unwrap()
            .contains("/outputs/")
    );
    srv.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_links_expire() {
    let dir = common::scratch("serve-links");
    let clip = clip(&dir);
    let srv = serve::start(&dir.join("data"), |c| c.link_ttl = Duration::from_secs(1)).await;
    let video_url = uploaded(&srv, &clip).await;
    let a = srv
        .create(
            &srv.key,
            json!({"video_url": video_url, "model": "human", "bg_type": "white"}),
        )
        .await;
    let id = a.body["id"].as_str().unwrap().to_owned();
    let (job, _) = srv.wait(&srv.key, &id, JOB_TIME).await;
    let url = job["output_url"].as_str().unwrap().to_owned();
    let tampered = url.replace("signature=", "signature=0");
    assert_eq!(srv.download(&tampered).await.0, 403);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = srv.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "link_expired");
    // Reading the job again gives a fresh link.
    let fresh = srv
        .get(Some(&srv.key), &format!("/v1/jobs/{id}"))
        .await
        .body;
    let (status, bytes) = srv.download(fresh["output_url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(bytes.len() > 1000);
    srv.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_and_full_queue_answer_429() {
    let dir = common::scratch("serve-limits");
    let srv = serve::start(&dir.join("data"), |c| {
        c.rate_limit = 6;
        c.queue_size = 2;
        c.light_workers = 0;
    })
    .await;
    let body = json!({"video_url": "http://127.0.0.1:9/a.webm", "model": "human"}).to_string();
    for _ in 0..2 {
        assert_eq!(
            srv.post(Some(&srv.key), "/v1/jobs", &body).await.status,
            200
        );
    }
    let full = srv.post(Some(&srv.key), "/v1/jobs", &body).await;
    assert_eq!((full.status, full.code()), (429, "rate_limited"));
    assert!(full.message().contains("queue is full"));
    assert!(
        full.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let draft = srv.create(&srv.key, json!({"video_url": "http://127.0.0.1:9/a.webm", "model": "light", "auto_start": false})).await;
    let id = draft.body["id"].as_str().unwrap();
    let a = srv
        .post(Some(&srv.key), &format!("/v1/jobs/{id}/start"), "")
        .await;
    assert_eq!(a.status, 429);
    // Five requests so far: the sixth is the last within the key's rate.
    assert_eq!(
        srv.get(Some(&srv.key), &format!("/v1/jobs/{id}"))
            .await
            .status,
        200
    );
    let a = srv.get(Some(&srv.key), &format!("/v1/jobs/{id}")).await;
    assert_eq!((a.status, a.code()), (429, "rate_limited"));
    let wait: u64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&wait), "{wait}");
    // Another key has its own allowance; the draft stayed a draft and the
    // refused job was not kept.
    let (_, other) = srv.server.app.store.create_key("other", None).unwrap();
    assert_eq!(srv.get(Some(&other), "/v1/jobs").await.status, 200);
    let j = srv.server.app.store.job(id).unwrap().unwrap();
    assert_eq!(j.status, rbv_api::JobStatus::Created);
    assert_eq!(
        srv.server
            .app
            .store
            .list_jobs(&j.key_id, None, 100, 0)
            .unwrap()
            .1,
        3
    );
    srv.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_loses_nothing_and_jobs_elsewhere_are_fetched() {
    let dir = common::scratch("serve-restart");
    clip(&dir);
    let not_video = dir.join("page.html");
    std::fs::write(&not_video, "<html>not a video</html>".repeat(100)).unwrap();
    // A plain file server for video_url elsewhere.
    let files = dir.clone();
    let app = axum::Router::new().route(
        "/files/{name}",
        axum::routing::get(
            move |axum::extract::Path(name): axum::extract::Path<String>| {
                let files = files.clone();
                async move { std::fs::read(files.join(name)).unwrap() }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/files", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let data = dir.join("data");
    let first = serve::start(&data, |c| {
        c.light_workers = 0;
        c.heavy_workers = 0;
    })
    .await;
    let key = first.key.clone();
    let mut ids = Vec::new();
    for body in [
        json!({"video_url": format!("{base}/clip.webm"), "model": "human", "bg_type": "green"}),
        json!({"video_url": format!("{base}/page.html"), "model": "light"}),
    ] {
        let a = first.post(Some(&key), "/v1/jobs", &body.to_string()).await;
        assert_eq!(a.status, 200, "{}", a.body);
        ids.push(a.body["id"].as_str().unwrap().to_owned());
    }
    let draft = first
        .create(
            &key,
            json!({"video_url": format!("{base}/clip.webm"), "auto_start": false}),
        )
        .await;
    let draft = draft.body["id"].as_str().unwrap().to_owned();
    let health = first.get(None, "/health").await;
    assert_eq!(
        health.body["status"], "degraded",
        "no workers: {}",
        health.body
    );
    first.server.stop().await;

    let second = serve::start(&data, |c| c.metrics_public = true).await;
    let (job, _) = second.wait(&key, &ids[0], JOB_TIME).await;
    assert_eq!(job["status"], "completed", "{job}");
    let (job, _) = second.wait(&key, &ids[1], JOB_TIME).await;
    assert_eq!(job["status"], "failed");
    assert!(
        job["error"].as_str().unwrap().contains("not a video"),
        "{job}"
    );
    assert_eq!(
        second
            .get(Some(&key), &format!("/v1/jobs/{draft}"))
            .await
            .body["status"],
        "created"
    );
    let health = second.get(None, "/health").await;
    assert_eq!(
        (health.status, health.body["status"].as_str()),
        (200, Some("healthy"))
    );
    let metrics = second
        .http
        .get(format!("{}/metrics", second.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("rbv_queue_depth{pool=\"light\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "rbv_job_processing_seconds{model=\"human\",resolution=\"320x180\",quantile=\"0.95\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("rbv_jobs{status=\"created\"} 1"));
    assert!(metrics.contains("rbv_jobs_finished_total{model=\"light\",status=\"failed\"} 1"));
    second.server.stop().await;
}
