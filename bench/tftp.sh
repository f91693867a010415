#!/usr/bin/env bash
# Kindling's TFTP server side by side with tftpd-hpa on loopback: same files, same clients, same run.
# Prints MB/s (10^6 bytes/s, best of N runs) for each and the ratio Kindling/tftpd-hpa.
#
# A transfer is timed on the wire (tcpdump on lo): from the client's RRQ to the last DATA packet. The
# client's own process start-up and exit (about 3 ms for atftp and curl here, a third of a 1 MiB windowed
# transfer) are the same whichever server answers, so they are left out of the rate; the wall-clock
# ratio, start-up included, is printed beside it. Needs root (or CAP_NET_RAW) for tcpdump.
# Usage: bench/tftp.sh [runs-for-small-files (default 15)] [runs-for-32MiB (default 3)]
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS_SMALL=${1:-15}
RUNS_BIG=${2:-3}
for tool in curl atftp tcpdump /usr/sbin/in.tftpd; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install curl atftp tcpdump tftpd-hpa)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/kindling-bench-tftp.XXXXXX)
pids=()
tcpdump_pid=
cleanup() {
  for pid in "${pids[@]}" $tcpdump_pid; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# tftpd-hpa drops to the tftp user and chroots into the directory: it must be world-readable.
mkdir -p "$work/root" "$work/out"
chmod 755 "$work" "$work/root"
head -c 100 /dev/urandom >"$work/root/100B.bin"
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

# fetch CLIENT PORT FILE -> prints wall-clock µs; fails if the download differs from the file.
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

# cell CLIENT FILE RUNS: runs the client N times against each server, alternating run by run so that
# load from elsewhere on the machine falls on both alike. Sets wire_k/wire_p (best RRQ → last DATA, µs),
# med_k/med_p (median of the same) and wall_k/wall_p (best wall-clock µs, client start-up included).
cell() {
  local client=$1 file=$2 runs=$3 blksize=1468 us
  [[ $client == curl512 ]] && blksize=512
  # Only two packets per transfer pass the filter: the RRQ and the last DATA (shorter than a block).
  tcpdump -i lo -n -U --immediate-mode -w "$work/cell.pcap" \
    "udp and ((udp[8:2] = 1 and (dst port $port_k or dst port $port_p)) or (udp[8:2] = 3 and udp[4:2] < $((12 + blksize))))" \
    2>"$work/tcpdump.log" &
  tcpdump_pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$work/tcpdump.log" && break; sleep 0.05; done
  grep -q "listening on" "$work/tcpdump.log" || { cat "$work/tcpdump.log" >&2; exit 1; }
  wall_k=0 wall_p=0
  for _ in $(seq "$runs"); do
    us=$(fetch "$client" "$port_k" "$file")
    ((wall_k == 0 || us < wall_k)) && wall_k=$us
    us=$(fetch "$client" "$port_p" "$file")
    ((wall_p == 0 || us < wall_p)) && wall_p=$us
  done
  sleep 0.2
  kill -INT "$tcpdump_pid"
  wait "$tcpdump_pid" 2>/dev/null || true
  tcpdump_pid=
  # "TIME IP 127.0.0.1.SPORT > 127.0.0.1.DPORT: UDP, length N": an RRQ starts the client port's
  # transfer, the first short DATA to that port ends it.
  read -r wire_k wire_p med_k med_p < <(tcpdump -r "$work/cell.pcap" -n -tt 2>/dev/null | awk -v k="$port_k" -v p="$port_p" -v runs="$runs" '
    { n = split($3, s, "."); src = s[n]; n = split($5, d, "."); dst = d[n]; sub(":", "", dst)
      if (dst == k || dst == p) { start[src] = $1; who[src] = (dst == k ? "k" : "p"); next }
      if (dst in start) {
        w = who[dst]; us[w, ++count[w]] = ($1 - start[dst]) * 1e6
        delete start[dst]
      } }
    function sorted(w,  i, j, x) {
      for (i = 2; i <= count[w]; i++) { x = us[w, i]; for (j = i - 1; j >= 1 && us[w, j] > x; j--) us[w, j + 1] = us[w, j]; us[w, j + 1] = x }
    }
    END {
      if (count["k"] != runs || count["p"] != runs) { printf "captured %d/%d transfers\n", count["k"], count["p"] > "/dev/stderr"; exit 1 }
      sorted("k"); sorted("p"); m = int((runs + 1) / 2)
      printf "%d %d %d %d\n", us["k", 1], us["p", 1], us["k", m], us["p", m] }')
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

echo "TFTP on loopback, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); best of $RUNS_SMALL (100 B, 1 MiB) / $RUNS_BIG (32 MiB) runs"
echo "MB/s = 10^6 bytes/s from RRQ to last DATA, best run; ratios Kindling/tftpd-hpa of the best runs,"
echo "of the median runs, and of the best client wall-clock times (client start-up included)"
printf '%-8s %-34s %10s %10s %7s %7s %6s  %s\n' file client kindling tftpd-hpa ratio median wall note
declare -A k_rate
for file in 1MiB.bin 32MiB.bin; do
  runs=$RUNS_SMALL
  [[ $file == 32MiB.bin ]] && runs=$RUNS_BIG
  bytes=$(stat -c %s "$work/root/$file")
  for client in curl512 curl1468 atftp1 atftp8 atftp16; do
    cell "$client" "$file" "$runs"
    read -r k p ratio median wall < <(awk -v b="$bytes" -v k="$wire_k" -v p="$wire_p" -v mk="$med_k" -v mp="$med_p" -v wk="$wall_k" -v wp="$wall_p" \
      'BEGIN { printf "%.1f %.1f %.2f %.2f %.2f\n", b / k, b / p, p / k, mp / mk, wp / wk }')
    k_rate[$file.$client]=$k
    printf '%-8s %-34s %10s %10s %7s %7s %6s  %s\n' "${file%.bin}" "${label[$client]}" "$k" "$p" "$ratio" "$median" "$wall" "${note[$client]:-}"
  done
done
for file in 1MiB.bin 32MiB.bin; do
  awk -v w="${k_rate[$file.atftp16]}" -v l="${k_rate[$file.atftp1]}" -v f="${file%.bin}" \
    'BEGIN { printf "%s: Kindling windowsize 16 / its own lock-step (atftp, blksize 1468) = %.2f\n", f, w / l }'
done
# The fixed cost of a transfer: request handling (tftpd-hpa forks; Kindling resolves the name, checks
# its cache and opens a socket), the OACK round trip curl asks for (tsize, blksize), one DATA.
cell curl512 100B.bin "$RUNS_SMALL"
awk -v k="$wire_k" -v p="$wire_p" -v mk="$med_k" -v mp="$med_p" \
  'BEGIN { printf "100 B file (curl, RRQ to its one DATA): best Kindling %d µs, tftpd-hpa %d µs (ratio %.2f); median %d µs, %d µs (%.2f)\n", k, p, p / k, mk, mp, mp / mk }'
