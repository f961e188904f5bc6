"""The scopes an API key may carry; `admin` implies every other."""

from __future__ import annotations

ADMIN = "admin"
RESPONSES_WRITE = "responses:write"
RESULTS_READ = "results:read"
SCOPES = (ADMIN, RESPONSES_WRITE, RESULTS_READ)
