// SPDX-License-Identifier: MPL-2.0
//! Load and soak for `rbv serve`: many concurrent clients on 127.0.0.1
//! submit short jobs (a 6-frame 160x90 clip: human to mov, light to mp4 on
//! green, human to a png zip) and poll them to the end. Prints throughput,
//! p50/p95 time from submit to completed, the server's p50/p95 processing
//! time per model from /metrics, the server's RSS at intervals, and checks
//! that no job was lost, failed or left stuck.
//!
//! Run: `cargo bench --features server --bench server_load`
//! (RBV_SERVER_JOBS, default 200; RBV_SERVER_CLIENTS, default 16;
//! RBV_SERVER_JOBS=1000 is the soak run). A job not completed or failed
//! RBV_SERVER_JOB_DEADLINE seconds (default 120) after its submission is
//! given up on and counted lost. Exits non-zero when a job was lost or
//! stuck. RSS is compared with its value once a fifth of the jobs
//! are done (warm-up: every model loaded).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use rbv_testkit as common;
use rbv_testkit::env_or as env;

const RBV: &str = env!("CARGO_BIN_EXE_rbv");

fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value, Option<u64>) {
    let r = req.send().await.expect("the server answers");
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null);
    (status, body, retry)
}

fn main() {
    common::init();
    let jobs = env("RBV_SERVER_JOBS", 200);
    let clients = env("RBV_SERVER_CLIENTS", 16);
    let job_deadline = Duration::from_secs_f64(
        std::env::var("RBV_SERVER_JOB_DEADLINE")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(120.0),
    );
    let dir = common::scratch("server-load");
    let clip = dir.join("clip.webm");
    common::scaled_clip("demo_input.webm", 6, 160, 90, &clip);
    let data = dir.join("data");
    let key = common::create_key(RBV, &data, "load");
    let serve = common::spawn_serve(
        RBV,
        &data,
        &[
            "--rate-limit",
            "0",
            "--queue-size",
            "32",
            "--light-workers",
            "2",
            "--heavy-workers",
            "1",
            "--metrics-public",
        ],
    );
    let url = serve.url.clone();
    let pid = serve.child.id();
    println!(
        "rbv serve (pid {pid}) at {url}: {jobs} jobs from {clients} clients, 2 light + 1 heavy workers, \
         {job_deadline:?} a job"
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let outcome = rt.block_on(async {
        let http = reqwest::Client::new();
        let part = reqwest::multipart::Part::bytes(std::fs::read(&clip).unwrap()).file_name("clip.webm");
        let (_, up, _) = send(
            http.post(format!("{url}/v1/uploads"))
                .header("X-Api-Key", &key)
                .multipart(reqwest::multipart::Form::new().part("file", part)),
        )
        .await;
        let video_url = up["video_url"].as_str().expect("uploaded").to_owned();
        let next = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (http, url, key, video_url) = (http.clone(), url.clone(), key.clone(), video_url.clone());
            let (next, done, refused) = (next.clone(), done.clone(), refused.clone());
            tasks.push(tokio::spawn(async move {
                let mut results = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= jobs {
                        return results;
                    }
                    let body = match i % 10 {
                        0..=6 => json!({"video_url": video_url, "model": "human", "output_format": "mov"}),
                        7 | 8 => json!({"video_url": video_url, "model": "light", "output_format": "mp4", "bg_type": "green"}),
                        _ => json!({"video_url": video_url, "model": "human", "output_format": "png_sequence"}),
                    };
                    let submitted = Instant::now();
                    let deadline = submitted + job_deadline;
                    let id = loop {
                        if Instant::now() > deadline {
                            break None;
                        }
                        let (status, v, retry) = send(
                            http.post(format!("{url}/v1/jobs")).header("X-Api-Key", &key)
                                .header("Content-Type", "application/json").body(body.to_string()),
                        )
                        .await;
                        match status {
                            200 => break Some(v["id"].as_str().unwrap().to_owned()),
                            429 => {
                                refused.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_secs(retry.unwrap_or(1).min(2))).await;
                            }
                            s => panic!("create answered {s}: {v}"),
                        }
                    };
                    // Polled until it ends or its deadline passes (then it
                    // is stuck, and counted lost).
                    let Some(id) = id else {
                        done.fetch_add(1, Ordering::Relaxed);
                        results.push((format!("job {i}"), "never accepted".to_owned(), submitted.elapsed().as_secs_f64()));
                        continue;
                    };
                    let status = loop {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        let (_, v, _) = send(http.get(format!("{url}/v1/jobs/{id}")).header("X-Api-Key", &key)).await;
                        let s = v["status"].as_str().unwrap_or("").to_owned();
                        if s == "completed" || s == "failed" {
                            break s;
                        }
                        if Instant::now() > deadline {
                            break format!("still {s} after {job_deadline:?}");
                        }
                    };
                    done.fetch_add(1, Ordering::Relaxed);
                    results.push((id, status, submitted.elapsed().as_secs_f64()));
                }
            }));
        }
        // RSS every tenth of the jobs.
        let mut rss = Vec::new();
        let mut mark = 0;
        while done.load(Ordering::Relaxed) < jobs {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let d = done.load(Ordering::Relaxed);
            if d >= mark {
                let r = common::rss_mib(Some(pid));
                println!("  {d:>5}/{jobs} jobs done  {:>6.1} s  server RSS {r:.1} MiB", start.elapsed().as_secs_f64());
                rss.push((d, r));
                mark = d + jobs.div_ceil(10);
            }
        }
        let mut results = Vec::new();
        for t in tasks {
            results.extend(t.await.unwrap());
        }
        let wall = start.elapsed().as_secs_f64();
        rss.push((jobs, common::rss_mib(Some(pid))));
        let metrics = http.get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
        let (_, stuck_p, _) = send(http.get(format!("{url}/v1/jobs?status=processing&limit=1")).header("X-Api-Key", &key)).await;
        let (_, stuck_q, _) = send(http.get(format!("{url}/v1/jobs?status=pending&limit=1")).header("X-Api-Key", &key)).await;
        let (_, all, _) = send(http.get(format!("{url}/v1/jobs?limit=1")).header("X-Api-Key", &key)).await;
        (results, wall, rss, metrics, refused.load(Ordering::Relaxed), stuck_p["total"].as_i64().unwrap_or(-1) + stuck_q["total"].as_i64().unwrap_or(-1), all["total"].as_i64().unwrap_or(-1))
    });
    let (results, wall, rss, metrics, refused, stuck, stored) = outcome;
    drop(serve); // killed and waited for

    let completed = results.iter().filter(|r| r.1 == "completed").count();
    let failed = results.iter().filter(|r| r.1 == "failed").count();
    // Past their deadline (stuck) or never accepted.
    let lost = jobs - completed - failed;
    for (id, status, _) in results
        .iter()
        .filter(|r| r.1 != "completed" && r.1 != "failed")
    {
        eprintln!("lost: {id}: {status}");
    }
    let mut latency: Vec<f64> = results
        .iter()
        .filter(|r| r.1 == "completed")
        .map(|r| r.2)
        .collect();
    println!();
    println!(
        "jobs {jobs}: completed {completed}, failed {failed}, lost {lost}, stuck {stuck}, in the store {stored}"
    );
    println!(
        "throughput {:.2} jobs/s ({:.1} s wall), 429 answers {refused}",
        results.len() as f64 / wall,
        wall
    );
    println!(
        "submit -> completed: p50 {:.2} s, p95 {:.2} s",
        quantile(&mut latency, 0.5),
        quantile(&mut latency, 0.95)
    );
    for l in metrics
        .lines()
        .filter(|l| l.starts_with("rbv_job_processing_seconds{"))
    {
        println!("server {l}");
    }
    let warm = rss
        .iter()
        .find(|(d, _)| *d >= jobs / 5)
        .map_or(0.0, |r| r.1);
    let last = rss.last().map_or(0.0, |r| r.1);
    let max = rss.iter().map(|r| r.1).fold(0.0, f64::max);
    println!(
        "server RSS after warm-up {warm:.1} MiB, at the end {last:.1} MiB, max {max:.1} MiB, change {:+.1}%",
        100.0 * (last - warm) / warm.max(1.0)
    );
    if lost > 0 || stuck != 0 || failed > 0 || stored != jobs as i64 {
        eprintln!("FAILED: a job was lost, failed or stuck");
        std::process::exit(1);
    }
}
