// SPDX-License-Identifier: MPL-2.0
//! The element's integration tests in one binary, a module a file: one
//! optimised link instead of nine (each took about a minute of CI). Three
//! files stay binaries of their own because they need a process to
//! themselves: `missing_runtime` (ONNX Runtime is loaded once per process),
//! `remote_secrets` (sets RBV_API_KEY and captures every log line) and
//! `remote_element` (clears RBV_API_KEY).

mod apps;
mod bad_input;
mod compose;
mod detector;
mod docs;
mod example_pipelines;
mod pipeline;
mod rbvremove;
mod reference_match;
