"""The formats we read and write, and their vocabulary; imports nothing else of the project."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("palpation-recorder")
except PackageNotFoundError:
    __version__ = "0+unknown"
