"""Mappings: raw ledger records to canonical records, declared in YAML and compiled to callables."""

from connector.mapping.compile import CompiledMapping, CompiledStream
from connector.mapping.loader import MappingFileError, load_mapping

__all__ = ["CompiledMapping", "CompiledStream", "MappingFileError", "load_mapping"]
