"""Authorize.Net: the async client (`client.py`), its JSON wire format (`wire.py`) and what answers mean."""
