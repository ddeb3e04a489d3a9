"""Safeguarding Exchange: shared entry points (the `sgx` command and the exception hierarchy)."""

__version__ = "0.1.0"
