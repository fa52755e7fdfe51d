"""The data layer: class schemes, the Dataset container, readers, the simulator, balancing."""
