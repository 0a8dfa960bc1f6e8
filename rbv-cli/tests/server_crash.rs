// SPDX-License-Identifier: MPL-2.0
// `rbv serve` killed with SIGKILL in the middle of a job and started again
// on the same data directory: nothing is lost (the interrupted job runs
// again and completes, queued jobs complete, each is charged once), and
// the log lines carry request and job ids but never the key.

use rbv_testkit as common;
use rbv_testkit::serve;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

const RBV: &str = env!("CARGO_BIN_EXE_rbv");

/// A `/v1` call with the key that must succeed; its JSON answer.
pub(crate) async fn call(
    http: &reqwest::Client,
    key: &str,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> Value {
    let mut r = match method {
        "POST" => http.post(url),
        _ => http.get(url),
    }
    .header("X-Api-Key", key);
    if let Some(b) = body {
        r = r
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let status = resp.status();
    let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert!(status.is_success(), "{status} {v}");
    v
}

/// The job at `url` once it is completed or failed (polled every 200 ms;
/// past `deadline` the test fails, saying `what`).
pub(crate) async fn finished(
    http: &reqwest::Client,
    key: &str,
    url: &str,
    deadline: Instant,
    what: &str,
) -> Value {
    loop {
        let j = call(http, key, "GET", url, None).await;
        if j["status"] == "completed" || j["status"] == "failed" {
            return j;
        }
        assert!(Instant::now() < deadline, "{what}: {j}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_job_loses_nothing() {
    common::init();
    let dir = common::scratch("serve-crash");
    let clip = dir.join("clip.webm");
    // The pro model (ISNet) takes long enough per frame to be caught mid-job.
    common::scaled_clip("demo_input.webm", 6, 320, 180, &clip);
    let data = dir.join("data");
    let key = common::create_key(RBV, &data, "crash-test");

    let http = reqwest::Client::new();
    let mut first = common::spawn_serve(
        RBV,
        &data,
        &["--heavy-workers", "1", "--light-workers", "1"],
    );
    let video_url = serve::upload_to(&http, &first.url, &key, &clip).await;
    let mut ids = Vec::new();
    for (model, format) in [
        ("pro", "mov"),
        ("original", "png_sequence"),
        ("human", "mov"),
    ] {
        let v = call(
            &http,
            &key,
            "POST",
            &format!("{}/v1/jobs", first.url),
            Some(json!({"video_url": video_url, "model": model, "output_format": format})),
        )
        .await;
        ids.push(v["id"].as_str().unwrap().to_owned());
    }
    // Wait until the first pro job is part-way through, then SIGKILL. Polled
    // at 10 a second, what `--rate-limit` (600 a minute) refills, so a slow
    // start on a busy machine is not answered 429.
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120);
    loop {
        let j = call(
            &http,
            &key,
            "GET",
            &format!("{}/v1/jobs/{}", first.url, ids[0]),
            None,
        )
        .await;
        if j["status"] == "processing" && j["progress"].as_f64().unwrap() > 0.0 {
            break;
        }
        assert_ne!(
            j["status"], "completed",
            "the job finished before it could be interrupted"
        );
        assert!(Instant::now() < deadline, "{j}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "the pro job was part-way through {:.1} s after it was created",
        started.elapsed().as_secs_f64()
    );
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();

    let mut second = common::spawn_serve(
        RBV,
        &data,
        &["--heavy-workers", "1", "--light-workers", "1"],
    );
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut jobs = Vec::new();
    for id in &ids {
        let url = format!("{}/v1/jobs/{id}", second.url);
        jobs.push(finished(&http, &key, &url, deadline, "stuck").await);
    }
    for j in &jobs {
        assert_eq!(j["status"], "completed", "{j}");
    }
    assert_eq!(jobs[0]["attempts"], 2, "the interrupted job ran again");
    let events = call(
        &http,
        &key,
        "GET",
        &format!("{}/v1/usage/events?limit=100", second.url),
        None,
    )
    .await;
    assert_eq!(
        events["items"].as_array().unwrap().len(),
        3,
        "each job charged once"
    );
    let (_, bytes) = {
        let r = http
            .get(jobs[0]["output_url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        (r.status(), r.bytes().await.unwrap())
    };
    let mov = dir.join("out.mov");
    std::fs::write(&mov, bytes).unwrap();
    let (frames, w, h, _) = serve::decode(&mov);
    assert_eq!((frames, w, h), (6, 320, 180));
    second.child.kill().unwrap();
    second.child.wait().unwrap();

    // Logs: a line per request with its id, job ids on job routes, the
    // recovery named, the key nowhere.
    let mut all = first.log.lock().unwrap().clone();
    let second_log = second.log.lock().unwrap().clone();
    assert!(
        second_log.iter().any(|l| l.contains("event=recovered")
            && l.contains(&ids[0])
            && l.contains("to=pending")),
        "{second_log:#?}"
    );
    all.extend(second_log);
    let requests: Vec<&String> = all.iter().filter(|l| l.contains("event=request")).collect();
    assert!(requests.len() > 10);
    for l in &requests {
        assert!(l.contains(" request_id=req_"), "{l}");
        if l.contains("path=/v1/jobs/job_") {
            assert!(l.contains(" job_id=job_"), "{l}");
        }
    }
    assert!(
        all.iter()
            .any(|l| l.contains("event=job") && l.contains("to=completed") && l.contains(&ids[0]))
    );
    assert!(
        !all.iter().any(|l| l.contains(&key)),
        "the key is in the log"
    );
    assert!(
        !all.iter().any(|l| l.contains("signature=")),
        "a link's signature is in the log"
    );
}
