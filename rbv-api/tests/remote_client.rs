// SPDX-License-Identifier: MPL-2.0
// The `/v1` client core against the fake service over real HTTP on
// 127.0.0.1: the whole job flow, every retry rule, and every failure the
// contract allows, each ending in a clear error.

use rbv_testkit::fake_api;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fake_api::{Behaviour, FakeApi, Fault};
use rbv_api::backoff::RetryPolicy;
use rbv_api::client::Call;
use rbv_api::job::{self, Event, Request, Source};
use rbv_api::{
    ApiKey, Background, Client, Config, Error, ErrorKind, JobSettings, JobStatus, ModelName,
    OutputFormat,
};
use serde_json::json;

const KEY: &str = "rbv_test_key_0123456789SECRET";

fn behaviour() -> Behaviour {
    Behaviour {
        key: KEY.into(),
        output: (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect(),
        polls: 2,
        fail_with: None,
        alt_forms: false,
    }
}

/// A client with quick retries; every call's log line kept.
fn client(api: &str, log: &Arc<Mutex<Vec<String>>>) -> Client {
    let mut config = Config::new(api, ApiKey::new(KEY).unwrap());
    config.retry = RetryPolicy {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(100),
        max_retries: 4,
    };
    config.read_timeout = Duration::from_millis(700);
    let log = log.clone();
    Client::new(config)
        .unwrap()
        .with_log(Arc::new(move |c: &Call| {
            log.lock().unwrap().push(format!("{c:?}"));
        }))
}

fn request(source: Source) -> Request {
    Request {
        source,
        settings: JobSettings {
            model: ModelName::Human,
            text_prompt: Some("person".into()),
            background: Background::Color([0, 255, 0]),
            composition: Some(
                json!({"canvas":{"width":640,"height":360},"foreground":{"anchor":"bottom-center","scale":0.5,"offset":{"x":0,"y":-10}}}),
            ),
            output_format: OutputFormat::Webm,
            webhook_url: None,
        },
        poll_interval: Duration::from_millis(30),
        timeout: Duration::from_secs(20),
    }
}

fn input_file() -> PathBuf {
    let p = std::env::temp_dir()
        .join(format!("rbv-in-{}", fastrand_name()))
        .join("in.mp4");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, vec![7u8; 50_000]).unwrap();
    p
}

struct Outcome {
    result: Result<rbv_api::Job, Error>,
    events: Vec<Event>,
    out: PathBuf,
    log: Vec<String>,
    took: Duration,
}

fn run_job(api: &FakeApi, req: Request) -> Outcome {
    let log = Arc::new(Mutex::new(Vec::new()));
    let c = client(&api.url, &log);
    let out = std::env::temp_dir().join(format!("rbv-out-{}.webm", fastrand_name()));
    let mut events = Vec::new();
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = rt.block_on(job::run(&c, &req, &out, &mut |e| events.push(e)));
    let log = log.lock().unwrap().clone();
    for line in &log {
        assert!(!line.contains("SECRET"), "the key is in a log line: {line}");
    }
    if let Err(e) = &result {
        assert!(
            !format!("{e} {e:?}").contains("SECRET"),
            "the key is in an error"
        );
    }
    Outcome {
        result,
        events,
        out,
        log,
        took: started.elapsed(),
    }
}

fn fastrand_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[test]
fn uploads_creates_starts_polls_and_downloads() {
    let b = behaviour();
    let api = FakeApi::start(b.clone());
    let o = run_job(&api, request(Source::File(input_file())));
    let job = o.result.unwrap();
    assert_eq!(job.status, JobStatus::Completed);
    assert_eq!(
        std::fs::read(&o.out).unwrap(),
        b.output,
        "the output is the service's file"
    );

    // Upload as multipart with the file's name and type.
    assert_eq!(
        api.uploads(),
        [("in.mp4".to_string(), 50_000, "video/mp4".to_string())]
    );
    let create = &api.creates()[0];
    assert_eq!(create.body["auto_start"], false);
    assert!(
        create.body["video_url"]
            .as_str()
            .unwrap()
            .starts_with("https://uploads.example/")
    );
    let start = &api.starts()[0];
    assert_eq!(start.body["model"], "human");
    assert_eq!(start.body["text_prompt"], "person");
    assert_eq!(
        start.body["background"],
        json!({"type":"color","color":[0.0,1.0,0.0]})
    );
    assert_eq!(
        start.body["composition"]["foreground"]["anchor"],
        "bottom-center"
    );
    // The key goes with every API call and never with the output link.
    for s in &api.seen() {
        if s.path.starts_with("/v1/") {
            assert_eq!(s.key.as_deref(), Some(KEY), "{}", s.path);
        } else {
            assert_eq!(s.key, None, "the key went to {}", s.path);
        }
    }
    // Progress was reported, rising, and every call was logged with its request id.
    let progress: Vec<f64> = o
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Polled { progress, .. } => Some(*progress),
            _ => None,
        })
        .collect();
    assert_eq!(progress.len(), 3, "{:?}", o.events);
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]) && progress[2] == 100.0,
        "{progress:?}"
    );
    assert!(matches!(
        o.events.last(),
        Some(Event::Downloaded { bytes: 200_000, .. })
    ));
    assert!(
        o.log
            .iter()
            .filter(|l| l.contains("/v1/"))
            .all(|l| l.contains("request_id: Some(\"req_")),
        "{:#?}",
        o.log
    );
    assert!(
        o.log
            .iter()
            .filter(|l| l.contains("/v1/jobs/job_"))
            .all(|l| l.contains("job_id: Some(\"job_"))
    );
}

