// SPDX-License-Identifier: MPL-2.0
//! The command's integration tests in one binary, a module a file: one
//! optimised link instead of four.

mod cli;
mod cli_files;
mod remote_e2e;
mod server_admin;
mod server_cluster;
mod server_crash;
mod server_limits;
