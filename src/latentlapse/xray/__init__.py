"""The X-ray application on top of the core: data, simulator, models, training, the CLI."""
