// SPDX-License-Identifier: MPL-2.0
// What a node does when its engines fail: storage refused or unreachable at
// start (a clear reason, no hang), the bucket lost under a running node,
// the database stopped in the middle of a run. Same engines and skip rule
// as the cluster test above.

use super::*;

/// `rbv serve` that must stop at start: its stderr (killed after 60 s, which
/// fails the test, so a hang cannot pass).
fn refused_start(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut child = std::process::Command::new(RBV)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("rbv serve {args:?} did not stop within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "rbv serve {args:?} started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn storage_problems_stop_a_node_at_start_with_the_reason() {
    let Some((_, s3)) = engines() else {
        return;
    };
    let dir = common::scratch("serve-storage-errors");
    let data = dir.join("data");
    let data = data.to_str().unwrap();
    let with = |bucket: &str, endpoint: &str| {
        vec![
            "--data-dir".to_owned(),
            data.to_owned(),
            "--storage".to_owned(),
            bucket.to_owned(),
            "--s3-endpoint".to_owned(),
            endpoint.to_owned(),
        ]
    };
    let run = |args: Vec<String>, env: &[(&str, &str)]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused_start(&args, env)
    };
    let said = run(with("s3://no-such-bucket-here", &s3), &[]);
    assert!(said.contains("the bucket does not exist"), "{said}");
    assert!(said.contains("s3://no-such-bucket-here"), "{said}");
    let wrong = "not-the-secret-0123456789";
    let said = run(with("s3://rbv/x", &s3), &[("AWS_SECRET_ACCESS_KEY", wrong)]);
    assert!(
        said.contains("the credentials were refused (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"),
        "{said}"
    );
    assert!(!said.contains(wrong), "the secret reached the log: {said}");
    let said = run(with("s3://rbv/x", "http://127.0.0.1:1"), &[]);
    assert!(said.contains("cannot reach the endpoint"), "{said}");
    // With a bucket the data directory is one node's: a second is refused.
    let first = common::spawn_serve(
        RBV,
        &dir.join("data"),
        &["--storage", "s3://rbv/x", "--s3-endpoint", &s3],
    );
    let said = run(with("s3://rbv/x", &s3), &[]);
    assert!(
        said.contains("another rbv serve uses this data directory"),
        "{said}"
    );
    drop(first);
    for (args, says) in [
        (
            vec!["--storage", "/srv/media"],
            "expected local or s3://bucket/prefix",
        ),
        (vec!["--storage", "s3://UPPER"], "is not a bucket name"),
        (
            vec!["--s3-endpoint", "http://127.0.0.1:1"],
            "--s3-endpoint is for --storage s3://bucket/prefix",
        ),
    ] {
        let said = refused_start(&args, &[]);
        assert!(said.contains(says), "{args:?}: {said}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_lost_after_the_start_fails_requests_and_jobs_with_the_reason() {
    if engines().is_none() {
        return;
    }
    common::init();
    let dir = common::scratch("serve-bucket-lost");
    let clip = dir.join("clip.webm");
    common::scaled_clip("demo_input.webm", 10, 160, 90, &clip);
    // A bucket server of this test's own, to stop under the node.
    let s3 = dir.join("s3");
    let started = setup_script("s3.sh", "start", &s3);
    let _s3 = Throwaway("setup/s3.sh", s3.clone());
    let [endpoint, access, secret] = started.split_whitespace().collect::<Vec<_>>()[..] else {
        panic!("setup/s3.sh printed {started}");
    };
    let data = dir.join("data");
    let key = common::create_key(RBV, &data, "bucket");
    let node = common::spawn_serve_env(
        RBV,
        &data,
        &["--storage", "s3://rbv/lost", "--s3-endpoint", endpoint],
        &[
            ("AWS_ACCESS_KEY_ID", access),
            ("AWS_SECRET_ACCESS_KEY", secret),
        ],
    );
    let http = client();
    let video_url = serve::upload_to(&http, &node.url, &key, &clip).await;

    setup_script("s3.sh", "stop", &s3);

    // /health says so.
    let r = http
        .get(format!("{}/health", node.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let h: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(h["checks"]["storage"], "failing", "{h}");
    // An upload is refused and nothing of it kept.
    let part = reqwest::multipart::Part::bytes(std::fs::read(&clip).unwrap()).file_name("c.webm");
    let r = http
        .post(format!("{}/v1/uploads", node.url))
        .header("X-Api-Key", &key)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(status, 500, "{v}");
    assert_eq!(v["error"]["code"], "internal_error", "{v}");
    assert_eq!(
        std::fs::read_dir(data.join("uploads")).unwrap().count(),
        0,
        "the refused upload's file was left"
    );
    // A job on the earlier upload fails with the reason, is not charged.
    let j = call(
        &http,
        &key,
        "POST",
        &format!("{}/v1/jobs", node.url),
        Some(json!({"video_url": video_url, "model": "human", "output_format": "mov"})),
    )
    .await;
    let id = j["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let job_url = format!("{}/v1/jobs/{id}", node.url);
    let j = finished(&http, &key, &job_url, deadline, "stuck").await;
    assert_eq!(j["status"], "failed", "{j}");
    // The reason to the client; where and why to the operator's log only.
    let error = j["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "storage_unavailable: the job's files cannot be read from or written to storage now"
        ),
        "{error}"
    );
    assert!(!error.contains(endpoint), "{error}");
    assert_eq!(j["credits_used"].as_f64().unwrap_or(0.0), 0.0, "{j}");
    assert!(
        node.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("event=storage")
                && l.contains(&format!("job_id={id}"))
                && l.contains("the uploaded video cannot be read from storage s3://rbv/lost")
                && l.contains("cannot reach the endpoint")),
        "the log names the storage and why"
    );
}

/// Runs `setup/pg.sh MODE DIR` (or another script of setup/); its output.
fn setup_script(script: &str, mode: &str, dir: &std::path::Path) -> String {
    common::run_ok(
        std::process::Command::new(common::repo().join("setup").join(script))
            .arg(mode)
            .arg(dir),
    )
}

fn pg(mode: &str, dir: &std::path::Path) -> String {
    setup_script("pg.sh", mode, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_lost_mid_run_answers_503_and_loses_nothing() {
    if engines().is_none() {
        return;
    }
    common::init();
    let dir = common::scratch("serve-db-lost");
    let clip = dir.join("clip.webm");
    common::scaled_clip("demo_input.webm", 120, 480, 270, &clip);
    // A database server of this test's own, to stop under the node.
    let pgdir = dir.join("pg");
    let server = pg("start", &pgdir);
    let _pg = Throwaway("setup/pg.sh", pgdir.clone());
    let db = rbv_server::store::db::create_database(&server, "rbv_lost").unwrap();
    let key = common::create_key_in(RBV, &["--database", &db], "lost");
    let data = dir.join("data");
    // Declared after the database's guard: stopped before it (drop order).
    let node = common::spawn_serve(RBV, &data, &["--database", &db, "--lease-seconds", "3"]);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let video_url = serve::upload_to(&http, &node.url, &key, &clip).await;
    let url = |p: &str| format!("{}{p}", node.url);
    let j = call(
        &http,
        &key,
        "POST",
        &url("/v1/jobs"),
        Some(json!({"video_url": video_url, "model": "human", "output_format": "mov"})),
    )
    .await;
    let id = j["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let j = call(&http, &key, "GET", &url(&format!("/v1/jobs/{id}")), None).await;
        if j["status"] == "processing" && j["progress"].as_f64().unwrap() > 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the job never got under way: {j}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    pg("halt", &pgdir);
    // While it is down: health says so, requests answer 503 at once and
    // change nothing.
    let r = http.get(url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let h: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(h["checks"]["database"], "failing", "{h}");
    for (method, path) in [
        ("GET", format!("/v1/jobs/{id}")),
        ("POST", "/v1/jobs".into()),
    ] {
        let asked = Instant::now();
        let mut req = if method == "GET" {
            http.get(url(&path))
        } else {
            http.post(url(&path))
                .header("Content-Type", "application/json")
                .body(json!({"video_url": video_url}).to_string())
        };
        req = req.header("X-Api-Key", &key);
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 503, "{method} {path}");
        // At once: a refused connection is not waited on.
        assert!(asked.elapsed() < Duration::from_secs(5), "{method} {path}");
        assert_eq!(r.headers()["retry-after"], "5");
        let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(v["error"]["code"], "database_unavailable", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("the service's database cannot be reached"),
            "{v}"
        );
    }
    // The run ends; its result cannot be recorded yet (the worker tries
    // again, its file kept).
    let deadline = Instant::now() + Duration::from_secs(120);
    while !node
        .log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("event=complete") && l.contains(&format!("job_id={id}")))
    {
        assert!(Instant::now() < deadline, "the run never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Idle workers keep asking, once a second, and claim nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        node.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("event=claim") && l.contains("error=")),
        "the failing claims are logged"
    );

    pg("resume", &pgdir);
    // The node dials again at most 2 s after its last failed try.
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.get(url("/health")).send().await.unwrap().status() != 200 {
        assert!(Instant::now() < deadline, "the database never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Back: the run's result is recorded (no other run took the job), once.
    let deadline = Instant::now() + Duration::from_secs(120);
    let job_url = url(&format!("/v1/jobs/{id}"));
    let j = finished(
        &http,
        &key,
        &job_url,
        deadline,
        "stuck after the database came back",
    )
    .await;
    assert_eq!(j["status"], "completed", "{j}");
    assert_eq!(j["attempts"], 1, "{j}");
    let list = call(&http, &key, "GET", &url("/v1/jobs"), None).await;
    let listed = list["items"].as_array().or(list.as_array()).unwrap().len();
    assert_eq!(listed, 1, "the refused create made nothing: {list}");
    let events = call(&http, &key, "GET", &url("/v1/usage/events?limit=100"), None).await;
    let charged = events["items"]
        .as_array()
        .or(events.as_array())
        .unwrap()
        .len();
    assert_eq!(charged, 1, "{events}");
    let outputs: Vec<_> = std::fs::read_dir(data.join("outputs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let file = j["output_url"].as_str().unwrap().split('?').next().unwrap();
    assert_eq!(
        outputs,
        vec![file.rsplit('/').next().unwrap().to_owned()],
        "the recorded run's output, nothing else"
    );
    let bytes = http
        .get(j["output_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let path = dir.join("out.mov");
    std::fs::write(&path, bytes.bytes().await.unwrap()).unwrap();
    assert_eq!(rbv_testkit::serve::decode(&path).0, 120);
}
