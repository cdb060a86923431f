"""crmcore plugin for power suppliers: service points, fast-response tickets, load curves and
advice, equipment, arrears dunning."""

__version__ = "0.1.0"
