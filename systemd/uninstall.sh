#!/usr/bin/env bash
# Remove edgetally: stop and disable the service, remove the unit, drop-ins and PREFIX.
# Keeps /etc/edgetally (config, MQTT password) and the state (outbox, counters) unless --purge.
# Same environment overrides as install.sh: DESTDIR, PREFIX, CONFDIR, UNITDIR, SYSTEMCTL.
set -euo pipefail
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/opt/edgetally}
CONFDIR=${CONFDIR:-/etc/edgetally}
UNITDIR=${UNITDIR:-/etc/systemd/system}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
UNIT=edgetally.service
PURGE=; [ "${1:-}" = --purge ] && PURGE=1

if [ -z "$DESTDIR" ] || [ "$SYSTEMCTL" != systemctl ]; then
  "$SYSTEMCTL" disable --now "$UNIT" || true
fi
rm -f "$DESTDIR$UNITDIR/$UNIT"
rm -f "$DESTDIR$UNITDIR/$UNIT.d"/board-*.conf
rmdir "$DESTDIR$UNITDIR/$UNIT.d" 2>/dev/null || true
rm -rf "${DESTDIR}${PREFIX:?}"
if [ -z "$DESTDIR" ] || [ "$SYSTEMCTL" != systemctl ]; then
  "$SYSTEMCTL" daemon-reload || true
fi
if [ -n "$PURGE" ]; then
  rm -rf "${DESTDIR}${CONFDIR:?}" "$DESTDIR/var/lib/edgetally" "$DESTDIR/var/lib/private/edgetally" \
         "$DESTDIR/var/cache/edgetally" "$DESTDIR/var/cache/private/edgetally"
  echo "edgetally removed, config and state purged" >&2
else
  echo "edgetally removed; kept $CONFDIR and /var/lib/edgetally (uninstall.sh --purge removes them)" >&2
fi
