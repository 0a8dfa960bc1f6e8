// SPDX-License-Identifier: MPL-2.0
//! Where uploads and outputs live: the data directory's `uploads/` and
//! `outputs/` (the default), or an S3-compatible bucket (`--storage
//! s3://bucket/prefix`) that every node of a cluster reaches.
//!
//! Files are always made on local disk first (an upload is checked there, a
//! pipeline writes its output there) and then kept: renamed within the data
//! directory, or sent to the bucket and removed. A worker on S3 copies its
//! input into its run's folder, since GStreamer reads files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A file's bytes as read back for a client.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Files smaller than this go to the bucket in one request; larger ones in
/// parts of this size, a few at a time.
const PART: usize = 8 * 1024 * 1024;
const PARTS_IN_FLIGHT: usize = 4;

/// `--storage`, `--s3-endpoint`: what the operator asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Spec {
    /// The data directory (`--storage local`, the default).
    #[default]
    Local,
    /// `s3://bucket/prefix`; endpoint, region and credentials the usual AWS
    /// way (`AWS_*`), the endpoint overridable for MinIO, SeaweedFS, Ceph.
    S3 {
        bucket: String,
        prefix: String,
        endpoint: Option<String>,
    },
}

impl Spec {
    /// Reads `--storage`: `local` or `s3://bucket[/prefix]`.
    pub fn parse(s: &str, endpoint: Option<String>) -> Result<Spec, String> {
        if s == "local" {
            return match endpoint {
                Some(_) => Err("--s3-endpoint is for --storage s3://bucket/prefix".into()),
                None => Ok(Spec::Local),
            };
        }
        let Some(rest) = s.strip_prefix("s3://") else {
            return Err(format!(
                "--storage {s}: expected local or s3://bucket/prefix"
            ));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        // S3's bucket naming rules: 3-63 of a-z, 0-9, '.', '-'.
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && bucket.as_bytes()[0].is_ascii_alphanumeric();
        if !bucket_ok {
            return Err(format!(
                "--storage {s}: `{bucket}` is not a bucket name (3-63 characters: a-z, 0-9, '.', '-')"
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
            && !prefix.is_empty()
        {
            return Err(format!(
                "--storage {s}: the prefix `{prefix}` has an empty, `.` or `..` part"
            ));
        }
        // Characters every S3 implementation keeps as they are (the keys are
        // recorded and read back).
        if let Some(c) = prefix
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "._/-".contains(*c)))
        {
            return Err(format!(
                "--storage {s}: the prefix has `{c}`: use letters, digits, '.', '_', '-' and '/'"
            ));
        }
        if let Some(e) = &endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(format!(
                "--s3-endpoint {e}: expected an http:// or https:// URL"
            ));
        }
        Ok(Spec::S3 {
            bucket: bucket.into(),
            prefix: prefix.into(),
            endpoint,
        })
    }

    /// How the log and `/v1/admin/config` name it (no credentials in it).
    pub fn describe(&self) -> String {
        match self {
            Spec::Local => "local".into(),
            Spec::S3 { bucket, prefix, .. } if prefix.is_empty() => format!("s3://{bucket}"),
            Spec::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}"),
        }
    }
}

/// One of the two kinds of file kept.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Upload,
    Output,
}

impl Kind {
    fn folder(self) -> &'static str {
        match self {
            Kind::Upload => "uploads",
            Kind::Output => "outputs",
        }
    }
}

pub enum Storage {
    Local {
        data_dir: PathBuf,
    },
    S3 {
        /// Requests with a deadline each (a part, a small file, a delete).
        store: Arc<dyn ObjectStore>,
        /// Whole files read (to a client, into a run's folder), which may
        /// take as long as the file is large.
        reader: Arc<dyn ObjectStore>,
        prefix: String,
        described: String,
    },
}

