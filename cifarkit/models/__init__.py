"""Model registry: `catalog` (pure data) and the builders that turn a config into a Keras model."""
