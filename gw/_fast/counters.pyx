# cython: language_level=3
"""Rate-limit state shared by every worker process of one `gw serve`.

A fixed-size table in a memory-mapped file that each worker maps: GCRA buckets
(requests and tokens per minute) and counters with an expiry (concurrency,
budgets). Four workers share one bucket, so they do not quadruple a limit.

The file (native byte order; all times are the callers' `now`, one clock for
all processes: time.time() or time.monotonic(), which is machine-wide):

    offset  0  magic b"gwcount\\0"
            8  u32 version (1), 12  u32 slot size (32)
           16  u64 slot count (a power of two, 64 to 2**26)
           24  u64 steals (locks taken from a holder that died or hung)
           32  u64 evictions (live entries dropped because their window was full)
           64  u64 the lock word: 0 free, else (holder pid << 32 | sequence)
          128  the slots, 32 bytes each: u64 key hash (0: never used),
               f64 value, f64 expires_at, u64 spare

Keys are hashed with 64-bit FNV-1a over a kind byte and the key, so a bucket
and a counter never share a slot; two keys whose hashes collide (about one in
2**64 per pair) would share one. A key lives in the 64 slots from
`hash % slots` (linear probing, stopping at a never-used slot). A slot whose
entry is stale (`expires_at <= now`: a full bucket, an expired counter) holds
nothing and is reused; when all 64 are live, the one that would go stale first
is evicted, and its key starts again from a full bucket or a zero counter: the
table never blocks and never fails, it forgets (counted in `evictions`).

Atomicity: one spinlock word in the file, taken with a GCC `__atomic`
compare-and-swap; each operation is a few dozen ns of C under it, without the
GIL. A waiter spins (pause) 100 times, then yields the CPU between tries. A
holder that keeps the same lock word for 1 ms is checked with kill(pid, 0): if
that process is gone (killed inside the section) the lock is stolen at once;
after 100 ms it is stolen anyway (a holder stopped by SIGSTOP; one descheduled
that long and then resumed may write one slot unlocked: at worst one key's
value is off by one update). A steal is counted in `steals`; the stolen-from
holder's unlock then does nothing (it releases only its own word).

Measured (2 x86-64 cores shared with other work, Python 3.11, best of 3 x 2M
calls; noisy): from Python, take(), add() and get() cost 80-110 ns a call,
where a trivial cpdef call (SmoothWeighted.pick) costs 30-60; releasing the GIL
is about 15 ns of it, the uncontended lock (load, CAS, release; in C) about
5 ns. Four processes taking from one key on the two cores: 80-170 ns per take
in aggregate (one process alone: 90-150), never a steal.
The alternative, an fcntl OFD lock (F_OFD_SETLKW + F_UNLCK: released by the
kernel when its holder dies, so no steal is needed) costs about 1500 ns per
lock/unlock pair in C, 15 times a whole take().
"""

import fcntl
import os
import struct

from libc.stdint cimport uint32_t, uint64_t
from libc.math cimport isfinite
from libc.string cimport memcpy

