// SPDX-License-Identifier: MPL-2.0
// Several `rbv serve` processes as one service: 2 API nodes and 3 worker
// nodes on one PostgreSQL database and one S3 bucket, each node with a data
// directory of its own. 20 jobs in all six formats go in through both API
// nodes, with a webhook each, and a 60-second clip cut into 4 segments that
// the workers share; workers of every node take them from the store. The
// worker coordinating the long clip is killed with SIGKILL in the middle of
// a segment: the job's lease and the segment's run out, another worker
// takes the job over (keeping the segments done) and the segment is run
// again. One API node is killed in the middle of an upload and started
// again. Every job completes, is charged once, has its `job.completed`
// delivered once, and its output has the input's frame count; the long
// clip's joined output matches one run over the whole clip frame by frame
// (no seam at the joins); the bucket holds what was kept, nothing
// half-sent and no segment's part.
//
// Needs PostgreSQL and S3-compatible storage: `RBV_TEST_DATABASE_URL`,
// `RBV_TEST_S3_ENDPOINT` and the `AWS_*` credentials (setup/test.sh starts
// throwaway servers and sets them); without them the test says so and passes.

use crate::server_crash::{call, finished};
use rbv_testkit as common;
use rbv_testkit::serve;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

const RBV: &str = env!("CARGO_BIN_EXE_rbv");
const FRAMES: usize = 40;
const JOBS: usize = 20;
/// The long clip: 60 s of vtest.avi (10 frames a second), cut every 15 s.
const LONG_FRAMES: usize = 600;
const SEGMENT_SECONDS: &str = "15";

/// The value of `name` in a logfmt line ("?" when it has none).
fn field(l: &str, name: &str) -> String {
    l.split(&format!(" {name}="))
        .nth(1)
        .and_then(|v| v.split(' ').next())
        .unwrap_or("?")
        .to_owned()
}

/// Who took `job`, run by run (attempt order): (worker process index,
/// worker name), as the workers' logs say.
fn taken_by(workers: &[common::ServeProcess], job: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, w) in workers.iter().enumerate() {
        for l in w.log.lock().unwrap().iter() {
            if l.contains("event=job ")
                && l.contains(&format!("job_id={job} "))
                && l.contains("to=processing")
            {
                let attempt: u32 = field(l, "attempt").parse().unwrap_or(0);
                out.push((attempt, i, field(l, "worker")));
            }
        }
    }
    out.sort();
    out.into_iter().map(|(_, i, name)| (i, name)).collect()
}

/// A long job's segment runs that ended `to` (done, processing...), as the
/// workers' logs say: (segment, attempt, worker process index, node).
fn segment_runs(
    workers: &[common::ServeProcess],
    job: &str,
    to: &str,
) -> Vec<(u32, u32, usize, String)> {
    let mut out = Vec::new();
    for (i, w) in workers.iter().enumerate() {
        for l in w.log.lock().unwrap().iter() {
            if l.contains("event=segment ")
                && l.contains(&format!("job_id={job} "))
                && l.contains(&format!(" to={to} "))
            {
                let n = |name| field(l, name).parse().unwrap_or(0);
                out.push((n("segment"), n("attempt"), i, field(l, "node")));
            }
        }
    }
    out.sort();
    out
}

/// What the cluster test needs: (database server URL, S3 endpoint).
fn engines() -> Option<(String, String)> {
    match (
        std::env::var("RBV_TEST_DATABASE_URL"),
        std::env::var("RBV_TEST_S3_ENDPOINT"),
    ) {
        (Ok(db), Ok(s3)) => Some((db, s3)),
        _ => {
            eprintln!(
                "SKIPPED: the cluster test needs PostgreSQL and S3-compatible storage: set \
                 RBV_TEST_DATABASE_URL, RBV_TEST_S3_ENDPOINT and AWS_ACCESS_KEY_ID / \
                 AWS_SECRET_ACCESS_KEY (setup/test.sh starts throwaway servers and does)"
            );
            None
        }
    }
}

