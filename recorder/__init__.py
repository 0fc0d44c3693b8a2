"""The recorder: the live pipeline, the calibration procedure, the window and the command line."""

from schemas import __version__

__all__ = ["__version__"]
