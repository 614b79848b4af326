#!/usr/bin/env bash
# make image-test: gw's container image built with the Containerfile and run for real.
#
# 1. installs what it needs when missing (Debian's podman, runc, debootstrap, redis-server,
#    and for deploy/ docker-compose and haproxy);
# 2. makes the BASE (tests/image/base.sh: Debian's python3 on a debootstrap) unless the
#    one for this base.sh exists already: no image registry is reachable here;
# 3. builds the image (podman build --network host: the build stage reaches Debian's
#    and PyPI's package registries), timed;
# 4. runs tests/image with pytest against it (GW_IMAGE, GW_IMAGE_BASE);
# 5. removes the containers the tests started and the image; keeps the base and
#    podman's layer cache for the next run (`make image-clean` removes those).
#
# Podman runs as root with two settings this machine needs: the runc runtime, and no
# default ulimits (containers.conf here, via CONTAINERS_CONF).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}

if [ "$(id -u)" != 0 ]; then
    echo "make image-test runs podman as root (and debootstrap): re-running with sudo" >&2
    exec sudo --preserve-env=PY,PIP_CERT "$0" "$@"
fi

need=()
command -v podman >/dev/null || need+=(podman)
[ -x /usr/sbin/runc ] || need+=(runc)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v redis-server >/dev/null || need+=(redis-server)
# deploy/: compose.yaml checked by docker-compose's schema, haproxy.cfg run on loopback
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v haproxy >/dev/null || need+=(haproxy)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

export CONTAINERS_CONF=$PWD/tests/image/containers.conf
podman=(podman --runtime /usr/sbin/runc)
# One image test at a time on this machine: they share podman's storage and the tags.
exec 9>/tmp/gw-image-test.lock
flock -w 1200 9

ours() {  # images of earlier runs (tests/image's tags), and with --clean the bases too
    "${podman[@]}" images --format '{{.Repository}}:{{.Tag}}' | grep -E "^localhost/($1):" || true
}
"${podman[@]}" ps -a -q --filter label=gw-image-test | xargs -r "${podman[@]}" rm -f >/dev/null 2>&1 || true
ours 'gw' | grep ':image-test-' | xargs -r "${podman[@]}" rmi -f >/dev/null 2>&1 || true
if [ "${1:-}" = --clean ]; then
    ours 'gw-test-base' | xargs -r "${podman[@]}" rmi -f
    "${podman[@]}" image prune -f >/dev/null  # dangling images: podman's layer cache
    exit 0
fi

now() { date +%s.%N; }
seconds() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$2"; }

image=localhost/gw:image-test-$$
report=$(mktemp /tmp/gw-image-report.XXXXXX)
cleanup() {
    "${podman[@]}" ps -a -q --filter label=gw-image-test | xargs -r "${podman[@]}" rm -f >/dev/null 2>&1 || true
    "${podman[@]}" rmi -f "$image" >/dev/null 2>&1 || true
    rm -f "$report"
}
trap cleanup EXIT

base=localhost/gw-test-base:bookworm-$(sha256sum tests/image/base.sh | cut -c1-12)
if "${podman[@]}" image exists "$base"; then
    echo "base: $base (kept from an earlier run)"
else
    ours 'gw-test-base' | xargs -r "${podman[@]}" rmi -f >/dev/null 2>&1 || true  # earlier recipes' bases
    echo "base: making $base (debootstrap bookworm minbase + python3)"
    t0=$(now)
    bash tests/image/base.sh "$base"
    echo "base image (debootstrap, import): $(seconds "$t0" "$(now)") s" | tee -a "$report"
fi

version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# pip inside the build trusts what pip here trusts (this machine's CA bundle), as a build secret.
ca=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
secret=()
[ -f "$ca" ] && secret=(--secret "id=pip-ca,src=$ca")

echo "image: building $image"
t0=$(now)
timeout 1500 "${podman[@]}" build --network host --format docker --layers \
    --build-arg BASE="$base" --build-arg VERSION="$version" --build-arg REVISION="$revision" \
    "${secret[@]}" -f Containerfile -t "$image" . >/tmp/gw-image-build.log 2>&1 \
    || { tail -40 /tmp/gw-image-build.log >&2; echo "podman build failed (log above)" >&2; exit 1; }
cached=$(grep -c '^--> Using cache' /tmp/gw-image-build.log || true)
echo "image build: $(seconds "$t0" "$(now)") s ($cached layers reused from podman's cache)" | tee -a "$report"

status=0
GW_IMAGE=$image GW_IMAGE_BASE=$base GW_IMAGE_REVISION=$revision GW_IMAGE_VERSION=$version GW_IMAGE_REPORT=$report \
    "$PY" -m pytest -m image tests/image "$@" || status=$?
echo "--- measured"
cat "$report"
exit "$status"
