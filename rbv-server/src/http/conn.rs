// SPDX-License-Identifier: MPL-2.0
//! The HTTP/1 connection loop, with the limits a server facing the open
//! network needs: a request's headers must arrive within `header_timeout`
//! of the connection opening or of their first byte, an idle kept-alive
//! connection closes after `keep_alive_timeout`, a request body that stalls
//! for `body_timeout` fails, and at most `max_connections` are open. When
//! that many are, the one idle the longest is closed to make room (idle or
//! half-sent connections cannot lock out `/health` or a real client); only
//! when every connection is in a request is a new one turned away.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, HttpBody};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::Service;

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub max_connections: usize,
}

/// One open connection, as the accept loop and its own task see it.
struct Conn {
    /// Requests being answered (a response counts until its body is sent).
    busy: AtomicUsize,
    /// Answers given so far.
    served: AtomicU64,
    /// Milliseconds since `epoch`: when it last became idle, and when the
    /// first byte of its next request came (0: none yet).
    idle_since: AtomicU64,
    header_started: AtomicU64,
    close: tokio::sync::Notify,
}

struct Shared {
    limits: Limits,
    epoch: Instant,
    open: Mutex<Vec<Arc<Conn>>>,
}

impl Shared {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Conn>>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes the connection idle the longest; false when none is idle.
    fn evict_idle(&self) -> bool {
        let open = self.lock();
        let oldest = open
            .iter()
            .filter(|c| c.busy.load(Ordering::Relaxed) == 0)
            .min_by_key(|c| c.idle_since.load(Ordering::Relaxed));
        match oldest {
            Some(c) => {
                c.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// When an idle connection is closed (None while it is in a request).
    fn deadline(&self, c: &Conn) -> Option<u64> {
        if c.busy.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let l = &self.limits;
        let started = c.header_started.load(Ordering::Relaxed);
        let (from, limit) = if started != 0 {
            (started, l.header_timeout)
        } else if c.served.load(Ordering::Relaxed) == 0 {
            (c.idle_since.load(Ordering::Relaxed), l.header_timeout)
        } else {
            (c.idle_since.load(Ordering::Relaxed), l.keep_alive_timeout)
        };
        Some(from + limit.as_millis() as u64)
    }
}

/// Serves `router` on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let shared = Arc::new(Shared {
        limits,
        epoch: Instant::now(),
        open: Mutex::new(Vec::new()),
    });
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors (or a connection reset before it was
                // taken): free one and back off a little.
                shared.evict_idle();
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if shared.lock().len() >= shared.limits.max_connections && !shared.evict_idle() {
            // Every connection is in a request: this one is turned away.
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let conn = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since: AtomicU64::new(shared.now()),
            header_started: AtomicU64::new(0),
            close: tokio::sync::Notify::new(),
        });
        shared.lock().push(conn.clone());
        tokio::spawn(connection(shared.clone(), conn, stream, router.clone()));
    }
    // Open connections end with their tasks when the runtime stops.
    for c in shared.lock().iter() {
        c.close.notify_one();
    }
}

async fn connection(shared: Arc<Shared>, conn: Arc<Conn>, stream: TcpStream, router: Router) {
    let io = hyper_util::rt::TokioIo::new(Watched {
        inner: stream,
        conn: conn.clone(),
        shared: shared.clone(),
    });
    let body_timeout = shared.limits.body_timeout;
    let (c, s) = (conn.clone(), shared.clone());
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        c.busy.fetch_add(1, Ordering::Relaxed);
        let guard = Busy(c.clone(), s.clone());
        let req = req.map(|b| Body::new(tower_http::timeout::TimeoutBody::new(body_timeout, b)));
        let mut router = router.clone();
        async move {
            let res = match router.call(req).await {
                Ok(res) => res,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(res.map(|body| {
                Body::new(Guarded {
                    body,
                    _guard: guard,
                })
            }))
        }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(served);
    loop {
        let wait = shared
            .deadline(&conn)
            .map_or(Duration::from_secs(1), |d| {
                Duration::from_millis(d.saturating_sub(shared.now()))
            })
            .min(Duration::from_secs(1));
        tokio::select! {
            _ = &mut served => break,
            // An eviction: taken only if the connection is still idle.
            _ = conn.close.notified() => if conn.busy.load(Ordering::Relaxed) == 0 { break },
            _ = tokio::time::sleep(wait) => {
                if shared.deadline(&conn).is_some_and(|d| shared.now() >= d) {
                    break;
                }
            }
        }
    }
    shared.lock().retain(|c| !Arc::ptr_eq(c, &conn));
}

/// Marks a connection busy while a request is answered.
struct Busy(Arc<Conn>, Arc<Shared>);

impl Drop for Busy {
    fn drop(&mut self) {
        let c = &self.0;
        c.served.fetch_add(1, Ordering::Relaxed);
        c.header_started.store(0, Ordering::Relaxed);
        c.idle_since.store(self.1.now(), Ordering::Relaxed);
        c.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response body that keeps its connection marked busy until it is sent.
struct Guarded {
    body: Body,
    _guard: Busy,
}

impl HttpBody for Guarded {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The socket, noting when the first byte of an idle connection's next
/// request arrives (its header timeout runs from there).
struct Watched {
    inner: TcpStream,
    conn: Arc<Conn>,
    shared: Arc<Shared>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before
            && self.conn.busy.load(Ordering::Relaxed) == 0
            && self.conn.header_started.load(Ordering::Relaxed) == 0
        {
            let now = self.shared.now();
            self.conn.header_started.store(now, Ordering::Relaxed);
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The open-file limit of this process, if it can be read.
pub fn open_file_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given and nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0;
    ok.then_some(r.rlim_cur)
}
