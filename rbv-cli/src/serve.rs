// SPDX-License-Identifier: MPL-2.0
//! `rbv serve` and `rbv keys`: the /v1 job API on this machine.

use crate::Fail;
use rbv_server::{self as server, Config};
use std::time::Duration;

const USAGE: &str = "\
usage:
  rbv serve [options]                 the /v1 job API on this machine
  rbv keys create [--name N] [--credits C] [--data-dir DIR | --database URL]
                                      prints a new key once
  rbv keys list [--data-dir DIR | --database URL]
  rbv keys revoke KEY_ID [--data-dir DIR | --database URL]

serve options (defaults in brackets):
  --listen ADDR            [127.0.0.1:8080]
  --data-dir DIR           database, uploads, outputs, runs [$RBV_DATA_DIR or ./rbv-data]
  --database URL           the store on PostgreSQL (postgres://user@host:5432/db)
                           instead of SQLite in the data directory
                           [$RBV_DATABASE_URL, which keeps a password off the
                           command line]
  --storage WHERE          where uploads and outputs are kept: local (the data
                           directory) or s3://BUCKET/PREFIX, which every node of
                           a cluster reaches; credentials and region the usual
                           AWS way (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
                           AWS_REGION) [$RBV_STORAGE or local]
  --s3-endpoint URL        the S3 endpoint of MinIO, SeaweedFS, Ceph... [AWS's,
                           or $AWS_ENDPOINT_URL]
  --public-url URL         base of the links handed out [http://ADDR]
  --role ROLE              all: API and workers; api: the API only; worker: jobs
                           only (and /health, /metrics). api and worker need
                           --database: the nodes share it [all]
  --lease-seconds S        a worker's claim on a job lasts this long unless
                           renewed; a job whose node stopped is taken again
                           after it [30]
  --pools POOLS            the pools this node runs jobs of: heavy (pro,
                           original), light (human, light), or heavy,light: a
                           GPU node `--pools heavy`, CPU nodes `--pools light`
                           [heavy,light]
  --heavy-workers N        workers for pro and original [1]
  --light-workers N        workers for light and human [1]
  --queue-size N           jobs waiting per pool before 429 [100]
  --rate-limit N           requests per minute per key, 0 = none [600]
  --link-ttl SECONDS       lifetime of output links [86400]
  --max-upload-mb N        largest upload, and largest video_url or background
                           image fetched [500]
  --upload-quota-mb N      uploads one key may keep, 0 = none [5000]
  --retention-hours N      uploads and outputs are deleted after this, 0 = kept [168]
  --job-timeout SECONDS    one deadline per job: download, processing, encoding [3600]
  --max-pixels N           largest input frame, width x height, checked before
                           decoding [8847360, 4096x2160]
  --max-frames N           most frames in an input [216000]
  --max-duration SECONDS   longest input [3600]
  --max-image-pixels N     largest background image [16777216, 4096x4096]
  --max-canvas-pixels N    largest composition canvas [8847360]
  --max-attempts N         runs of a job a stop interrupted before it fails [3]
  --segment-seconds S      an uploaded video longer than this is cut into
                           segments any worker takes, then joined; 0 = never [60]
  --webhook-retry-delay S  seconds between webhook retries [10]
  --allow-private-urls NETS  networks video_url, background images and webhooks
                           may reach besides public addresses: `all` or
                           10.0.0.0/8,127.0.0.1 [none]
  --header-timeout S       a request's headers must arrive within this [10]
  --body-timeout S         longest pause in a request body [30]
  --keep-alive-timeout S   an idle kept-alive connection closes after this [15]
  --max-connections N      open connections; the one idle longest is closed to
                           make room [512, at most the open-file limit less 64]
  --metrics-public         /metrics to anyone (else only with $RBV_METRICS_TOKEN
                           as a Bearer token, or not at all)
The webhook signing secret comes from $RBV_WEBHOOK_SECRET, the metrics token
from $RBV_METRICS_TOKEN and the token of the /v1/admin routes (off without it,
at least 16 characters) from $RBV_ADMIN_TOKEN (not options: a command line is
visible to other users).";

fn bad(e: impl std::fmt::Display) -> Fail {
    Fail::Input(format!("{e}\n\n{USAGE}"))
}

fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, Fail> {
    v.parse()
        .map_err(|_| Fail::Input(format!("--{name} {v}: not a valid number")))
}

/// Seconds, at least 0.1.
fn secs(name: &str, v: &str) -> Result<Duration, Fail> {
    let s: f64 = num(name, v)?;
    if !(0.1..=86_400.0).contains(&s) {
        return Err(Fail::Input(format!(
            "--{name} {v}: between 0.1 and 86400 seconds"
        )));
    }
    Ok(Duration::from_secs_f64(s))
}

pub fn main(args: Vec<String>) -> Result<(), Fail> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let mut words = Vec::new();
    let mut config = Config::default();
    if let Ok(d) = std::env::var("RBV_DATA_DIR") {
        config.data_dir = d.into();
    }
    config.webhook_secret = std::env::var("RBV_WEBHOOK_SECRET")
        .ok()
        .filter(|s| !s.is_empty());
    config.metrics_token = std::env::var("RBV_METRICS_TOKEN")
        .ok()
        .filter(|s| !s.is_empty());
    config.database = std::env::var("RBV_DATABASE_URL")
        .ok()
        .filter(|s| !s.is_empty());
    config.admin_token = std::env::var(server::admin::TOKEN_ENV)
        .ok()
        .filter(|s| !s.is_empty());
    let mut storage = std::env::var("RBV_STORAGE").ok().filter(|s| !s.is_empty());
    let mut s3_endpoint = None;
    let (mut pools, mut heavy, mut light) = (None, None, None);
    let mut name = "default".to_string();
    let mut credits = None;
    while let Some(arg) = parser.next().map_err(bad)? {
        match arg {
            Short('h') | Long("help") => {
                crate::say(USAGE);
                return Ok(());
            }
            Value(v) => words.push(v.string().map_err(bad)?),
            Long("metrics-public") => config.metrics_public = true,
            Long(opt) => {
                let opt = opt.to_owned();
                let v = parser.value().map_err(bad)?.string().map_err(bad)?;
                match opt.as_str() {
                    "listen" => config.listen = num("listen", &v)?,
                    "data-dir" => config.data_dir = v.into(),
                    "database" => config.database = Some(v),
                    "storage" => storage = Some(v),
                    "s3-endpoint" => s3_endpoint = Some(v),
                    "public-url" => config.public_url = Some(v),
                    "role" => config.role = v.parse().map_err(Fail::Input)?,
                    "lease-seconds" => {
                        let s: u64 = num(&opt, &v)?;
                        if !(2..=3600).contains(&s) {
                            return Err(Fail::Input(format!(
                                "--lease-seconds {v}: between 2 and 3600"
                            )));
                        }
                        config.lease = Duration::from_secs(s);
                    }
                    "heavy-workers" => heavy = Some(num(&opt, &v)?),
                    "light-workers" => light = Some(num(&opt, &v)?),
                    "pools" => pools = Some(v),
                    "queue-size" => config.queue_size = num(&opt, &v)?,
                    "rate-limit" => config.rate_limit = num(&opt, &v)?,
                    "link-ttl" => config.link_ttl = Duration::from_secs(num(&opt, &v)?),
                    "max-upload-mb" => config.max_upload_bytes = num::<u64>(&opt, &v)? * 1_000_000,
                    "job-timeout" => config.job_timeout = Duration::from_secs(num(&opt, &v)?),
                    "max-attempts" => config.max_attempts = num(&opt, &v)?,
                    "segment-seconds" => {
                        config.segment_seconds = Duration::from_secs(num(&opt, &v)?)
                    }
                    "upload-quota-mb" => {
                        config.upload_quota_bytes = num::<u64>(&opt, &v)?.saturating_mul(1_000_000)
                    }
                    "retention-hours" => {
                        config.retention =
                            Duration::from_secs(num::<u64>(&opt, &v)?.saturating_mul(3600))
                    }
                    "max-pixels" => config.max_pixels = num(&opt, &v)?,
                    "max-frames" => config.max_frames = num(&opt, &v)?,
                    "max-duration" => config.max_duration = Duration::from_secs(num(&opt, &v)?),
                    "max-image-pixels" => config.max_image_pixels = num(&opt, &v)?,
                    "max-canvas-pixels" => config.max_canvas_pixels = num(&opt, &v)?,
                    "allow-private-urls" => {
                        config.allow_private = server::egress::parse_networks(&v)
                            .map_err(|e| Fail::Input(format!("--allow-private-urls: {e}")))?
                    }
                    "header-timeout" => config.header_timeout = secs(&opt, &v)?,
                    "body-timeout" => config.body_timeout = secs(&opt, &v)?,
                    "keep-alive-timeout" => config.keep_alive_timeout = secs(&opt, &v)?,
                    "max-connections" => config.max_connections = num(&opt, &v)?,
                    "webhook-retry-delay" => {
                        config.webhook_retry_delay = Duration::from_secs_f64(num(&opt, &v)?)
                    }
                    "name" => name = v,
                    "credits" => credits = Some(num::<f64>(&opt, &v)?),
                    _ => return Err(bad(format!("unknown option --{opt}"))),
                }
            }
            other => return Err(bad(other.unexpected())),
        }
    }
    (config.heavy_workers, config.light_workers) =
        server::queue::workers_for_pools(pools.as_deref(), heavy, light).map_err(Fail::Input)?;
    config.storage = match storage {
        Some(s) => server::storage::Spec::parse(&s, s3_endpoint).map_err(Fail::Input)?,
        None if s3_endpoint.is_some() => {
            return Err(Fail::Input(
                "--s3-endpoint is for --storage s3://bucket/prefix".into(),
            ));
        }
        None => server::storage::Spec::Local,
    };
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["serve"] => serve(config),
        ["keys", rest @ ..] => keys(&config, rest, &name, credits),
        _ => Err(bad("expected `serve` or `keys create|list|revoke`")),
    }
}

