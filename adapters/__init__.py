"""Adapters: read the exports local authorities already produce and turn them into standard messages."""
