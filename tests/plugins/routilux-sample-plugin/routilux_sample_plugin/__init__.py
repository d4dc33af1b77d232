"""routilux-sample-plugin: what a third-party routilux plugin looks like.

Nothing here is imported by users: routilux finds ``routilux_sample_plugin.plugin`` through
the ``routilux`` entry point declared in pyproject.toml.
"""

__version__ = "0.3.1"
