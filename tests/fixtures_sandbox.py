"""Sandbox tenant fixtures (filled in with the sandbox)."""
