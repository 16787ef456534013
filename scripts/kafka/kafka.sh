#!/usr/bin/env bash
# Run a single-node Apache Kafka broker (KRaft, broker + controller) for development and tests.
#
#   scripts/kafka/kafka.sh start    fetch the jars if needed, start in the background, wait until ready
#   scripts/kafka/kafka.sh stop     SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT_S; no-op when stopped
#   scripts/kafka/kafka.sh status   exit 0 when running, 3 when not
#   scripts/kafka/kafka.sh run      the same broker in the foreground (for a Procfile); Ctrl-C stops it
#
# Environment:
#   KAFKA_PORT (9092)  KAFKA_CONTROLLER_PORT (9093)  KAFKA_DATA_DIR (<repo>/var/kafka)
#   KAFKA_HEAP (512m, the -Xmx)  KAFKA_START_TIMEOUT_S (90)  KAFKA_STOP_TIMEOUT_S (30)
#   KAFKA_CONSOLE_LOG_LEVEL (warn; what `run` copies to stderr)  KAFKA_JAVA_OPTS (extra JVM flags)
#
# Needs Java 17+, and Maven only to fetch the jars once (scripts/kafka/pom.xml, into
# scripts/kafka/target/dependency). The data dir holds server.properties (rendered from
# server.properties.tmpl), kafka.pid, data/ (log.dirs) and logs/ (server.log, console.out).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

PORT=${KAFKA_PORT:-9092}
CPORT=${KAFKA_CONTROLLER_PORT:-9093}
DATA=${KAFKA_DATA_DIR:-$ROOT/var/kafka}
HEAP=${KAFKA_HEAP:-512m}
START_TIMEOUT_S=${KAFKA_START_TIMEOUT_S:-90}
STOP_TIMEOUT_S=${KAFKA_STOP_TIMEOUT_S:-30}

