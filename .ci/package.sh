#!/usr/bin/env bash
# Release build and package test: a goreleaser snapshot (.goreleaser.yaml,
# goreleaser from the module proxy, pinned) into dist/, then the .deb of
# this machine's architecture installed with dpkg and its binary run:
#   - archives, checksums, .deb and .rpm for linux amd64 and arm64 exist and
#     match sha256sums.txt; the arm64 binary is arm64;
#   - the package holds the binary, the systemd unit, /etc/default and the
#     example config, and created the system user;
#   - /usr/bin/sip_exporter --version shows the snapshot version of
#     cmd/sip_exporter/VERSION, the checkout's revision and the build date;
#   - report on the demo capture equals `go run ./cmd/sip_exporter report`,
#     also with --config.file=/etc/sip_exporter/config.yml;
#   - run as the unit runs it (user sip_exporter, ambient CAP_NET_RAW
#     only), live capture on lo, promiscuous, comes up;
# then the package is purged and nothing of it is left (files, user).
# Needs root, dpkg, go and a git checkout. Outside CI a missing one skips
# with a message; under CI=true it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

. .ci/require.sh
require "package test" root dpkg dpkg-deb setpriv go git
if dpkg-query -W -f '${Status}' sip_exporter 2>/dev/null | grep -q installed || [ -e /usr/bin/sip_exporter ]; then
  echo "sip_exporter is already installed on this machine: not touching it" >&2
  exit 1
fi

