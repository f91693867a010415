#!/usr/bin/env bash
# A rack powered on at once: N simulated machines doing the whole boot conversation (DHCP, TFTP, iPXE's
# DHCP, /boot.ipxe, /ipxe, kernel, initrd, Ignition, install reports) against Kindling in full DHCP mode
# and against dnsmasq + nginx, in the same run, inside network namespaces it creates and removes.
# Needs root and the packages .ci/run installs. See docs/storm.md.
#   bench/storm.sh [--machines=1000] [--window=60] [--kernel-mb=50] [--initrd-mb=300] [--only=peer,kindling]
#                  [--rounds=1] [--max-seconds=3600] [--nginx-workers=1] [--tftp-max=0 (= machines)]
#                  [--pin=true] [--seed=1] [--cpu-prof] [--keep]
set -euo pipefail
cd "$(dirname "$0")/.."
exec node --import tsx bench/storm-run.ts "$@"
