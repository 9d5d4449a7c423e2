"""Models: configs (frozen dataclasses, the presets registry) and the model class."""
