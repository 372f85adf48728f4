"""Which weights to load: model presets (``models/*.yaml``), the embedded SmolLM2 and em-eval's
checkpoint format."""
