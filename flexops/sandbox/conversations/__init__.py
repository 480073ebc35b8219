"""Conversations v1: models (state and rules), responses (HTTP), urls (routes)."""
from .addresses import ADDRESS_KIND, LIST_PATH  # noqa: F401  (where benches seed addresses directly)
