"""Prometheus metrics of the payment consumer; the worker exposes them (see `worker/main.py`).

Labels are bounded: topic and partition, DLQ reasons (a short fixed vocabulary), never ids.
"""

from prometheus_client import Counter, Gauge

RECORDS_HANDLED = Counter(
    "payment_service_consumer_records", "Records the payment consumer finished, by result.", ["result"]
)
RECORDS_RECORDED = RECORDS_HANDLED.labels(result="recorded")
RECORDS_DEAD_LETTERED = RECORDS_HANDLED.labels(result="dead_lettered")
DEAD_LETTERS = Counter("payment_service_dlq_records", "Records sent to the dead-letter topic, by reason.", ["reason"])
CONSUMER_LAG = Gauge(
    "payment_service_consumer_lag",
    "Records between the last one the consumer finished and the partition's end, as of the last fetch.",
    ["topic", "partition"],
)
