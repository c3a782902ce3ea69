"""Test-only ledgers: adapters that live outside `adapters/` and reach ccm only through its extension point."""
