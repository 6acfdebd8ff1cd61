"""Safe retries of POST and PATCH: the ``Idempotency-Key`` request header (issue 12)."""
