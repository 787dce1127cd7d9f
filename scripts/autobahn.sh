#!/usr/bin/env bash
# Autobahn WebSocket conformance run for sansproto.
#
# Runs the Autobahn TestSuite cases (through the `kosoku` runner from PyPI)
# against the example WebSocket server and client, then checks the reports
# with scripts/autobahn_check.py. Run from the repository root:
#
#   bash scripts/autobahn.sh
#
# Server suite: kosoku (fuzzingclient mode) connects to
#   target/release/examples/autobahn_server 127.0.0.1:PORT
# Client suite: kosoku (fuzzingserver mode) listens on 127.0.0.1:PORT and
#   target/release/examples/autobahn_client ws://127.0.0.1:PORT sansproto
# drives it through /getCaseCount, /runCase?case=N&agent=A, /updateReports.
#
# kosoku is run once per case section (1, 2, ..., 13), each run with its own
# time limit, so one hanging case costs one section's report, not the whole
# suite's (kosoku writes its reports only when a run ends).
#
# Reports: reports/server/ and reports/client/ hold one JSON and one HTML file
# per case, index-<section>.json/.html per section as written by kosoku, and a
# merged index.json ({agent: {case id: {behavior, behaviorClose, ...}}}).
# Logs of every process are kept next to them (*.log).
#
# Environment:
#   AUTOBAHN_CASES=1.*,2.1     run only these case ids / `*` globs (comma list)
#   AUTOBAHN_ALL=0             skip sections 12 and 13 (permessage-deflate), which
#                              otherwise run with the rest; they are then excluded
#                              even from AUTOBAHN_CASES
#   AUTOBAHN_SUITES=server     which suites to run: server, client or both
#                              (default server,client)
#   AUTOBAHN_SERVER_CMD="..."  command to run instead of the example server; it
#                              gets 127.0.0.1:PORT as its last argument
#   AUTOBAHN_CLIENT_CMD="..."  command to run instead of the example client; it
#                              gets ws://127.0.0.1:PORT and the agent name
#   AUTOBAHN_ALLOW_NON_STRICT=1  accept NON-STRICT verdicts (default: failure)
#   AUTOBAHN_SECTION_TIMEOUT   seconds for one section run (default 300, and
#                              1500 for the slow compression sections 12 and 13)
#   AUTOBAHN_SUITE_TIMEOUT     seconds for all sections of one suite (default 900,
#                              3000 when sections 12 and 13 run)
#   AUTOBAHN_PARALLELISM=N     cases kosoku runs at once in the server suite
#                              (default 2; the client suite is as parallel as the client)
#   AUTOBAHN_KOSOKU_VERSION    kosoku version to install (default 0.1.0)
#
# Exit status is non-zero when a selected case failed or is missing from the
# reports, when a section timed out, or when the server or client under test
# exited unexpectedly.
set -euo pipefail

readonly AGENT=sansproto
readonly HOST=127.0.0.1
readonly KOSOKU_VERSION=${AUTOBAHN_KOSOKU_VERSION:-0.1.0}
readonly SECTION_TIMEOUT=${AUTOBAHN_SECTION_TIMEOUT:-300}
readonly DEFLATE_SECTION_TIMEOUT=${AUTOBAHN_SECTION_TIMEOUT:-1500}
if [[ ${AUTOBAHN_ALL:-1} == 1 ]]; then
    readonly SUITE_TIMEOUT=${AUTOBAHN_SUITE_TIMEOUT:-3000}
else
    readonly SUITE_TIMEOUT=${AUTOBAHN_SUITE_TIMEOUT:-900}
fi
readonly PARALLELISM=${AUTOBAHN_PARALLELISM:-2}
readonly VENV=.venv
readonly REPORTS=reports

if [[ ! -f Cargo.toml || ! -d scripts ]]; then
    echo "autobahn: run this from the repository root" >&2
    exit 2
fi

log() { printf 'autobahn: %s\n' "$*" >&2; }

# Problems found outside the case reports (crashes, timeouts); each one makes
# the run fail.
problems=()
problem() {
    log "FAILURE: $*"
    problems+=("$*")
}

