"""Screens of the revati TUI, one module per screen."""
