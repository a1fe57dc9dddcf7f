"""The package version: one place, read by pyproject.toml and by emitted modules' headers."""
__version__ = "0.1.0"
