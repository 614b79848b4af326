"""A request's plan: pick a target, retry another on a retryable failure, fall back.

    route = runtime.routes["gpt-4o"]
    answer = await attempt(route, retries, retry_on, ctx, lambda bound: bound.adapter.chat(body, bound.target, ctx))

Targets are picked by smooth weighted round-robin (``gw._fast.select``), per
worker, among those whose circuit lets a request through (``gw.breaker``). A
retry never picks the target that just failed when another one may be tried.
After ``routing.retries`` extra attempts, each fallback model gets one.
Nothing here runs once the first byte went to the client: ``relay`` decides that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterator, TypeVar

from . import metrics
from ._fast.select import SmoothWeighted
from .breaker import Breaker
from .config.tables import Model, Price, Provider, Target
from .context import RequestContext
from .errors import NoHealthyTarget, UpstreamError
from .providers.base import Adapter

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Bound:
    """A target with what serves it and the circuit that guards it."""

    target: Target
    provider: Provider
    adapter: Adapter
    breaker: Breaker
    price: Price | None = None  # the price of the public model this target serves


class Route:
    """A public model's targets and its (per-worker) weighted selector."""

    __slots__ = ("model", "bound", "selector", "fallbacks", "_all")

    def __init__(self, model: Model, bound: tuple[Bound, ...], fallbacks: tuple["Route", ...] = ()) -> None:
        self.model = model
        self.bound = bound
        self.selector = SmoothWeighted([b.target.weight for b in bound])
        self.fallbacks = fallbacks
        self._all = (1 << len(bound)) - 1

    def pick(self, avoid: int = -1) -> int:
        """A target index whose circuit lets a request through, avoiding ``avoid``
        unless it is the only such one; -1 when there is none."""
        excluded = 0
        now = 0.0
        for i, bound in enumerate(self.bound):
            breaker = bound.breaker
            if not breaker.ready:
                now = now or time.monotonic()
                if not breaker.available(now):
                    excluded |= 1 << i
        if avoid >= 0 and (excluded | (1 << avoid)) != self._all:
            excluded |= 1 << avoid
        if excluded == self._all:
            return -1
        return self.selector.pick(excluded)

    def unavailable(self) -> NoHealthyTarget:
        now = time.monotonic()
        wait = min(b.breaker.retry_in(now) for b in self.bound)
        others = " or its fallbacks" if self.fallbacks else ""
        return NoHealthyTarget(
            f"no target of model '{self.model.name}'{others} can take requests now: "
            f"every one failed recently and is ejected (next try in {max(1, round(wait))}s)",
            param="model",
        )


def plan(route: Route, retries: int) -> Iterator[Bound]:
    """The targets to try, in order, picked lazily: most requests need only the first."""
    last = -1
    for _ in range(1 + retries):
        last = route.pick(last)
        if last < 0:
            break
        yield route.bound[last]
    for fallback in route.fallbacks:
        index = fallback.pick()
        if index >= 0:
            yield fallback.bound[index]


async def attempt(
    route: Route,
    retries: int,
    retry_on: frozenset[int | str],
    ctx: RequestContext,
    call: Callable[[Bound], Awaitable[T]],
) -> T:
    """Run ``call`` on planned targets until one succeeds or a failure is final.

    Every attempt's outcome goes to its target's breaker: a retryable failure
    counts against it, any answer (the client's 4xx too) clears it.
    """
    failure: UpstreamError | None = None
    tried = False
    for bound in plan(route, retries):
        if tried:
            ctx.retries += 1
        tried = True
        ctx.provider = bound.provider.name
        ctx.bound = bound
        breaker = bound.breaker
        breaker.enter()
        started = time.perf_counter()
        try:
            result = await call(bound)
        except UpstreamError as exc:
            metrics.upstream_failed(exc.provider, exc.reason)
            if not exc.retryable:
                breaker.answered()
                raise
            breaker.failed(exc.message, exc.retry_after)
            if exc.retry_key not in retry_on:
                raise
            failure = exc
        except BaseException:
            breaker.released()
            raise
        else:
            breaker.succeeded(time.perf_counter() - started)
            return result
    if failure is not None:
        raise failure
    raise route.unavailable()
