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
# The server's suite again on the PostgreSQL store (one suite, two backends),
# on a throwaway server stopped however this ends.
pgdir=$(mktemp -d)
trap 'setup/pg.sh stop "$pgdir"' EXIT
# Assigned, then used: `X=$(...) cmd` would hide a failed start from set -e.
pg_url=$(setup/pg.sh start "$pgdir")
RBV_TEST_DATABASE_URL=$pg_url cargo test --profile ci -p rbv-server
# Several `rbv serve` processes on it as one service (skipped above without it).
RBV_TEST_DATABASE_URL=$pg_url cargo test --profile ci -p rbv-cli --test integration server_cluster
