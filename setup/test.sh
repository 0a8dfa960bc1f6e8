#!/usr/bin/env bash
# Set up (idempotent), then every check CI runs: format, lints, all tests with
# the real ONNX Runtime, real models and real pipelines.
set -euo pipefail
cd "$(dirname "$0")/.."
setup/setup.sh
cargo fmt --check
cargo clippy --release --workspace --all-targets -- -D warnings
cargo test --release --workspace