impl Storage {
    pub fn new(spec: &Spec, data_dir: &Path) -> Result<Storage, String> {
        let Spec::S3 {
            bucket,
            prefix,
            endpoint,
        } = spec
        else {
            return Ok(Storage::Local {
                data_dir: data_dir.to_path_buf(),
            });
        };
        use object_store::aws::AmazonS3Builder;
        use object_store::{BackoffConfig, ClientConfigKey, ClientOptions, RetryConfig};
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(e) = endpoint {
            builder = builder.with_endpoint(e);
        }
        // Plain HTTP only where the operator wrote an http:// endpoint.
        let endpoint_env = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
            .iter()
            .find_map(|v| std::env::var(v).ok());
        let http = endpoint
            .as_deref()
            .or(endpoint_env.as_deref())
            .is_some_and(|e| e.starts_with("http://"))
            || std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| v == "true");
        if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
            builder = builder.with_region("us-east-1");
        }
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 4,
            retry_timeout: Duration::from_secs(30),
        };
        let options = ClientOptions::new()
            .with_allow_http(http)
            .with_connect_timeout(Duration::from_secs(5));
        let build = |options: ClientOptions| {
            builder
                .clone()
                .with_retry(retry.clone())
                .with_client_options(options)
                .build()
                .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
                .map_err(|e| format!("--storage {}: {e}", spec.describe()))
        };
        Ok(Storage::S3 {
            store: build(options.clone().with_timeout(Duration::from_secs(120)))?,
            // No cap on a whole transfer (a large file on a slow link), but
            // none may stall 30 s between reads.
            reader: build(
                options
                    .with_timeout_disabled()
                    .with_config(ClientConfigKey::ReadTimeout, "30s"),
            )?,
            prefix: prefix.clone(),
            described: spec.describe(),
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Storage::Local { .. } => "local".into(),
            Storage::S3 { described, .. } => described.clone(),
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Storage::Local { .. })
    }

    fn folder(prefix: &str, kind: Kind) -> Key {
        Key::from(prefix).join(kind.folder())
    }

    fn key(prefix: &str, kind: Kind, name: &str) -> Key {
        Self::folder(prefix, kind).join(name)
    }

    fn local_path(data_dir: &Path, kind: Kind, name: &str) -> PathBuf {
        data_dir.join(kind.folder()).join(name)
    }

    /// At start: the bucket is there and these credentials may write, read
    /// and delete in it (a probe object of this node's), else a clear error.
    pub async fn check(&self, node: &str) -> Result<(), String> {
        let Storage::S3 {
            store,
            prefix,
            described,
            ..
        } = self
        else {
            return Ok(());
        };
        let key = Self::key(prefix, Kind::Upload, &format!(".probe-{node}"));
        let probe = async {
            // A listing first: some servers make a missing bucket on a write.
            store
                .list_with_delimiter(Some(&Self::folder(prefix, Kind::Upload)))
                .await?;
            store.put(&key, PutPayload::from_static(b"rbv")).await?;
            store.get(&key).await?.bytes().await?;
            store.delete(&key).await
        };
        probe
            .await
            .map_err(|e| format!("--storage {described}: {}", explain(&e)))
    }

    /// Whether the storage answers now (for `/health`).
    pub async fn healthy(&self) -> bool {
        match self {
            Storage::Local { data_dir } => {
                data_dir.join("uploads").is_dir() && data_dir.join("outputs").is_dir()
            }
            Storage::S3 { store, prefix, .. } => {
                let key = Self::key(prefix, Kind::Upload, ".health");
                let head = tokio::time::timeout(Duration::from_secs(3), store.head(&key)).await;
                matches!(
                    head,
                    Ok(Ok(_)) | Ok(Err(object_store::Error::NotFound { .. }))
                )
            }
        }
    }

    /// Keeps a checked upload made at `local`; answers what the store
    /// records for it (a path in the data directory, or the object's key).
    pub async fn keep_upload(&self, local: &Path, name: &str) -> Result<String, String> {
        self.keep(Kind::Upload, local, name).await
    }

    /// Keeps a job's output made at `local` as `name`.
    pub async fn keep_output(&self, local: &Path, name: &str) -> Result<(), String> {
        self.keep(Kind::Output, local, name).await.map(|_| ())
    }

    async fn keep(&self, kind: Kind, local: &Path, name: &str) -> Result<String, String> {
        match self {
            Storage::Local { data_dir } => {
                let path = Self::local_path(data_dir, kind, name);
                tokio::fs::rename(local, &path)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                let _ = tokio::fs::set_permissions(
                    &path,
                    std::os::unix::fs::PermissionsExt::from_mode(0o600),
                )
                .await;
                Ok(path.to_string_lossy().into_owned())
            }
            Storage::S3 {
                store,
                prefix,
                described,
                ..
            } => {
                let key = Self::key(prefix, kind, name);
                let sent = send(store.as_ref(), &key, local).await;
                let _ = tokio::fs::remove_file(local).await;
                sent.map_err(|e| failed(described, &e))?;
                Ok(key.to_string())
            }
        }
    }

    /// A local file with the upload's bytes for a pipeline: the kept file
    /// itself, or a copy from the bucket made in `work`.
    pub async fn fetch_upload(&self, stored: &str, work: &Path) -> Result<PathBuf, String> {
        let Storage::S3 {
            reader, described, ..
        } = self
        else {
            return Ok(PathBuf::from(stored));
        };
        let ext = Path::new(stored)
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("bin");
        let dest = work.join(format!("input.{ext}"));
        let key = parse_key(stored);
        match async { download(reader.as_ref(), &key?, &dest).await }.await {
            Ok(()) => Ok(dest),
            Err(object_store::Error::NotFound { .. }) => Err(
                "the uploaded video is gone from storage (removed after the retention period)"
                    .into(),
            ),
            Err(e) => Err(format!(
                "the uploaded video cannot be read from storage {described}: {}",
                explain(&e)
            )),
        }
    }

    /// A local file with a kept output's bytes (a segment's part for the
    /// join): the kept file itself, or a copy from the bucket in `work`.
    pub async fn fetch_output(&self, name: &str, work: &Path) -> Result<PathBuf, String> {
        match self {
            Storage::Local { data_dir } => Ok(Self::local_path(data_dir, Kind::Output, name)),
            Storage::S3 {
                reader,
                prefix,
                described,
                ..
            } => {
                let dest = work.join(name);
                let key = Self::key(prefix, Kind::Output, name);
                download(reader.as_ref(), &key, &dest).await.map_err(|e| {
                    format!(
                        "{name} cannot be read from storage {described}: {}",
                        explain(&e)
                    )
                })?;
                Ok(dest)
            }
        }
    }

    /// The upload's bytes for its owner (`None`: not there).
    pub async fn open_upload(&self, stored: &str) -> Result<Option<(u64, ByteStream)>, String> {
        match self {
            Storage::Local { .. } => open_file(Path::new(stored)).await,
            Storage::S3 {
                reader, described, ..
            } => match parse_key(stored) {
                Ok(key) => open_object(reader.as_ref(), described, &key).await,
                Err(_) => Ok(None),
            },
        }
    }

    /// A job's output (`None`: not there).
    pub async fn open_output(&self, name: &str) -> Result<Option<(u64, ByteStream)>, String> {
        match self {
            Storage::Local { data_dir } => {
                open_file(&Self::local_path(data_dir, Kind::Output, name)).await
            }
            Storage::S3 {
                reader,
                prefix,
                described,
                ..
            } => {
                let key = Self::key(prefix, Kind::Output, name);
                open_object(reader.as_ref(), described, &key).await
            }
        }
    }

    /// Deletes an upload by what the store recorded; gone already is fine.
    pub async fn delete_upload(&self, stored: &str) -> Result<(), String> {
        match self {
            Storage::Local { .. } => remove_file(Path::new(stored)).await,
            Storage::S3 {
                store, described, ..
            } => match parse_key(stored) {
                Ok(key) => delete_object(store.as_ref(), described, &key).await,
                Err(e) => Err(e.to_string()),
            },
        }
    }

    pub async fn delete_output(&self, name: &str) -> Result<(), String> {
        match self {
            Storage::Local { data_dir } => {
                remove_file(&Self::local_path(data_dir, Kind::Output, name)).await
            }
            Storage::S3 {
                store,
                prefix,
                described,
                ..
            } => {
                let key = Self::key(prefix, Kind::Output, name);
                delete_object(store.as_ref(), described, &key).await
            }
        }
    }

    /// The names of the uploads (`uploads: true`) or outputs kept, sorted;
    /// with local storage, files being received too.
    pub async fn list(&self, uploads: bool) -> Result<Vec<String>, String> {
        let kind = if uploads { Kind::Upload } else { Kind::Output };
        let mut names = Vec::new();
        match self {
            Storage::Local { data_dir } => {
                let dir = data_dir.join(kind.folder());
                let mut entries = tokio::fs::read_dir(&dir)
                    .await
                    .map_err(|e| format!("{}: {e}", dir.display()))?;
                while let Ok(Some(e)) = entries.next_entry().await {
                    names.push(e.file_name().to_string_lossy().into_owned());
                }
            }
            Storage::S3 {
                store,
                prefix,
                described,
                ..
            } => {
                let mut listed = store.list(Some(&Self::folder(prefix, kind)));
                while let Some(meta) = listed.next().await {
                    let meta = meta.map_err(|e| failed(described, &e))?;
                    if let Some(name) = meta.location.filename() {
                        names.push(name.to_owned());
                    }
                }
            }
        }
        names.sort();
        Ok(names)
    }
}

