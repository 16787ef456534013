"""Long-running loops: the outbox relay and the worker process that runs it beside the payment consumer."""
