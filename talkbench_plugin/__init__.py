"""talkbench: a pytest-native benchmark suite for talking-face synthesis."""

__version__ = "0.1.0"