cdef extern from *:
    """
    #include <errno.h>
    #include <math.h>
    #include <pthread.h>
    #include <sched.h>
    #include <signal.h>
    #include <stdint.h>
    #include <string.h>
    #include <sys/mman.h>
    #include <sys/types.h>
    #include <time.h>
    #include <unistd.h>

    #define GWC_HEADER 128
    #define GWC_PROBE 64
    #define GWC_SPINS 100
    #define GWC_CHECK_S 0.001   /* a holder this long: is it alive? */
    #define GWC_STEAL_S 0.1     /* a holder this long: steal anyway */
    /* Admit when new_tat - now <= period * (1 + GWC_EPS): the sum of `limit`
       emission intervals may exceed `period` by a rounding error. */
    #define GWC_EPS 1e-9

    typedef struct {
        uint64_t hash;
        double value;
        double expires;
        uint64_t spare;
    } gwc_slot;

    typedef struct {
        char magic[8];
        uint32_t version;
        uint32_t slot_size;
        uint64_t slots;
        uint64_t steals;
        uint64_t evictions;
        char pad1[24];
        uint64_t lock;
        char pad2[56];
    } gwc_header;

    typedef char gwc_header_is_128_bytes[sizeof(gwc_header) == GWC_HEADER ? 1 : -1];
    typedef char gwc_slot_is_32_bytes[sizeof(gwc_slot) == 32 ? 1 : -1];

    static uint32_t gwc_pid;    /* this process's, refreshed in a forked child */
    static uint32_t gwc_seq;

    static void gwc_after_fork(void) { gwc_pid = (uint32_t)getpid(); }

    static int gwc_init(void) {
        gwc_pid = (uint32_t)getpid();
        return pthread_atfork(NULL, NULL, gwc_after_fork);
    }

    static inline uint64_t gwc_hash(char kind, const char *key, Py_ssize_t n) {
        uint64_t h = 14695981039346656037ULL;
        Py_ssize_t i;
        h = (h ^ (unsigned char)kind) * 1099511628211ULL;
        for (i = 0; i < n; i++)
            h = (h ^ (unsigned char)key[i]) * 1099511628211ULL;
        return h ? h : 1;   /* 0 marks a slot never used */
    }

    static inline void gwc_pause(void) {
    #if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
    #elif defined(__aarch64__)
        __asm__ __volatile__("yield");
    #endif
    }

    static double gwc_mono(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    }

    static int gwc_alive(uint64_t word) {
        pid_t pid = (pid_t)(word >> 32);
        if (pid <= 0) return 0;
        if (kill(pid, 0) == 0) return 1;
        return errno != ESRCH;   /* EPERM: someone else's process, alive */
    }

    static uint64_t gwc_lock(gwc_header *h) {
        uint64_t mine = ((uint64_t)gwc_pid << 32)
                        | __atomic_add_fetch(&gwc_seq, 1, __ATOMIC_RELAXED);
        uint64_t seen = 0, cur;
        double since = 0, checked = 0, t;
        unsigned spins = 0;
        if (mine == 0) mine = 1;
        for (;;) {
            /* Test, then test-and-set: waiters read the word (shared in their
               caches) and write it only when it looks free. */
            cur = __atomic_load_n(&h->lock, __ATOMIC_RELAXED);
            if (cur == 0 && __atomic_compare_exchange_n(&h->lock, &cur, mine, 0,
                                                        __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
                return mine;
            if (cur != seen) {          /* a new holder: time it from now */
                seen = cur;
                spins = 0;
                since = checked = 0;
            }
            if (++spins < GWC_SPINS) {
                gwc_pause();
                continue;
            }
            sched_yield();
            t = gwc_mono();
            if (since == 0) {
                since = checked = t;
                continue;
            }
            if (t - since >= GWC_STEAL_S || (t - checked >= GWC_CHECK_S && !gwc_alive(seen))) {
                cur = seen;
                if (__atomic_compare_exchange_n(&h->lock, &cur, mine, 0,
                                                __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
                    __atomic_add_fetch(&h->steals, 1, __ATOMIC_RELAXED);
                    return mine;
                }
            } else if (t - checked >= GWC_CHECK_S) {
                checked = t;
            }
        }
    }

    static inline void gwc_unlock(gwc_header *h, uint64_t mine) {
        /* Only if still ours: after a steal the word is the stealer's. */
        __atomic_compare_exchange_n(&h->lock, &mine, 0, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
    }

    /* The slot holding `hash` (*found = 1), else the one to claim for it
       (*found = 0): the first stale or never-used slot of its window, else the
       live one that goes stale first. Called with the lock held. */
    static gwc_slot *gwc_find(char *base, uint64_t slots, uint64_t hash, double now, int *found) {
        gwc_slot *s = (gwc_slot *)(base + GWC_HEADER);
        gwc_slot *victim = NULL, *e;
        uint64_t mask = slots - 1, i = hash & mask, k;
        for (k = 0; k < GWC_PROBE; k++) {
            e = &s[(i + k) & mask];
            if (e->hash == hash) {
                *found = 1;
                return e;
            }
            if (e->hash == 0) {         /* never used: the key is not further on */
                if (victim == NULL || victim->expires > now) victim = e;
                break;
            }
            if (victim == NULL || (victim->expires > now && e->expires < victim->expires))
                victim = e;
        }
        *found = 0;
        return victim;
    }

    static inline void gwc_claim(char *base, gwc_slot *e, uint64_t hash, double now) {
        if (e->hash != 0 && e->expires > now)
            __atomic_add_fetch(&((gwc_header *)base)->evictions, 1, __ATOMIC_RELAXED);
        e->hash = hash;
    }

    static double gwc_take(char *base, uint64_t slots, uint64_t hash, double now,
                           double limit, double period, double cost) {
        double t = period / limit;   /* the emission interval */
        double slack = period * GWC_EPS;
        double tat, new_tat, retry = 0.0;
        int found;
        gwc_slot *e;
        uint64_t mine;
        if (cost * t > period + slack) return INFINITY;
        mine = gwc_lock((gwc_header *)base);
        e = gwc_find(base, slots, hash, now, &found);
        tat = found && e->value > now ? e->value : now;
        new_tat = tat + cost * t;
        if (new_tat - now <= period + slack) {
            if (cost > 0) {
                if (!found) gwc_claim(base, e, hash, now);
                e->value = e->expires = new_tat;
            }
        } else {
            retry = new_tat - period - now;
        }
        gwc_unlock((gwc_header *)base, mine);
        return retry;
    }

    static double gwc_adjust(char *base, uint64_t slots, uint64_t hash, double now,
                             double limit, double period, double delta) {
        double tat, new_tat;
        int found;
        gwc_slot *e;
        uint64_t mine = gwc_lock((gwc_header *)base);
        e = gwc_find(base, slots, hash, now, &found);
        tat = found && e->value > now ? e->value : now;
        new_tat = tat + delta * (period / limit);
        if (new_tat < now) new_tat = now;   /* a full bucket holds no more */
        if (found || new_tat > now) {
            if (!found) gwc_claim(base, e, hash, now);
            e->value = e->expires = new_tat;
        }
        gwc_unlock((gwc_header *)base, mine);
        return new_tat - now;
    }

    static double gwc_add(char *base, uint64_t slots, uint64_t hash, double now,
                          double amount, double ttl, int sliding) {
        double value = 0.0, expires = now + ttl;
        int found;
        gwc_slot *e;
        uint64_t mine = gwc_lock((gwc_header *)base);
        e = gwc_find(base, slots, hash, now, &found);
        if (found && e->expires > now) {
            value = e->value;
            if (!sliding) expires = e->expires;
        }
        value += amount;
        if (value < 0) value = 0;
        if (found || value > 0) {
            if (!found) gwc_claim(base, e, hash, now);
            e->value = value;
            e->expires = expires;
        }
        gwc_unlock((gwc_header *)base, mine);
        return value;
    }

    static double gwc_get(char *base, uint64_t slots, uint64_t hash, double now) {
        double value = 0.0;
        int found;
        gwc_slot *e;
        uint64_t mine = gwc_lock((gwc_header *)base);
        e = gwc_find(base, slots, hash, now, &found);
        if (found && e->expires > now) value = e->value;
        gwc_unlock((gwc_header *)base, mine);
        return value;
    }

    static char *gwc_map(int fd, size_t size) {
        void *p = fd < 0
            ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
            : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        return p == MAP_FAILED ? NULL : (char *)p;
    }

    static void gwc_unmap(char *p, size_t size) { munmap(p, size); }

    static uint64_t gwc_load(char *base, int field) {
        gwc_header *h = (gwc_header *)base;
        return __atomic_load_n(field == 0 ? &h->steals : &h->evictions, __ATOMIC_RELAXED);
    }
    """
    int gwc_init()
    uint64_t gwc_hash(char kind, const char *key, Py_ssize_t n) nogil
    double gwc_take(char *base, uint64_t slots, uint64_t hash, double now,
                    double limit, double period, double cost) nogil
    double gwc_adjust(char *base, uint64_t slots, uint64_t hash, double now,
                      double limit, double period, double delta) nogil
    double gwc_add(char *base, uint64_t slots, uint64_t hash, double now,
                   double amount, double ttl, int sliding) nogil
    double gwc_get(char *base, uint64_t slots, uint64_t hash, double now) nogil
    char *gwc_map(int fd, size_t size) nogil
    void gwc_unmap(char *p, size_t size) nogil
    uint64_t gwc_load(char *base, int field) nogil

