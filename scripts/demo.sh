#!/usr/bin/env bash
# A real demo: a server and a worker in a temporary server directory, an array job of 8 tasks,
# its result, then everything stopped again. Run through `npm run demo` (which builds first).
set -euo pipefail
HQ="$(cd "$(dirname "$0")/.." && pwd)/dist/hq"
DEMO_DIR=$(mktemp -d /tmp/hq-demo.XXXXXX)
export HQ_SERVER_DIR="$DEMO_DIR/server"
cd "$DEMO_DIR"

cleanup() {
  "$HQ" server stop >/dev/null 2>&1 || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

echo "== hq server start (server dir: $HQ_SERVER_DIR)"
"$HQ" server start >"$DEMO_DIR/server.log" 2>&1 &
"$HQ" server wait --timeout 10s 2>/dev/null
"$HQ" server info

echo "== hq worker start --cpus 2"
"$HQ" worker start --cpus 2 --hostname demo-worker >"$DEMO_DIR/worker.log" 2>&1 &
"$HQ" worker wait 1 2>/dev/null
"$HQ" worker list

echo "== hq submit --array 1-8 (each task says hello and sleeps a little)"
"$HQ" submit --array 1-8 -- bash -c 'echo "Hello from task $HQ_TASK_ID of job $HQ_JOB_ID on CPU $HQ_CPUS"; sleep 0.2'
"$HQ" job wait 1 2>/dev/null

echo "== hq job list --all"
"$HQ" job list --all
echo "== output of task 3 ($DEMO_DIR/job-1/3.stdout)"
cat "$DEMO_DIR/job-1/3.stdout"

echo "== hq server stop"
"$HQ" server stop 2>/dev/null
trap - EXIT
wait
echo "Demo finished; its files are in $DEMO_DIR"
