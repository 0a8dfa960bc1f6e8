// SPDX-License-Identifier: MPL-2.0
//! The hosted service's `/v1` job API (`docs/remote.md`): the contract's
//! types, shared by the client and `rbv serve`, and with feature `client`
//! (on by default) a client with retries, polling and downloads. No
//! GStreamer in here.

pub mod api;
#[cfg(feature = "client")]
pub mod backoff;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
pub mod job;
pub mod key;
pub mod names;

pub use api::{Background, Job, JobSettings};
#[cfg(feature = "client")]
pub use client::{Client, Config, Error, ErrorKind};
pub use key::ApiKey;
pub use names::{JobStatus, ModelName, OutputFormat};

/// The runtime the client's jobs run on, off every streaming thread: one
/// worker thread per process, made on first use.
#[cfg(feature = "client")]
pub fn io_runtime() -> Result<&'static tokio::runtime::Runtime, Error> {
    use std::sync::OnceLock;
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
