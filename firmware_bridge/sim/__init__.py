"""Simulated sensors and instrument emulators on real pseudo-terminals, with ground truth."""
