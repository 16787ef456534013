#!/usr/bin/env bash
# `make bench`: every benchmark with its default figures. Each prints its own results; see bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
run() { echo; echo "=== $*"; "$py" "$@"; }
run bench/gateway_charge.py
run bench/pay_flow.py --latency-ms 0 --concurrency 50 --payments 2000
run bench/pay_flow.py --latency-ms 300 --concurrency 500 --payments 3000
run bench/db_service_put.py --client raw
run bench/consumer_throughput.py consumer --events 5000
run bench/consumer_throughput.py outbox-lag --payments 500
