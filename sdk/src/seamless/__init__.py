"""seamless: the runtime of the Seamless full-stack bundle."""

__version__ = "0.1.0"
