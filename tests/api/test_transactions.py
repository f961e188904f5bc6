"""Every write commits through its request's write, after its response is rendered."""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

import coherence_api
from coherence_api.idempotency.dependencies import get_idempotency
from coherence_api.responses.endpoints import batch_idempotency
from coherence_api.transactions import WriteRoute, get_write

WRITES = {get_write, get_idempotency, batch_idempotency}


def _routers() -> list[APIRouter]:
    routers = []
    for module in pkgutil.walk_packages(coherence_api.__path__, "coherence_api."):
        if module.name.endswith(".endpoints"):
            router = getattr(importlib.import_module(module.name), "router", None)
            if isinstance(router, APIRouter):
                routers.append(router)
    return routers


def _calls(dependant: Dependant) -> set[object]:
    calls = {dependant.call}
    for sub in dependant.dependencies:
        calls |= _calls(sub)
    return calls


def test_every_write_endpoint_has_a_write_that_its_route_commits() -> None:
    writes = [
        route
        for router in _routers()
        for route in router.routes
        if isinstance(route, APIRoute) and route.methods - {"GET", "HEAD"}
    ]
    assert len(writes) >= 9
    for route in writes:
        assert isinstance(route, WriteRoute), route.path
        assert _calls(route.dependant) & WRITES, route.path
