#!/usr/bin/env bash
# Build a stand-in for the Dockerfile's base (python:3.11-slim-bookworm) from Debian's own
# packages, for a machine whose Docker engine reaches Debian's mirror and PyPI but not
# Docker Hub. Then build the real Dockerfile on it:
#
#   sudo scripts/debian_base_image.sh                    # -> local/python:3.11-bookworm
#   DOCKER_BUILDKIT=1 docker build --network host \
#       --build-arg PYTHON_IMAGE=local/python:3.11-bookworm -t fulcrum-sync:test .
#
# Debian bookworm's python3 (3.11) in a virtualenv at /opt/python, first on PATH, so `pip`
# and console scripts behave as in the official image (whose Python lives in /usr/local).
# No compiler: like the slim image, a dependency without a wheel fails the build here too.
# EXTRA_CA_CERTS="a.crt b.crt" adds certificates to the image's trust store (for a
# TLS-intercepting proxy in front of PyPI). Needs root, debootstrap and a Docker engine.
set -euo pipefail

tag=${1:-local/python:3.11-bookworm}
rootfs=$(mktemp -d /tmp/fulcrum-base.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT

# debootstrap's default mirror unless DEBIAN_MIRROR names another.
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" ${DEBIAN_MIRROR:+"$DEBIAN_MIRROR"}
for cert in ${EXTRA_CA_CERTS:-}; do
    cp "$cert" "$rootfs/usr/local/share/ca-certificates/$(basename "${cert%.*}").crt"
done
chroot "$rootfs" update-ca-certificates
chroot "$rootfs" python3 -m venv /opt/python
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/*

tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$tag"
echo "built $tag"
