"""Datastore checks, one module per kind of server."""
