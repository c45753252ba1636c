"""Loads hakit's pytest plugin, so `pytest checks/ --inventory FILE` works from a checkout."""

pytest_plugins = ["fixtures.plugin"]
