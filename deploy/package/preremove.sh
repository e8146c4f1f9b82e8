#!/bin/sh
# Before removal (deb "remove", rpm erase "0"; not on upgrade): stop and
# disable the service.
set -e
case "$1" in
  remove|0)
    if [ -d /run/systemd/system ]; then
      systemctl --no-reload disable --now sip_exporter.service >/dev/null 2>&1 || true
    fi
    ;;
esac
exit 0
