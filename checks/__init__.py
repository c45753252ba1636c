"""The HA check suites, one module per property (shipped as hakit.checks)."""
