#!/usr/bin/env bash
# Kindling's HTTP beside nginx (nginx-light, 1 worker, sendfile) on loopback, same bytes, same run: /ipxe of a
# registered machine (asked again and again, and with a query new every time) and /boot.ipxe with wrk (2 threads,
# 64 connections), a bare node:http server answering the same bytes, a large file with curl one at a time and 8
# at once, and Kindling's start-up time and idle RSS (compiled and under tsx). Builds dist/ first.
# Needs wrk, curl and nginx-light (.ci/run installs them). About 4 minutes with the defaults.
#   bench/http.sh [--seconds=8] [--rounds=2] [--mib=300] [--parallel=8] [--starts=3]
#                 [--only=ipxe,uncached,node,boot,seq,par,start]
set -euo pipefail
cd "$(dirname "$0")/.."
exec node_modules/.bin/tsx bench/http-run.ts "$@"
