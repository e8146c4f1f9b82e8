#!/bin/sh
# Before install or upgrade (deb and rpm): the system user and group that
# the sip_exporter service runs as.
set -e
if ! getent group sip_exporter >/dev/null; then
  groupadd --system sip_exporter
fi
if ! getent passwd sip_exporter >/dev/null; then
  useradd --system --gid sip_exporter --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin --comment "sip_exporter" sip_exporter
fi
exit 0
