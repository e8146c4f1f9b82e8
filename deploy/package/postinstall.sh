#!/bin/sh
# After install or upgrade (deb and rpm): systemd learns the unit; a
# running service is restarted onto the new binary. A fresh install does
# not start the service: it needs a source in /etc/default/sip_exporter.
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
  systemctl try-restart sip_exporter.service >/dev/null 2>&1 || true
fi
exit 0
