"""`Idempotency-Key` for writes: the claim and replay rules (`dependencies`), their queries
(`repository`)."""
