"""The latent-space time-lapse: pure numpy stages that run in a worker process (no torch here)."""
