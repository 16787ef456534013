#!/usr/bin/env bash
# `make image-test`: build deploy/Containerfile with buildah on a local Debian base and test the image
# (tests/image/). No image registry is needed: the base is made from Debian's packages with mmdebstrap
# and cached in var/image/ (delete it to rebuild). Needs root for buildah's chroot isolation.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

: "${IMAGE_DEBIAN_SUITE:=bookworm}"  # its python3 must be >= 3.11
: "${IMAGE_DEBIAN_MIRROR:=http://deb.debian.org/debian}"
base_tar="var/image/debian-$IMAGE_DEBIAN_SUITE-python3.tar"
base_image="localhost/payment-service-base:$IMAGE_DEBIAN_SUITE"
image="${PAYMENTS_TEST_IMAGE:-localhost/payment-service:image-test}"

if [[ $(id -u) -ne 0 ]]; then
  echo "make image-test needs root (buildah --isolation chroot, mmdebstrap); run it as root." >&2
  exit 1
fi
missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
if ((${#missing[@]})); then
  echo "Installing ${missing[*]} with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

if [[ ! -s $base_tar ]]; then
  mkdir -p var/image
  echo "Building the Debian $IMAGE_DEBIAN_SUITE base into $base_tar (cached for later runs)" >&2
  mmdebstrap --mode=root --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$IMAGE_DEBIAN_SUITE" "$base_tar.partial" "$IMAGE_DEBIAN_MIRROR"
  mv "$base_tar.partial" "$base_tar"
fi
if ! buildah inspect --type image "$base_image" >/dev/null 2>&1; then
  container=$(buildah from scratch)
  trap 'buildah rm "$container" >/dev/null' EXIT
  tar -C "$(buildah mount "$container")" -xf "$base_tar"
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$container"
  buildah commit --quiet "$container" "$base_image" >/dev/null
  buildah umount "$container" >/dev/null
fi

# pip inside the build trusts an extra CA bundle only when it is mounted in.
cert_args=()
if [[ -n ${PIP_CERT:-} && -f $PIP_CERT ]]; then
  cert_args=(-v "$PIP_CERT:/etc/build-ca.pem:ro" --build-arg PIP_CERT=/etc/build-ca.pem)
fi
buildah bud --isolation chroot --format docker --pull=false --layers \
  --build-arg BASE_IMAGE="$base_image" --build-arg REVISION="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  "${cert_args[@]}" -f deploy/Containerfile -t "$image" .

PAYMENTS_TEST_IMAGE="$image" .venv/bin/pytest tests/image -p no:cacheprovider "$@"
