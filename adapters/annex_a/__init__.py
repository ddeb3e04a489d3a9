"""Ofsted Annex A workbooks (the looked-after children list, List 8) as placements."""

from adapters.annex_a.reader import AnnexAReader, placements_from

__all__ = ["AnnexAReader", "placements_from"]