#[test]
fn reads_the_other_documented_forms() {
    let api = FakeApi::start(Behaviour {
        alt_forms: true,
        ..behaviour()
    });
    let o = run_job(
        &api,
        request(Source::Url("https://cdn.example/in.mp4".into())),
    );
    assert_eq!(o.result.unwrap().status, JobStatus::Completed);
    assert!(
        api.uploads().is_empty(),
        "a URL is passed as video_url, not uploaded"
    );
    let create = &api.creates()[0];
    assert_eq!(create.body["video_url"], "https://cdn.example/in.mp4");
    assert!(
        o.events
            .iter()
            .any(|e| matches!(e, Event::Created { job_id, .. } if job_id.starts_with("job_")))
    );
}

#[test]
fn a_failed_job_says_why() {
    let api = FakeApi::start(Behaviour {
        fail_with: Some("could not decode the video".into()),
        ..behaviour()
    });
    let o = run_job(&api, request(Source::File(input_file())));
    let e = o.result.unwrap_err();
    assert!(
        matches!(&e, Error::JobFailed { message, .. } if message == "could not decode the video"),
        "{e:?}"
    );
    assert_eq!(e.kind(), ErrorKind::Api);
    assert!(e.to_string().contains("job job_"), "{e}");
    assert!(!o.out.exists());
}

#[test]
fn rate_limited_waits_as_told() {
    let api = FakeApi::start(behaviour());
    api.fault("create", &[Fault::RateLimited(1)]);
    let o = run_job(
        &api,
        request(Source::Url("https://cdn.example/a.mp4".into())),
    );
    assert!(o.result.is_ok(), "{:?}", o.result);
    assert_eq!(api.creates().len(), 2);
    assert!(
        o.took >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured ({:?})",
        o.took
    );
    assert!(
        o.log
            .iter()
            .any(|l| l.contains("status: Some(429)") && l.contains("retry in 1.0 s")),
        "{:#?}",
        o.log
    );
}

#[test]
fn server_faults_are_retried() {
    let api = FakeApi::start(behaviour());
    api.fault("get", &[Fault::Status(503), Fault::Status(503)]);
    api.fault("start", &[Fault::Status(502)]);
    api.fault("upload", &[Fault::Status(500)]);
    let o = run_job(&api, request(Source::File(input_file())));
    assert!(o.result.is_ok(), "{:?}", o.result);
    assert_eq!(
        api.uploads().len(),
        1,
        "the retried upload sent the file again, once stored"
    );
    assert_eq!(
        o.log.iter().filter(|l| l.contains("retry in")).count(),
        4,
        "{:#?}",
        o.log
    );
}

#[test]
fn unauthorised_is_not_retried() {
    let api = FakeApi::start(Behaviour {
        key: "another-key-entirely-0000".into(),
        ..behaviour()
    });
    let o = run_job(
        &api,
        request(Source::Url("https://cdn.example/a.mp4".into())),
    );
    let e = o.result.unwrap_err();
    assert!(
        matches!(&e, Error::Api { status: 401, code, .. } if code == "invalid_api_key"),
        "{e:?}"
    );
    assert_eq!(api.requests(), 1, "401 must not be retried");
    assert!(
        e.to_string().contains("Invalid API key") && e.to_string().contains("request req_"),
        "{e}"
    );
}

#[test]
fn out_of_credits_is_an_api_error() {
    let api = FakeApi::start(behaviour());
    api.fault("start", &[Fault::Status(402)]);
    let o = run_job(
        &api,
        request(Source::Url("https://cdn.example/a.mp4".into())),
    );
    let e = o.result.unwrap_err();
    assert_eq!(e.code(), "insufficient_credits");
    assert!(e.job_id().is_some_and(|j| j.starts_with("job_")), "{e:?}");
    assert_eq!(api.starts().len(), 1);
}

#[test]
fn malformed_json_is_named() {
    let api = FakeApi::start(behaviour());
    api.fault("get", &[Fault::Malformed]);
    let o = run_job(
        &api,
        request(Source::Url("https://cdn.example/a.mp4".into())),
    );
    let e = o.result.unwrap_err();
    assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
    assert!(
        e.to_string().contains("not JSON") && e.to_string().contains("/v1/jobs/job_"),
        "{e}"
    );
}

