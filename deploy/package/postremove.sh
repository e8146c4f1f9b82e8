#!/bin/sh
# After removal: systemd forgets the unit; on purge (deb) the system user
# and group go too (dpkg has removed the configuration files).
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" = purge ]; then
  if getent passwd sip_exporter >/dev/null; then
    userdel sip_exporter >/dev/null 2>&1 || true
  fi
  if getent group sip_exporter >/dev/null; then
    groupdel sip_exporter >/dev/null 2>&1 || true
  fi
  rmdir /etc/sip_exporter >/dev/null 2>&1 || true
fi
exit 0
