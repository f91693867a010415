#!/usr/bin/env bash
# Builds Butane from a source snapshot, offline, the way a user without Go module access can: coreos/butane
# vendors its modules, so `go build -mod=vendor` needs only a Go toolchain at least as new as go.mod's `go` line
# (Butane 0.29.0 needs Go 1.24; Debian trixie's golang-1.24-go does).
#
#   build-butane.sh SRC OUT [REF] [ORACLE-OUT]
#     SRC  a coreos/butane git directory (a clone or a bare mirror) or an unpacked source tree
#     OUT  where the binary goes (e.g. /tmp/butane)
#     REF  tag or commit to build when SRC is a git directory (default v0.29.0)
#     ORACLE-OUT  also build oracle/main.go (Ignition's unit and URL checks, from the same vendored
#          modules) there, for oracle-fixtures.ts
#   GO   the go binary to use (default: `go` on PATH)
set -euo pipefail
src=${1:?usage: build-butane.sh SRC OUT [REF]}
out=${2:?usage: build-butane.sh SRC OUT [REF]}
ref=${3:-v0.29.0}
oracle=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
go=${GO:-go}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$src" archive "$ref" | tar -x -C "$work"
  version=$ref
else
  cp -a "$src/." "$work/"
  version=$(basename "$src")
fi

export GOTOOLCHAIN=local GOFLAGS=-mod=vendor GOPROXY=off CGO_ENABLED=0
export GOCACHE=${GOCACHE:-$work/.gocache} GOPATH=${GOPATH:-$work/.gopath}
cd "$work"
"$go" build -o "$out" -ldflags "-w -X github.com/coreos/butane/internal/version.Raw=$version" internal/main.go
"$out" --version
if [ -n "$oracle" ]; then
  mkdir -p internal/kindling-oracle
  cp "$here/oracle/main.go" internal/kindling-oracle/
  "$go" build -o "$oracle" ./internal/kindling-oracle
fi
