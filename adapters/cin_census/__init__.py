"""CIN census XML: child protection signals about children placed in other areas."""

from adapters.cin_census.reader import CinCensusReader, signals_of

__all__ = ["CinCensusReader", "signals_of"]
