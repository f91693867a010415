#!/usr/bin/env bash
# The two-node proof of docs/postgres.md at full length: two `kindling serve` nodes in full DHCP mode on one
# PostgreSQL, perfdhcp for 30 s (the default `npm test` runs 10 s), a capture of every ACK, PostgreSQL stopped
# and started again, one node killed with SIGKILL. Needs root and the packages .ci/run installs.
#   bench/dhcp-two-nodes.sh [--seconds=30]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=30
for a in "$@"; do
  case "$a" in
    --seconds=*) seconds="${a#--seconds=}" ;;
    *) echo "unknown argument: $a" >&2; exit 2 ;;
  esac
done
KINDLING_TWO_NODES_SECONDS="$seconds" exec node_modules/.bin/vitest run test/store-pg/dhcp-nodes.test.ts
