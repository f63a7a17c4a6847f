#!/bin/sh
# Downloads the pinned third-party files of the host image and checks their sha256 against
# deployments/host/versions.env; or (`update`) writes the sums of the versions named there.
#
#   pinned.sh fetch DEST ARCH   download for ARCH (amd64 | arm64) into DEST, verified
#   pinned.sh update            download for every ARCH and write the sums into versions.env
#
# DEST gets: cloud-hypervisor, firmware/hypervisor-fw (amd64), firmware/CLOUDHV.fd.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
PINS=${PINS:-$HERE/versions.env}
# shellcheck disable=SC1090
. "$PINS"

# PINNED_MIRROR serves the same paths as github.com (air-gapped builds); the sha256 sums
# are what make any source trustworthy.
GH=${PINNED_MIRROR:-https://github.com}
PROTO='=https'
[ -z "${PINNED_MIRROR:-}" ] || PROTO='=http,https'

# The files of one architecture: "<name in DEST> <sum variable> <URL>" per line.
files() {
  case "$1" in
    amd64)
      echo "cloud-hypervisor CLOUD_HYPERVISOR_SHA256_amd64 $GH/cloud-hypervisor/cloud-hypervisor/releases/download/$CLOUD_HYPERVISOR_VERSION/cloud-hypervisor-static"
      echo "firmware/hypervisor-fw RUST_HYPERVISOR_FIRMWARE_SHA256_amd64 $GH/cloud-hypervisor/rust-hypervisor-firmware/releases/download/$RUST_HYPERVISOR_FIRMWARE_VERSION/hypervisor-fw"
      echo "firmware/CLOUDHV.fd EDK2_CLOUDHV_SHA256_amd64 $GH/cloud-hypervisor/edk2/releases/download/$EDK2_CLOUDHV_TAG/CLOUDHV.fd"
      ;;
    arm64)
      echo "cloud-hypervisor CLOUD_HYPERVISOR_SHA256_arm64 $GH/cloud-hypervisor/cloud-hypervisor/releases/download/$CLOUD_HYPERVISOR_VERSION/cloud-hypervisor-static-aarch64"
      echo "firmware/CLOUDHV.fd EDK2_CLOUDHV_SHA256_arm64 $GH/cloud-hypervisor/edk2/releases/download/$EDK2_CLOUDHV_TAG/CLOUDHV_EFI.fd"
      ;;
    *)
      echo "pinned.sh: unsupported architecture '$1' (amd64 or arm64)" >&2
      exit 2
      ;;
  esac
}

download() { # URL FILE
  curl --fail --silent --show-error --location --retry 3 --proto "$PROTO" -o "$2" "$1"
}

fetch() { # DEST ARCH
  dest=$1
  list=$(files "$2")
  mkdir -p "$dest/firmware"
  echo "$list" | while read -r name var url; do
    sum=$(eval "echo \${$var:-UNSET}")
    if [ "$sum" = UNSET ] || [ -z "$sum" ]; then
      echo "pinned.sh: $var is not set in $PINS; run deployments/host/pinned.sh update (see the file's header)" >&2
      exit 1
    fi
    download "$url" "$dest/$name"
    if ! echo "$sum  $dest/$name" | sha256sum -c --quiet -; then
      echo "pinned.sh: $url does not match $var in $PINS" >&2
      exit 1
    fi
    echo "pinned.sh: $name ($url) verified"
  done
  chmod 0755 "$dest/cloud-hypervisor"
  chmod 0644 "$dest"/firmware/*
}

update() {
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  for arch in amd64 arm64; do
    list=$(files "$arch")
    echo "$list" | while read -r name var url; do
      download "$url" "$tmp/file"
      sum=$(sha256sum "$tmp/file" | cut -d' ' -f1)
      sed -i "s|^$var=.*|$var=$sum|" "$PINS"
      echo "$var=$sum  ($url)"
    done
  done
}

case "${1:-}" in
  fetch) [ $# -eq 3 ] || { echo "usage: pinned.sh fetch DEST ARCH" >&2; exit 2; }; fetch "$2" "$3" ;;
  update) update ;;
  *) echo "usage: pinned.sh fetch DEST ARCH | pinned.sh update" >&2; exit 2 ;;
esac
