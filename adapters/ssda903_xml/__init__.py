"""Expanded SSDA903 XML (EXPSSDA903/CHILD/HEADER + EPISODE), read safely and as the CSV tables."""

from adapters.ssda903_xml.reader import Ssda903XmlReader

__all__ = ["Ssda903XmlReader"]
