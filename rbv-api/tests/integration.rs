// SPDX-License-Identifier: MPL-2.0
//! The client's integration tests in one binary, a module a file: one
//! optimised link instead of two.

mod fuzz;
mod remote_client;