# ---------------------------------------------------------------------------
# Background processes: every one is recorded and stopped on exit.
# ---------------------------------------------------------------------------
bg_pids=()

stop_pid() {
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local pid
    for pid in "${bg_pids[@]}"; do
        stop_pid "$pid"
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT PID: wait until PORT accepts connections, failing if process
# PID exits first or 30 s pass.
wait_port() {
    local port=$1 pid=$2 deadline=$((SECONDS + 30))
    while ! (exec 3<>"/dev/tcp/$HOST/$port") 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || return 1
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null
}

# section_budget SECTION: seconds left for the current suite, capped at the
# section's own allowance.
section_budget() {
    local left=$((suite_deadline - SECONDS)) cap=$SECTION_TIMEOUT
    [[ $1 == 12 || $1 == 13 ]] && cap=$DEFLATE_SECTION_TIMEOUT
    ((left < cap)) && echo "$left" || echo "$cap"
}

# After a kosoku run: keep its per-section index files (the next section's run
# would overwrite index.json/index.html in the same directory).
keep_section_index() {
    local dir=$1 section=$2 ext
    for ext in json html; do
        if [[ -f $dir/index.$ext ]]; then
            mv "$dir/index.$ext" "$dir/index-$section.$ext"
        fi
    done
}

suites=${AUTOBAHN_SUITES:-server,client}
run_server=0 run_client=0
[[ ,$suites, == *,server,* ]] && run_server=1
[[ ,$suites, == *,client,* ]] && run_client=1
if ((!run_server && !run_client)); then
    log "AUTOBAHN_SUITES must name server and/or client"
    exit 2
fi

# ---------------------------------------------------------------------------
# kosoku in a virtualenv
# ---------------------------------------------------------------------------
if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    log "creating virtualenv $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
fi
installed=$("$VENV/bin/python" -c '
import importlib.metadata as m
try:
    print(m.version("kosoku"))
except m.PackageNotFoundError:
    pass
')
if [[ $installed != "$KOSOKU_VERSION" ]]; then
    log "installing kosoku==$KOSOKU_VERSION into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "kosoku==$KOSOKU_VERSION"
fi
readonly KOSOKU=$VENV/bin/kosoku

# ---------------------------------------------------------------------------
# Case selection
# ---------------------------------------------------------------------------
includes=()
if [[ -n ${AUTOBAHN_CASES:-} ]]; then
    IFS=, read -r -a includes <<<"$AUTOBAHN_CASES"
fi
excludes=()
if [[ ${AUTOBAHN_ALL:-1} != 1 ]]; then
    excludes=('12.*' '13.*')
fi

((run_server)) && rm -rf "$REPORTS/server"
((run_client)) && rm -rf "$REPORTS/client"
mkdir -p "$REPORTS"
expected_file=$REPORTS/expected-cases.txt

# The selected case ids, in kosoku's order, with kosoku's pattern rules: an id
# without `*` matches exactly; with `*` it is a regex anchored at the start,
# `.` literal and `*` any text (so `9.*` is section 9 and `1*` also matches 10, 12, 13).
"$VENV/bin/python" - "${#includes[@]}" "${includes[@]}" "${excludes[@]}" \
    >"$expected_file" <<'EOF'
import re
import sys

from kosoku.cases import CASES

n_inc = int(sys.argv[1])
includes = [p.strip() for p in sys.argv[2:2 + n_inc] if p.strip()]
excludes = sys.argv[2 + n_inc:]


def matching(pattern, ids):
    if "*" not in pattern:
        return [i for i in ids if i == pattern]
    rx = re.compile("^" + pattern.replace(".", r"\.").replace("*", ".*"))
    return [i for i in ids if rx.match(i)]


all_ids = list(CASES)
if includes:
    chosen = set()
    for pattern in includes:
        hits = matching(pattern, all_ids)
        if not hits:
            sys.exit(f"autobahn: no case matches {pattern!r}")
        chosen.update(hits)
else:
    chosen = set(all_ids)
for pattern in excludes:
    chosen.difference_update(matching(pattern, all_ids))
for case_id in all_ids:
    if case_id in chosen:
        print(case_id)
EOF
total_cases=$(wc -l <"$expected_file")
if ((total_cases == 0)); then
    log "no case selected (sections 12 and 13 are skipped with AUTOBAHN_ALL=0)"
    exit 2
fi
mapfile -t sections < <(cut -d. -f1 "$expected_file" | uniq)
log "$total_cases cases selected, sections: ${sections[*]}"

# section_args SECTION: kosoku -i arguments naming that section's selected cases.
section_args() {
    local id
    while read -r id; do
        printf '%s\n' -i "$id"
    done < <(grep "^$1\." "$expected_file")
}

# ---------------------------------------------------------------------------
# Programs under test
# ---------------------------------------------------------------------------
examples=()
if ((run_server)) && [[ -z ${AUTOBAHN_SERVER_CMD:-} ]]; then
    examples+=(--example autobahn_server)
fi
if ((run_client)) && [[ -z ${AUTOBAHN_CLIENT_CMD:-} ]]; then
    examples+=(--example autobahn_client)
fi
if ((${#examples[@]})); then
    log "building ${examples[*]}"
    cargo build --release "${examples[@]}"
fi

if ((${#examples[@]})); then
    # Honours CARGO_TARGET_DIR and .cargo/config settings.
    target_dir=$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
fi
if [[ -n ${AUTOBAHN_SERVER_CMD:-} ]]; then
    eval "server_cmd=($AUTOBAHN_SERVER_CMD)"
else
    server_cmd=("$target_dir/release/examples/autobahn_server")
fi
if [[ -n ${AUTOBAHN_CLIENT_CMD:-} ]]; then
    eval "client_cmd=($AUTOBAHN_CLIENT_CMD)"
else
    client_cmd=("$target_dir/release/examples/autobahn_client")
fi

# ---------------------------------------------------------------------------
# Server suite: kosoku fuzzingclient against our server
# ---------------------------------------------------------------------------
run_server_suite() {
    local dir=$REPORTS/server port pid section rc status
    mkdir -p "$dir"
    suite_deadline=$((SECONDS + SUITE_TIMEOUT))
    port=$(free_port)
    log "server suite: starting ${server_cmd[*]} $HOST:$port"
    "${server_cmd[@]}" "$HOST:$port" >"$dir/server.log" 2>&1 &
    pid=$!
    bg_pids+=("$pid")
    if ! wait_port "$port" "$pid"; then
        problem "server suite: server did not listen on $HOST:$port (see $dir/server.log)"
        tail -n 20 "$dir/server.log" >&2 || true
        return
    fi

    for section in "${sections[@]}"; do
        local budget
        budget=$(section_budget "$section")
        if ((budget <= 0)); then
            problem "server suite: time budget (${SUITE_TIMEOUT}s) used up before section $section"
            break
        fi
        log "server suite: section $section (limit ${budget}s)"
        rc=0
        mapfile -t args < <(section_args "$section")
        timeout --kill-after=10 "$budget" "$KOSOKU" -m fuzzingclient -p "$PARALLELISM" -o "$dir" \
            "${args[@]}" "ws://$HOST:$port" >"$dir/kosoku-$section.log" 2>&1 || rc=$?
        keep_section_index "$dir" "$section"
        # kosoku exits 1 when a case failed; the reports tell which.
        if ((rc == 124 || rc == 137)); then
            problem "server suite: section $section timed out after ${budget}s (no report for it)"
        elif ((rc > 1)) || [[ ! -f $dir/index-$section.json ]]; then
            problem "server suite: kosoku failed in section $section (exit $rc, see $dir/kosoku-$section.log)"
            tail -n 20 "$dir/kosoku-$section.log" >&2 || true
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            status=0
            wait "$pid" || status=$?
            problem "server suite: server exited (status $status) during section $section (see $dir/server.log)"
            tail -n 20 "$dir/server.log" >&2 || true
            return
        fi
    done
    stop_pid "$pid"
}

# ---------------------------------------------------------------------------
# Client suite: our client against kosoku fuzzingserver
# ---------------------------------------------------------------------------

# Ask the fuzzingserver on PORT to end its run and write its reports, as a
# client does with /updateReports.
request_update_reports() {
    python3 - "$1" <<'EOF' || true
import base64, os, socket, sys

port = int(sys.argv[1])
key = base64.b64encode(os.urandom(16)).decode()
with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
    s.sendall(
        f"GET /updateReports?agent=sansproto HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    s.recv(1024)
EOF
}

# wait_exit PID SECONDS: wait up to SECONDS for process PID to exit.
wait_exit() {
    local pid=$1 deadline=$((SECONDS + $2))
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

run_client_suite() {
    local dir=$REPORTS/client port kpid section rc budget
    mkdir -p "$dir"
    suite_deadline=$((SECONDS + SUITE_TIMEOUT))
    for section in "${sections[@]}"; do
        budget=$(section_budget "$section")
        if ((budget <= 0)); then
            problem "client suite: time budget (${SUITE_TIMEOUT}s) used up before section $section"
            break
        fi
        port=$(free_port)
        log "client suite: section $section on ws://$HOST:$port (limit ${budget}s)"
        mapfile -t args < <(section_args "$section")
        timeout --kill-after=10 $((budget + 30)) "$KOSOKU" -m fuzzingserver -o "$dir" \
            "${args[@]}" "$HOST:$port" >"$dir/kosoku-$section.log" 2>&1 &
        kpid=$!
        bg_pids+=("$kpid")
        if ! wait_port "$port" "$kpid"; then
            problem "client suite: kosoku fuzzingserver did not start for section $section (see $dir/kosoku-$section.log)"
            tail -n 20 "$dir/kosoku-$section.log" >&2 || true
            stop_pid "$kpid"
            continue
        fi

        rc=0
        timeout --kill-after=10 "$budget" "${client_cmd[@]}" "ws://$HOST:$port" "$AGENT" \
            >"$dir/client-$section.log" 2>&1 || rc=$?
        if ((rc == 124 || rc == 137)); then
            problem "client suite: client timed out after ${budget}s in section $section (see $dir/client-$section.log)"
        elif ((rc != 0)); then
            problem "client suite: client exited with status $rc in section $section (see $dir/client-$section.log)"
            tail -n 20 "$dir/client-$section.log" >&2 || true
        fi

        # The client ends the run with /updateReports; if it did not, end it
        # here so the cases that did run are still reported.
        if ! wait_exit "$kpid" 10; then
            ((rc != 0)) || problem "client suite: client did not request /updateReports in section $section"
            request_update_reports "$port"
            wait_exit "$kpid" 60 || true
        fi
        stop_pid "$kpid"
        keep_section_index "$dir" "$section"
        if [[ ! -f $dir/index-$section.json ]]; then
            problem "client suite: no report for section $section (see $dir/kosoku-$section.log)"
            tail -n 20 "$dir/kosoku-$section.log" >&2 || true
        fi
    done
}

check_dirs=()
if ((run_server)); then
    run_server_suite
    check_dirs+=("server=$REPORTS/server")
fi
if ((run_client)); then
    run_client_suite
    check_dirs+=("client=$REPORTS/client")
fi

# ---------------------------------------------------------------------------
# Verdict
# ---------------------------------------------------------------------------
check_args=(--expected "$expected_file" --agent "$AGENT")
if [[ ${AUTOBAHN_ALLOW_NON_STRICT:-0} == 1 ]]; then
    check_args+=(--allow-non-strict)
fi
if [[ ${AUTOBAHN_ALL:-1} != 1 ]]; then
    check_args+=(--excluded-sections "12,13")
fi
check_rc=0
python3 scripts/autobahn_check.py "${check_args[@]}" "${check_dirs[@]}" || check_rc=$?

if ((${#problems[@]})); then
    echo
    echo "Problems outside the case reports:"
    printf '  - %s\n' "${problems[@]}"
    exit 1
fi
exit "$check_rc"
