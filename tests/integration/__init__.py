"""revati tests."""