tmp=$(mktemp -d)
installed=
cleanup() {
  if [ -n "$installed" ]; then
    dpkg --purge sip_exporter >/dev/null 2>&1 || true
  fi
  if [ -n "${capture_pid:-}" ]; then
    kill "$capture_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "package: $*" >&2; exit 1; }
now() { date +%s; }

# goreleaser takes the commit from git only when `git ls-remote --get-url`
# answers: give a checkout without a remote one through the environment
# (nothing is written to the repository's configuration).
if [ -z "$(git remote)" ]; then
  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=remote.origin.url
  export GIT_CONFIG_VALUE_0=https://github.com/sip-exporter/sip_exporter.git
fi

# goreleaser from the module proxy, pinned: what `go run
# github.com/goreleaser/goreleaser/v2@v2.15.1` runs, built once (go run
# would link it again for each command). Cold, the download and the build
# take minutes: the time is printed.
t0=$(now)
GOBIN="$tmp/bin" go install github.com/goreleaser/goreleaser/v2@v2.15.1
goreleaser="$tmp/bin/goreleaser"
t1=$(now)
echo "package: goreleaser v2.15.1 downloaded and built (or from the Go caches) in $((t1 - t0))s"
"$goreleaser" release --snapshot --clean > "$tmp/goreleaser.log" 2>&1 ||
  { cat "$tmp/goreleaser.log" >&2; fail "goreleaser release --snapshot failed"; }
t2=$(now)
echo "package: snapshot release in $((t2 - t1))s"

base=$(cat cmd/sip_exporter/VERSION)
short=$(git rev-parse --short HEAD)
head=$(git rev-parse HEAD)
version="$base-SNAPSHOT-$short"
# One of each: nfpm writes the snapshot version as 0.3.0~SNAPSHOT-abc1234
# (deb) and 0.3.0~SNAPSHOT_abc1234-1 (rpm), sorting before 0.3.0.
for f in "sip_exporter-$version.linux-amd64.tar.gz" "sip_exporter-$version.linux-arm64.tar.gz" \
  "sip_exporter_${base}~SNAPSHOT-${short}_amd64.deb" "sip_exporter_${base}~SNAPSHOT-${short}_arm64.deb" \
  "sip_exporter-${base}~SNAPSHOT_${short}-1.x86_64.rpm" "sip_exporter-${base}~SNAPSHOT_${short}-1.aarch64.rpm" \
  sha256sums.txt; do
  [ -s "dist/$f" ] || { ls dist >&2; fail "dist/$f missing"; }
done
(cd dist && sha256sum --quiet -c sha256sums.txt) || fail "checksums do not match"
[ "$(grep -c . dist/sha256sums.txt)" = 6 ] || fail "sha256sums.txt does not list the 6 archives and packages"
tar -xzf "dist/sip_exporter-$version.linux-arm64.tar.gz" -C "$tmp"
go version -m "$tmp/sip_exporter-$version.linux-arm64/sip_exporter" | grep -q 'GOARCH=arm64' ||
  fail "the arm64 archive's binary is not arm64"
for f in README.md capture/README.md collector/README.md dashboards/README.md deploy/README.md sip_exporter deploy/systemd/sip_exporter.service deploy/package/sip_exporter.default deploy/package/config.yml; do
  [ -e "$tmp/sip_exporter-$version.linux-arm64/$f" ] || fail "arm64 archive lacks $f"
done

arch=$(dpkg --print-architecture)
deb="dist/sip_exporter_${base}~SNAPSHOT-${short}_$arch.deb"
dpkg-deb -c "$deb" > "$tmp/contents"
for f in ./usr/bin/sip_exporter ./usr/lib/systemd/system/sip_exporter.service \
  ./etc/default/sip_exporter ./etc/sip_exporter/config.yml \
  ./usr/share/doc/sip_exporter/README.md ./usr/share/doc/sip_exporter/capture/README.md; do
  grep -q " $f\$" "$tmp/contents" || fail "$deb lacks $f"
done
for f in /etc/default/sip_exporter /etc/sip_exporter/config.yml; do
  dpkg-deb -I "$deb" conffiles | grep -qx "$f" || fail "$f is not a conffile of $deb"
done

installed=1
dpkg -i "$deb" >/dev/null
getent passwd sip_exporter | grep -q ':/usr/sbin/nologin$' || fail "no system user sip_exporter"
uid=$(id -u sip_exporter)
[ "$uid" -lt 1000 ] || fail "user sip_exporter has uid $uid, not a system uid"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify /usr/lib/systemd/system/sip_exporter.service || fail "systemd-analyze verify of the unit"
fi

out=$(/usr/bin/sip_exporter --version 2>&1)
echo "$out" | sed 's/^/package: installed: /'
echo "$out" | grep -q "^sip_exporter, version $version (branch: [^,]*, revision: $head)" ||
  fail "--version: want version $version and revision $head"
echo "$out" | grep -q "build user: *goreleaser$" || fail "--version: want build user goreleaser"
echo "$out" | grep -Eq "build date: *[0-9]{4}-[0-9]{2}-[0-9]{2}T" || fail "--version: no build date"

go run ./cmd/sip_exporter report deploy/demo/sip-demo.pcap > "$tmp/report.want"
/usr/bin/sip_exporter report deploy/demo/sip-demo.pcap > "$tmp/report.got"
diff "$tmp/report.want" "$tmp/report.got" || fail "the installed binary's report differs from go run's"
/usr/bin/sip_exporter report --config.file=/etc/sip_exporter/config.yml deploy/demo/sip-demo.pcap > /dev/null ||
  fail "/etc/sip_exporter/config.yml is not a valid --config.file"
echo "package: installed binary: report on the demo capture equals go run's ($(grep -c . "$tmp/report.got") lines); example config valid"

# As the unit runs it: user sip_exporter, CAP_NET_RAW ambient and nothing
# else in the bounding set.
port=$((20000 + RANDOM % 20000))
setpriv --reuid sip_exporter --regid sip_exporter --init-groups \
  --inh-caps -all,+net_raw --ambient-caps -all,+net_raw \
  --bounding-set -all,+net_raw \
  /usr/bin/sip_exporter --capture.interface=lo --capture.promiscuous --web.listen-address="127.0.0.1:$port" > "$tmp/serve.log" 2>&1 &
capture_pid=$!
ok=
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port" &&
      printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3) 2>/dev/null |
      grep -q '^sip_exporter_source_up{source="lo",type="interface"} 1'; then
    ok=1
    break
  fi
  sleep 0.1
done
[ -n "$ok" ] || { cat "$tmp/serve.log" >&2; fail "live capture as user sip_exporter with ambient capabilities did not come up"; }
kill "$capture_pid"
wait "$capture_pid" || true
capture_pid=
echo "package: live capture on lo as user sip_exporter (uid $uid, ambient CAP_NET_RAW only, promiscuous): up"

dpkg --purge sip_exporter >/dev/null
installed=
for f in /usr/bin/sip_exporter /usr/lib/systemd/system/sip_exporter.service /etc/default/sip_exporter /etc/sip_exporter; do
  [ ! -e "$f" ] || fail "$f left after purge"
done
! getent passwd sip_exporter >/dev/null || fail "user sip_exporter left after purge"
! getent group sip_exporter >/dev/null || fail "group sip_exporter left after purge"
t3=$(now)
echo "package: install, checks and purge in $((t3 - t2))s; nothing left"
