#!/bin/bash
# End-to-end test of the docker-compose testbed with podman (run by .ci/run, as root):
# builds the images (twinbox from the binary cargo built on the host), brings the testbed up,
# waits until twinbox has synced alice@remote into bob@local, checks over IMAP from the host
# that both hold the same messages and flags, flags a message on local and waits for it on
# remote, then tears everything down (containers, volumes, network) whatever happened.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cd "$root"
t0=$(date +%s)
log() { echo "test-compose [$(($(date +%s) - t0)) s]: $*"; }

eval "export $(bash "$here/podman-setup.sh" | tail -n 1)"
project="twinbox-ci-$$"
compose=(podman-compose -p "$project" -f "$here/docker-compose.yml" -f "$here/docker-compose.fallback.yml")
teardown() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    log "FAILED (exit $rc); container logs follow"
    for c in remote local twinbox remote-fallback twinbox-fallback; do
      podman logs --tail 40 "${project}_${c}_1" 2>&1 | sed "s/^/[$c] /" || true
    done
  fi
  "${compose[@]}" down -v >/dev/null 2>&1 || true
  podman volume ls -q | grep "^${project}_" | xargs -r podman volume rm -f >/dev/null 2>&1 || true
  podman network ls -q | grep "^${project}" | xargs -r podman network rm -f >/dev/null 2>&1 || true
  log "torn down"
  exit $rc
}
trap teardown EXIT

log "building twinbox"
cargo build --locked --bin twinbox -q
mkdir -p target/docker
cp target/debug/twinbox target/docker/twinbox

log "compose up"
TWINBOX_TARGET=prebuilt TWINBOX_INTERVAL=2 "${compose[@]}" up -d --build >"$root/target/docker/compose-up.log" 2>&1 \
  || { tail -n 40 "$root/target/docker/compose-up.log"; exit 1; }
log "up"

check="$here/imapcheck.py"
wait_for() { # seconds, description, command...
  local secs=$1 what=$2
  shift 2
  for _ in $(seq 1 "$secs"); do
    if "$@" >/dev/null 2>&1; then log "$what"; return 0; fi
    sleep 1
  done
  log "timed out waiting: $what"
  "$@" || true
  return 1
}
samples=$(grep -c $'\t' "$here/sample/manifest")
# podman runs health checks from systemd timers, absent here: run them by hand.
wait_for 180 "the servers are healthy" bash -c \
  "podman healthcheck run ${project}_remote_1 && podman healthcheck run ${project}_local_1 \
   && podman healthcheck run ${project}_remote-fallback_1"
wait_for 120 "bob@local holds alice@remote's $samples messages with their flags" \
  python3 "$check" same 127.0.0.1:1143 alice 127.0.0.1:2143 bob "$samples"
python3 "$check" same 127.0.0.1:1143 alice 127.0.0.1:2143 bob "$samples"

hash=$(python3 "$check" flag 127.0.0.1:2143 bob INBOX '\Flagged')
log "flagged message $hash on local"
wait_for 60 "the flag arrived on remote" bash -c \
  "python3 '$check' snapshot 127.0.0.1:1143 alice | grep -P '^INBOX\t$hash\t.*\\\\Flagged'"
python3 "$check" same 127.0.0.1:1143 alice 127.0.0.1:2143 bob "$samples"
wait_for 120 "alice@local holds remote-fallback's messages (no CONDSTORE/QRESYNC tier)" \
  python3 "$check" same 127.0.0.1:3143 alice 127.0.0.1:2143 alice "$samples"
python3 "$check" same 127.0.0.1:3143 alice 127.0.0.1:2143 alice "$samples"
hash=$(python3 "$check" flag 127.0.0.1:3143 alice INBOX '\Answered')
log "flagged message $hash on remote-fallback"
wait_for 60 "the flag arrived on local" bash -c \
  "python3 '$check' snapshot 127.0.0.1:2143 alice | grep -P '^INBOX\t$hash\t.*\\\\Answered'"
log "passed"
