"""Placeholder: the bundled AtomaSDK class (being written)."""
