"""Decisions as pure functions of a snapshot and a date: dunning, credit, interest. No side effects here."""
