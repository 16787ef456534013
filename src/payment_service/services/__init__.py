"""Use cases: order the steps, own transaction boundaries; rules stay in domain/."""