case $DATA in /*) ;; *) DATA=$PWD/$DATA ;; esac
DEPS=$HERE/target/dependency
PROBE_CLASSES=$HERE/target/probe
# Quoted on purpose wherever it is used: java expands the trailing * itself.
CP="$DEPS/*"
PID_FILE=$DATA/kafka.pid
LOG_DIR=$DATA/logs
CONFIG=$DATA/server.properties
BOOTSTRAP=127.0.0.1:$PORT

LOG_OPTS=(-Dlog4j2.configurationFile="$HERE/log4j2.properties" -Dkafka.logs.dir="$LOG_DIR")
# Short-lived tools (format, readiness probe) start faster with C1 only and a serial collector.
TOOL_OPTS=(-Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
    "${LOG_OPTS[@]}" -Dkafka.log.name=tools -Dkafka.log.level=error)
# As kafka-run-class.sh, with a small heap instead of its 1 GiB.
# shellcheck disable=SC2206 # KAFKA_JAVA_OPTS is a list of flags, split on purpose
BROKER_OPTS=(-Xms64m "-Xmx$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true
    "${LOG_OPTS[@]}" -Dkafka.log.name=server ${KAFKA_JAVA_OPTS:-})

say() { echo "kafka.sh: $*" >&2; }
die() {
    say "$*"
    exit 1
}

now_ms() {
    if [[ -n ${EPOCHREALTIME:-} ]]; then
        local t=${EPOCHREALTIME/[.,]/}
        echo $((t / 1000))
    else
        echo $(($(date +%s) * 1000))
    fi
}

check_port_value() {
    if ! [[ $2 =~ ^[0-9]+$ ]] || (($2 < 1 || $2 > 65535)); then
        die "$1 must be a TCP port number, got '$2'"
    fi
}

require_java() {
    command -v java >/dev/null 2>&1 || die "Java is not installed: install a Java 17+ JDK (e.g. apt-get install openjdk-17-jdk-headless)"
    local version
    version=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')
    if ! [[ ${version%%.*} =~ ^[0-9]+$ ]] || ((${version%%.*} < 17)); then
        die "Java ${version:-of unknown version} is too old: install a Java 17+ JDK (e.g. apt-get install openjdk-17-jdk-headless)"
    fi
}

# Runs "$@" holding an exclusive lock on $1, so concurrent starts do not fetch or compile twice.
with_lock() {
    local lock=$1
    shift
    if command -v flock >/dev/null 2>&1; then
        local fd
        exec {fd}>"$lock"
        flock "$fd"
        "$@"
        exec {fd}>&-
    else
        "$@"
    fi
}

fetch_jars() {
    # The stamp ties the jars to the pom: a version bump fetches a fresh set, never a mix.
    local stamp
    stamp=$(cksum <"$HERE/pom.xml")
    [[ -f $DEPS/.pom-cksum && $(<"$DEPS/.pom-cksum") == "$stamp" ]] && return 0
    command -v mvn >/dev/null 2>&1 || die "Maven is not installed: install Maven 3.8+ (e.g. apt-get install maven) to fetch Kafka's jars"
    local tmp=$HERE/target/dependency.tmp.$$
    rm -rf "$tmp"
    say "fetching Apache Kafka jars from Maven Central into $DEPS"
    # Maven 3.8 prints bare colour resets even in quiet batch mode: strip them.
    if ! mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies -DoutputDirectory="$tmp" 2>&1 |
        sed -e $'s/\x1b\\[[0-9;]*m//g' -e '/^$/d' >&2; then
        rm -rf "$tmp"
        die "mvn could not fetch Kafka's jars (output above); check access to Maven Central"
    fi
    echo "$stamp" >"$tmp/.pom-cksum"
    rm -rf "$DEPS" "$PROBE_CLASSES"
    mv "$tmp" "$DEPS"
}

# Compiled once when a JDK is present; otherwise the probe runs as a single-file source program.
build_probe() {
    local src=$HERE/ReadinessProbe.java class=$PROBE_CLASSES/ReadinessProbe.class
    command -v javac >/dev/null 2>&1 || return 0
    [[ -f $class && $class -nt $src ]] && return 0
    local tmp=$PROBE_CLASSES.tmp.$$
    rm -rf "$tmp"
    javac -nowarn -d "$tmp" -cp "$CP" "$src" >&2 || {
        rm -rf "$tmp"
        die "javac failed on $src"
    }
    rm -rf "$PROBE_CLASSES"
    mv "$tmp" "$PROBE_CLASSES"
}

prepare_jars() {
    mkdir -p "$HERE/target"
    with_lock "$HERE/target/.lock" fetch_jars
    with_lock "$HERE/target/.lock" build_probe
}

render_config() {
    mkdir -p "$DATA/data" "$LOG_DIR"
    local line out=""
    while IFS= read -r line || [[ -n $line ]]; do
        # Quoted replacements: bash 5.2 would otherwise read & in a path as "the match".
        line=${line//@KAFKA_PORT@/"$PORT"}
        line=${line//@KAFKA_CONTROLLER_PORT@/"$CPORT"}
        line=${line//@KAFKA_DATA_DIR@/"$DATA"}
        out+=$line$'\n'
    done <"$HERE/server.properties.tmpl"
    printf '%s' "$out" >"$CONFIG.tmp"
    mv "$CONFIG.tmp" "$CONFIG"
}

new_cluster_id() {
    # A 22-character base64url UUID, as `kafka-storage.sh random-uuid` prints, without a JVM start.
    # A leading '-' would be read as an option, so draw again.
    local id
    while :; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)
        [[ $id != -* ]] && break
    done
    echo "$id"
}

format_storage() {
    [[ -f $DATA/data/meta.properties ]] && return 0
    local out
    if ! out=$(java "${TOOL_OPTS[@]}" -cp "$CP" kafka.tools.StorageTool format --ignore-formatted \
        -t "$(new_cluster_id)" -c "$CONFIG" 2>&1); then
        echo "$out" >&2
        die "formatting $DATA/data failed"
    fi
}

process_alive() {
    # A zombie still answers kill -0; count it as gone (init may be slow to reap it in a container).
    kill -0 "$1" 2>/dev/null || return 1
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $state != Z* ]]
}

is_our_broker() {
    process_alive "$1" || return 1
    local args
    if [[ -r /proc/$1/cmdline ]]; then
        args=$(tr '\0' ' ' <"/proc/$1/cmdline")
    else
        args=$(ps -ww -o args= -p "$1" 2>/dev/null) || return 1
    fi
    [[ $args == *"kafka.Kafka $CONFIG"* ]]
}

# Prints the pid of this data dir's broker and succeeds when it is running.
running_pid() {
    [[ -f $PID_FILE ]] || return 1
    local pid
    pid=$(<"$PID_FILE")
    [[ $pid =~ ^[0-9]+$ ]] && is_our_broker "$pid" || return 1
    echo "$pid"
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

ensure_ports_free() {
    local port
    for port in "$PORT" "$CPORT"; do
        ! port_open "$port" || die "port $port is in use by another process: set KAFKA_PORT / KAFKA_CONTROLLER_PORT to free ports"
    done
}

show_logs() {
    local file
    for file in "$LOG_DIR/server.log" "$LOG_DIR/console.out"; do
        [[ -s $file ]] || continue
        say "last lines of $file:"
        tail -n 40 "$file" >&2
    done
}

probe() {
    local timeout_ms=$1 pid=$2
    if [[ -f $PROBE_CLASSES/ReadinessProbe.class ]]; then
        java "${TOOL_OPTS[@]}" -cp "$PROBE_CLASSES:$CP" ReadinessProbe "$BOOTSTRAP" "$timeout_ms" "$pid"
    else
        java "${TOOL_OPTS[@]}" -cp "$CP" "$HERE/ReadinessProbe.java" "$BOOTSTRAP" "$timeout_ms" "$pid"
    fi
}

terminate() {
    local pid=$1 waited_ms=0
    kill -TERM "$pid" 2>/dev/null || return 0
    while process_alive "$pid" && ((waited_ms < STOP_TIMEOUT_S * 1000)); do
        sleep 0.2
        waited_ms=$((waited_ms + 200))
    done
    if process_alive "$pid"; then
        say "broker (pid $pid) still running after ${STOP_TIMEOUT_S}s: sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
}

cmd_start() {
    local started_ms pid
    started_ms=$(now_ms)
    require_java
    if pid=$(running_pid); then
        if port_open "$PORT"; then
            echo "kafka.sh: already running at $BOOTSTRAP (pid $pid, data $DATA)"
            return 0
        fi
        # Alive but not listening yet: another start is under way; wait for it like it would.
        say "broker (pid $pid) is starting; waiting until it is ready"
    else
        ensure_ports_free
        prepare_jars
        render_config
        format_storage
        : >"$LOG_DIR/console.out"
        # setsid: the broker outlives this script and is not in the caller's process group,
        # so a Ctrl-C meant for the caller (e.g. pytest) does not reach it.
        nohup setsid java "${BROKER_OPTS[@]}" -cp "$CP" kafka.Kafka "$CONFIG" \
            >"$LOG_DIR/console.out" 2>&1 </dev/null &
        pid=$!
        echo "$pid" >"$PID_FILE"
    fi
    local remaining_ms=$((START_TIMEOUT_S * 1000 - ($(now_ms) - started_ms)))
    ((remaining_ms > 1000)) || remaining_ms=1000
    if ! probe "$remaining_ms" "$pid"; then
        show_logs
        terminate "$pid"
        rm -f "$PID_FILE"
        die "the broker did not become ready at $BOOTSTRAP within ${START_TIMEOUT_S}s (logs above, in $LOG_DIR)"
    fi
    local took_ms=$(($(now_ms) - started_ms))
    printf 'kafka.sh: ready at %s (pid %s, data %s) in %d.%03ds\n' \
        "$BOOTSTRAP" "$pid" "$DATA" $((took_ms / 1000)) $((took_ms % 1000))
}

cmd_stop() {
    local pid
    if ! pid=$(running_pid); then
        rm -f "$PID_FILE"
        echo "kafka.sh: not running (data $DATA)"
        return 0
    fi
    terminate "$pid"
    rm -f "$PID_FILE"
    echo "kafka.sh: stopped (pid $pid)"
}

cmd_status() {
    local pid
    if pid=$(running_pid); then
        if port_open "$PORT"; then
            echo "running pid=$pid bootstrap=$BOOTSTRAP data=$DATA"
            return 0
        fi
        echo "starting pid=$pid bootstrap=$BOOTSTRAP data=$DATA (not accepting connections yet)"
        return 3
    fi
    echo "stopped bootstrap=$BOOTSTRAP data=$DATA"
    return 3
}

cmd_run() {
    require_java
    local pid
    if pid=$(running_pid); then
        die "a broker (pid $pid) already runs on $DATA: stop it first (scripts/kafka/kafka.sh stop)"
    fi
    ensure_ports_free
    prepare_jars
    render_config
    format_storage
    echo $$ >"$PID_FILE"
    say "broker starting in the foreground at $BOOTSTRAP (data $DATA, log $LOG_DIR/server.log)"
    exec java "${BROKER_OPTS[@]}" -Dkafka.console.level="${KAFKA_CONSOLE_LOG_LEVEL:-warn}" \
        -cp "$CP" kafka.Kafka "$CONFIG"
}

main() {
    check_port_value KAFKA_PORT "$PORT"
    check_port_value KAFKA_CONTROLLER_PORT "$CPORT"
    [[ $PORT != "$CPORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"
    case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    run) cmd_run ;;
    *)
        echo "usage: $0 start|stop|status|run" >&2
        exit 2
        ;;
    esac
}

main "$@"
