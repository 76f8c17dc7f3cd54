#!/usr/bin/env bash
# The sample site, cookie store vs REDIS_URL: signed-in GET /api/me under wrk, alternating rounds.
# Needs redis-server, wrk and curl; pins the app to CPU 0 and wrk + the emulator to CPU 1.
set -uo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example h5 --example bench_server
R=target/release/examples
redis-server --port 6391 --bind 127.0.0.1 --save "" --appendonly no --daemonize yes --loglevel warning
BIND=127.0.0.1:18990 taskset -c 1 $R/bench_server --mode emulator > /tmp/emu.out 2>&1 & EMU_PID=$!
sleep 1
EMU=http://127.0.0.1:18990
KEY=$(printf '%0128x' 7)
start() { # name port [redis]
  env WECHAT_APPID=wxbench0000000001 WECHAT_SECRET=bench-secret-not-a-real-one WECHAT_OPEN_BASE=$EMU \
      WECHAT_API_BASE=$EMU SESSION_KEY=$KEY RUST_LOG=error BIND=127.0.0.1:$2 ${3:+REDIS_URL=$3} \
      taskset -c 0 $R/h5 > /tmp/h5-$1.out 2>&1 &
}
start cookie 18991; P1=$!; start redis 18992 redis://127.0.0.1:6391; P2=$!
sleep 2
C1=$(rm -f /tmp/j1; curl -s -L -c /tmp/j1 -b /tmp/j1 -o /dev/null http://127.0.0.1:18991/; awk '$6=="id"{print "id="$7}' /tmp/j1); echo "cookie1: ${#C1} bytes"
C2=$(rm -f /tmp/j2; curl -s -L -c /tmp/j2 -b /tmp/j2 -o /dev/null http://127.0.0.1:18992/; awk '$6=="id"{print "id="$7}' /tmp/j2); echo "cookie2: ${#C2} bytes"
for round in 1 2 3 4 5; do
  for s in cookie redis; do
    if [ $s = cookie ]; then port=18991; c=$C1; else port=18992; c=$C2; fi
    set -- $s $port
    out=$(taskset -c 1 wrk -t1 -c50 -d5s --latency -H "Cookie: $c" -H "Accept: application/json" http://127.0.0.1:$2/api/me)
    rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
    p50=$(echo "$out" | awk '$1=="50%"{print $2}'); p99=$(echo "$out" | awk '$1=="99%"{print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/{print $NF}')
    echo "round $round $1 rps=$rps p50=$p50 p99=$p99 non2xx=${non2xx:-0}"
  done
done
kill $P1 $P2 $EMU_PID; redis-cli -p 6391 shutdown nosave >/dev/null 2>&1
