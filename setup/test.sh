#!/usr/bin/env bash
# Set up (idempotent), then every check CI runs: format, lints, all tests with
# the real ONNX Runtime, real models and real pipelines.
set -euo pipefail
cd "$(dirname "$0")/.."
setup/setup.sh
cargo fmt --check
# Profile ci: release's optimisation without its link-time optimisation
# (Cargo.toml says why); what ships is built with --release.
cargo clippy --profile ci --workspace --all-targets -- -D warnings
cargo test --profile ci --workspace
