// SPDX-License-Identifier: MPL-2.0
//! Where rbv finds its files: the cache set-up fills (ONNX Runtime, models,
//! test data), and the variables that point elsewhere.
//!
//! The cache dir is `RBV_CACHE_DIR`, else `$XDG_CACHE_HOME/rbv`, else `~/.cache/rbv`.
//! Model files are looked up in `RBV_MODEL_DIR`, else `<cache>/models`.
//! The ONNX Runtime library is `RBV_ORT_LIBRARY`, else `ORT_DYLIB_PATH`, else
//! `<cache>/onnxruntime/libonnxruntime.so.1.31.1`.

use std::path::{Path, PathBuf};

/// File name of the ONNX Runtime library that set-up installs.
pub const ORT_LIBRARY_FILE: &str = "libonnxruntime.so.1.31.1";

/// The rbv cache directory.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = non_empty_env("RBV_CACHE_DIR") {
        return dir.into();
    }
    let base = non_empty_env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty_env("HOME").map(|h| Path::new(&h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("rbv")
}

/// Directory holding the bundled models.
pub fn model_dir() -> PathBuf {
    non_empty_env("RBV_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("models"))
}

/// Where the ONNX Runtime library is expected when no path is given explicitly.
pub fn default_ort_library() -> PathBuf {
    non_empty_env("RBV_ORT_LIBRARY")
        .or_else(|| non_empty_env("ORT_DYLIB_PATH"))
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_dir().join("onnxruntime").join(ORT_LIBRARY_FILE))
}

fn non_empty_env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}
