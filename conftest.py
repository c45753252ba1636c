"""Loads hakit's pytest plugin (fixtures/), so `pytest checks/ --inventory FILE` works."""