#[test]
fn connection_refused_fails_quickly_and_clearly() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let c = client(&format!("http://127.0.0.1:{port}"), &log);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let e = rt
        .block_on(job::run(
            &c,
            &request(Source::Url("https://x/a.mp4".into())),
            &std::env::temp_dir().join("rbv-never.webm"),
            &mut |_| {},
        ))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network, "{e:?}");
    assert!(e.to_string().contains("cannot connect"), "{e}");
    assert_eq!(log.lock().unwrap().len(), 5, "first try and 4 retries");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_silent_server_times_out() {
    let api = FakeApi::start(behaviour());
    api.fault("get", &vec![Fault::Stall(Duration::from_secs(3)); 20]);
    let mut req = request(Source::Url("https://cdn.example/a.mp4".into()));
    req.timeout = Duration::from_secs(2);
    let o = run_job(&api, req);
    let e = o.result.unwrap_err();
    // The job's own deadline ends it, named as a timeout: without it, the
    // stalled polls would run out of retries (5 x 0.7 s read timeouts, a
    // network error after some 3.7 s).
    assert!(
        matches!(
            &e,
            Error::Timeout {
                job_id: Some(_),
                ..
            }
        ),
        "{e:?} after {:?}",
        o.took
    );
    // Not before its time, and not long after: a second of slack for a busy
    // machine (the deadline cuts the call in flight at once).
    assert!(
        o.took >= Duration::from_secs(2) && o.took < Duration::from_secs(3),
        "took {:?}",
        o.took
    );
    assert!(e.to_string().contains("job job_"), "{e}");
}

#[test]
fn an_expired_link_is_fetched_afresh() {
    let b = behaviour();
    let api = FakeApi::start(b.clone());
    api.fault("download", &[Fault::Expired]);
    let o = run_job(
        &api,
        request(Source::Url("https://cdn.example/a.mp4".into())),
    );
    assert!(o.result.is_ok(), "{:?}", o.result);
    assert_eq!(std::fs::read(&o.out).unwrap(), b.output);
    let downloads: Vec<_> = api
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with("/files/"))
        .collect();
    assert_eq!(downloads.len(), 2);
    assert_ne!(
        downloads[0].body["sig"], downloads[1].body["sig"],
        "the second try used a fresh link"
    );
}

#[test]
fn a_truncated_download_is_retried_then_refused() {
    let b = behaviour();
    let api = FakeApi::start(b.clone());
    api.fault("download", &[Fault::Truncate]);
    let o = run_job(
        &api,
        request(Source::Url("https://cdn.example/a.mp4".into())),
    );
    assert!(o.result.is_ok(), "{:?}", o.result);
    assert_eq!(std::fs::read(&o.out).unwrap(), b.output);

    let api = FakeApi::start(b);
    api.fault("download", &vec![Fault::Truncate; 4]);
    let o = run_job(
        &api,
        request(Source::Url("https://cdn.example/a.mp4".into())),
    );
    let e = o.result.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network);
    assert!(e.to_string().starts_with("output download"), "{e}");
    assert!(
        !o.out.exists() && !o.out.with_extension("part").exists(),
        "no partial file left"
    );
}

/// A listener on another host of the loopback (127.0.0.2) that records the
/// head (request line and headers) of every request it gets and answers 200.
fn header_recorder() -> (String, Arc<Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let url = format!("http://{}/steal", listener.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let kept = heads.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut head = String::new();
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            while reader.read_line(&mut head).is_ok_and(|n| n > 2) {}
            kept.lock().unwrap().push(head);
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
        }
    });
    (url, heads)
}

#[test]
fn a_redirect_elsewhere_does_not_take_the_key() {
    let (elsewhere, heads) = header_recorder();
    let api = FakeApi::start(behaviour());
    api.fault("create", &[Fault::RedirectTo(elsewhere.clone())]);
    let o = run_job(
        &api,
        request(Source::Url("https://cdn.example/a.mp4".into())),
    );
    // The other host heard nothing, so no key went there.
    let seen = heads.lock().unwrap().clone();
    assert!(
        seen.is_empty(),
        "the redirect was followed to {elsewhere}: {seen:?}"
    );
    let e = o.result.unwrap_err();
    assert!(e.to_string().contains("redirect to another host"), "{e}");
    // The recorder does hear what reaches it (the check above can fail).
    use std::io::{Read, Write};
    let addr = elsewhere
        .trim_start_matches("http://")
        .trim_end_matches("/steal");
    let mut probe = std::net::TcpStream::connect(addr).unwrap();
    probe
        .write_all(b"GET /steal HTTP/1.1\r\nHost: probe\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    probe.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(heads.lock().unwrap()[0].starts_with("GET /steal"));
}

#[test]
fn other_calls() {
    let api = FakeApi::start(behaviour());
    let log = Arc::new(Mutex::new(Vec::new()));
    let c = client(&api.url, &log);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (job, _) = c
            .create(&json!({"video_url":"https://x/a.mp4"}))
            .await
            .unwrap();
        let list = c.list(20, 0, Some("processing")).await.unwrap();
        assert_eq!(list["items"][0]["id"], job.id.as_str());
        assert_eq!(c.usage_summary(7).await.unwrap()["credits_used"], 45);
        let e = c.get("job_nope").await.unwrap_err();
        assert!(matches!(&e, Error::Api { status: 404, .. }), "{e:?}");
    });
    assert!(api.seen().iter().any(|s| s.body["status"] == "processing"));
}
