"""The audit trail over HTTP: reading records and histories (arms masked for blinded readers),
and verifying the hash chain. The trail itself, which imports no web code, is app/audit/."""
