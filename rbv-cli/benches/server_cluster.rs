// SPDX-License-Identifier: MPL-2.0
//! `rbv serve` as several processes on one PostgreSQL database: one API node
//! and 1, then 2, worker processes (one light worker each), with the media
//! in a shared data directory, then in an S3 bucket (SeaweedFS on loopback,
//! each node with its own data directory). For each it
//! runs one long clip (`RBV_CLUSTER_LONG_FRAMES`, default 300 frames of
//! vtest.avi at 320x240, 10 a second, `human` to mov) alone, cut into
//! segments of `RBV_CLUSTER_SEGMENT_SECONDS` (default 10), then
//! `RBV_CLUSTER_JOBS` (default 200) short jobs (6 frames at 160x90, `human`
//! to mov) submitted at once, and prints the wall times, the throughput,
//! and the database's transactions per short job (PostgreSQL's
//! `xact_commit` for the bench's database, less what the bench's own
//! polling cost, measured first). First, the long clip as one task on one
//! worker (`--segment-seconds 0`): what cutting it costs or gains.
//!
//! Run: `cargo bench -p rbv-cli --bench server_cluster`. It uses
//! `RBV_TEST_DATABASE_URL` when set, else starts a throwaway server with
//! `setup/pg.sh` (PostgreSQL 15 from set-up), and `setup/s3.sh` for the
//! bucket.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use rbv_testkit as common;
use rbv_testkit::{env_or as env, serve};

const RBV: &str = env!("CARGO_BIN_EXE_rbv");

/// Transactions committed so far in database `db` (PostgreSQL's statistics,
/// flushed by each backend within a second).
fn commits(server: &str, db: &str) -> i64 {
    std::thread::sleep(Duration::from_millis(1500));
    let out = Command::new("psql")
        .args([server, "-Atc"])
        .arg(format!(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = '{db}'"
        ))
        .output()
        .expect("psql (set-up installs postgresql-client-15)");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("psql: {}", String::from_utf8_lossy(&out.stderr)))
}

async fn send(http: &reqwest::Client, key: &str, post: Option<Value>, url: &str) -> Value {
    let r = match post {
        Some(b) => http
            .post(url)
            .header("Content-Type", "application/json")
            .body(b.to_string()),
        None => http.get(url),
    }
    .header("X-Api-Key", key)
    .send()
    .await
    .expect("the server answers");
    let status = r.status();
    let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null);
    assert!(status.is_success(), "{url}: {status} {v}");
    v
}

/// Queues a `human` job to mov on `video_url`.
async fn submit(http: &reqwest::Client, key: &str, api: &str, video_url: &str) {
    let body = json!({"video_url": video_url, "model": "human", "output_format": "mov"});
    send(http, key, Some(body), &format!("{api}/v1/jobs")).await;
}

