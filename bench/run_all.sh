#!/usr/bin/env bash
# `make bench`: every benchmark, against one Kafka broker started here on free ports and stopped at exit.
# Each benchmark prints its own figures; bench/README.md says what they mean.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python

free_port() { "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export KAFKA_PORT=${KAFKA_PORT:-$(free_port)} KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$(free_port)}
export KAFKA_DATA_DIR=${KAFKA_DATA_DIR:-$PWD/var/kafka-bench}
trap 'scripts/kafka/kafka.sh stop >/dev/null' EXIT
scripts/kafka/kafka.sh start
kafka=127.0.0.1:$KAFKA_PORT
export PAYMENTS_BENCH_KAFKA_BOOTSTRAP=$kafka

run() { echo; echo "=== $*"; "$py" "$@"; }
run bench/gateway_charge.py
run bench/pay_flow.py --kafka "$kafka" --concurrency 1 --payments 500
run bench/pay_flow.py --kafka "$kafka" --concurrency 50 --payments 2000
run bench/pay_flow.py --kafka "$kafka" --latency-ms 300 --concurrency 500 --payments 4000
run bench/db_service_put.py --client raw --mix pay --payments 2000
run bench/db_service_put.py --client raw --mix put
run bench/consumer_throughput.py consumer --events 5000
run bench/consumer_throughput.py outbox-lag --payments 500
# 1 API on SQLite, 1 and 2 APIs on a throwaway PostgreSQL (skipped, and said so, without server binaries).
run bench/topology.py --kafka "$kafka" --payments 2000 --statements
