"""`python -m adapters.quickbooks.sandbox`: serve a sandbox (see process.py)."""

from adapters.quickbooks.sandbox.process import main

main()
