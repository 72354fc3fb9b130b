"""Pure functions from snapshots (and probe results) to figures and findings. No I/O, no Textual."""
