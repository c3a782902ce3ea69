"""What people read: locale-aware money and dates, the rendering context of reminders and statements, and the
documented list of template variables (connector/words/variables.py)."""
