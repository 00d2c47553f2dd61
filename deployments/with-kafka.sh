#!/usr/bin/env bash
# Runs a command with a real Apache Kafka 4.x broker on loopback:
# KAFKA_BROKERS is exported to it, and the broker is stopped afterwards
# whatever the command's outcome. Without Java or Maven the command is skipped
# with a message, except under CI=true, where that is a failure.
set -euo pipefail
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
kafka="$here/kafka-local/kafka.sh"

missing=()
command -v java >/dev/null 2>&1 || [ -n "${JAVA_HOME:-}" ] || missing+=(java)
command -v mvn >/dev/null 2>&1 || missing+=(mvn)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "${CI:-}" = "true" ]; then
    echo "with-kafka.sh: ${missing[*]} not found; the real-broker tests must run under CI" >&2
    exit 1
  fi
  echo "with-kafka.sh: SKIPPING the real-Kafka tests: ${missing[*]} not found (install a JDK 17+ and Maven to run them)" >&2
  exit 0
fi

export KAFKA_PORT=${KAFKA_PORT:-39092}
export KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-39093}
trap 'bash "$kafka" stop >/dev/null 2>&1 || true' EXIT
line=$(bash "$kafka" start | grep '^KAFKA_BROKERS=' | tail -n1)
export KAFKA_BROKERS=${line#KAFKA_BROKERS=}
export PRISM_TEST_BROKER=kafka
echo "with-kafka.sh: Apache Kafka at $KAFKA_BROKERS" >&2
"$@"
