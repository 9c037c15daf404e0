"""The bundled demo CUDA program (`revati record --example`): source and a prebuilt binary."""
