"""The plugin system: hookspecs, the plugin manager and entry points, registries, hook calls.

It knows no built-in plugin by name: the composition root (``routilux_kernel.builtin_plugins``)
hands the built-ins to :func:`routilux_kernel.hooks.manager.set_builtin_plugins`.
"""
