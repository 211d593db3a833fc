"""Reactions to events and commands: small functions over a context, no platform imports."""
