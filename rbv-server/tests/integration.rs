// SPDX-License-Identifier: MPL-2.0
//! The server's integration tests in one binary, a module a file: one
//! optimised link instead of one per file.

mod fuzz;
mod server;
mod sound;
mod untrusted;
