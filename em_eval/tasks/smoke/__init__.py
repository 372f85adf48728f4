"""em_smoke: tiny offline arithmetic for demos and tests."""
