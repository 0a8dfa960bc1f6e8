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
# The server's suite again on the PostgreSQL store and S3-compatible storage
# (one suite, two backends), on throwaway servers stopped however this ends.
pgdir=$(mktemp -d)
s3dir=$(mktemp -d)
trap 'setup/pg.sh stop "$pgdir" || true; setup/s3.sh stop "$s3dir" || true' EXIT
# Assigned, then used: `X=$(...) cmd` would hide a failed start from set -e.
pg_url=$(setup/pg.sh start "$pgdir")
s3=$(setup/s3.sh start "$s3dir")
read -r s3_endpoint s3_access s3_secret <<<"$s3"
export RBV_TEST_DATABASE_URL=$pg_url RBV_TEST_S3_ENDPOINT=$s3_endpoint
export AWS_ACCESS_KEY_ID=$s3_access AWS_SECRET_ACCESS_KEY=$s3_secret
cargo test --profile ci -p rbv-server
# Several `rbv serve` processes on them as one service (skipped above without them).
cargo test --profile ci -p rbv-cli --test integration server_cluster
