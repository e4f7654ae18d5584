"""Worked examples of symflow plug-ins (see docs/extending.md)."""
