"""Rate-limit state shared by every worker process of one ``gw serve``.

    table = Table(os.environ.get("GW_LIMITS_FILE"))   # None: private to this process
    retry = table.take(b"rpm:team-a", time.time(), limit=60, period=60)
    if retry:
        raise RateLimited(retry_after=retry)
    table.take(b"tpm:team-a", now, 10_000, 60, cost=estimate)   # tokens, reserved
    table.adjust(b"tpm:team-a", now, 10_000, 60, used - estimate)  # corrected after
    table.add(b"inflight:team-a", 1, now, ttl=600, sliding=True)   # -1 when done
    table.add(b"usd:team-a:2026-12-03", cost, now, ttl=86400)      # a window

Every process must pass ``now`` from one clock (``time.time()``, or
``time.monotonic()``, which is machine-wide on Linux).
"""

from os import PathLike

from typing_extensions import disjoint_base

MAGIC: bytes
VERSION: int

@disjoint_base
class Table:
    """A fixed table of GCRA buckets and expiring counters in a shared mapped file.

        Table("/run/gw-x/limits")          # opens it, or creates it (zeroed, stamped)
        Table(None)                        # anonymous, private to this process

    A key lives in one of 64 slots after its hash; a stale entry (a full
    bucket, an expired counter) frees its slot; when all 64 are live the one
    going stale first is evicted (its key starts over: the table never blocks,
    it forgets; see ``evictions``). Each operation holds one spinlock in the
    file for a few dozen ns; a lock left by a process killed inside it is
    stolen after 1 ms (after 100 ms from a live holder; see ``steals``).
    """

    def __init__(self, path: str | PathLike[str] | None = None, slots: int = 65536) -> None:
        """Raise ValueError when ``slots`` is not a power of two from 64 to 2**26, or the
        file's header (magic, version, slot count) or size is not that of such a table."""
    @property
    def path(self) -> str | None: ...
    @property
    def slots(self) -> int: ...
    @property
    def steals(self) -> int:
        """Locks taken from a holder that died or held it 100 ms, since the file was made."""
    @property
    def evictions(self) -> int:
        """Live entries dropped because their 64 slots were all live."""
    def close(self) -> None:
        """Unmap the table; any use afterwards raises ValueError.

        Not while another thread is inside one of its calls (they run without the GIL).
        """
    def take(self, key: bytes, now: float, limit: float, period: float, cost: float = 1.0) -> float:
        """GCRA: 0.0 when ``cost`` fits (and is recorded), else the seconds until it would.

        A bucket holds ``limit`` per ``period``, no more (a full bucket admits
        ``limit`` unit requests at once) and refills continuously. With the
        emission interval ``T = period / limit`` and the key's theoretical
        arrival time ``tat`` (``now`` when absent or past):
        ``new_tat = max(tat, now) + cost * T``, admitted iff
        ``new_tat - now <= period`` (up to a 1e-9 relative rounding slack), i.e.
        ``max(tat, now) - now <= tau + T - cost * T`` with ``tau = period - T``:
        GCRA's ``tat - now <= tau`` for unit costs. Refused: ``new_tat - period - now``
        (> 0), nothing recorded. A ``cost`` above ``limit`` can never fit: ``inf``.
        Raise ValueError unless ``limit`` and ``period`` are > 0 and ``cost`` >= 0.
        """
    def adjust(self, key: bytes, now: float, limit: float, period: float, delta_cost: float) -> float:
        """Charge (``delta_cost`` > 0) or refund (< 0) a bucket after the fact.

        ``tat = max(max(tat, now) + delta_cost * T, now)``: a charge may put the
        bucket in debt (later requests wait longer), a refund never fills it
        beyond full. Returns ``tat - now``, the seconds until it is full again.
        """
    def add(self, key: bytes, amount: float, now: float, ttl: float, sliding: bool = False) -> float:
        """Add ``amount`` to a counter and return its new value (never below 0).

        An expired counter (``expires_at <= now``) counts as 0. Fixed window
        (default): ``expires_at = now + ttl`` at the first add after it expired,
        and later adds keep it (budgets per period). ``sliding=True``: each add
        sets ``expires_at = now + ttl`` (in-flight counts: a window ending under
        running requests would forget them; what a killed worker leaves goes
        ``ttl`` after the last add). Raise ValueError unless ``ttl`` > 0.
        """
    def get(self, key: bytes, now: float) -> float:
        """A counter's value; 0.0 when absent or expired."""
