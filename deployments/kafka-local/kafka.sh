#!/usr/bin/env bash
# Fetch and run a real, single-node Apache Kafka 4.x broker (KRaft, combined
# broker+controller) on loopback, without Docker and without the Kafka binary
# tarball: the jars come from Maven Central through ./pom.xml, and the broker
# is started with `java -cp` the same way the distribution's scripts do it.
#
# Usage: deployments/kafka-local/kafka.sh {fetch|start|stop|status|logs}
#
#   fetch   resolve the broker jars into $KAFKA_LOCAL_HOME/libs (idempotent)
#   start   fetch if needed, format a fresh temp data dir with a random
#           cluster id (kafka-storage.sh format --standalone), start
#           kafka.Kafka in the background, wait until it answers Kafka
#           requests, then print KAFKA_BROKERS=127.0.0.1:<port>.
#           If the broker is already running it only prints that line.
#   stop    SIGTERM, SIGKILL after $KAFKA_STOP_TIMEOUT s, remove the data dir
#   status  print the state; exit 0 if running and answering, 1 if not
#   logs    print the last lines of the broker log (LINES=200)
#
# Environment (all optional):
#   KAFKA_VERSION            4.4.0 (org.apache.kafka:kafka_2.13 version)
#   KAFKA_LOCAL_HOME         $HOME/.cache/prism-exporter/kafka-$KAFKA_VERSION
#   KAFKA_PORT               39092 (PLAINTEXT listener, 127.0.0.1)
#   KAFKA_CONTROLLER_PORT    39093 (KRaft controller listener, 127.0.0.1)
#   KAFKA_LOCAL_STATE        ${TMPDIR:-/tmp}/prism-exporter-kafka-$KAFKA_PORT
#                            (pid file, rendered config, server.log)
#   KAFKA_HEAP_OPTS          -Xmx512m -Xms256m
#   KAFKA_JVM_PERFORMANCE_OPTS  G1 options as in kafka-run-class.sh
#   KAFKA_OPTS               extra JVM options
#   KAFKA_EXTRA_PROPERTIES   file whose lines are appended to server.properties
#   KAFKA_LOG_LEVEL          INFO (root log level)
#   KAFKA_REQUEST_LOG_LEVEL  WARN; DEBUG logs every request's api key/version
#   KAFKA_START_TIMEOUT      90 (seconds to wait for the broker)
#   KAFKA_STOP_TIMEOUT       30 (seconds between SIGTERM and SIGKILL)
#   KAFKA_MVN_ARGS           extra arguments for mvn during fetch
#   JAVA_HOME                Java 17+ to use (else `java` on PATH)
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)

KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
KAFKA_LOCAL_HOME=${KAFKA_LOCAL_HOME:-${HOME}/.cache/prism-exporter/kafka-${KAFKA_VERSION}}
KAFKA_PORT=${KAFKA_PORT:-39092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-39093}
KAFKA_LOCAL_STATE=${KAFKA_LOCAL_STATE:-${TMPDIR:-/tmp}/prism-exporter-kafka-${KAFKA_PORT}}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}
KAFKA_JVM_PERFORMANCE_OPTS=${KAFKA_JVM_PERFORMANCE_OPTS:--server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true}
KAFKA_OPTS=${KAFKA_OPTS:-}
KAFKA_LOG_LEVEL=${KAFKA_LOG_LEVEL:-INFO}
KAFKA_REQUEST_LOG_LEVEL=${KAFKA_REQUEST_LOG_LEVEL:-WARN}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-90}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
KAFKA_MVN_ARGS=${KAFKA_MVN_ARGS:-}
NODE_ID=1

LIBS_DIR="${KAFKA_LOCAL_HOME}/libs"
FETCH_MARKER="${LIBS_DIR}/.fetched-kafka-${KAFKA_VERSION}"
PID_FILE="${KAFKA_LOCAL_STATE}/kafka.pid"
DATA_DIR_FILE="${KAFKA_LOCAL_STATE}/data-dir"
LOG_FILE="${KAFKA_LOCAL_STATE}/server.log"
CONFIG_FILE="${KAFKA_LOCAL_STATE}/server.properties"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() {
	printf 'kafka.sh: error: %s\n' "$*" >&2
	exit 1
}

