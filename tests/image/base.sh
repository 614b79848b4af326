#!/usr/bin/env bash
# The image tests' BASE, made here because no image registry is reachable: Debian
# bookworm (debootstrap's minbase) with Debian's python3 (3.11, the version gw
# supports), trimmed as Debian's slim images are (no docs but the copyright files,
# no man pages, no locales, no apt lists or caches), imported into podman as TAG.
#
#   tests/image/base.sh localhost/gw-test-base:bookworm     # about a minute, as root
#
# run.sh names the tag after this file's checksum, so a change here makes a new base.
set -euo pipefail
tag=$1
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d "${TMPDIR:-/tmp}/gw-test-base.XXXXXX")
# --one-file-system: an interrupted debootstrap can leave /proc mounted in the tree
trap 'rm -rf --one-file-system "$work"' EXIT
root=$work/rootfs

timeout 900 debootstrap --variant=minbase --include=python3 bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -30 "$work/debootstrap.log" >&2; echo "debootstrap failed (log above)" >&2; exit 1; }

# What Debian's slim images leave out, and the same rule for packages installed later
# (the build stage's compiler).
find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/{man,info,locale,groff,lintian,linda}/* \
    "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
    "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/var/cache/debconf/*-old
cat >"$root/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF

tar --numeric-owner -C "$root" -c . | podman --runtime /usr/sbin/runc import \
    --change 'ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD=["python3"]' - "$tag" >"$work/import.log" 2>&1 \
    || { cat "$work/import.log" >&2; exit 1; }
