"""Support code for the test suites of routilux_kernel and its plugins (not shipped).

``components``: what the suite needs from the machine (PostgreSQL, Chromium, Dask) and how a
test asks for it. ``postgres_server``: a private PostgreSQL server in a temporary directory.
"""
