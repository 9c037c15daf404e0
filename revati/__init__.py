"""revati: run real CUDA serving code with no GPU, on a virtual clock, into a DuckDB trace."""

__version__ = "0.1.0"
