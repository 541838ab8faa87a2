#!/bin/bash
# Makes podman and podman-compose usable on a machine without a Docker engine or a
# reachable registry (a CI sandbox, say): the packages, a containers.conf that works without
# systemd and cgroup delegation, and a debian:bookworm-slim base image built with debootstrap.
# Safe to run again. Prints the CONTAINERS_CONF to export.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export DEBIAN_FRONTEND=noninteractive
pkgs=(podman podman-compose runc debootstrap golang-github-containernetworking-plugin-dnsname)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

conf_dir="${TWINBOX_PODMAN_DIR:-/var/cache/twinbox-podman}"
mkdir -p "$conf_dir"
cat >"$conf_dir/containers.conf" <<'CONF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF="$conf_dir/containers.conf"

if ! podman image exists docker.io/library/debian:bookworm-slim; then
  rootfs="$conf_dir/bookworm-rootfs"
  if [[ ! -x "$rootfs/bin/sh" ]]; then
    rm -rf "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" >/dev/null
  fi
  tar -C "$rootfs" -c . | podman import -q - docker.io/library/debian:bookworm-slim >/dev/null
fi
echo "CONTAINERS_CONF=$CONTAINERS_CONF"
