"""The contracts: routines, flows, job states, errors, error handling, activation policies.

Nothing here imports another layer of the package; every other layer builds on this one.
"""
