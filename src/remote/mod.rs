// SPDX-License-Identifier: MPL-2.0
//! The remote backend's core: a client for the service's `/v1` job API
//! (no GStreamer in here). See `docs/remote.md`.

pub mod api;
pub mod backoff;
pub mod client;
pub mod job;
pub mod key;

pub use api::{Background, Job, JobSettings, Status};
pub use client::{Client, Config, Error, ErrorKind};
pub use key::ApiKey;

use std::sync::OnceLock;

/// The runtime remote jobs run on, off every streaming thread: one worker
/// thread per process, made on first use.
pub fn runtime() -> Result<&'static tokio::runtime::Runtime, Error> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("rbv-remote")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::Invalid(format!("cannot start the remote backend's runtime: {e}")))
}
