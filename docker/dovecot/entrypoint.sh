#!/bin/bash
# Entry point of the testbed dovecot container.
#   testbed-dovecot          generate the TLS certificate if missing, start dovecot, seed the
#                            sample mail into $SEED_USER on first start, run until stopped
#   testbed-dovecot health   exit 0 once the server answers and the seeding is done
set -euo pipefail
conf="/etc/twinbox-testbed/${DOVECOT_CONF:-dovecot.conf}"
name="$(hostname -s)"
marker=/srv/mail/.twinbox-seeded

if [[ "${1:-}" == health ]]; then
  [[ -e "$marker" ]] || exit 1
  exec doveadm -c "$conf" mailbox status -u alice messages INBOX >/dev/null
fi

# The certificate: one per server, published in /certs/<name>.pem for clients to trust.
mkdir -p /run/twinbox-tls /certs
if [[ ! -s "/certs/$name.key" ]]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$name" \
    -addext "subjectAltName=DNS:$name,DNS:localhost,IP:127.0.0.1" \
    -keyout "/certs/$name.key" -out "/certs/$name.pem" 2>/dev/null
  chmod 600 "/certs/$name.key"
fi
cp "/certs/$name.pem" /run/twinbox-tls/cert.pem
cp "/certs/$name.key" /run/twinbox-tls/key.pem
chmod 600 /run/twinbox-tls/key.pem

dovecot -F -c "$conf" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT

# Wait for the auth socket before doveadm uses it.
for _ in $(seq 1 100); do
  doveadm -c "$conf" user alice >/dev/null 2>&1 && break
  sleep 0.1
done

if [[ ! -e "$marker" ]]; then
  if [[ -n "${SEED_USER:-}" ]]; then
    sample=/usr/share/twinbox-testbed/sample
    while IFS=$'\t' read -r folder file flags; do
      [[ -z "$folder" || "$folder" == \#* ]] && continue
      doveadm -c "$conf" mailbox create -u "$SEED_USER" "$folder" 2>/dev/null || true
      doveadm -c "$conf" save -u "$SEED_USER" -m "$folder" <"$sample/$file"
      if [[ -n "$flags" ]]; then
        # The message just saved is the highest UID of the folder.
        uid=$(doveadm -c "$conf" -f flow mailbox status -u "$SEED_USER" uidnext "$folder" | sed 's/.*=//')
        doveadm -c "$conf" flags add -u "$SEED_USER" "$flags" mailbox "$folder" uid $((uid - 1))
      fi
    done <"$sample/manifest"
    echo "testbed-dovecot: seeded $(grep -c $'\t' "$sample/manifest") sample messages into $SEED_USER"
  fi
  touch "$marker"
fi
wait "$pid"
