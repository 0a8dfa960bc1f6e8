// SPDX-License-Identifier: MPL-2.0
// `rbv serve` facing untrusted keys, over real HTTP on 127.0.0.1: the bad
// inputs of docs/reliability.md's server rows that need resource caps
// (decoded-size bombs made here with ffmpeg, trickling and endless
// downloads, billing claims, parallel spending, internal probing, disk).

use rbv_testkit as common;
use rbv_testkit::serve;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use serde_json::{Value, json};
use serve::Srv;

const JOB_TIME: Duration = Duration::from_secs(120);

fn ffmpeg(args: &[&str], out: &Path) {
    let st = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y"])
        .args(args)
        .arg(out)
        .status()
        .expect("ffmpeg (installed by setup/setup.sh)");
    assert!(st.success(), "ffmpeg {args:?}");
}

/// `n` frames of 64x48 test picture at `fps`, VP8 in WebM.
fn clip(dir: &Path, name: &str, n: u32, fps: u32) -> PathBuf {
    let p = dir.join(name);
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc=s=64x48:r={fps}"),
            "-frames:v",
            &n.to_string(),
            "-c:v",
            "libvpx",
            "-b:v",
            "300k",
        ],
        &p,
    );
    p
}

/// The 16000x16000 VP8 bomb of issue 20: two frames, about 430 KB.
fn bomb(dir: &Path) -> PathBuf {
    rbv_testkit::vp8_bomb(dir)
}

/// A tiny server on `ip` with the routes the tests need: files from `dir`,
/// a trickle, an endless stream, a 10 GB Content-Length, a redirect, a 401.
struct Remote {
    base: String,
    sent: Arc<AtomicU64>,
}

async fn remote(ip: &str, dir: &Path, redirect_to: Option<String>) -> Remote {
    use axum::routing::get;
    let sent = Arc::new(AtomicU64::new(0));
    let files = dir.to_path_buf();
    let (s1, s2) = (sent.clone(), sent.clone());
    let app = axum::Router::new()
        .route(
            "/files/{name}",
            get(
                move |axum::extract::Path(name): axum::extract::Path<String>| {
                    let files = files.clone();
                    async move { std::fs::read(files.join(name)).unwrap() }
                },
            ),
        )
        .route(
            "/trickle.webm",
            get(|| async {
                // One byte every 2 s, for at most a minute.
                let s = futures_util::stream::unfold(0u32, |i| async move {
                    if i >= 30 {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    Some((Ok::<_, std::io::Error>(Bytes::from_static(b"\x1a")), i + 1))
                });
                Body::from_stream(s)
            }),
        )
        .route(
            "/endless.webm",
            get(move || {
                let sent = s1.clone();
                async move {
                    // 64 KiB chunks, at most 64 MiB.
                    let s = futures_util::stream::unfold(0u32, move |i| {
                        let sent = sent.clone();
                        async move {
                            if i >= 1024 {
                                return None;
                            }
                            sent.fetch_add(65536, Ordering::Relaxed);
                            Some((
                                Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 65536])),
                                i + 1,
                            ))
                        }
                    });
                    Body::from_stream(s)
                }
            }),
        )
        .route(
            "/huge.webm",
            get(move || {
                let sent = s2.clone();
                async move {
                    let s = futures_util::stream::unfold(0u32, move |i| {
                        let sent = sent.clone();
                        async move {
                            if i >= 1024 {
                                return None;
                            }
                            tokio::time::sleep(Duration::from_millis(5)).await;
                            sent.fetch_add(65536, Ordering::Relaxed);
                            Some((
                                Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 65536])),
                                i + 1,
                            ))
                        }
                    });
                    axum::response::Response::builder()
                        .header("content-length", "10000000000")
                        .body(Body::from_stream(s))
                        .unwrap()
                }
            }),
        )
        .route(
            "/redirect",
            get(move || {
                let to = redirect_to.clone().unwrap_or_default();
                async move { axum::response::Redirect::temporary(&to) }
            }),
        )
        .route(
            "/private",
            get(|| async { (axum::http::StatusCode::UNAUTHORIZED, "who are you") })
                .post(|| async { (axum::http::StatusCode::UNAUTHORIZED, "who are you") }),
        );
    let listener = tokio::net::TcpListener::bind(format!("{ip}:0"))
        .await
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Remote { base, sent }
}