fn serve(config: Config) -> Result<(), Fail> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Fail::Other(e.to_string()))?;
    rt.block_on(async {
        let server = server::start(config).await.map_err(Fail::Input)?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| Fail::Other(e.to_string()))?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        server::log::line(&[("event", "stopping")]);
        server.stop().await;
        Ok(())
    })
}

fn keys(config: &Config, rest: &[&str], name: &str, credits: Option<f64>) -> Result<(), Fail> {
    let store = match &config.database {
        Some(url) => server::store::Store::connect(url)
            .map_err(|e| Fail::Input(format!("--database: {e}")))?,
        None => {
            std::fs::create_dir_all(&config.data_dir)
                .map_err(|e| Fail::Input(format!("{}: {e}", config.data_dir.display())))?;
            let db = config.data_dir.join("rbv.db");
            server::store::Store::open(&db)
                .map_err(|e| Fail::Input(format!("{}: {e}", db.display())))?
        }
    };
    let fail = |e: server::store::Error| Fail::Other(e.to_string());
    match rest {
        ["create"] => {
            let (id, secret) = store.create_key(name, credits).map_err(fail)?;
            eprintln!("created {id} ({name}); the key is shown once, store it now:");
            crate::say(&secret);
            Ok(())
        }
        ["list"] => {
            for k in store.list_keys().map_err(fail)? {
                crate::say(&format!(
                    "{}\t{}\t{}\tcredits={}\t{}\tcreated {}",
                    k.id,
                    k.fingerprint,
                    k.client_id,
                    k.credits.map_or("unlimited".into(), |c| c.to_string()),
                    if k.enabled { "active" } else { "revoked" },
                    server::store::iso(k.created_at)
                ));
            }
            Ok(())
        }
        ["revoke", id] => {
            if store.revoke_key(id).map_err(fail)? {
                eprintln!("revoked {id}");
                Ok(())
            } else {
                Err(Fail::Input(format!("no key {id}")))
            }
        }
        _ => Err(bad("keys: expected create, list or revoke KEY_ID")),
    }
}