if gwc_init() != 0:
    raise OSError("gw._fast.counters: pthread_atfork failed")

MAGIC = b"gwcount\0"
VERSION = 1
cdef int _HEADER = 128
cdef int _SLOT = 32
cdef unsigned long long _MIN_SLOTS = 64
cdef unsigned long long _MAX_SLOTS = 1 << 26

# Kind bytes hashed before the key: a bucket and a counter never share a slot.
cdef char _GCRA = b"g"
cdef char _COUNTER = b"c"


cdef bytes _header(unsigned long long slots):
    # magic, version, slot size, slot count; then the counters and the lock, zero.
    return struct.pack("=8sIIQ", MAGIC, VERSION, _SLOT, slots).ljust(_HEADER, b"\0")


cdef inline int _check_bucket(double now, double limit, double period) except -1:
    if not (isfinite(now) and isfinite(limit) and isfinite(period) and limit > 0 and period > 0):
        raise ValueError(
            f"expected a finite now and a positive limit and period, got now={now!r}, "
            f"limit={limit!r}, period={period!r}")
    return 0


cdef class Table:
    """Table(path, slots=65536): open the table in `path`, or create it; Table(None): private."""

    def __init__(self, path=None, unsigned long long slots=65536):
        cdef int fd = -1
        cdef size_t size
        if slots < _MIN_SLOTS or slots > _MAX_SLOTS or slots & (slots - 1):
            raise ValueError(f"slots: expected a power of two from {_MIN_SLOTS} to {_MAX_SLOTS}, got {slots}")
        if self._base != NULL:
            raise RuntimeError("Table is already open")
        size = _HEADER + slots * _SLOT
        if path is not None:
            path = os.fspath(path)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if fd >= 0:
                # The first opener sizes (zeroed) and stamps it; the others check it.
                fcntl.flock(fd, fcntl.LOCK_EX)
                found = os.fstat(fd).st_size
                if found == 0:
                    os.ftruncate(fd, size)
                    os.pwrite(fd, _header(slots), 0)
                else:
                    header = os.pread(fd, _HEADER, 0)
                    if header[:8] != MAGIC:
                        raise ValueError(f"{path}: not a gw counters table (its header is {header[:8]!r})")
                    if len(header) >= 24 and header[:24] != _header(slots)[:24]:
                        _, version, slot_size, count = struct.unpack("=8sIIQ", header[:24])
                        raise ValueError(
                            f"{path}: a table of version {version} with {count} slots of {slot_size} "
                            f"bytes, expected version {VERSION} with {slots} slots of 32 bytes")
                    if found != size:
                        raise ValueError(f"{path}: {found} bytes, expected {size}")
            self._base = gwc_map(fd, size)
            if self._base == NULL:
                raise OSError(f"{path or 'anonymous table'}: mmap of {size} bytes failed")
            if fd < 0:
                header = _header(slots)
                memcpy(self._base, <char *>header, 24)
        finally:
            if fd >= 0:
                # Unlocked by hand: the mapping keeps the open file (and a flock) alive.
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        self._size = size
        self._slots = slots
        self.path = path

    def __dealloc__(self):
        if self._base != NULL:
            gwc_unmap(self._base, self._size)
            self._base = NULL

    def close(self):
        """Unmap the table; using it afterwards raises ValueError (not while another
        thread is inside one of its calls)."""
        if self._base != NULL:
            gwc_unmap(self._base, self._size)
            self._base = NULL

    @property
    def slots(self):
        return self._slots

    @property
    def steals(self):
        return gwc_load(self._open(), 0)

    @property
    def evictions(self):
        return gwc_load(self._open(), 1)

    cdef char *_open(self) except NULL:
        if self._base == NULL:
            raise ValueError("Table is closed")
        return self._base

    cpdef double take(self, bytes key, double now, double limit, double period,
                      double cost=1.0) except -1.0:
        cdef char *base = self._open()
        cdef uint64_t h = gwc_hash(_GCRA, key, len(key))
        cdef double r
        _check_bucket(now, limit, period)
        if not (cost >= 0 and isfinite(cost)):
            raise ValueError(f"cost: expected a finite number >= 0, got {cost!r}")
        with nogil:
            r = gwc_take(base, self._slots, h, now, limit, period, cost)
        return r

    cpdef double adjust(self, bytes key, double now, double limit, double period,
                        double delta_cost) except -1.0:
        cdef char *base = self._open()
        cdef uint64_t h = gwc_hash(_GCRA, key, len(key))
        cdef double r
        _check_bucket(now, limit, period)
        if not isfinite(delta_cost):
            raise ValueError(f"delta_cost: expected a finite number, got {delta_cost!r}")
        with nogil:
            r = gwc_adjust(base, self._slots, h, now, limit, period, delta_cost)
        return r

    cpdef double add(self, bytes key, double amount, double now, double ttl,
                     bint sliding=False) except -1.0:
        cdef char *base = self._open()
        cdef uint64_t h = gwc_hash(_COUNTER, key, len(key))
        cdef double r
        if not (isfinite(amount) and isfinite(now) and isfinite(ttl) and ttl > 0):
            raise ValueError(
                f"expected a finite amount and now and a positive ttl, got amount={amount!r}, "
                f"now={now!r}, ttl={ttl!r}")
        with nogil:
            r = gwc_add(base, self._slots, h, now, amount, ttl, sliding)
        return r

    cpdef double get(self, bytes key, double now) except -1.0:
        cdef char *base = self._open()
        cdef uint64_t h = gwc_hash(_COUNTER, key, len(key))
        cdef double r
        with nogil:
            r = gwc_get(base, self._slots, h, now)
        return r

    def __repr__(self):
        return f"Table({self.path!r}, slots={self._slots})"
