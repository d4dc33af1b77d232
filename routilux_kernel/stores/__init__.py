"""Built-in job stores: ``memory`` and ``sqlite:///`` (registered by the composition root)."""
