"""CIN census XML: child protection signals about children placed in other areas."""

from adapters.cin_census.reader import CinCensusReader, plan_concerns

__all__ = ["CinCensusReader", "plan_concerns"]
