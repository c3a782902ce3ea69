"""Shipped reminder templates (Jinja2): <name>.subject.txt, <name>.txt and <name>.html."""
