"""fulcrum-sync: keep a metrics platform's time series, cache and patterns fresh."""

__version__ = "0.1.0"
