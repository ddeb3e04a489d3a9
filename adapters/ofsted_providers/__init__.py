"""Ofsted provider lists (XLSX): the settings of the directory."""

from adapters.ofsted_providers.reader import ProviderListReader

__all__ = ["ProviderListReader"]
