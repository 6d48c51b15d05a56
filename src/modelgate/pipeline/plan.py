"""Plan: what may serve the call, in the order to try it.

Today a plan is the one route the catalog gives for the model name. Routing grows it here
(deployments × upstream keys, health, fallbacks, ``auto``) without the other stages
changing: the attempt stage walks ``candidates`` in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelgate.errors import NotFound
from modelgate.pipeline.context import Call
from modelgate.routing.catalog import ModelCatalog, ModelRoute

if TYPE_CHECKING:
    from modelgate.frontdoors.base import FrontDoor


@dataclass(slots=True, frozen=True)
class Plan:
    #: Routes to try, best first.
    candidates: tuple[ModelRoute, ...]


def make_plan(catalog: ModelCatalog, door: FrontDoor, call: Call) -> Plan:
    """The plan for ``call``; an unknown model is refused in the door's words."""
    try:
        route = catalog.resolve(call.model)
    except NotFound as e:
        raise door.model_not_found(call, e) from None
    return Plan((route,))
