"""Shared test helpers (import as ``helpers.<module>``)."""
