"""Importing this package registers every command on the app."""

from connector.cli.commands import db, demo, log, sync, tenants

__all__ = ["db", "demo", "log", "sync", "tenants"]
