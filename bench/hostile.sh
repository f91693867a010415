#!/usr/bin/env bash
# Attacks from a hostile host on the boot segment, Kindling and its peer side by side in the same run:
# DHCP against dnsmasq (bench/hostile-dhcp.ts, in network namespaces), TFTP against tftpd-hpa
# (bench/hostile-tftp.ts, when present). One table: per attack, the legitimate client's successes and median
# latency during the attack; ratio = peer p50 / Kindling p50 (above 1: Kindling answered faster). Each part is
# bounded in count and time (and stopped after 20 minutes whatever happens). Needs root and the packages
# .ci/run installs.
#   bench/hostile.sh [attempts per attack (default: each part's own, 20 for DHCP, 10 for TFTP)]
set -uo pipefail
cd "$(dirname "$0")/.."
tsx=node_modules/.bin/tsx
echo "| attack | Kindling ok | peer ok | Kindling p50 ms | peer p50 ms | ratio |"
echo "| --- | --- | --- | --- | --- | --- |"
rc=0
timeout 20m "$tsx" bench/hostile-dhcp.ts "$@" || rc=$?
if [[ -f bench/hostile-tftp.ts ]]; then
  timeout 20m "$tsx" bench/hostile-tftp.ts "$@" || rc=$?
fi
exit "$rc"
