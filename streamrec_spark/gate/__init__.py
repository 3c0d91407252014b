"""Model validation gate: decide from aggregated results whether a model may be registered."""
