#!/usr/bin/env bash
# Wall time from QEMU start to the booted marker, dnsmasq + nginx versus Kindling, same rig, same run.
# Needs root (network namespaces, tap devices, ports 67/69) and the packages .ci/run installs.
#   bench/boot.sh [--only=peer|kindling] [bios-ipxe|bios-chain|uefi|uefi-http|uefi-secboot|arm64 ...]
set -euo pipefail
cd "$(dirname "$0")/.."
exec node_modules/.bin/tsx bench/boot-run.ts "$@"
