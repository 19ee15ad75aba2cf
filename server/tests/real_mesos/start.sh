#!/usr/bin/env bash
# Runs a real Apache Mesos 1.11.0 cluster (1 master + NUM_AGENTS agents, all
# in one Python 2.7 process) on 127.0.0.1:PORT, in the foreground.
#
# Usage: start.sh PORT [NUM_AGENTS=2] [TIMEOUT_SECONDS=600]
#
# stdout: exactly one line, "READY http://127.0.0.1:PORT", once /master/state
#   shows NUM_AGENTS active agents and the bootstrap framework holds no
#   offers (so every offer goes to the scheduler under test).
# stderr: everything else (set-up errors, master/agent glog output).
# Stop it by killing its process group (or SIGTERM/SIGINT to this script);
# it also stops by itself after TIMEOUT_SECONDS.
# Exit codes: 0 ran until the timeout; 2 Python 2.7 unavailable (from
#   setup.sh); 1 anything else (port busy, cluster died, never became ready).
#
# Environment:
#   STRIDE_REAL_MESOS_RESOURCES      agent resources (default
#                                    'cpus:2;mem:1024;disk:1000;ports:[31000-31010]')
#   STRIDE_REAL_MESOS_READY_TIMEOUT  seconds to wait for readiness (default 60)
#   STRIDE_REAL_MESOS_AGENT_ATTRIBUTES  each agent's attributes in start order,
#                                    separated by whitespace ('rack:r1 rack:r2');
#                                    unset: no attributes
#   STRIDE_REAL_MESOS_CACHE          cache directory (see setup.sh)
#   other MESOS_* variables          passed through to master and agents
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() { echo "usage: $0 PORT [NUM_AGENTS=2] [TIMEOUT_SECONDS=600]" >&2; exit 1; }
if [ $# -lt 1 ] || [ $# -gt 3 ]; then usage; fi
PORT="$1"
NUM_AGENTS="${2:-2}"
TIMEOUT="${3:-600}"
READY_TIMEOUT="${STRIDE_REAL_MESOS_READY_TIMEOUT:-60}"
RESOURCES="${STRIDE_REAL_MESOS_RESOURCES:-cpus:2;mem:1024;disk:1000;ports:[31000-31010]}"
for v in "$PORT" "$NUM_AGENTS" "$TIMEOUT" "$READY_TIMEOUT"; do
  case "$v" in ''|*[!0-9]*) echo "start.sh: '$v' is not a non-negative integer" >&2; usage ;; esac
done
if [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ] || [ "$NUM_AGENTS" -lt 1 ]; then usage; fi

# setup.sh prints the cache dir; our own stdout is reserved for READY.
CACHE="$("$HERE/setup.sh" --quiet)" || exit $?
# shellcheck disable=SC1091
. "$CACHE/env.sh"
PY27="$STRIDE_REAL_MESOS_PY27"

TMPBASE="${TMPDIR:-/tmp}"
# A SIGKILLed run cannot remove its work dir; remove those of dead owners.
for d in "$TMPBASE"/stride-real-mesos.*; do
  [ -d "$d" ] || continue
  if [ -f "$d/owner.pid" ]; then
    owner="$(cat "$d/owner.pid" 2>/dev/null || true)"
    if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null; then rm -rf "$d"; fi
  elif [ -n "$(find "$d" -maxdepth 0 -mmin +5 2>/dev/null)" ]; then
    rm -rf "$d"
  fi
done

