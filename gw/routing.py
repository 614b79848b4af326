"""A request's plan: pick a target, retry another on a retryable failure, fall back.

    data = await answer(route, call, outcome)                  # a whole answer's bytes
    first, rest = await open_stream(route, call, outcome)      # a stream, committed at its first bytes

Targets are picked by smooth weighted round-robin (``gw._fast.select``), per
worker, among those whose circuit lets a request through (``gw.breaker``). A
retry never picks the target that just failed when another one may be tried.
After ``routing.retries`` extra attempts, each fallback model gets one.

A stream is committed when its adapter yields its first bytes: until then a
failure (a refused connection, an error status, an error event or garbage
before any content) is retried like a whole answer's. After it, ``relay``
owns the stream and nothing here runs again.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from ._fast.rules import InvalidInput
from ._fast.select import SmoothWeighted
from .breaker import Breaker
from .call import Call
from .config.tables import REQUESTED, Model, Price, Provider, Target
from .context import Outcome
from .errors import (
    BadRequest,
    NoHealthyTarget,
    NotFound,
    RateLimited,
    UnsupportedEndpoint,
    UpstreamError,
    UpstreamUnavailable,
)
from .limits import Limits
from .providers.base import Adapter, StoresResponses

T = TypeVar("T")
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class Bound:
    """A target with what serves it and the circuit that guards it."""

    target: Target
    provider: Provider
    adapter: Adapter
    breaker: Breaker
    price: Price | None = None  # the price of the public model this target serves
    templated: bool = False  # the target's model has {model}: the requested name goes in


def target_of(bound: Bound, call: Call) -> Target:
    """The target as this request sends it: ``{model}`` in its model name replaced by
    the name the client asked for."""
    target = bound.target
    if not bound.templated:
        return target
    requested = call.body.get("model")
    model = target.model.replace(REQUESTED, requested if isinstance(requested, str) else "")
    return Target(target.provider, model, target.weight, target.default_max_tokens)


@dataclass(frozen=True, slots=True)
class Policy:
    """``routing`` of the config: extra attempts, what is retried, the clock breakers read,
    and gw's own limits (a provider over its rate limit is skipped like an unhealthy one)."""

    retries: int = 0
    retry_on: frozenset[int | str] = frozenset()
    clock: Clock = time.monotonic
    limits: Limits | None = None


class Route:
    """A public model's targets and its (per-worker) weighted selector."""

    __slots__ = ("model", "bound", "selector", "fallbacks", "policy", "_all")

    def __init__(
        self,
        model: Model,
        bound: tuple[Bound, ...],
        fallbacks: tuple[Route, ...] = (),
        policy: Policy = Policy(),
    ) -> None:
        self.model = model
        self.bound = bound
        self.selector = SmoothWeighted([b.target.weight for b in bound])
        self.fallbacks = fallbacks
        self.policy = policy
        self._all = (1 << len(bound)) - 1

    def pick(self, avoid: int = -1) -> int:
        """A target index whose circuit lets a request through, avoiding ``avoid``
        unless it is the only such one; -1 when there is none."""
        excluded = 0
        now = 0.0
        for i, bound in enumerate(self.bound):
            breaker = bound.breaker
            if not breaker.ready:
                now = now or self.policy.clock()
                if not breaker.available(now):
                    excluded |= 1 << i
        if avoid >= 0 and (excluded | (1 << avoid)) != self._all:
            excluded |= 1 << avoid
        if excluded == self._all:
            return -1
        return self.selector.pick(excluded)

    def unavailable(self) -> NoHealthyTarget:
        now = self.policy.clock()
        wait = min(b.breaker.retry_in(now) for b in self.bound)
        others = " or its fallbacks" if self.fallbacks else ""
        return NoHealthyTarget(
            f"no target of model '{self.model.name}'{others} can take requests now: "
            f"every one failed recently and is ejected (next try in {max(1, round(wait))}s)",
            param="model",
        )


