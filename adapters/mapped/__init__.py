"""Any CSV or XLSX log, read through a declarative mapping file."""

from adapters.mapped.mapping import Mapping
from adapters.mapped.messages import plan_mapped
from adapters.mapped.reader import MappedReader

__all__ = ["MappedReader", "Mapping", "plan_mapped"]
