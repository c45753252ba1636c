"""The runbooks, one module per procedure (shipped as hakit.runbooks)."""
