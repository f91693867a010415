#!/usr/bin/env bash
# Leases per second at under 1 % drops: perfdhcp against Kindling (full mode, leases in SQLite), dnsmasq
# (--no-ping, lease file) and kea-dhcp4 (memfile, if installed) with the same pool, in the same run, inside
# network namespaces. Needs root and the packages .ci/run installs (+ kea-dhcp4-server for the Kea columns).
# PostgreSQL columns (a PostgreSQL 15 cluster started for the run, a fresh database per step):
#   --pg           adds kea-pg: Kea with lease-database type postgresql (schema by kea-admin db-init pgsql), and
#                  kea-pg-mt: the same with Kea's multi-threading on (4 threads)
#   --kindling-pg  adds kindling-pg: Kindling with its database on the same PostgreSQL, and kindling-pg-2: two
#                  Kindling nodes on it on one segment (perfdhcp broadcasts; both nodes pinned to the server's
#                  CPU, so they share the one core a single node has)
#   bench/dhcp.sh [--seconds=3] [--only=kindling,dnsmasq,kea,kea-pg,kea-pg-mt,kindling-pg,kindling-pg-2] [--pg]
#                 [--kindling-pg]
#                 [--rates=9000,11000,13500 (default: the full ladder)]
set -euo pipefail
cd "$(dirname "$0")/.."
exec node_modules/.bin/tsx bench/dhcp-run.ts "$@"
