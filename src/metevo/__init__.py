from metevo._version import __version__
