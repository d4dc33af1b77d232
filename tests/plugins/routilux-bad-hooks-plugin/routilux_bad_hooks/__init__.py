"""Four small plugins, one per entry point, each broken in its own way."""