/// A storage error as the log and the operator read it.
fn failed(described: &str, e: &object_store::Error) -> String {
    format!("storage {described}: {}", explain(e))
}

/// An object's length and bytes (`None`: not there).
async fn open_object(
    reader: &dyn ObjectStore,
    described: &str,
    key: &Key,
) -> Result<Option<(u64, ByteStream)>, String> {
    let got = tokio::time::timeout(Duration::from_secs(30), reader.get(key))
        .await
        .map_err(|_| format!("storage {described}: no answer within 30 s"))?;
    match got {
        Ok(got) => {
            let len = got.meta.size;
            let stream = got
                .into_stream()
                .map(|r| r.map_err(std::io::Error::other))
                .boxed();
            Ok(Some((len, stream)))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(failed(described, &e)),
    }
}

/// Deletes an object; gone already is fine.
async fn delete_object(store: &dyn ObjectStore, described: &str, key: &Key) -> Result<(), String> {
    match store.delete(key).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(failed(described, &e)),
    }
}

/// A key as recorded (`Path`'s own encoding) read back as it was.
fn parse_key(stored: &str) -> object_store::Result<Key> {
    Ok(Key::parse(stored)?)
}

fn generic(e: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "local file",
        source: Box::new(e),
    }
}

/// Sends a local file to `key`: one request when small, else in parts
/// (aborted, so the bucket keeps no half object, when a part fails).
async fn send(store: &dyn ObjectStore, key: &Key, local: &Path) -> object_store::Result<()> {
    let mut file = tokio::fs::File::open(local).await.map_err(generic)?;
    let len = file.metadata().await.map_err(generic)?.len();
    if len <= PART as u64 {
        let mut buf = Vec::with_capacity(len as usize);
        file.read_to_end(&mut buf).await.map_err(generic)?;
        store.put(key, PutPayload::from(buf)).await?;
        return Ok(());
    }
    let mut upload = WriteMultipart::new_with_chunk_size(store.put_multipart(key).await?, PART);
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = match file.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                let _ = upload.abort().await;
                return Err(generic(e));
            }
        };
        if n == 0 {
            break;
        }
        if let Err(e) = upload.wait_for_capacity(PARTS_IN_FLIGHT).await {
            let _ = upload.abort().await;
            return Err(e);
        }
        upload.write(&buf[..n]);
    }
    upload.finish().await.map(|_| ())
}

