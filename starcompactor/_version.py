"""The version, in one place: the package, the manifests and the build (pyproject.toml) read it here."""

__version__ = "1.0.0.dev0"