/// Stops a throwaway server (`setup/pg.sh` or `setup/s3.sh`) however the
/// test ends.
struct Throwaway(&'static str, std::path::PathBuf);

impl Drop for Throwaway {
    fn drop(&mut self) {
        let _ = std::process::Command::new(common::repo().join(self.0))
            .arg("stop")
            .arg(&self.1)
            .status(); // not run_ok: a drop must not panic
    }
}

/// A client that gives up on an answer after a minute (a hang fails).
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// The bucket's kept uploads (`true`) or outputs, as the nodes see it.
async fn in_bucket(spec: &rbv_server::storage::Spec, uploads: bool) -> Vec<String> {
    let scratch = std::env::temp_dir();
    rbv_server::storage::Storage::new(spec, &scratch)
        .unwrap()
        .list(uploads)
        .await
        .unwrap()
}

/// A multipart upload whose file part trickles (64 KiB every 50 ms) and
/// never ends on its own: the client side of an upload cut short.
async fn trickling_upload(url: String, key: String) -> Result<reqwest::Response, reqwest::Error> {
    let chunks = futures_util::stream::unfold(0u32, |n| async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Some((Ok::<_, std::io::Error>(vec![0u8; 64 * 1024]), n + 1))
    });
    let part = reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(chunks))
        .file_name("slow.webm")
        .mime_str("video/webm")
        .unwrap();
    reqwest::Client::new()
        .post(format!("{url}/v1/uploads"))
        .header("X-Api-Key", key)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_nodes_three_workers_one_killed() {
    let Some((server, s3)) = engines() else {
        return;
    };
    common::init();
    let dir = common::scratch("serve-cluster");
    let clip = dir.join("clip.webm");
    common::scaled_clip("demo_input.webm", FRAMES, 320, 180, &clip);
    let long = dir.join("long.webm");
    common::scaled_clip("vtest.avi", LONG_FRAMES, 320, 240, &long);
    let name = format!("rbv_cluster_{}", std::process::id());
    let db = rbv_server::store::db::create_database(&server, &name).unwrap();
    let bucket = format!("s3://rbv/cluster-{}", rbv_server::crypto::random_hex(6));
    let spec = rbv_server::storage::Spec::parse(&bucket, Some(s3.clone())).unwrap();
    let key = common::create_key_in(RBV, &["--database", &db], "cluster");

    let node = |role: &str, i: usize| {
        let mut args = vec![
            "--role",
            role,
            "--database",
            db.as_str(),
            "--storage",
            bucket.as_str(),
            "--s3-endpoint",
            s3.as_str(),
            "--lease-seconds",
            "3",
            // The webhook receiver is on 127.0.0.1.
            "--allow-private-urls",
            "127.0.0.0/8",
        ];
        if role == "worker" {
            args.extend(["--pools", "light", "--segment-seconds", SEGMENT_SECONDS]);
        }
        // A data directory of its own: nothing is shared but the engines.
        common::spawn_serve(RBV, &dir.join(format!("{role}-{i}")), &args)
    };
    let mut apis = [node("api", 0), node("api", 1)];
    let mut workers = vec![node("worker", 0), node("worker", 1), node("worker", 2)];
    let http = client();

    // A worker node has no API.
    let r = http
        .get(format!("{}/v1/jobs", workers[0].url))
        .header("X-Api-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Every node is healthy in its role, its storage answering.
    for n in apis.iter().chain(&workers) {
        let bytes = http
            .get(format!("{}/health", n.url))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let h: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(h["status"], "healthy", "{h}");
    }
    // Roles need the shared store.
    let out = std::process::Command::new(RBV)
        .args(["serve", "--role", "worker", "--data-dir"])
        .arg(dir.join("alone"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("share a PostgreSQL store"),
        "{said}"
    );

    // One upload through each API node; jobs through both, on either upload.
    let uploads = [
        serve::upload_to(&http, &apis[0].url, &key, &clip).await,
        serve::upload_to(&http, &apis[1].url, &key, &clip).await,
    ];
    assert_eq!(in_bucket(&spec, true).await.len(), 2);
    let (hook, deliveries) = serve::webhook_receiver(|_, _| 200).await;
    // The long clip first: its segments are under way while the short jobs run.
    let long_upload = serve::upload_to(&http, &apis[0].url, &key, &long).await;
    let long_id = call(
        &http,
        &key,
        "POST",
        &format!("{}/v1/jobs", apis[0].url),
        Some(
            json!({"video_url": long_upload, "model": "human", "output_format": "mov",
                    "webhook_url": hook}),
        ),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let variants = [
        json!({"output_format": "mov"}),
        json!({"output_format": "mp4", "bg_type": "green"}),
        json!({"output_format": "webm", "bg_type": "custom", "bg_color": "#0000FF"}),
        json!({"output_format": "gif"}),
        json!({"output_format": "webp"}),
        json!({"output_format": "png_sequence"}),
        json!({"output_format": "mov", "model": "light"}),
    ];
    let mut ids = Vec::new();
    for i in 0..JOBS {
        let mut body = json!({"video_url": uploads[i % 2], "model": "human", "webhook_url": hook});
        body.as_object_mut()
            .unwrap()
            .extend(variants[i % variants.len()].as_object().unwrap().clone());
        let api = &apis[(i / 2) % 2];
        let v = call(
            &http,
            &key,
            "POST",
            &format!("{}/v1/jobs", api.url),
            Some(body),
        )
        .await;
        ids.push(v["id"].as_str().unwrap().to_owned());
    }

    // Kill the worker coordinating the long clip while it works on a segment.
    let deadline = Instant::now() + Duration::from_secs(120);
    let victim = 'found: loop {
        for (i, w) in workers.iter().enumerate() {
            let log = w.log.lock().unwrap();
            let mine = |l: &&String| l.contains(&format!("job_id={long_id} "));
            if log
                .iter()
                .filter(mine)
                .any(|l| l.contains("event=segments "))
                && log
                    .iter()
                    .filter(mine)
                    .any(|l| l.contains("event=segment ") && l.contains(" to=processing "))
            {
                break 'found i;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the long clip's segments never got under way"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    workers[victim].child.kill().unwrap(); // SIGKILL
    workers[victim].child.wait().unwrap();
    let killed_job = long_id.clone();
    let cut_short: Vec<u32> = {
        let done = segment_runs(&workers, &long_id, "done");
        segment_runs(&workers, &long_id, "processing")
            .into_iter()
            .filter(|r| r.2 == victim && !done.iter().any(|d| d.0 == r.0 && d.1 == r.1))
            .map(|r| r.0)
            .collect()
    };
    assert_eq!(cut_short.len(), 1, "killed in the middle of one segment");
    println!(
        "killed worker process {victim}, coordinating {long_id}, in the middle of segment {}",
        cut_short[0]
    );

    // Kill the second API node while an upload is coming in.
    let spool = dir.join("api-1").join("uploads");
    let cut = tokio::spawn(trickling_upload(apis[1].url.clone(), key.clone()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let part = loop {
        let parts: Vec<_> = std::fs::read_dir(&spool)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "part"))
            .collect();
        if let Some(p) = parts.first()
            && std::fs::metadata(p).unwrap().len() > 256 * 1024
        {
            break p.clone();
        }
        assert!(Instant::now() < deadline, "the upload never got under way");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    apis[1].child.kill().unwrap(); // SIGKILL
    apis[1].child.wait().unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(30), cut)
        .await
        .expect("the client hears the upload broke off")
        .unwrap();
    assert!(answer.is_err(), "no answer for a cut upload: {answer:?}");
    println!("killed API node 1 in the middle of an upload");
    // Nothing of it reached the bucket (the two clips' and the long clip's
    // uploads are); the node's own leftover is removed when it starts
    // again, and a retried upload goes through it.
    assert_eq!(in_bucket(&spec, true).await.len(), 3);
    assert!(part.exists());
    apis[1] = node("api", 1);
    assert!(!part.exists(), "the cut upload's part was left");
    assert!(
        apis[1]
            .log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("event=cleaned")),
        "the restart says what it removed"
    );
    serve::upload_to(&http, &apis[1].url, &key, &clip).await;
    assert_eq!(in_bucket(&spec, true).await.len(), 4);

    let deadline = Instant::now() + Duration::from_secs(420);
    let long_job = finished(
        &http,
        &key,
        &format!("{}/v1/jobs/{long_id}", apis[1].url),
        deadline,
        "stuck",
    )
    .await;
    let mut jobs = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let url = format!("{}/v1/jobs/{id}", apis[n % 2].url);
        jobs.push(finished(&http, &key, &url, deadline, "stuck").await);
    }
    // From here on the long clip is one of the jobs.
    ids.push(long_id.clone());
    jobs.push(long_job.clone());
    let mut by_worker = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (id, j) in ids.iter().zip(&jobs) {
        assert_eq!(j["status"], "completed", "{j}");
        let runs = taken_by(&workers, id);
        println!(
            "{id} {}: {:?}",
            j["output_format"],
            runs.iter().map(|r| &r.1).collect::<Vec<_>>()
        );
        by_worker
            .entry(runs.last().unwrap().1.clone())
            .or_default()
            .push(id.clone());
        if id == &killed_job {
            assert_eq!(j["attempts"], 2, "run again after its worker died: {j}");
            assert_eq!(runs.len(), 2, "{runs:?}");
            assert_eq!(runs[0].0, victim, "first by the worker killed");
            assert_ne!(runs[1].0, victim, "then by another");
        } else {
            assert_eq!(j["attempts"], 1, "{j}");
        }
    }
    assert!(
        by_worker.len() >= 2,
        "the jobs were spread over the workers: {by_worker:?}"
    );

    // Charged once each, wherever it ran.
    let events = call(
        &http,
        &key,
        "GET",
        &format!("{}/v1/usage/events?limit=100", apis[1].url),
        None,
    )
    .await;
    let mut charged: Vec<&str> = events
        .as_array()
        .or(events["items"].as_array())
        .unwrap()
        .iter()
        .map(|e| e["job_id"].as_str().unwrap())
        .collect();
    charged.sort();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(charged, expected);

    // `job.completed` delivered once per job, each delivery once.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let completed: Vec<String> = deliveries
            .lock()
            .unwrap()
            .iter()
            .filter(|d| d.0["x-webhook-event"] == "job.completed")
            .map(|d| serde_json::from_str::<Value>(&d.1).unwrap()["data"]["id"].to_string())
            .collect();
        if completed.len() >= ids.len() {
            let mut once = completed.clone();
            once.sort();
            once.dedup();
            assert_eq!(once.len(), completed.len(), "a job.completed twice");
            assert_eq!(completed.len(), ids.len());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} job.completed delivered",
            completed.len(),
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut delivery_ids: Vec<String> = deliveries
        .lock()
        .unwrap()
        .iter()
        .map(|d| d.0["x-webhook-delivery-id"].to_str().unwrap().to_owned())
        .collect();
    let all = delivery_ids.len();
    delivery_ids.sort();
    delivery_ids.dedup();
    assert_eq!(delivery_ids.len(), all, "a delivery sent twice");

    // One output per job in the bucket; besides them at most the killed
    // run's own (were it killed between keeping its file and recording it);
    // through either API node's signed link, every frame.
    let recorded: Vec<String> = jobs
        .iter()
        .map(|j| {
            let url = j["output_url"].as_str().unwrap();
            url.split('?')
                .next()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    let kept = in_bucket(&spec, false).await;
    for f in &recorded {
        assert!(kept.contains(f), "{f} not in the bucket: {kept:?}");
    }
    let extra: Vec<&String> = kept.iter().filter(|f| !recorded.contains(f)).collect();
    assert!(
        !extra.iter().any(|f| f.contains(".part")),
        "a segment's part outlived its job: {extra:?}"
    );
    assert!(
        extra
            .iter()
            .all(|f| f.starts_with(&format!("{killed_job}."))),
        "files no job refers to: {extra:?}"
    );
    for (i, j) in jobs.iter().enumerate() {
        if j["output_format"] != "mov" || j["id"] == long_id.as_str() {
            continue;
        }
        let url = j["output_url"].as_str().unwrap();
        let bytes = http.get(url).send().await.unwrap().bytes().await.unwrap();
        let path = dir.join(format!("out{i}.mov"));
        std::fs::write(&path, &bytes).unwrap();
        let (frames, ..) = rbv_testkit::serve::decode(&path);
        assert_eq!(frames, FRAMES, "{}", j["id"]);
    }

    // The long clip: its 4 segments done by more than one worker, the one
    // cut short run again by another; every frame once, and no seam: frame
    // by frame as one run over the whole clip (the same element settings,
    // the same encoder) gives them.
    let done = segment_runs(&workers, &long_id, "done");
    for (segment, attempt, w, node) in &done {
        println!("{long_id} segment {segment} (attempt {attempt}): worker process {w} ({node})");
    }
    assert_eq!(
        done.iter().map(|d| d.0).collect::<Vec<_>>(),
        [1, 2, 3, 4],
        "each segment done once: {done:?}"
    );
    // Billed for the clip's 60 s, as one run would be (once: above).
    let billed = long_job["duration_seconds"].as_f64().unwrap();
    assert!((billed - 60.0).abs() < 0.2, "{long_job}");
    let doers: std::collections::BTreeSet<usize> = done.iter().map(|d| d.2).collect();
    assert!(doers.len() >= 2, "the segments were shared: {done:?}");
    let redone = done.iter().find(|d| d.0 == cut_short[0]).unwrap();
    assert!(
        redone.1 >= 2 && redone.2 != victim,
        "segment {} run again by another worker: {redone:?}",
        cut_short[0]
    );
    let joined = dir.join("long.mov");
    let bytes = http
        .get(long_job["output_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    std::fs::write(&joined, &bytes).unwrap();
    let one_run = dir.join("long-one-run.mov");
    tokio::task::block_in_place(|| {
        rbv_runner::run(
            &rbv_runner::Spec {
                input: &long,
                output: &one_run,
                target: rbv_runner::Target::Service(rbv_api::OutputFormat::Mov),
                properties: vec![
                    ("model".into(), "human".into()),
                    ("background".into(), "transparent".into()),
                ],
                timeout: Some(Duration::from_secs(300)),
                stop: None,
                frames: None,
            },
            |_| {},
        )
    })
    .unwrap();
    let (got, want) = (
        common::alpha_frames(&joined),
        common::alpha_frames(&one_run),
    );
    assert_eq!(got.len(), LONG_FRAMES, "the joined output's frames");
    assert_eq!(want.len(), LONG_FRAMES);
    let diff: Vec<f64> = got
        .iter()
        .zip(&want)
        .map(|(a, b)| common::mean_abs_diff(&a.1, &b.1))
        .collect();
    for cut in [150, 300, 450] {
        println!(
            "join at frame {cut}: alpha differs from one run's by {:.4} {:.4} | {:.4} {:.4} of 255 (frames {}..{})",
            diff[cut - 2],
            diff[cut - 1],
            diff[cut],
            diff[cut + 1],
            cut - 2,
            cut + 1
        );
    }
    let (worst, at) = diff
        .iter()
        .enumerate()
        .map(|(i, d)| (*d, i))
        .fold((0.0, 0), |a, b| if b.0 > a.0 { b } else { a });
    println!("largest difference: {worst:.4} of 255 at frame {at}");
    assert!(
        worst < 0.02,
        "frame {at} differs from one run's by {worst:.3} of 255: a seam"
    );
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert_eq!(a.0, b.0, "frame {i}'s timestamp");
    }

    for p in apis.iter_mut().chain(workers.iter_mut()) {
        let _ = p.child.kill();
        let _ = p.child.wait();
    }
    let mut all = String::new();
    for (role, p) in [("api", &apis[0]), ("api", &apis[1])]
        .into_iter()
        .chain(workers.iter().map(|w| ("worker", w)))
    {
        for l in p.log.lock().unwrap().iter() {
            all.push_str(&format!("{role} {} {l}\n", p.url));
        }
    }
    std::fs::write(dir.join("cluster.log"), all).unwrap();
    println!("every node's log: {}", dir.join("cluster.log").display());
}

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
