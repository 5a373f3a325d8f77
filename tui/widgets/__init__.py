"""Widgets of the initlab app."""