usage() {
	sed -n '/^# Usage:/,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

validate_env() {
	is_uint "$KAFKA_PORT" || die "KAFKA_PORT must be a number, got '$KAFKA_PORT'"
	is_uint "$KAFKA_CONTROLLER_PORT" || die "KAFKA_CONTROLLER_PORT must be a number, got '$KAFKA_CONTROLLER_PORT'"
	[[ $KAFKA_PORT != "$KAFKA_CONTROLLER_PORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"
	is_uint "$KAFKA_START_TIMEOUT" || die "KAFKA_START_TIMEOUT must be a number of seconds"
	is_uint "$KAFKA_STOP_TIMEOUT" || die "KAFKA_STOP_TIMEOUT must be a number of seconds"
}

# --- prerequisites --------------------------------------------------------

JAVA=""
find_java() {
	if [[ -n ${JAVA_HOME:-} && -x ${JAVA_HOME}/bin/java ]]; then
		JAVA="${JAVA_HOME}/bin/java"
	elif command -v java >/dev/null 2>&1; then
		JAVA=$(command -v java)
	else
		die "java not found: install a JDK/JRE 17 or newer (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
	fi
	local spec
	spec=$("$JAVA" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2; exit}') || true
	spec=${spec%%.*}
	if ! is_uint "${spec:-x}"; then
		die "cannot determine the version of $JAVA"
	fi
	if ((spec < 17)); then
		die "$JAVA is Java $spec; Kafka ${KAFKA_VERSION} brokers need Java 17 or newer (set JAVA_HOME)"
	fi
}

require_mvn() {
	command -v mvn >/dev/null 2>&1 ||
		die "mvn not found: Maven 3.6+ is needed to fetch the Kafka jars from Maven Central (e.g. apt-get install maven)"
}

# --- fetch ----------------------------------------------------------------

is_fetched() { [[ -f $FETCH_MARKER ]]; }

cmd_fetch() {
	if is_fetched; then
		log "Kafka ${KAFKA_VERSION} jars already in ${LIBS_DIR}"
		return 0
	fi
	require_mvn
	find_java
	mkdir -p "$KAFKA_LOCAL_HOME"
	local tmp="${KAFKA_LOCAL_HOME}/libs.tmp.$$"
	rm -rf "$tmp"
	log "resolving org.apache.kafka:kafka_2.13:${KAFKA_VERSION} from Maven Central into ${LIBS_DIR}"
	local start=$SECONDS
	# mvn -q still prints ANSI colour resets; strip them. With pipefail the
	# status is mvn's.
	# shellcheck disable=SC2086 # KAFKA_MVN_ARGS is a list of arguments
	if ! mvn -q -B -Dstyle.color=never -f "${SCRIPT_DIR}/pom.xml" \
		-Dkafka.version="${KAFKA_VERSION}" \
		${KAFKA_MVN_ARGS} \
		dependency:copy-dependencies \
		-DincludeScope=runtime \
		-DoutputDirectory="$tmp" 2>&1 | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^$/d' >&2; then
		rm -rf "$tmp"
		die "mvn could not resolve Kafka ${KAFKA_VERSION} (is Maven Central reachable? try KAFKA_VERSION=4.1.1)"
	fi
	[[ -f "$tmp/kafka_2.13-${KAFKA_VERSION}.jar" ]] || {
		rm -rf "$tmp"
		die "kafka_2.13-${KAFKA_VERSION}.jar missing after mvn dependency:copy-dependencies"
	}
	rm -rf "$LIBS_DIR"
	mv "$tmp" "$LIBS_DIR"
	date -u +%Y-%m-%dT%H:%M:%SZ >"$FETCH_MARKER"
	log "fetched $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars in $((SECONDS - start)) s"
}

# --- process helpers ------------------------------------------------------

read_pid() {
	[[ -f $PID_FILE ]] || return 1
	local pid
	pid=$(<"$PID_FILE")
	is_uint "$pid" || return 1
	printf '%s' "$pid"
}

# pid_is_ours PID: the process exists and is our kafka.Kafka JVM.
pid_is_ours() {
	local pid=$1
	kill -0 "$pid" 2>/dev/null || return 1
	if [[ -r /proc/$pid/cmdline ]]; then
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- 'kafka.Kafka' || return 1
	fi
	return 0
}

running_pid() {
	local pid
	pid=$(read_pid) || return 1
	pid_is_ours "$pid" || return 1
	printf '%s' "$pid"
}

# probe_kafka PORT: send an ApiVersions v0 request and succeed if the broker
# answers with error code 0 (NONE). Uses bash's /dev/tcp, no client needed.
probe_kafka() {
	local port=$1 reply
	# size=10 | api_key=18 (ApiVersions) | api_version=0 | correlation_id=1 | client_id=""
	reply=$(
		timeout 5 bash -c '
			exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
			printf "\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x01\x00\x00" >&3
			head -c 10 <&3 | od -An -tx1
		' _ "$port" 2>/dev/null | tr -d ' \n'
	) || return 1
	# 4 bytes size, 4 bytes correlation id (1), 2 bytes error code (0)
	[[ ${reply:8:8} == 00000001 && ${reply:16:4} == 0000 ]]
}

port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

new_cluster_id() {
	# Same shape as kafka-storage.sh random-uuid (org.apache.kafka.common.Uuid):
	# 16 random bytes, URL-safe base64 without padding, not starting with '-'.
	local id
	while :; do
		id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
		[[ ${#id} -eq 22 && ${id:0:1} != - ]] && break
	done
	printf '%s' "$id"
}

cleanup_state() {
	local data_dir=""
	[[ -f $DATA_DIR_FILE ]] && data_dir=$(<"$DATA_DIR_FILE")
	if [[ -n $data_dir && -d $data_dir && $data_dir == */prism-exporter-kafka-data.* ]]; then
		rm -rf -- "$data_dir"
	fi
	rm -f -- "$PID_FILE" "$DATA_DIR_FILE"
}

classpath() {
	local cp
	cp=$(find "$LIBS_DIR" -maxdepth 1 -name '*.jar' | sort | tr '\n' ':')
	printf '%s' "${cp%:}"
}

# --- start ----------------------------------------------------------------

print_brokers() { printf 'KAFKA_BROKERS=127.0.0.1:%s\n' "$KAFKA_PORT"; }

cmd_start() {
	validate_env
	local pid
	if pid=$(running_pid); then
		if probe_kafka "$KAFKA_PORT"; then
			log "already running (pid $pid)"
			print_brokers
			return 0
		fi
		die "a broker is running (pid $pid) but not answering on 127.0.0.1:${KAFKA_PORT}; see ${LOG_FILE} or run '$0 stop'"
	fi
	# A pid file without a live broker: leftovers of a crash or a reboot.
	if [[ -f $PID_FILE || -f $DATA_DIR_FILE ]]; then
		log "removing stale state in ${KAFKA_LOCAL_STATE}"
		cleanup_state
	fi
	for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
		port_in_use "$p" && die "127.0.0.1:$p is already in use by another process (set KAFKA_PORT / KAFKA_CONTROLLER_PORT)"
	done

	cmd_fetch
	find_java

	mkdir -p "$KAFKA_LOCAL_STATE"
	local data_dir
	data_dir=$(mktemp -d "${TMPDIR:-/tmp}/prism-exporter-kafka-data.XXXXXXXX")
	printf '%s\n' "$data_dir" >"$DATA_DIR_FILE"

	local template="${SCRIPT_DIR}/server.properties"
	sed -e "s|@KAFKA_PORT@|${KAFKA_PORT}|g" \
		-e "s|@CONTROLLER_PORT@|${KAFKA_CONTROLLER_PORT}|g" \
		-e "s|@DATA_DIR@|${data_dir}|g" \
		-e "s|@NODE_ID@|${NODE_ID}|g" \
		"$template" >"$CONFIG_FILE"
	if [[ -n ${KAFKA_EXTRA_PROPERTIES:-} ]]; then
		[[ -r $KAFKA_EXTRA_PROPERTIES ]] || die "KAFKA_EXTRA_PROPERTIES=$KAFKA_EXTRA_PROPERTIES is not readable"
		{
			printf '\n# from %s\n' "$KAFKA_EXTRA_PROPERTIES"
			cat "$KAFKA_EXTRA_PROPERTIES"
		} >>"$CONFIG_FILE"
	fi

	local cp log4j_opts cluster_id start=$SECONDS
	cp=$(classpath)
	log4j_opts=(
		"-Dlog4j2.configurationFile=${SCRIPT_DIR}/log4j2.properties"
		"-Dkafka.root.loglevel=${KAFKA_LOG_LEVEL}"
		"-Dkafka.request.loglevel=${KAFKA_REQUEST_LOG_LEVEL}"
		"-Dkafka.logs.dir=${KAFKA_LOCAL_STATE}"
	)
	cluster_id=$(new_cluster_id)
	: >"$LOG_FILE"

	# kafka-storage.sh format --standalone -t <id> -c server.properties
	log "formatting ${data_dir} (cluster id ${cluster_id})"
	if ! "$JAVA" -Xmx256m "${log4j_opts[@]}" -Dkafka.root.loglevel=WARN -cp "$cp" \
		kafka.tools.StorageTool format --standalone \
		--cluster-id "$cluster_id" --config "$CONFIG_FILE" >>"$LOG_FILE" 2>&1; then
		tail -n 40 "$LOG_FILE" >&2 || true
		cleanup_state
		die "formatting the storage failed (log: ${LOG_FILE})"
	fi

	# kafka-server-start.sh server.properties
	# shellcheck disable=SC2086 # the *_OPTS variables are lists of JVM options
	nohup "$JAVA" $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS $KAFKA_OPTS \
		"${log4j_opts[@]}" -cp "$cp" kafka.Kafka "$CONFIG_FILE" \
		>>"$LOG_FILE" 2>&1 </dev/null &
	pid=$!
	printf '%s\n' "$pid" >"$PID_FILE"
	log "broker starting (pid $pid, log ${LOG_FILE})"

	local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
	while :; do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 40 "$LOG_FILE" >&2 || true
			cleanup_state
			die "the broker exited during startup (log: ${LOG_FILE})"
		fi
		if grep -q 'Kafka Server started' "$LOG_FILE" && probe_kafka "$KAFKA_PORT"; then
			break
		fi
		if ((SECONDS >= deadline)); then
			tail -n 40 "$LOG_FILE" >&2 || true
			stop_pid "$pid"
			cleanup_state
			die "the broker did not answer on 127.0.0.1:${KAFKA_PORT} within ${KAFKA_START_TIMEOUT} s (log: ${LOG_FILE})"
		fi
		sleep 0.25
	done
	log "Kafka ${KAFKA_VERSION} ready on 127.0.0.1:${KAFKA_PORT} in $((SECONDS - start)) s"
	print_brokers
}

# --- stop / status --------------------------------------------------------

stop_pid() {
	local pid=$1 deadline
	kill -TERM "$pid" 2>/dev/null || return 0
	deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			log "pid $pid still alive after ${KAFKA_STOP_TIMEOUT} s, sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
	# Reap it if it is our child; harmless otherwise.
	wait "$pid" 2>/dev/null || true
}

cmd_stop() {
	local pid
	if pid=$(running_pid); then
		log "stopping broker (pid $pid)"
		stop_pid "$pid"
	else
		log "no broker running for ${KAFKA_LOCAL_STATE}"
	fi
	cleanup_state
}

cmd_status() {
	local pid
	if pid=$(running_pid); then
		if probe_kafka "$KAFKA_PORT"; then
			echo "running: pid $pid, Kafka ${KAFKA_VERSION}, 127.0.0.1:${KAFKA_PORT}, data $(cat "$DATA_DIR_FILE" 2>/dev/null || echo '?'), log ${LOG_FILE}"
			print_brokers
			return 0
		fi
		echo "starting or unhealthy: pid $pid is not answering on 127.0.0.1:${KAFKA_PORT} (log ${LOG_FILE})"
		return 1
	fi
	if is_fetched; then
		echo "not running (Kafka ${KAFKA_VERSION} jars cached in ${LIBS_DIR})"
	else
		echo "not running (Kafka ${KAFKA_VERSION} not fetched yet)"
	fi
	return 1
}

cmd_logs() {
	[[ -f $LOG_FILE ]] || die "no log at ${LOG_FILE}"
	tail -n "${LINES:-200}" "$LOG_FILE"
}

main() {
	local cmd=${1:-}
	case $cmd in
	fetch) cmd_fetch ;;
	start) cmd_start ;;
	stop) cmd_stop ;;
	status) cmd_status ;;
	logs) cmd_logs ;;
	-h | --help | help)
		usage
		;;
	*)
		usage >&2
		exit 2
		;;
	esac
}

main "$@"
