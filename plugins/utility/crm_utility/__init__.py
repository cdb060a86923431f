"""crmcore plugin for power suppliers (seed 001, essays 3 and 10)."""

__version__ = "0.1.0"
