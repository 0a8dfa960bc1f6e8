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

mod losses;

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
    // Bounded by what a viewer could see (not by a figure of one
    // machine's): under half a level on average, one pixel in a thousand
    // visibly off at most, on every frame.
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        let d = common::alpha_difference(&a.1, &b.1);
        assert!(
            common::invisible(d),
            "frame {i} differs from one run's by {:.3} of 255 on average, {:.3} % of its \
             pixels visibly: a seam",
            d.0,
            d.1 * 100.0
        );
    }
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
