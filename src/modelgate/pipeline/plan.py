"""Plan: what may serve the call, in the order to try it.

The catalog gives the plan of a model name (``routing.catalog.Plan``): its deployments in
the order to try them, and the models to fall back to (a ``-thinking`` variant: its base's,
the call turned to thinking by its door). The chain walks it
(``Chain._serve``); the plan of an exact name with one deployment is built once, so this
stage costs a dict hit on the common path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelgate.errors import NotFound
from modelgate.pipeline.context import Call
from modelgate.routing.catalog import ModelCatalog, Plan

if TYPE_CHECKING:
    from modelgate.frontdoors.base import FrontDoor

__all__ = ["Plan", "make_plan"]


def make_plan(catalog: ModelCatalog, door: FrontDoor, call: Call, thinking_budget: int = 8192) -> Plan:
    """The plan for ``call``; an unknown model is refused in the door's words. A model's variant
    with thinking on (``{name}-thinking``) gets its base's plan, and the call thinking on
    (``door.think``)."""
    try:
        return catalog.plan(call.model)
    except NotFound as e:
        base = catalog.thinking_base(call.model)
        if base is None:
            raise door.model_not_found(call, e) from None
    plan = catalog.plan(base)
    door.think(call, plan.candidates[0].upstream_model, thinking_budget)
    return plan
