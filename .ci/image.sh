#!/usr/bin/env bash
# Builds the container image of deploy/Dockerfile with podman and runs it.
# No registry is reachable from CI, so the image is the Dockerfile's
# "prebuilt" target on scratch, from a static binary built here
# (CGO_ENABLED=0). Checks:
#   - the image runs as the non-root user 65532;
#   - `report` on the demo capture inside the container prints what the
#     binary prints outside, and --version is the same;
#   - `serve` on the demo capture, scraped over HTTP (host network,
#     127.0.0.1): its sip_ families equal `report --format=prometheus`;
#   - live capture on lo, promiscuous, as the non-root user with exactly
#     CAP_NET_RAW (the README's podman line) comes up, and fails to start
#     without it.
# Needs root, podman and runc. Outside CI a missing one skips with a
# message; under CI=true it fails. Everything podman stores goes to a
# temporary directory that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

. .ci/require.sh
require "image test" root podman runc go

tmp=$(mktemp -d)
containers=()
cleanup() {
  for c in "${containers[@]}"; do
    pm rm -f -t 0 "$c" >/dev/null 2>&1 || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

# Podman as CI can run it: no ulimits to set, cgroups without systemd, runc,
# and a store of its own (vfs: no overlay mounts left behind).
cat > "$tmp/containers.conf" <<'EOF'
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
EOF
export CONTAINERS_CONF="$tmp/containers.conf"
pm() {
  podman --runtime runc --root "$tmp/store" --runroot "$tmp/run" --storage-driver vfs "$@"
}

grep -q 'dockerfile: deploy/Dockerfile' deploy/docker-compose.yml ||
  { echo "deploy/docker-compose.yml does not build deploy/Dockerfile" >&2; exit 1; }

mkdir "$tmp/context"
CGO_ENABLED=0 go build -trimpath -buildvcs=false -o "$tmp/context/sip_exporter" ./cmd/sip_exporter
bin="$tmp/context/sip_exporter"
image=localhost/sip_exporter:ci
pm build --quiet -f deploy/Dockerfile --target prebuilt --build-arg BASE_IMAGE=scratch -t "$image" "$tmp/context" >/dev/null

user=$(pm image inspect --format '{{.Config.User}}' "$image")
[ "$user" = 65532:65532 ] || { echo "image user is \"$user\", want 65532:65532" >&2; exit 1; }

run() { pm run --rm -v "$PWD/deploy/demo:/demo:ro" "$image" "$@"; }

# --version and report: the same as the binary's own.
diff <("$bin" --version 2>&1) <(run --version 2>&1) ||
  { echo "--version in the container differs" >&2; exit 1; }
"$bin" report deploy/demo/sip-demo.pcap > "$tmp/report.want"
run report /demo/sip-demo.pcap > "$tmp/report.got"
diff "$tmp/report.want" "$tmp/report.got" ||
  { echo "report in the container differs from the binary's" >&2; exit 1; }
echo "image: report on the demo capture equals the binary's ($(grep -c . "$tmp/report.got") lines)"

# freeport prints a TCP port on 127.0.0.1 that nothing listens on.
freeport() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  echo "no free port" >&2
  return 1
}

# scrape prints the text exposition of http://127.0.0.1:PORT/metrics (bash's
# /dev/tcp: no curl needed), or fails.
scrape() (
  exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: text/plain;version=0.0.4\r\n\r\n' >&3
  sed '1,/^\r$/d' <&3
)

# sip_families keeps the lines of the sip_ families (not sip_exporter_),
# with their HELP and TYPE lines: what report --format=prometheus prints.
sip_families() {
  awk '{ n = $0; if ($1 == "#" && ($2 == "HELP" || $2 == "TYPE")) n = $3 }
       n ~ /^sip_/ && n !~ /^sip_exporter_/'
}

# serve, scraped over HTTP on the host network.
"$bin" report --format=prometheus deploy/demo/sip-demo.pcap | sip_families > "$tmp/serve.want"
port=$(freeport)
c=$(pm run -d --network host -v "$PWD/deploy/demo:/demo:ro" "$image" \
  --capture.pcap-file=/demo/sip-demo.pcap --web.listen-address="127.0.0.1:$port")
containers+=("$c")
pid=$(pm inspect --format '{{.State.Pid}}' "$c")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
[ "$uid" = 65532 ] || { echo "serve runs as uid $uid, want 65532" >&2; exit 1; }
ok=
for _ in $(seq 200); do
  if scrape "$port" > "$tmp/metrics" 2>/dev/null &&
     sip_families < "$tmp/metrics" > "$tmp/serve.got" &&
     cmp -s "$tmp/serve.want" "$tmp/serve.got"; then
    ok=1
    break
  fi
  sleep 0.1
done
if [ -z "$ok" ]; then
  echo "serve in the container: /metrics sip_ families differ from report --format=prometheus:" >&2
  diff "$tmp/serve.want" "$tmp/serve.got" | head -40 >&2 || true
  pm logs "$c" >&2 || true
  exit 1
fi
grep -q '^sip_exporter_build_info{.*version="'"$(cat cmd/sip_exporter/VERSION)"'"' "$tmp/metrics" ||
  { echo "serve: no sip_exporter_build_info with version $(cat cmd/sip_exporter/VERSION)" >&2; exit 1; }
pm rm -f -t 5 "$c" >/dev/null
echo "image: serve (uid 65532) scraped on 127.0.0.1:$port: $(grep -c . "$tmp/serve.got") sip_ lines equal report's"

# Live capture as the non-root user: exactly CAP_NET_RAW (promiscuous mode
# is a socket membership, PACKET_MR_PROMISC: no CAP_NET_ADMIN).
port=$(freeport)
c=$(pm run -d --network host --cap-drop ALL --cap-add NET_RAW "$image" \
  --capture.interface=lo --capture.promiscuous --web.listen-address="127.0.0.1:$port")
containers+=("$c")
ok=
for _ in $(seq 100); do
  if scrape "$port" 2>/dev/null | grep -q '^sip_exporter_source_up{source="lo",type="interface"} 1$'; then
    ok=1
    break
  fi
  sleep 0.1
done
if [ -z "$ok" ]; then
  echo "live capture on lo as uid 65532 with NET_RAW did not come up" >&2
  pm logs "$c" >&2 || true
  exit 1
fi
pm rm -f -t 5 "$c" >/dev/null
# Without it the exporter must stop at start (timeout: it did not).
if out=$(timeout 30 podman --runtime runc --root "$tmp/store" --runroot "$tmp/run" --storage-driver vfs \
    run --rm --network host --cap-drop ALL "$image" --capture.interface=lo \
    --web.listen-address="127.0.0.1:$(freeport)" 2>&1) || [ $? = 124 ]; then
  echo "live capture without capabilities did not stop at start: $out" >&2
  exit 1
fi
case "$out" in
  *"operation not permitted"*) ;;
  *) echo "live capture without capabilities: want \"operation not permitted\", got: $out" >&2; exit 1 ;;
esac
echo "image: live capture on lo, promiscuous, as uid 65532 with exactly NET_RAW: up; without it: refused"
