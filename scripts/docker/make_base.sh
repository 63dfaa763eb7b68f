#!/usr/bin/env bash
# Makes a stand-in for the Dockerfile's base image (node:20-bookworm-slim) when the real one is
# neither present nor pullable (Docker Hub is unreachable on some machines, e.g. CI sandboxes).
#
# The stand-in is Debian bookworm from deb.debian.org (debootstrap) with Debian's nodejs and npm, a
# `node` user with uid 1000 as in the real image, and the extra CA certificates this machine trusts
# (those `update-ca-certificates` added from /usr/local/share/ca-certificates) so that npm and Deno
# can reach their registries from inside a build through an intercepting egress proxy.
# The root file system is cached as a tarball under ~/.cache/mqttwk/ so that reruns take seconds.
#
# Usage: scripts/docker/make_base.sh [--force]   (needs root for debootstrap, and a running dockerd)
set -euo pipefail

BASE_IMAGE="${BASE_IMAGE:-node:20-bookworm-slim}"
CACHE_DIR="${MQTTWK_CACHE_DIR:-$HOME/.cache/mqttwk}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
force=0
if [[ ${1:-} == "--force" ]]; then force=1; fi

log() { echo "make_base: $*" >&2; }

if ((force == 0)) && docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "$BASE_IMAGE is present; nothing to do"
  exit 0
fi
if ((force == 0)) && timeout 20 docker pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
  log "pulled the real $BASE_IMAGE"
  exit 0
fi

# The certificates are part of the cache key: a machine with other local CAs gets its own tarball.
shopt -s nullglob
local_cas=(/usr/local/share/ca-certificates/*.crt)
ca_key="$(cat /dev/null "${local_cas[@]}" | sha256sum | cut -c1-12)"
tarball="$CACHE_DIR/node-20-bookworm-standin-$ca_key.tar.gz"

if [[ ! -s $tarball || $force == 1 ]]; then
  command -v debootstrap >/dev/null || { log "debootstrap is missing (apt-get install debootstrap)"; exit 1; }
  mkdir -p "$CACHE_DIR"
  rootfs="$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")"
  trap 'umount "$rootfs/proc" 2>/dev/null || true; rm -rf "$rootfs"' EXIT
  log "debootstrap bookworm into $rootfs (a few minutes, once; log in $CACHE_DIR/debootstrap.log)"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$MIRROR" \
    >"$CACHE_DIR/debootstrap.log" 2>&1 || { tail -20 "$CACHE_DIR/debootstrap.log" >&2; exit 1; }
  # npm's dependency web (virtual packages, cycles) is beyond debootstrap's resolver: apt does it.
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  mount -t proc proc "$rootfs/proc"
  # npm is ~400 small packages: without an fsync per file dpkg takes seconds, not minutes.
  echo force-unsafe-io >"$rootfs/etc/dpkg/dpkg.cfg.d/mqttwk-unsafe-io"
  chroot "$rootfs" sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends nodejs npm && apt-get clean' \
    >>"$CACHE_DIR/debootstrap.log" 2>&1 || { tail -20 "$CACHE_DIR/debootstrap.log" >&2; exit 1; }
  rm "$rootfs/etc/dpkg/dpkg.cfg.d/mqttwk-unsafe-io"
  umount "$rootfs/proc"
  : >"$rootfs/etc/resolv.conf"

  for ca in "${local_cas[@]}"; do cp "$ca" "$rootfs/usr/local/share/ca-certificates/"; done
  chroot "$rootfs" update-ca-certificates >/dev/null 2>&1

  # The real image's unprivileged user: uid/gid 1000, home /home/node.
  echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$rootfs/etc/passwd"
  echo 'node:x:1000:' >>"$rootfs/etc/group"
  echo 'node:!:19000:0:99999:7:::' >>"$rootfs/etc/shadow"
  mkdir -p "$rootfs/home/node" && chown 1000:1000 "$rootfs/home/node"

  # Slim like the real image: no package caches, lists, docs or manuals.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/tmp/*
  tar -C "$rootfs" -I "gzip -1" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball" # -1: fast
  log "cached $(du -h "$tarball" | cut -f1) at $tarball"
fi

bundle=/etc/ssl/certs/ca-certificates.crt
docker import \
  --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV NODE_EXTRA_CA_CERTS=$bundle" \
  --change "ENV DENO_CERT=$bundle" \
  --change 'CMD ["node"]' \
  "$tarball" "$BASE_IMAGE" >/dev/null
log "imported the stand-in as $BASE_IMAGE ($(docker run --rm "$BASE_IMAGE" node --version))"
