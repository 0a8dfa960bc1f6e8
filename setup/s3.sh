#!/usr/bin/env bash
# A throwaway S3-compatible server on loopback (SeaweedFS's `weed mini`, from
# the pinned wheel setup/fetch.py unpacks), for the test suite (setup/test.sh).
#
#   setup/s3.sh start DIR   fresh server with data in DIR, one bucket `rbv` and
#                           one identity; prints "ENDPOINT ACCESS_KEY SECRET_KEY"
#   setup/s3.sh stop DIR    stops it (if running) and removes DIR
#
# Every port is a free one on 127.0.0.1; a random key pair: for tests only.
set -euo pipefail
cache=${RBV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rbv}
weed=$cache/tools/weed
[ $# -eq 2 ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

case $1 in
start)
  [ -x "$weed" ] || { echo "rbv s3: $weed not found: run setup/setup.sh" >&2; exit 1; }
  mkdir -p "$2"
  dir=$(cd "$2" && pwd)
  access=rbv$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
  secret=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
  umask 077
  cat >"$dir/s3.json" <<EOF
{"identities":[{"name":"rbv","credentials":[{"accessKey":"$access","secretKey":"$secret"}],
 "actions":["Read","Write","List","Tagging"]}]}
EOF
  mkdir -p "$dir/data"
  # Each of weed's listeners (HTTP and gRPC) on a port of its own from the
  # kernel; another process may take one first, so a failed start tries again.
  for _ in 1 2 3; do
    read -r -a p < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(14)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
    args=(-dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -bucket=rbv -s3.config="$dir/s3.json"
      -master.port="${p[0]}" -master.port.grpc="${p[1]}" -volume.port="${p[2]}" -volume.port.grpc="${p[3]}"
      -filer.port="${p[4]}" -filer.port.grpc="${p[5]}" -s3.port="${p[6]}" -s3.port.grpc="${p[7]}"
      -s3.port.iceberg="${p[8]}" -s3.port.lance="${p[9]}" -admin.port="${p[10]}" -admin.port.grpc="${p[11]}"
      -filer.localSocket="$dir/filer.sock" -s3.localSocket="$dir/s3.sock"
      -webdav=false -admin.ui=false -master.telemetry=false)
    nohup "$weed" mini "${args[@]}" >"$dir/weed.log" 2>&1 &
    echo $! >"$dir/weed.pid"
    endpoint="http://127.0.0.1:${p[6]}"
    # Ready when the bucket answers a signed listing.
    for _ in $(seq 1 120); do
      kill -0 "$(cat "$dir/weed.pid")" 2>/dev/null || break
      if curl -sf -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" --user "$access:$secret" \
          "$endpoint/rbv/?list-type=2&max-keys=1"; then
        echo "$endpoint $access $secret"
        exit 0
      fi
      sleep 0.5
    done
    kill "$(cat "$dir/weed.pid")" 2>/dev/null || true
    wait "$(cat "$dir/weed.pid")" 2>/dev/null || true
    grep -q "address already in use" "$dir/weed.log" || break
  done
  echo "rbv s3: the server did not start:" >&2
  tail -n 20 "$dir/weed.log" >&2
  exit 1
  ;;
stop)
  [ -d "$2" ] || exit 0
  dir=$(cd "$2" && pwd)
  if [ -f "$dir/weed.pid" ]; then
    pid=$(cat "$dir/weed.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2; exit 2
  ;;
esac
