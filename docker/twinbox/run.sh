#!/bin/sh
# Entry point of the twinbox container: sync every $TWINBOX_INTERVAL seconds (default 30)
# with the configuration in $TWINBOX_CONFIG (default /etc/twinbox/twinbox.conf). A failed
# run (a server not up yet, say) is retried at the next interval.
set -u
config="${TWINBOX_CONFIG:-/etc/twinbox/twinbox.conf}"
interval="${TWINBOX_INTERVAL:-30}"
trap 'exit 0' TERM INT
while :; do
  twinbox -c "$config" -o "$@"
  echo "twinbox-loop: exit $?; next sync in ${interval}s"
  sleep "$interval" &
  wait $!
done
