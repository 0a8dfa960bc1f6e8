// SPDX-License-Identifier: MPL-2.0
//! `rbv serve` in the test process on 127.0.0.1 (a real server: SQLite on
//! disk, real workers running rbvremove), and a small client for its API.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rbv_server::{self as server, Config, Server};
use serde_json::Value;

pub struct Srv {
    pub server: Server,
    pub url: String,
    pub key: String,
    pub dir: PathBuf,
    pub http: reqwest::Client,
}

/// A server on a free port with its data in `dir`, one key made.
pub async fn start(dir: &Path, tweak: impl FnOnce(&mut Config)) -> Srv {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        webhook_retry_delay: Duration::from_millis(100),
        // The tests' file servers and webhook receivers are on 127.0.0.1.
        allow_private: vec!["127.0.0.0/8".parse().unwrap()],
        ..Config::default()
    };
    // The suite runs on PostgreSQL too: a new database per data directory
    // (its name kept in the directory), so a server started again on the
    // same directory finds its store.
    if let Ok(url) = std::env::var("RBV_TEST_DATABASE_URL") {
        std::fs::create_dir_all(dir).unwrap();
        let marker = dir.join("postgres-database");
        let name = std::fs::read_to_string(&marker).unwrap_or_else(|_| {
            let name = format!("rbv_test_{}", server::crypto::random_hex(8));
            std::fs::write(&marker, &name).unwrap();
            name
        });
        config.database = Some(server::store::db::create_database(&url, &name).unwrap());
    }
    // And with its files in an S3 bucket (`RBV_TEST_S3_ENDPOINT`, the
    // credentials in `AWS_*`; setup/test.sh runs SeaweedFS): a prefix of its
    // own per data directory, kept there as the database name is.
    if let Ok(endpoint) = std::env::var("RBV_TEST_S3_ENDPOINT") {
        std::fs::create_dir_all(dir).unwrap();
        let marker = dir.join("s3-prefix");
        let prefix = std::fs::read_to_string(&marker).unwrap_or_else(|_| {
            let p = format!("test-{}", server::crypto::random_hex(8));
            std::fs::write(&marker, &p).unwrap();
            p
        });
        config.storage =
            server::storage::Spec::parse(&format!("s3://rbv/{prefix}"), Some(endpoint)).unwrap();
    }
    tweak(&mut config);
    let on_postgres = config.database.is_some();
    let server = server::start(config).await.expect("the server starts");
    assert_eq!(
        server.app.store.dialect() == server::store::db::Dialect::Postgres,
        on_postgres,
        "the store the suite asked for"
    );
    let (_, key) = server.app.store.create_key("test", None).unwrap();
    Srv {
        url: format!("http://{}", server.addr),
        server,
        key,
        dir: dir.to_path_buf(),
        http: reqwest::Client::new(),
    }
}

impl Srv {
    /// The uploads (`uploads: true`) or outputs the server keeps, by name,
    /// wherever its storage is; uploads being received too.
    pub async fn kept(&self, uploads: bool) -> Vec<String> {
        let app = &self.server.app;
        let mut names = app.storage.list(uploads).await.unwrap();
        if uploads && !app.storage.is_local() {
            let spool = app.uploads_dir();
            for e in std::fs::read_dir(&spool).unwrap() {
                names.push(e.unwrap().file_name().to_string_lossy().into_owned());
            }
            names.sort();
        }
        names
    }
}

pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let bytes = r.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON ({status}): {}", String::from_utf8_lossy(&bytes)));
    Answer {
        status,
        body,
        headers,
    }
}

impl Srv {
    pub async fn get(&self, key: Option<&str>, path: &str) -> Answer {
        let mut r = self.http.get(format!("{}{path}", self.url));
        if let Some(k) = key {
            r = r.header("X-Api-Key", k);
        }
        answer(r.send().await.unwrap()).await
    }

