"""Widgets of the revati TUI."""
