"""A request's plan: pick a target, retry another on a retryable failure, fall back.

    route = runtime.routes["gpt-4o"]
    answer = await attempt(runtime, route, ctx, lambda bound: bound.adapter.chat(body, bound.target, ctx))

Targets are picked by smooth weighted round-robin (``gw._fast.select``), per
worker. A retry never picks the target that just failed when another exists.
After ``routing.retries`` extra attempts, each fallback model gets one.
Nothing here runs once the first byte went to the client: ``relay`` decides that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Iterator, TypeVar

from . import metrics
from ._fast.select import SmoothWeighted
from .config.tables import Model, Provider, Target
from .context import RequestContext
from .errors import UpstreamError
from .providers.base import Adapter

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Bound:
    """A target with what serves it."""

    target: Target
    provider: Provider
    adapter: Adapter


class Route:
    """A public model's targets and its (per-worker) weighted selector."""

    __slots__ = ("model", "bound", "selector", "fallbacks")

    def __init__(self, model: Model, bound: tuple[Bound, ...], fallbacks: tuple["Route", ...] = ()) -> None:
        self.model = model
        self.bound = bound
        self.selector = SmoothWeighted([b.target.weight for b in bound])
        self.fallbacks = fallbacks

    def pick(self, avoid: int = -1) -> int:
        """A target index, avoiding ``avoid`` unless it is the only one."""
        if avoid >= 0 and len(self.bound) > 1:
            return self.selector.pick(1 << avoid)
        return self.selector.pick(0)


def plan(route: Route, retries: int) -> Iterator[Bound]:
    """The targets to try, in order, picked lazily: most requests need only the first."""
    last = -1
    for _ in range(1 + retries):
        last = route.pick(last)
        yield route.bound[last]
    for fallback in route.fallbacks:
        yield fallback.bound[fallback.pick()]


async def attempt(
    route: Route,
    retries: int,
    retry_on: frozenset[int | str],
    ctx: RequestContext,
    call: Callable[[Bound], Awaitable[T]],
) -> T:
    """Run ``call`` on planned targets until one succeeds or a failure is final."""
    failure: UpstreamError | None = None
    for bound in plan(route, retries):
        if failure is not None:
            ctx.retries += 1
        ctx.provider = bound.provider.name
        try:
            return await call(bound)
        except UpstreamError as exc:
            metrics.upstream_failed(exc.provider, exc.reason)
            if not exc.retryable or exc.retry_key not in retry_on:
                raise
            failure = exc
    assert failure is not None
    raise failure
