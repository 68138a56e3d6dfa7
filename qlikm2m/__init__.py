"""qlikm2m: a command-line tool for Qlik Cloud machine-to-machine OAuth clients."""

__version__ = "0.1.0"
