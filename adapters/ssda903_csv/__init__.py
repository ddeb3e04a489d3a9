"""SSDA903 (children looked after) CSV exports: one table per file, recognised by its header."""

from adapters.ssda903_csv.reader import TABLES, Ssda903CsvReader

__all__ = ["TABLES", "Ssda903CsvReader"]
