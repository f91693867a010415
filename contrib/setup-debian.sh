#!/usr/bin/env bash
# Installs the Debian packages Kindling's tests and benchmarks talk to (real peers, firmware, tools).
# Run as root on Debian 12 (bookworm): `npm run setup:debian`. CI (.ci/run) calls it too.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  ipxe                                   # undionly.kpxe, ipxe.efi, snponly.efi served over TFTP/HTTP
  atftp tftp-hpa tftpd-hpa curl          # TFTP clients, the TFTP peer, HTTP/TFTP client
  iproute2 tcpdump                       # network namespaces, veth, captures
  dnsmasq isc-dhcp-client kea-admin      # DHCP peer, dhclient, perfdhcp (kea-admin ships perfdhcp)
  postgresql                             # PostgreSQL 15: the shared store of several nodes (test/helpers/postgres.ts)
  qemu-system-x86 ipxe-qemu seabios ovmf # end-to-end boots with real firmware
  shim-signed grub-efi-amd64-signed      # the Secure Boot chain Kindling stages: shim → signed netboot GRUB
  qemu-system-arm qemu-efi-aarch64       # arm64 UEFI boots (AAVMF)
  ignition                               # ignition-validate and the Ignition 2.14 binary
  cpio gpgv policycoreutils systemd      # initramfs building, signature checks, setfiles, systemd-analyze
  nginx-light wrk chromium               # the HTTP peer and load generator for benchmarks, the console's browser tests
  ipmitool openipmi redfishtool          # BMC peers: ipmitool, the ipmi_sim BMC simulator, a Redfish client
  strace                                 # system calls: the DHCP renewal journal's fsyncs (test/dhcp/renewal-journal.test.ts)
)
# busybox (udhcpc, the e2e initramfs) comes from either package; installing one removes the other,
# so an existing busybox-static is kept.
dpkg -s busybox-static >/dev/null 2>&1 || PACKAGES+=(busybox)

# The arm64 e2e scenario fetches arm64 packages (kernel, busybox-static, signed GRUB) with `apt-get download`
# and unpacks them, never installs them; apt needs the architecture in its lists for that.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  apt-get update -qq
fi

missing=()
for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi
