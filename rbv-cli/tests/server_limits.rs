// SPDX-License-Identifier: MPL-2.0
// `rbv serve` from its binary under the conditions of issue 20: a process
// with 512 open files and 600 idle or half-sent connections still answers
// `/health`; a 16000x16000 VP8 bomb (made here with ffmpeg) costs the
// server kilobytes, uploaded or fetched, with its memory measured.

use rbv_testkit as common;

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const RBV: &str = env!("CARGO_BIN_EXE_rbv");

/// `rbv serve` with at most 512 open files; returns it and its URL.
fn serve_with_512_files(data: &Path, args: &[&str]) -> (Child, String) {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 512 && exec \"$0\" serve --listen 127.0.0.1:0 --data-dir \"$@\"")
        .arg(RBV)
        .arg(data)
        .args(args)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(url) = line.split(" url=").nth(1) {
                let _ = tx.send(url.split(' ').next().unwrap().to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("rbv serve says where it listens");
    (child, url)
}

fn status_line(url: &str, path: &str, timeout: Duration) -> Result<String, String> {
    let addr = url.trim_start_matches("http://");
    let mut s =
        TcpStream::connect_timeout(&addr.parse().unwrap(), timeout).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout)).unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out.lines().next().unwrap_or("").to_owned())
}

fn kib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn six_hundred_idle_connections_do_not_stop_health() {
    let dir = common::scratch("serve-conns");
    let (mut child, url) = serve_with_512_files(&dir.join("data"), &[]);
    let addr: std::net::SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    let mut held = Vec::new();
    for i in 0..600 {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
        if i % 2 == 1 {
            // Half-sent headers.
            let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n");
        }
        held.push(s);
    }
    let t = Instant::now();
    for _ in 0..5 {
        let line = status_line(&url, "/health", Duration::from_secs(3))
            .unwrap_or_else(|e| panic!("/health with 600 idle connections: {e}"));
        assert!(line.contains("200"), "{line}");
    }
    let each = t.elapsed().as_secs_f64() / 5.0 * 1000.0;
    println!("/health with 600 idle connections open, 512 files: {each:.1} ms per answer");
    assert!(each < 1000.0);
    drop(held);
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decoded_size_bomb_costs_the_server_kilobytes() {
    common::init();
    let dir = common::scratch("serve-bomb");
    let bomb = common::vp8_bomb(&dir);
    let warm = dir.join("warm.webm");
    common::scaled_clip("demo_input.webm", 4, 160, 90, &warm);
    // The bomb and the warm-up clip, served from 127.0.0.1.
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
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/files", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let data = dir.join("data");
    let key = common::create_key(RBV, &data, "bomb");
    let (mut child, url) = serve_with_512_files(
        &data,
        &["--max-upload-mb", "5", "--allow-private-urls", "127.0.0.1"],
    );
    let pid = child.id();
    let http = reqwest::Client::new();
    let get = |id: String| {
        let (http, url, key) = (http.clone(), url.clone(), key.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let r = http
                    .get(format!("{url}/v1/jobs/{id}"))
                    .header("X-Api-Key", &key)
                    .send()
                    .await
                    .unwrap();
                let j: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
                if j["status"] == "completed" || j["status"] == "failed" {
                    return j;
                }
                assert!(Instant::now() < deadline, "{j}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let create = |video_url: String| {
        let (http, url, key) = (http.clone(), url.clone(), key.clone());
        async move {
            let r = http
                .post(format!("{url}/v1/jobs"))
                .header("X-Api-Key", &key)
                .header("Content-Type", "application/json")
                .body(
                    json!({"video_url": video_url, "model": "human", "output_format": "mov"})
                        .to_string(),
                )
                .send()
                .await
                .unwrap();
            let v: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
            v["id"].as_str().unwrap().to_owned()
        }
    };
    let idle = kib(pid, "VmRSS:") / 1024.0;
    // Upload: refused from the packets.
    let part =
        reqwest::multipart::Part::bytes(std::fs::read(&bomb).unwrap()).file_name("bomb.webm");
    let r = http
        .post(format!("{url}/v1/uploads"))
        .header("X-Api-Key", &key)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let after_upload = kib(pid, "VmHWM:") / 1024.0;
    // A first real job loads the model (what every server does once).
    let j = get(create(format!("{base}/warm.webm")).await).await;
    assert_eq!(j["status"], "completed", "{j}");
    let warm_rss = kib(pid, "VmRSS:") / 1024.0;
    let warm_peak = kib(pid, "VmHWM:") / 1024.0;
    // By video_url: refused from the caps before decoding.
    let j = get(create(format!("{base}/bomb.webm")).await).await;
    assert_eq!(j["status"], "failed", "{j}");
    assert!(j["error"].as_str().unwrap().contains("16000x16000"), "{j}");
    let bomb_peak = kib(pid, "VmHWM:") / 1024.0;
    println!(
        "server memory: idle {idle:.1} MiB; peak after the 16000x16000 upload {after_upload:.1} MiB ({:+.1} over idle); \
         after a real job {warm_rss:.1} MiB (peak {warm_peak:.1}); peak after the bomb by video_url {bomb_peak:.1} MiB ({:+.1} over the warm peak)",
        after_upload - idle,
        bomb_peak - warm_peak
    );
    assert!(after_upload - idle < 200.0);
    assert!(bomb_peak - warm_peak < 200.0);
    let _ = child.kill();
    let _ = child.wait();
}
