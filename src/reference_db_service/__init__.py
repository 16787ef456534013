"""Reference db-service: orders, customers, products and payment records over HTTP (DESIGN §6).

A development and test companion of the payment service; it never imports the payment service.
`create_app(settings)` (in `api.app`) builds the app; `reference-db-service serve|seed|init-db` runs it.

Decisions beyond DESIGN §6 (the payment service may rely on them):
- Ids are strings on the wire. Customers, products and orders have integer ids underneath, so their
  ids are digit strings; create bodies may carry an explicit `id` (409 `already_exists` if taken).
  Payment ids are the caller's (letters, digits, `_ . : -`, at most 128).
- Optional fields (`phone`, `line2`, `sku`, `shipping_amount`, `tax_amount`, `payment_id`) are
  present as `null` when unset. Amounts are decimal strings, stored as integers: prices, shipping and
  tax with at most two places, in cents (a product has no currency); a payment's `amount` and
  `refunded_amount` in its currency's minor unit (ISO 4217: none for JPY, three for KWD, BHD, OMR, JOD
  and TND, two otherwise), answered with exactly that many places. More places than the currency has
  (JPY `0.50`, KWD `0.6175`) are 422 `validation_failed`, never rounded.
- Orders: `status` is `pending | paid | cancelled`; `payment_status` is `unpaid` or the latest
  payment's status. How payments move an order is stated in `rules.py`: `approved` marks it paid;
  a paid order never regresses; `refunded`/`voided` of the paying payment keep `status: paid`.
- `PATCH /orders/{id}`: 200 with the order, also when the update is stale and changes nothing;
  409 `order_cancelled` or `order_already_paid` for an approval the order cannot take.
  `POST /orders/{id}/cancel` cancels a pending order (idempotent; 409 when paid).
- `PUT /payments/{id}`: 201 created, 200 updated or unchanged (stale or equal `version`: the stored
  record is returned). 422 `unknown_order`, `customer_mismatch` or `payment_order_mismatch` are
  permanent. An approval that its order cannot take is still recorded (the charge happened) and
  logged as `payment.order_conflicted`. Unknown body fields are ignored; only an `account_number`
  with at most four digits is accepted.
- Errors are RFC 9457 `application/problem+json` with a stable `code`; request validation errors
  are 422 `validation_failed` with `errors` (location and message, never the input).
- Tables are created on start (`metadata.create_all`); there are no migrations: a schema change (such
  as `payments.amount_minor`, formerly `amount_cents`) needs a fresh database file.
"""
