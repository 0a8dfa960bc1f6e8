// SPDX-License-Identifier: MPL-2.0
//! Starting ONNX Runtime: the library is loaded at run time (`ort`'s
//! `load-dynamic`), once per process. Where it comes from, first match wins:
//! 1. an explicit path (the element's `ort-library` property);
//! 2. `RBV_ORT_LIBRARY`, then `ORT_DYLIB_PATH` (ort's own variable);
//! 3. `<cache>/onnxruntime/libonnxruntime.so.1.31.1`, as laid down by `setup/setup.sh`
//!    (see [`crate::paths`]).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use once_cell::sync::Lazy;
use ort::environment::Environment;

use crate::paths::default_ort_library;

/// The process-wide ONNX Runtime environment, with the library it was loaded from.
struct Loaded {
    env: Environment,
    path: PathBuf,
}

static RUNTIME: Lazy<Mutex<Option<Loaded>>> = Lazy::new(|| Mutex::new(None));

/// Runs `f` with the process-wide ONNX Runtime environment, loading the
/// library first if needed.
///
/// Errors (library missing, not loadable, wrong version) name the path and the
/// reason. A failed load leaves nothing behind, so a later call with a good
/// path still works. Once a library is loaded it stays for the life of the
/// process; a later request for a different file gets the loaded one, and the
/// returned path says which.
pub fn with_environment<R>(
    library: Option<&Path>,
    f: impl FnOnce(&Environment, &Path) -> R,
) -> Result<R, String> {
    let mut guard = RUNTIME.lock().unwrap_or_else(|e| e.into_inner());
    let loaded = match guard.take() {
        Some(loaded) => guard.insert(loaded),
        None => guard.insert(load(library)?),
    };
    Ok(f(&loaded.env, &loaded.path))
}

fn load(library: Option<&Path>) -> Result<Loaded, String> {
    let path = library
        .map(Path::to_path_buf)
        .unwrap_or_else(default_ort_library);
    if !path.is_file() {
        return Err(format!(
            "ONNX Runtime library not found at {} (run setup/setup.sh, or set the \
             ort-library property or RBV_ORT_LIBRARY)",
            path.display()
        ));
    }
    // `init_from` only records the library on success, so a failure here does
    // not poison later attempts with a good path.
    let builder = ort::init_from(&path)
        .map_err(|e| format!("cannot load ONNX Runtime library {}: {e}", path.display()))?;
    let env = builder
        .with_name("rbv")
        .build()
        .map_err(|e| format!("cannot start ONNX Runtime from {}: {e}", path.display()))?;
    Ok(Loaded { env, path })
}