async fn job(srv: &Srv, key: &str, body: Value) -> Value {
    let a = srv.create(key, body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let (job, _) = srv
        .wait(key, a.body["id"].as_str().unwrap(), JOB_TIME)
        .await;
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decoded_size_bombs_are_refused_before_decoding() {
    let dir = common::scratch("untrusted-bombs");
    common::init();
    let bomb = bomb(&dir);
    assert!(std::fs::metadata(&bomb).unwrap().len() < 500_000);
    let files = remote("127.0.0.1", &dir, None).await;
    let srv = serve::start(&dir.join("data"), |c| c.max_upload_bytes = 5_000_000).await;

    // Uploaded: refused at upload, from the packets, nothing decoded or kept.
    let a = srv.upload(&srv.key, &bomb, "bomb.webm").await;
    assert_eq!(
        (a.status, a.code()),
        (422, "unsupported_video"),
        "{}",
        a.body
    );
    assert!(
        a.message().contains("16000x16000") && a.message().contains("--max-pixels"),
        "{}",
        a.body
    );
    assert!(srv.kept(true).await.is_empty());

    // Fetched from elsewhere: a clean job failure naming the size; two at
    // once (one per pool) as in the issue.
    let before = common::rss_mib(None);
    let url = format!("{}/files/bomb.webm", files.base);
    let (a, b) = tokio::join!(
        job(&srv, &srv.key, json!({"video_url": url, "model": "human"})),
        job(&srv, &srv.key, json!({"video_url": url, "model": "light"})),
    );
    let grew = common::rss_mib(None) - before;
    for j in [&a, &b] {
        assert_eq!(j["status"], "failed", "{j}");
        assert!(j["error"].as_str().unwrap().contains("16000x16000"), "{j}");
        assert_eq!(j["billing_status"], "not_charged");
    }
    println!("two 16000x16000 bombs by video_url: test process RSS {grew:+.1} MiB");
    assert!(grew < 200.0, "RSS grew {grew:.1} MiB");

    // A 20000x20000 PNG as background image: refused from its header (a
    // small PNG from ffmpeg whose IHDR says 20000x20000).
    let png = dir.join("bg.png");
    ffmpeg(
        &["-f", "lavfi", "-i", "color=s=64x64", "-frames:v", "1"],
        &png,
    );
    let mut bytes = std::fs::read(&png).unwrap();
    bytes[16..20].copy_from_slice(&20000u32.to_be_bytes());
    bytes[20..24].copy_from_slice(&20000u32.to_be_bytes());
    std::fs::write(&png, bytes).unwrap();
    let small = clip(&dir, "small.webm", 5, 25);
    let up = srv.upload(&srv.key, &small, "small.webm").await;
    let j = job(
        &srv,
        &srv.key,
        json!({"video_url": up.body["video_url"], "model": "human", "output_format": "mp4",
               "background": {"type": "image", "image_url": format!("{}/files/bg.png", files.base)}}),
    )
    .await;
    assert_eq!(j["status"], "failed", "{j}");
    assert!(j["error"].as_str().unwrap().contains("20000x20000"), "{j}");

    // A canvas over the cap is refused at create, naming the field.
    let a = srv
        .create(
            &srv.key,
            json!({"video_url": up.body["video_url"], "model": "human",
                   "composition": {"canvas": {"width": 16384, "height": 16384}}}),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(
        a.message().contains("composition.canvas is 16384x16384"),
        "{}",
        a.body
    );
    srv.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_download_ends_at_the_job_deadline() {
    let dir = common::scratch("untrusted-trickle");
    common::init();
    let small = clip(&dir, "small.webm", 5, 25);
    let files = remote("127.0.0.1", &dir, None).await;
    let srv = serve::start(&dir.join("data"), |c| {
        c.job_timeout = Duration::from_secs(4);
        c.light_workers = 1;
    })
    .await;
    let up = srv.upload(&srv.key, &small, "small.webm").await;
    let t = Instant::now();
    let slow = srv
        .create(
            &srv.key,
            json!({"video_url": format!("{}/trickle.webm", files.base), "model": "human"}),
        )
        .await;
    let next = srv
        .create(
            &srv.key,
            json!({"video_url": up.body["video_url"], "model": "human", "output_format": "mov"}),
        )
        .await;
    let (j, _) = srv
        .wait(&srv.key, slow.body["id"].as_str().unwrap(), JOB_TIME)
        .await;
    let took = t.elapsed();
    assert_eq!(j["status"], "failed", "{j}");
    assert!(
        j["error"].as_str().unwrap().contains("--job-timeout"),
        "{j}"
    );
    println!(
        "trickle job failed after {:.1} s (deadline 4 s)",
        took.as_secs_f64()
    );
    assert!(took < Duration::from_secs(8), "{took:?}");
    // The job behind it in the one worker's queue runs.
    let (j, _) = srv
        .wait(&srv.key, next.body["id"].as_str().unwrap(), JOB_TIME)
        .await;
    assert_eq!(j["status"], "completed", "{j}");
    srv.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_is_what_was_processed_not_what_a_header_claims() {
    let dir = common::scratch("untrusted-billing");
    common::init();
    // 25 frames at 25 fps whose Matroska Duration says 10 hours.
    let claim = clip(&dir, "claim.webm", 25, 25);
    let mut bytes = std::fs::read(&claim).unwrap();
    let at = bytes
        .windows(3)
        .position(|w| w == [0x44, 0x89, 0x88])
        .unwrap();
    bytes[at + 3..at + 11].copy_from_slice(&36_000_000f64.to_be_bytes());
    std::fs::write(&claim, &bytes).unwrap();
    // 120 frames at 1000 fps: 0.12 s of media time.
    let fast = clip(&dir, "fast.webm", 120, 1000);
    let srv = serve::start(&dir.join("data"), |_| {}).await;
    let (_, limited) = srv
        .server
        .app
        .store
        .create_key("limited", Some(100.0))
        .unwrap();
    for key in [&srv.key, &limited] {
        let up = srv.upload(key, &claim, "claim.webm").await;
        assert_eq!(up.status, 200, "{}", up.body);
        let j = job(
            &srv,
            key,
            json!({"video_url": up.body["video_url"], "model": "human", "output_format": "mov"}),
        )
        .await;
        assert_eq!(j["status"], "completed", "{j}");
        assert_eq!(j["duration_seconds"], 1.0, "{j}");
        assert_eq!(j["credits_used"], 0.75, "{j}");
    }
    let up = srv.upload(&srv.key, &fast, "fast.webm").await;
    let j = job(
        &srv,
        &srv.key,
        json!({"video_url": up.body["video_url"], "model": "human", "output_format": "mov"}),
    )
    .await;
    assert_eq!(j["status"], "completed", "{j}");
    // 120 frames billed as 2 s (60 frames a second), not 0.12 s.
    assert_eq!(
        (j["duration_seconds"].as_f64(), j["credits_used"].as_f64()),
        (Some(2.0), Some(1.5)),
        "{j}"
    );
    srv.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_credit_key_cannot_overspend_with_parallel_jobs() {
    let dir = common::scratch("untrusted-credits");
    common::init();
    let one = clip(&dir, "one.webm", 25, 25);
    let files = remote("127.0.0.1", &dir, None).await;
    let srv = serve::start(&dir.join("data"), |c| c.light_workers = 2).await;
    let (_, key) = srv
        .server
        .app
        .store
        .create_key("one credit", Some(1.0))
        .unwrap();
    let up = srv.upload(&key, &one, "one.webm").await;
    let video_url = up.body["video_url"].as_str().unwrap().to_owned();
    // 20 at once on the upload (each 1 s with human: 0.75 credits).
    let creates = (0..20).map(|_| {
        srv.create(
            &key,
            json!({"video_url": video_url, "model": "human", "output_format": "mov"}),
        )
    });
    let answers = futures_util::future::join_all(creates).await;
    let accepted: Vec<String> = answers
        .iter()
        .filter(|a| a.status == 200)
        .map(|a| a.body["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        answers
            .iter()
            .all(|a| a.status == 200 || (a.status, a.code()) == (402, "insufficient_credits"))
    );
    assert_eq!(accepted.len(), 1, "one 0.75-credit job fits in 1 credit");
    for id in &accepted {
        let (j, _) = srv.wait(&key, id, JOB_TIME).await;
        assert_eq!(j["status"], "completed", "{j}");
    }
    // 20 more by video_url (credits held once the file is fetched): the key
    // has 0.25 left, so none may complete.
    let url = format!("{}/files/one.webm", files.base);
    let creates = (0..20).map(|_| {
        srv.create(
            &key,
            json!({"video_url": url, "model": "human", "output_format": "mov"}),
        )
    });
    let answers = futures_util::future::join_all(creates).await;
    for a in answers.iter().filter(|a| a.status == 200) {
        let (j, _) = srv
            .wait(&key, a.body["id"].as_str().unwrap(), JOB_TIME)
            .await;
        assert_eq!(j["status"], "failed", "{j}");
        assert!(
            j["error"]
                .as_str()
                .unwrap()
                .contains("insufficient_credits"),
            "{j}"
        );
    }
    let sum = srv.get(Some(&key), "/v1/usage/summary").await;
    let used = sum.body["credits_used"].as_f64().unwrap();
    println!(
        "1-credit key after 40 parallel jobs: {used} credits used, {} left",
        sum.body["credits_remaining"]
    );
    assert!(used <= 1.0, "{}", sum.body);
    assert!(sum.body["credits_remaining"].as_f64().unwrap() >= 0.0);
    srv.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_are_bounded_by_the_upload_limit() {
    let dir = common::scratch("untrusted-downloads");
    common::init();
    let files = remote("127.0.0.1", &dir, None).await;
    let srv = serve::start(&dir.join("data"), |c| c.max_upload_bytes = 2_000_000).await;
    // A 10 GB Content-Length: refused before a byte is read.
    let t = Instant::now();
    let j = job(
        &srv,
        &srv.key,
        json!({"video_url": format!("{}/huge.webm", files.base), "model": "human"}),
    )
    .await;
    assert_eq!(j["status"], "failed");
    assert!(
        j["error"].as_str().unwrap().contains("over 2000000 bytes"),
        "{j}"
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    // An endless stream: stopped at the limit.
    files.sent.store(0, Ordering::Relaxed);
    let j = job(
        &srv,
        &srv.key,
        json!({"video_url": format!("{}/endless.webm", files.base), "model": "human"}),
    )
    .await;
    assert_eq!(j["status"], "failed");
    assert!(
        j["error"].as_str().unwrap().contains("over 2000000 bytes"),
        "{j}"
    );
    let sent = files.sent.load(Ordering::Relaxed);
    println!("endless stream: {sent} bytes sent before the server stopped reading (limit 2000000)");
    assert!(sent < 16_000_000, "{sent} bytes were taken");
    assert!(
        std::fs::read_dir(dir.join("data/work"))
            .unwrap()
            .next()
            .is_none(),
        "nothing left in work/"
    );
    srv.server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_addresses_are_not_fetched_and_failures_look_alike() {
    let dir = common::scratch("untrusted-egress");
    common::init();
    clip(&dir, "c.webm", 5, 25);
    let local = remote("127.0.0.1", &dir, None).await;
    // The default policy: public addresses only.
    let srv = serve::start(&dir.join("data"), |c| c.allow_private = Vec::new()).await;
    let j = job(
        &srv,
        &srv.key,
        json!({"video_url": format!("{}/files/c.webm", local.base), "model": "human"}),
    )
    .await;
    assert_eq!(j["status"], "failed");
    let e = j["error"].as_str().unwrap();
    assert!(
        e.contains("127.0.0.1") && e.contains("does not connect"),
        "{e}"
    );
    // A webhook to 127.0.0.1 is not delivered, and says only that.
    let up = srv.upload(&srv.key, &dir.join("c.webm"), "c.webm").await;
    let j = job(
        &srv,
        &srv.key,
        json!({"video_url": up.body["video_url"], "model": "human", "output_format": "mov",
        "webhook_url": format!("{}/private", local.base)}),
    )
    .await;
    assert_eq!(j["status"], "completed");
    srv.server.stop().await;

    // A server that may reach 127.0.0.2 only: a redirect from there to its
    // own /metrics on 127.0.0.1 is not followed; a port that answers 401 and
    // a closed port give the same message, in jobs and in webhook records.
    let srv = serve::start(&dir.join("data2"), |c| {
        c.allow_private = vec!["127.0.0.2/32".parse().unwrap()];
        c.webhook_retries = 0;
        c.metrics_public = true;
    })
    .await;
    let other = remote("127.0.0.2", &dir, Some(format!("{}/metrics", srv.url))).await;
    let j = job(
        &srv,
        &srv.key,
        json!({"video_url": format!("{}/redirect", other.base), "model": "human"}),
    )
    .await;
    let e = j["error"].as_str().unwrap();
    assert!(
        e.contains("127.0.0.1") && e.contains("does not connect"),
        "{e}"
    );
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
        l.local_addr().unwrap()
    };
    let e401 = job(
        &srv,
        &srv.key,
        json!({"video_url": format!("{}/private", other.base), "model": "human"}),
    )
    .await;
    let eclosed = job(
        &srv,
        &srv.key,
        json!({"video_url": format!("http://{closed}/x.webm"), "model": "human"}),
    )
    .await;
    let strip = |v: &Value| {
        v["error"]
            .as_str()
            .unwrap()
            .replace(&other.base[7..], "H")
            .replace(&closed.to_string(), "H")
    };
    assert_eq!(strip(&e401), strip(&eclosed), "{e401} / {eclosed}");
    let up = srv.upload(&srv.key, &dir.join("c.webm"), "c.webm").await;
    let mut events = Vec::new();
    for hook in [
        format!("{}/private", other.base),
        format!("http://{closed}/hook"),
    ] {
        let j = job(&srv, &srv.key, json!({"video_url": up.body["video_url"], "model": "human", "output_format": "mov", "webhook_url": hook})).await;
        let id = j["id"].as_str().unwrap().to_owned();
        let deadline = Instant::now() + Duration::from_secs(30);
        let ev = loop {
            let j = srv
                .get(Some(&srv.key), &format!("/v1/jobs/{id}"))
                .await
                .body;
            let ev = j["webhook_events"].as_array().unwrap().clone();
            if ev.len() == 2 && ev.iter().all(|e| e["state"] == "failed") {
                break ev;
            }
            assert!(Instant::now() < deadline, "{j}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        events.push(ev[1].clone());
    }
    for e in &events {
        assert_eq!(e["last_status"], Value::Null, "{e}");
        assert_eq!(e["last_error"], "not delivered: no 2xx answer", "{e}");
    }
    srv.server.stop().await;
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_links_metrics_and_small_errors() {
    let dir = common::scratch("untrusted-disk");
    common::init();
    let c = clip(&dir, "c.webm", 5, 25);
    let size = std::fs::metadata(&c).unwrap().len();
    let tiny = dir.join("tiny.webm");
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=s=2x2:r=25",
            "-frames:v",
            "5",
            "-c:v",
            "libvpx",
        ],
        &tiny,
    );
    // What a crash leaves: a partial upload and a job's work folder.
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("uploads")).unwrap();
    std::fs::create_dir_all(data.join("work/job_crashed")).unwrap();
    std::fs::write(data.join("uploads/abc.part"), b"half").unwrap();
    std::fs::write(data.join("work/job_crashed/output.mov"), b"half").unwrap();
    let srv = serve::start(&data, |c| {
        c.upload_quota_bytes = size * 5 / 2;
        c.retention = Duration::from_secs(4);
        c.metrics_token = Some("metrics-secret".into());
    })
    .await;
    // A node alone on its data directory removes what a crash left; nodes on
    // a shared store (PostgreSQL) may share the directory too, and leave it,
    // unless their files are in a bucket (the directory is the node's own).
    let app = &srv.server.app;
    let postgres = app.config.database.is_some();
    let shared = postgres && app.storage.is_local();
    for left in ["uploads/abc.part", "work/job_crashed"] {
        assert_eq!(data.join(left).exists(), shared, "{left}");
    }
    // Private files.
    assert_eq!(mode(&data), 0o700);
    if !postgres {
        assert_eq!(mode(&data.join("rbv.db")), 0o600);
    }

    // The upload's own video_url gives the file back, to its key only.
    let up = srv.upload(&srv.key, &c, "c.webm").await;
    let video_url = up.body["video_url"].as_str().unwrap().to_owned();
    let r = srv
        .http
        .get(&video_url)
        .header("X-Api-Key", &srv.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len() as u64, size);
    let (_, other) = srv.server.app.store.create_key("other", None).unwrap();
    let r = srv
        .http
        .get(&video_url)
        .header("X-Api-Key", &other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(srv.http.get(&video_url).send().await.unwrap().status(), 401);
    let stored = video_url.rsplit('/').next().unwrap().to_owned();
    assert!(srv.kept(true).await.contains(&stored), "{stored}");
    if srv.server.app.storage.is_local() {
        assert_eq!(mode(&data.join("uploads").join(&stored)), 0o600);
    }

    // The key's quota (2.5 uploads' worth).
    assert_eq!(srv.upload(&srv.key, &c, "c.webm").await.status, 200);
    let a = srv.upload(&srv.key, &c, "c.webm").await;
    assert_eq!((a.status, a.code()), (413, "quota_exceeded"), "{}", a.body);
    // Parts besides `file` are small.
    let form = reqwest::multipart::Form::new()
        .text("note", "x".repeat(100_000))
        .part(
            "file",
            reqwest::multipart::Part::bytes(std::fs::read(&c).unwrap()).file_name("c.webm"),
        );
    let r = srv
        .http
        .post(format!("{}/v1/uploads", srv.url))
        .header("X-Api-Key", &other)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`note` is over 65536 bytes"),
        "{body}"
    );

    // text_prompt: 1000 characters, whatever their bytes.
    let draft = |prompt: String| {
        srv.create(
            &srv.key,
            json!({"video_url": video_url, "auto_start": false, "text_prompt": prompt}),
        )
    };
    assert_eq!(draft("é".repeat(1000)).await.status, 200);
    assert_eq!(draft("é".repeat(1001)).await.status, 400);

    // A 2x2 video is refused at upload, saying why (the encoders take 16x16).
    let a = srv.upload(&other, &tiny, "tiny.webm").await;
    assert_eq!(
        (a.status, a.code()),
        (422, "unsupported_video"),
        "{}",
        a.body
    );
    assert!(
        a.message()
            .contains("the video is 2x2; the smallest this server takes is 16x16"),
        "{}",
        a.body
    );
    let up2 = srv.upload(&other, &c, "c.webm").await;
    assert_eq!(up2.status, 200, "{}", up2.body);

    // Links die with their key.
    let j = job(&srv, &other, json!({"video_url": format!("{}", up2.body["video_url"].as_str().unwrap()), "model": "human", "bg_type": "green", "output_format": "mp4"})).await;
    let link = j["output_url"].as_str().unwrap().to_owned();
    assert_eq!(srv.download(&link).await.0, 200);
    let other_id = srv
        .server
        .app
        .store
        .key_by_secret(&other)
        .unwrap()
        .unwrap()
        .id;
    srv.server.app.store.revoke_key(&other_id).unwrap();
    let r = srv.http.get(&link).send().await.unwrap();
    assert_eq!(r.status(), 403);

    // /metrics: the token, or nothing.
    let m = |t: Option<&str>| {
        let mut r = srv.http.get(format!("{}/metrics", srv.url));
        if let Some(t) = t {
            r = r.header("Authorization", format!("Bearer {t}"));
        }
        r.send()
    };
    assert_eq!(m(None).await.unwrap().status(), 401);
    assert_eq!(m(Some("wrong")).await.unwrap().status(), 401);
    let r = m(Some("metrics-secret")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("rbv_jobs"));

    // Retention: after 4 s uploads and outputs are gone.
    let j = job(
        &srv,
        &srv.key,
        json!({"video_url": video_url, "model": "human", "output_format": "mov"}),
    )
    .await;
    let id = j["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let j = srv
            .get(Some(&srv.key), &format!("/v1/jobs/{id}"))
            .await
            .body;
        if j["output_url"].is_null() && !srv.kept(true).await.contains(&stored) {
            break;
        }
        assert!(Instant::now() < deadline, "not swept: {j}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let a = srv.create(&srv.key, json!({"video_url": video_url})).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(srv.kept(false).await.is_empty());
    srv.server.stop().await;

    // A start refused with 429 keeps the failed job's error.
    let srv = serve::start(&dir.join("data2"), |c| {
        c.light_workers = 0;
        c.queue_size = 1;
    })
    .await;
    let d = srv.create(&srv.key, json!({"video_url": "http://127.0.0.1:9/a.webm", "model": "human", "auto_start": false})).await;
    let id = d.body["id"].as_str().unwrap().to_owned();
    srv.server
        .app
        .store
        .fail(&id, 0, "the first run failed")
        .unwrap();
    assert_eq!(
        srv.create(
            &srv.key,
            json!({"video_url": "http://127.0.0.1:9/b.webm", "model": "human"})
        )
        .await
        .status,
        200
    );
    let a = srv
        .post(Some(&srv.key), &format!("/v1/jobs/{id}/start"), "")
        .await;
    assert_eq!(a.status, 429);
    let j = srv
        .get(Some(&srv.key), &format!("/v1/jobs/{id}"))
        .await
        .body;
    assert_eq!(
        (j["status"].as_str(), j["error"].as_str()),
        (Some("failed"), Some("the first run failed")),
        "{j}"
    );
    // A small video zero-padded to 4.9 MB is refused (all of it is read).
    let mut padded = std::fs::read(&c).unwrap();
    padded.resize(4_900_000, 0);
    let pad = dir.join("padded.webm");
    std::fs::write(&pad, padded).unwrap();
    let a = srv.upload(&srv.key, &pad, "padded.webm").await;
    assert_eq!(
        (a.status, a.code()),
        (400, "invalid_file_type"),
        "{}",
        a.body
    );
    assert!(
        a.message()
            .contains("of the upload's 4900000 bytes are audio or video"),
        "{}",
        a.body
    );
    srv.server.stop().await;
}
