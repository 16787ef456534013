-- The reference db-service gets a database of its own beside the payment service's local store.
CREATE DATABASE reference_db OWNER payments;