async fn open_file(path: &Path) -> Result<Option<(u64, ByteStream)>, String> {
    let Ok(f) = tokio::fs::File::open(path).await else {
        return Ok(None);
    };
    let len = f
        .metadata()
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let stream = futures_util::stream::unfold(f, |mut f| async move {
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    Ok(Some((len, stream.boxed())))
}

async fn remove_file(path: &Path) -> Result<(), String> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The bucket's answer in words an operator acts on, then its own text.
/// An object's bytes into the file `dest`.
async fn download(
    reader: &dyn ObjectStore,
    key: &Key,
    dest: &Path,
) -> Result<(), object_store::Error> {
    let mut stream = reader.get(key).await?.into_stream();
    let mut file = tokio::fs::File::create(dest).await.map_err(generic)?;
    while let Some(chunk) = stream.next().await {
        file.write_all(&chunk?).await.map_err(generic)?;
    }
    file.flush().await.map_err(generic)
}

pub fn explain(e: &object_store::Error) -> String {
    let mut text = e.to_string().replace('\n', " ");
    // Some servers echo the signed request (with a session token's header)
    // in a signature error: not for a log.
    for tag in [
        "CanonicalRequest",
        "StringToSign",
        "StringToSignBytes",
        "CanonicalRequestBytes",
    ] {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        while let (Some(a), Some(b)) = (text.find(&open), text.find(&close)) {
            if b < a {
                break;
            }
            text.replace_range(a..b + close.len(), "");
        }
    }
    let why = if text.contains("NoSuchBucket") {
        "the bucket does not exist"
    } else if [
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
    ]
    .iter()
    .any(|c| text.contains(c))
    {
        "the credentials were refused (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
    } else if text.contains("AccessDenied") || text.contains("403 Forbidden") {
        "access denied: these credentials may not write, read and delete there"
    } else if text.contains("Connection refused") || text.contains("error sending request") {
        "cannot reach the endpoint (--s3-endpoint, AWS_ENDPOINT_URL)"
    } else {
        return text;
    };
    format!("{why} ({text})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_urls_are_read_or_refused_by_name() {
        assert_eq!(Spec::parse("local", None), Ok(Spec::Local));
        assert_eq!(
            Spec::parse("s3://media/rbv/prod/", Some("http://127.0.0.1:8333".into())),
            Ok(Spec::S3 {
                bucket: "media".into(),
                prefix: "rbv/prod".into(),
                endpoint: Some("http://127.0.0.1:8333".into())
            })
        );
        assert_eq!(
            Spec::parse("s3://media", None).map(|s| s.describe()),
            Ok("s3://media".into())
        );
        for (bad, says) in [
            ("/srv/rbv", "expected local or s3://bucket/prefix"),
            ("s3://", "is not a bucket name"),
            ("s3://Media/x", "`Media` is not a bucket name"),
            ("s3://me", "is not a bucket name"),
            ("s3://media/a//b", "has an empty"),
            ("s3://media/../b", "has an empty, `.` or `..` part"),
            ("s3://media/team~a", "the prefix has `~`"),
            ("s3://media/a b", "the prefix has ` `"),
        ] {
            let e = Spec::parse(bad, None).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let e = Spec::parse("s3://media", Some("127.0.0.1:8333".into())).unwrap_err();
        assert!(e.contains("expected an http:// or https:// URL"), "{e}");
        let e = Spec::parse("local", Some("http://x".into())).unwrap_err();
        assert!(e.contains("--s3-endpoint is for --storage s3://"), "{e}");
    }

    #[test]
    fn a_signed_request_echoed_back_is_left_out() {
        let e = object_store::Error::Generic {
            store: "S3",
            source: "403 Forbidden: <Error><Code>SignatureDoesNotMatch</Code>\
                     <StringToSign>AWS4-HMAC-SHA256 x</StringToSign>\
                     <CanonicalRequest>GET /\nx-amz-security-token:SECRETTOKEN\n</CanonicalRequest>\
                     </Error>"
                .into(),
        };
        let said = explain(&e);
        assert!(said.starts_with("the credentials were refused"), "{said}");
        assert!(
            !said.contains("SECRETTOKEN") && !said.contains("AWS4-HMAC"),
            "{said}"
        );
    }

    #[test]
    fn recorded_keys_read_back_as_they_were() {
        let key = Storage::key("rbv/prod-1", Kind::Upload, "ab_c.mp4");
        assert_eq!(parse_key(key.as_ref()).unwrap(), key);
    }

    #[test]
    fn keys_sit_under_the_prefix() {
        assert_eq!(
            Storage::key("rbv/prod", Kind::Upload, "ab.mp4").to_string(),
            "rbv/prod/uploads/ab.mp4"
        );
        assert_eq!(
            Storage::key("", Kind::Output, "ab.mov").to_string(),
            "outputs/ab.mov"
        );
    }
}