/// Waits until `n` jobs of the key are completed; returns the polls made.
async fn wait_completed(http: &reqwest::Client, key: &str, api: &str, n: i64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut polls = 0;
    loop {
        polls += 2;
        let done = send(
            http,
            key,
            None,
            &format!("{api}/v1/jobs?status=completed&limit=1"),
        )
        .await;
        let failed = send(
            http,
            key,
            None,
            &format!("{api}/v1/jobs?status=failed&limit=1"),
        )
        .await;
        assert_eq!(failed["total"], 0, "a job failed");
        if done["total"].as_i64().unwrap_or(0) >= n {
            return polls;
        }
        assert!(Instant::now() < deadline, "jobs stuck: {done}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

struct Run {
    storage: &'static str,
    workers: usize,
    segment_seconds: String,
    long_s: f64,
    short_s: f64,
    tx_per_job: f64,
}

/// The throwaway bucket server: endpoint, access key, secret key.
type Bucket = [String; 3];

fn run(
    server: &str,
    bucket: Option<&Bucket>,
    (workers, segment_seconds): (usize, &str),
    short: usize,
    clips: (&Path, &Path),
    dir: &Path,
) -> Run {
    let storage = if bucket.is_some() {
        "bucket"
    } else {
        "directory"
    };
    let name = format!(
        "rbv_bench_{storage}_{workers}w_{segment_seconds}s_{}",
        std::process::id()
    );
    let db = rbv_server::store::db::create_database(server, &name).unwrap();
    let key = common::create_key_in(RBV, &["--database", &db], "bench");
    let prefix = format!("s3://rbv/{name}");
    let mut common_args = vec![
        "--database",
        db.as_str(),
        "--rate-limit",
        "0",
        "--queue-size",
        "10000",
    ];
    let mut env = Vec::new();
    if let Some([endpoint, access, secret]) = bucket {
        common_args.extend(["--storage", prefix.as_str(), "--s3-endpoint", endpoint]);
        env = vec![
            ("AWS_ACCESS_KEY_ID", access.as_str()),
            ("AWS_SECRET_ACCESS_KEY", secret.as_str()),
        ];
    }
    // A shared data directory, or (with a bucket) one per node.
    let data = |i: usize| match bucket {
        None => dir.join(format!("data-{workers}")),
        Some(_) => dir.join(format!("data-{workers}-{i}")),
    };
    let _ = std::fs::remove_dir_all(data(0));
    let mut nodes = vec![common::spawn_serve_env(
        RBV,
        &data(0),
        &[&["--role", "api"][..], &common_args].concat(),
        &env,
    )];
    for i in 0..workers {
        nodes.push(common::spawn_serve_env(
            RBV,
            &data(i + 1),
            &[
                &[
                    "--role",
                    "worker",
                    "--light-workers",
                    "1",
                    "--heavy-workers",
                    "0",
                    "--segment-seconds",
                    segment_seconds,
                ][..],
                &common_args,
            ]
            .concat(),
            &env,
        ));
    }
    let api = nodes[0].url.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let r = rt.block_on(async {
        let http = reqwest::Client::new();
        let long_url = serve::upload_to(&http, &api, &key, clips.0).await;
        let short_url = serve::upload_to(&http, &api, &key, clips.1).await;

        // One long clip: its models load on the worker that takes it (a
        // short job first warms every worker).
        for _ in 0..workers {
            submit(&http, &key, &api, &short_url).await;
        }
        wait_completed(&http, &key, &api, workers as i64).await;
        let t = Instant::now();
        submit(&http, &key, &api, &long_url).await;
        wait_completed(&http, &key, &api, workers as i64 + 1).await;
        let long_s = t.elapsed().as_secs_f64();
        if short == 0 {
            return Run {
                storage,
                workers,
                segment_seconds: segment_seconds.to_owned(),
                long_s,
                short_s: f64::NAN,
                tx_per_job: f64::NAN,
            };
        }

        // What the bench's own polling costs the database.
        let before = commits(server, &name);
        for _ in 0..20 {
            send(
                &http,
                &key,
                None,
                &format!("{api}/v1/jobs?status=completed&limit=1"),
            )
            .await;
        }
        let per_poll = (commits(server, &name) - before) as f64 / 20.0;

        let before = commits(server, &name);
        let t = Instant::now();
        for _ in 0..short {
            submit(&http, &key, &api, &short_url).await;
        }
        let polls = wait_completed(&http, &key, &api, (workers + 1 + short) as i64).await;
        let short_s = t.elapsed().as_secs_f64();
        let tx = (commits(server, &name) - before) as f64 - per_poll * polls as f64;
        Run {
            storage,
            workers,
            segment_seconds: segment_seconds.to_owned(),
            long_s,
            short_s,
            tx_per_job: tx / short as f64,
        }
    });
    for n in &mut nodes {
        let _ = n.child.kill();
        let _ = n.child.wait();
    }
    r
}

fn main() {
    common::init();
    let short = env("RBV_CLUSTER_JOBS", 200);
    let long_frames = env("RBV_CLUSTER_LONG_FRAMES", 300);
    let segment_seconds = env("RBV_CLUSTER_SEGMENT_SECONDS", 10).to_string();
    let dir = common::scratch("server-cluster-bench");
    let long = dir.join("long.webm");
    let small = dir.join("short.webm");
    common::scaled_clip("vtest.avi", long_frames, 320, 240, &long);
    let probed = rbv_runner::probe(&long, Duration::from_secs(60)).unwrap();
    common::scaled_clip("demo_input.webm", 6, 160, 90, &small);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pg_dir = dir.join("pg");
    let (server, own) = match std::env::var("RBV_TEST_DATABASE_URL") {
        Ok(u) => (u, false),
        Err(_) => {
            let started = common::run_ok(
                Command::new(root.join("setup/pg.sh"))
                    .arg("start")
                    .arg(&pg_dir),
            );
            (started, true)
        }
    };
    let s3_dir = dir.join("s3");
    let started = common::run_ok(
        Command::new(root.join("setup/s3.sh"))
            .arg("start")
            .arg(&s3_dir),
    );
    let bucket: Bucket = match started.split_whitespace().collect::<Vec<_>>()[..] {
        [e, a, s] => [e.into(), a.into(), s.into()],
        _ => panic!("setup/s3.sh printed {started}"),
    };
    println!(
        "rbv serve on PostgreSQL: 1 API node + N worker processes (1 light worker each), \
         media in one data directory or in a SeaweedFS bucket, {} cores; long clip \
         {} frames 320x240 ({:.1} s) in segments of {segment_seconds} s, {short} short jobs of \
         6 frames 160x90, human -> mov",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        probed.frames,
        probed.seconds,
    );
    let clips = (long.as_path(), small.as_path());
    // The long clip as one task: the reference for its segments.
    let whole = run(&server, None, (1, "0"), 0, clips, &dir);
    let mut runs = Vec::new();
    for b in [None, Some(&bucket)] {
        for w in [1, 2] {
            runs.push(run(&server, b, (w, &segment_seconds), short, clips, &dir));
        }
    }
    let _ = Command::new(root.join("setup/s3.sh"))
        .arg("stop")
        .arg(&s3_dir)
        .status();
    if own {
        let _ = Command::new(root.join("setup/pg.sh"))
            .arg("stop")
            .arg(&pg_dir)
            .status();
    }
    println!("storage    workers  segment s  long clip s  short jobs s  jobs/s  transactions/job");
    println!(
        "{:<9}  {:>7}  {:>9}  {:>11.1}  {:>12}  {:>6}  {:>16}",
        whole.storage, whole.workers, "none", whole.long_s, "-", "-", "-"
    );
    for r in &runs {
        println!(
            "{:<9}  {:>7}  {:>9}  {:>11.1}  {:>12.1}  {:>6.2}  {:>16.1}",
            r.storage,
            r.workers,
            r.segment_seconds,
            r.long_s,
            r.short_s,
            short as f64 / r.short_s,
            r.tx_per_job
        );
    }
    for pair in runs.chunks(2) {
        println!(
            "{}: 2 workers / 1 worker: long clip wall time {:.2}, short-job throughput {:.2}",
            pair[0].storage,
            pair[1].long_s / pair[0].long_s,
            pair[0].short_s / pair[1].short_s
        );
    }
    println!(
        "directory, 1 worker: long clip in segments / as one task: wall time {:.2}",
        runs[0].long_s / whole.long_s
    );
    println!(
        "bucket / directory, 1 worker: long clip wall time {:.2}, short-job throughput {:.2}",
        runs[2].long_s / runs[0].long_s,
        runs[0].short_s / runs[2].short_s
    );
}