    pub async fn post(&self, key: Option<&str>, path: &str, body: &str) -> Answer {
        let mut r = self
            .http
            .post(format!("{}{path}", self.url))
            .header("Content-Type", "application/json")
            .body(body.to_owned());
        if let Some(k) = key {
            r = r.header("X-Api-Key", k);
        }
        answer(r.send().await.unwrap()).await
    }

    /// `POST /v1/jobs` with `body`.
    pub async fn create(&self, key: &str, body: Value) -> Answer {
        self.post(Some(key), "/v1/jobs", &body.to_string()).await
    }

    pub async fn upload(&self, key: &str, file: &Path, name: &str) -> Answer {
        let bytes = std::fs::read(file).unwrap();
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(name.to_owned())
            .mime_str("video/webm")
            .unwrap();
        let form = reqwest::multipart::Form::new().part("file", part);
        let r = self
            .http
            .post(format!("{}/v1/uploads", self.url))
            .header("X-Api-Key", key)
            .multipart(form)
            .send()
            .await
            .unwrap();
        answer(r).await
    }

    /// Polls a job until it is completed or failed; also returns the
    /// progress values seen on the way.
    pub async fn wait(&self, key: &str, id: &str, timeout: Duration) -> (Value, Vec<f64>) {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let a = self.get(Some(key), &format!("/v1/jobs/{id}")).await;
            assert_eq!(a.status, 200, "{}", a.body);
            let status = a.body["status"].as_str().unwrap().to_owned();
            seen.push(a.body["progress"].as_f64().unwrap());
            if status == "completed" || status == "failed" {
                return (a.body, seen);
            }
            assert!(Instant::now() < deadline, "job {id} still {status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn download(&self, url: &str) -> (u16, Vec<u8>) {
        let r = self.http.get(url).send().await.unwrap();
        (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
    }
}

/// `POST /v1/uploads` of `file` to the server at `url` with `key` (any
/// `rbv serve`, in this process or not); returns the upload's `video_url`.
pub async fn upload_to(http: &reqwest::Client, url: &str, key: &str, file: &Path) -> String {
    let part = reqwest::multipart::Part::bytes(std::fs::read(file).unwrap()).file_name("clip.webm");
    let r = http
        .post(format!("{url}/v1/uploads"))
        .header("X-Api-Key", key)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    let bytes = r.bytes().await.unwrap();
    let v: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
    v["video_url"]
        .as_str()
        .unwrap_or_else(|| panic!("not uploaded: {v}"))
        .to_owned()
}

/// Frames and size of a video file, decoded by GStreamer into RGBA.
pub fn decode(path: &Path) -> (usize, u32, u32, Vec<Vec<u8>>) {
    let mut frames = Vec::new();
    let mut size = (0, 0);
    crate::for_each_sample(
        &format!(
            "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=RGBA ! \
             appsink name=sink sync=false",
            path.display()
        ),
        |s| {
            let info = gst_video::VideoInfo::from_caps(s.caps().unwrap()).unwrap();
            size = (info.width(), info.height());
            frames.push(s.buffer().unwrap().map_readable().unwrap().to_vec());
            true
        },
    );
    (frames.len(), size.0, size.1, frames)
}

/// The deliveries a webhook receiver got: headers, body, the status it
/// answered.
pub type Deliveries = std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, String, u16)>>>;

/// A webhook receiver on 127.0.0.1 (its URL, what it got); it answers each
/// delivery with `status(event, deliveries of that event before it)`.
pub async fn webhook_receiver(status: fn(&str, usize) -> u16) -> (String, Deliveries) {
    use axum::routing::post;
    let got: Deliveries = Default::default();
    let kept = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let kept = kept.clone();
            async move {
                let mut v = kept.lock().unwrap();
                let event = headers["x-webhook-event"].to_str().unwrap_or("").to_owned();
                let before = v
                    .iter()
                    .filter(|g| g.0["x-webhook-event"] == event.as_str())
                    .count();
                let code = status(&event, before);
                v.push((headers, body, code));
                axum::http::StatusCode::from_u16(code).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}
