#!/usr/bin/env bash
# One process of `make run`'s stack (see Procfile). Ports and data directory come from STACK_* variables,
# so a second stack (the test of this file) runs beside a developer's own on the defaults.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

: "${STACK_VAR_DIR:=$root/var}"
: "${STACK_API_PORT:=8000}"
: "${STACK_DB_PORT:=8001}"
: "${STACK_SIM_PORT:=8002}"
: "${STACK_KAFKA_PORT:=9092}"
: "${STACK_KAFKA_CONTROLLER_PORT:=9093}"
: "${STACK_WORKER_METRICS_PORT:=9102}"
mkdir -p "$STACK_VAR_DIR"

# The reference db-service refuses callers without this stack's service token; the payment service sends it.
# Made once per data directory; `ln` is atomic, so processes starting together agree on one token.
token_file="$STACK_VAR_DIR/db-service.token"
if [ ! -s "$token_file" ]; then
  candidate=$(mktemp "$STACK_VAR_DIR/.db-service.token.XXXXXX")
  python -c 'import secrets; print(secrets.token_urlsafe(32))' > "$candidate"
  ln "$candidate" "$token_file" 2>/dev/null || true
  rm -f "$candidate"
fi
REFERENCE_DB_TOKEN=$(cat "$token_file")
export REFERENCE_DB_TOKEN PAYMENTS_DB_SERVICE__TOKEN="$REFERENCE_DB_TOKEN"

export KAFKA_PORT=$STACK_KAFKA_PORT KAFKA_CONTROLLER_PORT=$STACK_KAFKA_CONTROLLER_PORT KAFKA_DATA_DIR="$STACK_VAR_DIR/kafka"
export REFERENCE_DB_DATABASE_URL="sqlite+aiosqlite:///$STACK_VAR_DIR/reference-db.sqlite3"
export PAYMENTS_GATEWAY__ENDPOINT="http://127.0.0.1:$STACK_SIM_PORT/xml/v1/request.api"
export PAYMENTS_DB_SERVICE__BASE_URL="http://127.0.0.1:$STACK_DB_PORT"
export PAYMENTS_KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:$STACK_KAFKA_PORT"
export PAYMENTS_WORKER__METRICS_PORT=$STACK_WORKER_METRICS_PORT
export PAYMENTS_STORE__DATABASE_URL="sqlite+aiosqlite:///$STACK_VAR_DIR/payment-service.sqlite3"
: "${PAYMENTS_LOG__JSON:=false}"
export PAYMENTS_LOG__JSON

case "${1:-}" in
  kafka) exec scripts/kafka/kafka.sh run ;;
  db)
    reference-db-service seed
    exec reference-db-service serve --port "$STACK_DB_PORT" ;;
  simulator)
    # Webhooks go to the payment API, signed with the key the API checks them with.
    export ANET_SIM_WEBHOOK_URL="http://127.0.0.1:$STACK_API_PORT/webhooks/authorizenet"
    if [ -n "${PAYMENTS_GATEWAY__SIGNATURE_KEY:-}" ]; then export ANET_SIM_SIGNATURE_KEY=$PAYMENTS_GATEWAY__SIGNATURE_KEY; fi
    exec authorize-net-simulator serve --port "$STACK_SIM_PORT" ;;
  api) exec payment-service api --port "$STACK_API_PORT" ;;
  worker) exec payment-service worker ;;
  ready) exec python scripts/stack/ready.py ;;
  *) echo "usage: $0 kafka|db|simulator|api|worker|ready" >&2; exit 2 ;;
esac
