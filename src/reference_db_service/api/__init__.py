"""HTTP edge of the reference db-service: parse, call one store function, shape the reply."""
