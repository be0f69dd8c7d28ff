"""The where resolver: one SinglePlacementSlice per EdgePlacement, listing its destinations."""

from pkg.controllers.where.controller import FIELD_MANAGER, NAME, WhereResolver, setup
from pkg.controllers.where.resolve import Destination, Problem, resolve, selected_locations

__all__ = [
    "FIELD_MANAGER",
    "NAME",
    "Destination",
    "Problem",
    "WhereResolver",
    "resolve",
    "selected_locations",
    "setup",
]
