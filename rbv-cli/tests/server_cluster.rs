// SPDX-License-Identifier: MPL-2.0
// Several `rbv serve` processes as one service: 2 API nodes and 3 worker
// nodes on one PostgreSQL database and one data directory. Jobs in all six
// formats go in through both API nodes; workers of every node take them
// from the store; one worker is killed with SIGKILL in the middle of a job,
// whose lease runs out and which another worker runs again. Every job
// completes, is charged once, and its output has the input's frame count.
//
// Needs PostgreSQL: `RBV_TEST_DATABASE_URL` (setup/test.sh starts a
// throwaway server and sets it); without it the test says so and passes.

use crate::server_crash::call;
use rbv_testkit as common;
use rbv_testkit::serve;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

const RBV: &str = env!("CARGO_BIN_EXE_rbv");
const FRAMES: usize = 40;

/// Who took `job`, run by run (attempt order): (worker process index,
/// worker name), as the workers' logs say.
fn taken_by(workers: &[common::ServeProcess], job: &str) -> Vec<(usize, String)> {
    let field = |l: &str, name: &str| {
        l.split(&format!(" {name}="))
            .nth(1)
            .and_then(|v| v.split(' ').next())
            .unwrap_or("?")
            .to_owned()
    };
    let mut out = Vec::new();
    for (i, w) in workers.iter().enumerate() {
        for l in w.log.lock().unwrap().iter() {
            if l.contains(&format!("job_id={job} ")) && l.contains("to=processing") {
                let attempt: u32 = field(l, "attempt").parse().unwrap_or(0);
                out.push((attempt, i, field(l, "worker")));
            }
        }
    }
    out.sort();
    out.into_iter().map(|(_, i, name)| (i, name)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_api_nodes_three_workers_one_killed() {
    let Ok(server) = std::env::var("RBV_TEST_DATABASE_URL") else {
        eprintln!(
            "SKIPPED: the cluster test needs PostgreSQL: set RBV_TEST_DATABASE_URL \
             (setup/test.sh starts a throwaway server and does)"
        );
        return;
    };
    common::init();
    let dir = common::scratch("serve-cluster");
    let clip = dir.join("clip.webm");
    common::scaled_clip("demo_input.webm", FRAMES, 320, 180, &clip);
    let name = format!("rbv_cluster_{}", std::process::id());
    let db = rbv_server::store::db::create_database(&server, &name).unwrap();
    let data = dir.join("data");
    let key = common::create_key_in(RBV, &["--database", &db], "cluster");

    let node = |role: &str| {
        let mut args = vec![
            "--role",
            role,
            "--database",
            db.as_str(),
            "--lease-seconds",
            "3",
        ];
        if role == "worker" {
            args.extend(["--light-workers", "1", "--heavy-workers", "0"]);
        }
        common::spawn_serve(RBV, &data, &args)
    };
    let mut apis = [node("api"), node("api")];
    let mut workers = vec![node("worker"), node("worker"), node("worker")];
    let http = reqwest::Client::new();

    // A worker node has no API.
    let r = http
        .get(format!("{}/v1/jobs", workers[0].url))
        .header("X-Api-Key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Every node is healthy in its role.
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

    // Uploaded through the first API node; jobs through both.
    let video_url = serve::upload_to(&http, &apis[0].url, &key, &clip).await;
    let bodies = [
        json!({"output_format": "mov"}),
        json!({"output_format": "mp4", "bg_type": "green"}),
        json!({"output_format": "webm", "bg_type": "custom", "bg_color": "#0000FF"}),
        json!({"output_format": "gif"}),
        json!({"output_format": "webp"}),
        json!({"output_format": "png_sequence"}),
        json!({"output_format": "mov", "model": "light"}),
        json!({"output_format": "mov", "bg_type": "white"}),
    ];
    let mut ids = Vec::new();
    for (i, extra) in bodies.iter().enumerate() {
        let mut body = json!({"video_url": video_url, "model": "human"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let api = &apis[i % 2];
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

    // Kill the worker that is part-way through a job.
    let deadline = Instant::now() + Duration::from_secs(120);
    let (victim, killed_job) = 'found: loop {
        for id in &ids {
            let j = call(
                &http,
                &key,
                "GET",
                &format!("{}/v1/jobs/{id}", apis[1].url),
                None,
            )
            .await;
            if j["status"] == "processing"
                && j["progress"].as_f64().unwrap() > 0.0
                && let Some((w, _)) = taken_by(&workers, id).last()
            {
                break 'found (*w, id.clone());
            }
        }
        assert!(Instant::now() < deadline, "no job got under way");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    workers[victim].child.kill().unwrap(); // SIGKILL
    workers[victim].child.wait().unwrap();
    println!("killed worker process {victim} in the middle of {killed_job}");

    let deadline = Instant::now() + Duration::from_secs(300);
    let mut jobs = Vec::new();
    for id in &ids {
        loop {
            let j = call(
                &http,
                &key,
                "GET",
                &format!("{}/v1/jobs/{id}", apis[0].url),
                None,
            )
            .await;
            if j["status"] == "completed" || j["status"] == "failed" {
                jobs.push(j);
                break;
            }
            assert!(Instant::now() < deadline, "job {id} stuck: {j}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
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

    // The outputs, through either API node's signed link: every frame.
    for (i, j) in jobs.iter().enumerate() {
        if j["output_format"] != "mov" {
            continue;
        }
        let url = j["output_url"].as_str().unwrap();
        let bytes = http.get(url).send().await.unwrap().bytes().await.unwrap();
        let path = dir.join(format!("out{i}.mov"));
        std::fs::write(&path, &bytes).unwrap();
        let (frames, ..) = rbv_testkit::serve::decode(&path);
        assert_eq!(frames, FRAMES, "{}", j["id"]);
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
