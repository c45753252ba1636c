"""hakit's pytest plugin (hakit.fixtures.plugin, from fixtures/) is registered by the
installed package through the pytest11 entry point, so `pytest --inventory FILE` works
from any directory. Plugin autoloading can be turned off (PYTEST_DISABLE_PLUGIN_AUTOLOAD):
then this file loads it for runs from the checkout."""

import os

if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
    pytest_plugins = ["hakit.fixtures.plugin"]
