"""Selectors: canonical forms of identifiers (IP, e-mail, phone, crypto, ...) and finding them
in free text."""

from crossborder.selectors.extract import Found, extract, extract_from_file
from crossborder.selectors.normalize import InvalidIdentifier, Normalized, normalize

__all__ = ["Found", "InvalidIdentifier", "Normalized", "extract", "extract_from_file", "normalize"]