def plan(route: Route) -> Iterator[Bound]:
    """The targets to try, in order, picked lazily: most requests need only the first."""
    last = -1
    for _ in range(1 + route.policy.retries):
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
    call: Call,
    outcome: Outcome,
    once: Callable[[Bound, Target], Awaitable[T]],
    instead: Callable[[], T] | None = None,
) -> T:
    """Run ``once`` on planned targets (``target_of``) until one succeeds or a failure is final.

    Every attempt's outcome goes to its target's breaker: a retryable failure
    counts against it, any answer (the client's 4xx too) clears it. A target
    whose adapter lacks the call's operation is a 400, unless ``instead`` gives
    gw's own answer for it (count_tokens' estimate): that target is not called
    and its breaker is left as it is.
    """
    policy = route.policy
    failure: UpstreamError | None = None
    tried = False
    limited, which = 0.0, ""  # the shortest wait of the targets over their provider's rate limit
    for bound in plan(route):
        adapter = bound.adapter
        if policy.limits is not None and bound.provider.rate_limit is not None and outcome.held is not None:
            wait, over = await policy.limits.target(bound.provider, outcome.held, call.body)
            if wait > 0:
                if not limited or wait < limited:
                    limited, which = wait, over
                continue
        if call.operation not in adapter.operations and instead is None:
            provider = bound.provider
            raise UnsupportedEndpoint(
                f"provider '{provider.name}' (type {provider.type}) does not support {call.operation}"
            )
        if tried:
            outcome.retries += 1
        tried = True
        outcome.provider = bound.provider.name
        outcome.bound = bound
        if instead is not None and call.operation not in adapter.operations:
            return instead()
        target = target_of(bound, call)
        outcome.upstream_model = target.model
        breaker = bound.breaker
        breaker.enter()
        started = time.perf_counter()
        try:
            result = await once(bound, target)
        except UpstreamError as exc:
            outcome.failed(exc.provider, exc.reason)
            if not exc.retryable:
                breaker.answered()
                raise
            breaker.failed(exc.message, exc.retry_after, policy.clock())
            if exc.retry_key not in policy.retry_on:
                raise
            failure = exc
        except InvalidInput as exc:  # the request, converted for this backend: the client's 400
            breaker.released()
            raise BadRequest(exc.message, param=exc.param) from None
        except BaseException:
            breaker.released()
            raise
        else:
            breaker.succeeded(time.perf_counter() - started)
            return result
        finally:
            outcome.upstream_s += time.perf_counter() - started
    if failure is not None:
        raise failure
    if limited:
        outcome.limited = which
        raise RateLimited(
            f"every target of model '{route.model.name}' is over its provider's rate limit: "
            f"retry in {max(1, int(limited + 0.999))}s",
            retry_after=limited,
            limit=outcome.limited,
        )
    raise route.unavailable()


async def answer(route: Route, call: Call, outcome: Outcome) -> bytes:
    """The whole answer's bytes, in the client's protocol.

    A target that cannot serve the operation gets ``call.estimate()`` when the
    call has one: a token count gw estimates (``x-gw-token-count: estimated``).
    """
    estimate = call.estimate

    def estimated() -> bytes:
        assert estimate is not None
        outcome.token_count = "estimated"
        return estimate()

    return await attempt(
        route,
        call,
        outcome,
        lambda bound, target: bound.adapter.answer(call, target, outcome),
        None if estimate is None else estimated,
    )


async def stored(
    adapters: list[StoresResponses], method: str, path: str, call: Call, outcome: Outcome
) -> tuple[int, bytes]:
    """A stored response's route, asked of each native provider in turn (a response id
    does not say whose it is): the first answer that is not a 404. All 404: the last one."""
    answer: tuple[int, bytes] | None = None
    failure: UpstreamError | None = None
    for adapter in adapters:
        outcome.provider = adapter.provider.name
        started = time.perf_counter()
        try:
            answer = await adapter.stored(method, path, call)
        except UpstreamError as exc:
            outcome.failed(exc.provider, exc.reason)
            failure = exc
            continue
        finally:
            outcome.upstream_s += time.perf_counter() - started
        if answer[0] != 404:
            return answer
    if answer is None and failure is not None:
        raise failure
    if answer is None:
        raise NotFound(f"no provider with a native Responses API serves a model your key may use: {path}")
    return answer


async def open_stream(
    route: Route, call: Call, outcome: Outcome
) -> tuple[bytes, AsyncGenerator[bytes, None]]:
    """The first bytes of a stream and the generator of the rest: the commit point.

    A failure before the first bytes is retried like a whole answer's.
    """

    async def first_of(bound: Bound, target: Target) -> tuple[bytes, AsyncGenerator[bytes, None]]:
        events = bound.adapter.stream(call, target, outcome)
        try:
            first = await anext(events)
        except StopAsyncIteration:
            raise UpstreamUnavailable(
                f"provider '{bound.provider.name}' sent an empty stream",
                provider=bound.provider.name,
                retryable=True,
            ) from None
        except BaseException:
            await events.aclose()
            raise
        return first, events

    first, rest = await attempt(route, call, outcome, first_of)
    outcome.ttft_s = time.perf_counter() - call.info.received
    return first, rest
