"""The recorder: session, ring buffer, HDF5 writer and reader, command line."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("palpation-recorder")
except PackageNotFoundError:
    __version__ = "0+unknown"
