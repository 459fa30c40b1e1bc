"""jobflow Makers and Flows, the engine registry, the results store and the local runner."""