WORK="$(mktemp -d "$TMPBASE/stride-real-mesos.XXXXXX")"
echo $$ >"$WORK/owner.pid"
CHILD=""
POLLER=""
FEEDER=""
# shellcheck disable=SC2317 # called from the traps below
cleanup() {
  trap - EXIT TERM INT HUP
  if [ -n "$POLLER" ]; then kill "$POLLER" 2>/dev/null || true; fi
  if [ -n "$FEEDER" ]; then kill "$FEEDER" 2>/dev/null || true; fi
  if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
    # timeout forwards the TERM to the Python process, which stops the driver.
    kill -TERM "$CHILD" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$CHILD" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$CHILD" 2>/dev/null || true
    wait "$CHILD" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

# libprocess would fail on a busy port, but the readiness check could then
# be answered by whatever else listens there.
if ! "$PY27" -E -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except socket.error as e:
    sys.stderr.write("start.sh: port %s on 127.0.0.1 is not free: %s\n" % (sys.argv[1], e)); sys.exit(1)
' "$PORT"; then
  exit 1
fi

# All agents of the in-process cluster read the same MESOS_* environment, one
# after another, and Mesos reads a flag written as file://PATH from that file:
# a named pipe that hands out one agent's attributes per opening gives each its
# own (AVAILABILITY.md §6). The pause lets each agent read to the end before
# the next value is offered, so that no agent reads two.
ATTRIBUTES=()
if [ -n "${STRIDE_REAL_MESOS_AGENT_ATTRIBUTES:-}" ]; then
  read -r -a values <<<"$STRIDE_REAL_MESOS_AGENT_ATTRIBUTES"
  if [ "${#values[@]}" -ne "$NUM_AGENTS" ]; then
    echo "start.sh: STRIDE_REAL_MESOS_AGENT_ATTRIBUTES names ${#values[@]} agents, not $NUM_AGENTS" >&2
    exit 1
  fi
  mkfifo "$WORK/attributes"
  (for value in "${values[@]}"; do printf '%s' "$value" >"$WORK/attributes"; sleep 0.3; done) &
  FEEDER=$!
  ATTRIBUTES=("MESOS_ATTRIBUTES=file://$WORK/attributes")
fi

# --foreground keeps timeout (and so Python) in our process group, so that a
# caller killing the group reaches everything. The bootstrap stops itself at
# TIMEOUT; timeout is only the backstop.
env -u PYTHONHOME -u PYTHONSTARTUP \
  LIBPROCESS_IP=127.0.0.1 \
  LIBPROCESS_PORT="$PORT" \
  MESOS_WORK_DIR="$WORK/mesos" \
  MESOS_RUNTIME_DIR="$WORK/run" \
  MESOS_NUM_SLAVES="$NUM_AGENTS" \
  MESOS_REGISTRY=in_memory \
  MESOS_LAUNCHER=posix \
  MESOS_ISOLATION=posix/cpu,posix/mem \
  MESOS_SYSTEMD_ENABLE_SUPPORT=false \
  MESOS_RESOURCES="$RESOURCES" \
  "${ATTRIBUTES[@]}" \
  PYTHONPATH="$STRIDE_REAL_MESOS_SITE:$STRIDE_REAL_MESOS_DEPS" \
  LD_LIBRARY_PATH="$STRIDE_REAL_MESOS_SHIM" \
  timeout --foreground -k 5 "$((TIMEOUT + 5))" \
  "$PY27" "$HERE/bootstrap.py" "$TIMEOUT" 1>&2 </dev/null &
CHILD=$!

# Readiness (AVAILABILITY.md §6): all agents active and the bootstrap
# framework registered, suppressed and holding no offers (no offers
# outstanding at all); before that, the first offers could go to the
# bootstrap framework instead of the caller.
# Runs in the background so that a signal to this script is handled at once.
"$PY27" -E - "$PORT" "$NUM_AGENTS" "$CHILD" "$READY_TIMEOUT" <<'EOF' &
import json, os, sys, time, urllib2
port, want, child, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
url = 'http://127.0.0.1:%s/master/state' % port
opener = urllib2.build_opener(urllib2.ProxyHandler({}))  # never via a proxy
deadline = time.time() + limit
why = 'no answer from %s' % url
while time.time() < deadline:
    try:
        os.kill(child, 0)
    except OSError:
        sys.stderr.write('start.sh: the Mesos process exited before becoming ready\n')
        sys.exit(3)
    try:
        state = json.load(opener.open(url, timeout=2))
        active = [s for s in state.get('slaves', []) if s.get('active')]
        boot = [f for f in state.get('frameworks', []) if f.get('name') == 'local-bootstrap']
        if len(active) < want:
            why = '%d of %d agents active' % (len(active), want)
        elif not boot:
            why = 'bootstrap framework not registered yet'
        elif boot[0].get('offers'):
            why = 'bootstrap framework still holds %d offers' % len(boot[0]['offers'])
        else:
            # /master/state does not show suppression in 1.11; the metrics do.
            metrics = json.load(opener.open(
                'http://127.0.0.1:%s/metrics/snapshot' % port, timeout=2))
            key = 'master/frameworks/local-bootstrap/%s/roles/*/suppressed' % boot[0]['id']
            if metrics.get(key) != 1.0:
                why = 'bootstrap framework not suppressed yet'
            elif metrics.get('master/outstanding_offers') != 0.0:
                why = '%s offers outstanding' % metrics.get('master/outstanding_offers')
            else:
                sys.exit(0)
    except Exception as e:  # not listening yet, or a partial answer
        why = '%s: %s' % (url, e)
    time.sleep(0.1)
sys.stderr.write('start.sh: not ready after %s s (%s)\n' % (limit, why))
sys.exit(4)
EOF
POLLER=$!
rc=0
wait "$POLLER" || rc=$?
POLLER=""
if [ "$rc" -ne 0 ]; then
  exit 1
fi
echo "READY http://127.0.0.1:$PORT"

rc=0
wait "$CHILD" || rc=$?
CHILD=""
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "start.sh: the Mesos process had to be killed by timeout" >&2
fi
exit "$rc"
