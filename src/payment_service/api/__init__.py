"""HTTP edge of the payment service: parse, authenticate, call one service method, shape the reply."""
