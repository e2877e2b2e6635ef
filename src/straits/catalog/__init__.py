"""Shipped reference data: the chip catalog and ISO country codes."""

from straits.catalog.chips import Catalog, Chip, Figure, catalog, get_chip
from straits.catalog.countries import country_name, is_country
from straits.catalog.export_class import Classification, classify_2022, classify_2023

__all__ = [
    "Catalog",
    "Chip",
    "Classification",
    "Figure",
    "catalog",
    "classify_2022",
    "classify_2023",
    "country_name",
    "get_chip",
    "is_country",
]
