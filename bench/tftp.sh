#!/usr/bin/env bash
# Kindling's TFTP server side by side with tftpd-hpa on loopback: same files, same clients, same run.
# Prints MB/s (10^6 bytes/s, best of N runs) for each and the ratio Kindling/tftpd-hpa.
# Usage: bench/tftp.sh [runs-for-1MiB (default 7)] [runs-for-32MiB (default 3)]
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS_SMALL=${1:-7}
RUNS_BIG=${2:-3}
for tool in curl atftp /usr/sbin/in.tftpd; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install curl atftp tftpd-hpa)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/kindling-bench-tftp.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# tftpd-hpa drops to the tftp user and chroots into the directory: it must be world-readable.
mkdir -p "$work/root" "$work/out"
chmod 755 "$work" "$work/root"
head -c $((1024 * 1024)) /dev/urandom >"$work/root/1MiB.bin"
head -c $((32 * 1024 * 1024)) /dev/urandom >"$work/root/32MiB.bin"
chmod 644 "$work/root/"*

port_k=$((20000 + RANDOM % 20000))
port_p=$((port_k + 1))

# node --import tsx runs the server as this one process, so the trap can stop it by its pid.
node --import tsx bench/tftp-server.ts "$port_k" "$work/root" >"$work/kindling.log" 2>&1 &
pids+=($!)
/usr/sbin/in.tftpd -L -a "127.0.0.1:$port_p" -s "$work/root" &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$work/kindling.log" 2>/dev/null && break; sleep 0.1; done
grep -q listening "$work/kindling.log" || { cat "$work/kindling.log" >&2; exit 1; }

# fetch CLIENT PORT FILE -> prints seconds; fails if the download differs from the file.
fetch() {
  local client=$1 port=$2 file=$3 out="$work/out/$file" start end
  rm -f "$out"
  start=$(date +%s%N)
  case $client in
    curl512) curl -sS --tftp-blksize 512 -o "$out" "tftp://127.0.0.1:$port/$file" ;;
    curl1468) curl -sS --tftp-blksize 1468 -o "$out" "tftp://127.0.0.1:$port/$file" ;;
    atftp1) atftp --option "blksize 1468" -g -r "$file" -l "$out" 127.0.0.1 "$port" 2>/dev/null ;;
    atftp8) atftp --option "blksize 1468" --option "windowsize 8" -g -r "$file" -l "$out" 127.0.0.1 "$port" 2>/dev/null ;;
    atftp16) atftp --option "blksize 1468" --option "windowsize 16" -g -r "$file" -l "$out" 127.0.0.1 "$port" 2>/dev/null ;;
  esac
  end=$(date +%s%N)
  cmp -s "$out" "$work/root/$file" || { echo "$client from port $port: $file differs" >&2; exit 1; }
  echo $(((end - start) / 1000))
}

# Best MB/s of each server over N runs, alternating servers run by run so that load from elsewhere
# on the machine falls on both alike. Prints "kindling peer".
rates() {
  local client=$1 file=$2 runs=$3 bk=0 bp=0 bytes
  bytes=$(stat -c %s "$work/root/$file")
  for _ in $(seq "$runs"); do
    bk=$(awk -v b="$bytes" -v us="$(fetch "$client" "$port_k" "$file")" -v best="$bk" 'BEGIN { r = b / us; print (r > best ? r : best) }')
    bp=$(awk -v b="$bytes" -v us="$(fetch "$client" "$port_p" "$file")" -v best="$bp" 'BEGIN { r = b / us; print (r > best ? r : best) }')
  done
  printf '%.1f %.1f\n' "$bk" "$bp"
}

declare -A label=(
  [curl512]="curl blksize 512"
  [curl1468]="curl blksize 1468"
  [atftp1]="atftp blksize 1468 (lock-step)"
  [atftp8]="atftp blksize 1468 windowsize 8"
  [atftp16]="atftp blksize 1468 windowsize 16"
)
declare -A note=(
  [atftp8]="tftpd-hpa 5.2 has no windowsize: it ran lock-step"
  [atftp16]="tftpd-hpa 5.2 has no windowsize: it ran lock-step"
)

echo "TFTP on loopback, $(nproc) cores; MB/s = 10^6 bytes/s, best of $RUNS_SMALL (1 MiB) / $RUNS_BIG (32 MiB) runs"
printf '%-8s %-34s %10s %10s %7s  %s\n' file client kindling tftpd-hpa ratio note
declare -A k_rate
for file in 1MiB.bin 32MiB.bin; do
  runs=$RUNS_SMALL
  [[ $file == 32MiB.bin ]] && runs=$RUNS_BIG
  for client in curl512 curl1468 atftp1 atftp8 atftp16; do
    read -r k p < <(rates "$client" "$file" "$runs")
    k_rate[$file.$client]=$k
    ratio=$(awk -v k="$k" -v p="$p" 'BEGIN { printf "%.2f", k / p }')
    printf '%-8s %-34s %10s %10s %7s  %s\n' "${file%.bin}" "${label[$client]}" "$k" "$p" "$ratio" "${note[$client]:-}"
  done
done
for file in 1MiB.bin 32MiB.bin; do
  awk -v w="${k_rate[$file.atftp16]}" -v l="${k_rate[$file.atftp1]}" -v f="${file%.bin}" \
    'BEGIN { printf "%s: Kindling windowsize 16 / its own lock-step (atftp, blksize 1468) = %.2f\n", f, w / l }'
done
