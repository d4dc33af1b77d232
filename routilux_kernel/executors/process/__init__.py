"""The ``process`` executor: a crash-isolated pool of worker interpreters."""
