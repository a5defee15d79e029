/* tests/model/ring.pml - a Promela model of the wake-up protocol of ipc.h's rings: publish,
   sleep, wake, close and peer death. tests/model/verify.sh (`make verify`) checks it with
   spin; tests/model/README maps every step of the model to the C code.

   Memory: x86-TSO. Each process has a FIFO store buffer: its stores go there, its loads
   read its own newest buffered store of the location, else memory, and a flusher moves
   the oldest buffered store of any process to memory at any time. A seq_cst fence or an
   atomic read-modify-write first drains the process's own buffer; membarrier
   (MEMBARRIER_CMD_GLOBAL_EXPEDITED) drains every buffer. The reordering the protocol has
   to survive, a load passing an earlier store, is TSO's; the C code's release/acquire
   orderings forbid the others on weaker CPUs too.

   Futex: FUTEX_WAIT checks the word and blocks in one atomic step; FUTEX_WAKE unblocks
   every process blocked on the word. A sleep may also end by its timer where enabled:
   TO_FIRST for the first sleep of a wait (10 ms in ipc.h), TO_SLICE for the later ones
   (100 ms slices; 1 ms without membarrier).

   Parameters (spin -DNAME=value):
     MP=0       SPSC: one producer, one consumer; both may sleep (CAP < NMSG).
     MP=1       a slot kind (MPMC/MPSC): NCONS consumers sleep on the consumer side, whose
                `waiting` is a counter that only the waker resets. With BCAST=1 they are
                broadcast readers instead (each reads every message).
                QUOTA=n: each consumer stops after n messages (0: never).
     NMSG, CAP  messages sent, ring capacity in messages; SB: store buffer entries.
     ENDING     after its last message the producer 0: stays attached, 1: closes, 2: either.
     DEATH=1    the producer may die at any point; the kernel then frees its lock.
     MB_FAIL=1  the sleeper's membarrier fails (a thread fence instead; 1 ms slices).
     PUB_FENCE=1  the publisher's light barrier is a seq_cst fence (r->fence).
     STRICT_END   a process asleep in FUTEX_WAIT is not a valid end state: with ENDING=1,
                  every process must finish (the deadlock check).
   Mutants, each of which verify.sh requires spin to catch:
     MUT_NO_WAITCHECK  the publisher never loads `waiting` (so never wakes)
     MUT_NO_RECHECK    the sleeper sleeps without re-checking after its announcement
     MUT_SEQ_LATE      the sleeper reads the futex word after its re-check, not before
     MUT_NO_MB         later sleeps fence only their own side, as the first does
     MUT_CLOSE_NOWAKE  ipc_ring_close does not wake the peer's side
     MUT_MP_RESET      a multi-sleeper side's sleeper resets `waiting` to 0 when it leaves
                       (what an SPSC side without a pollfd does)
     MUT_WAKE_ONE      ipc__ring_wake wakes one sleeper instead of all

   `spin -t ring.pml` replays a counterexample as a log of the printf lines below. */

#ifndef MP
#define MP 0
#endif
#ifndef BCAST
#define BCAST 0
#endif
#ifndef NMSG
#define NMSG 2
#endif
#ifndef CAP
#define CAP 1
#endif
#ifndef SB
#define SB 2
#endif
#ifndef NCONS
#define NCONS 2
#endif
#ifndef QUOTA
#define QUOTA 0
#endif
#ifndef ENDING
#define ENDING 2
#endif
#ifndef DEATH
#define DEATH 0
#endif
#ifndef TO_FIRST
#define TO_FIRST 1
#endif
#ifndef TO_SLICE
#define TO_SLICE 0
#endif
#ifndef MB_FAIL
#define MB_FAIL 0
#endif
#ifndef PUB_FENCE
#define PUB_FENCE 0
#endif

#define PROD 0 /* process ids: the producer 0, consumers 1.. */
#if MP
#define NC NCONS
#else
#define NC 1
#endif
#define NP (1 + NC)

#define ATTACHED 1 /* side state */
#define CLOSED   2

/* Shared memory, a byte a location. HDR + k: SPSC, the header word of record k (0 nothing
   yet, 1 committed); slot kinds, the sequence of message k's slot (0 free, 1 published,
   2 consumed). Location HDR + NMSG is never written: a consumer that has everything waits
   on it. */
#define HDR    0
#define TAIL   (NMSG + 1) /* records committed / positions claimed (slot kinds) */
#define HEAD   (NMSG + 2) /* records consumed / positions taken (MPMC) */
#define PSTATE (NMSG + 3) /* producer side: state; MPMC: the count of attached producers */
#define PWAIT  (NMSG + 4) /* producer side: waiting */
#define PFUTEX (NMSG + 5) /* producer side: futex */
#define CWAIT  (NMSG + 6) /* consumer side: waiting */
#define CFUTEX (NMSG + 7) /* consumer side: futex */
#define NV     (NMSG + 8)

byte mem[NV];
byte sbv[NP * SB]; /* store buffers: location and value of sbn[p] entries */
byte sbx[NP * SB];
byte sbn[NP];
hidden byte _i, _j; /* scratch of atomic steps: 0 between steps */

bool blocked[NP]; /* in FUTEX_WAIT on waddr */
byte waddr[NP];
bool plock = 1; /* the producer's OFD lock: held while it lives */
bool killed;

/* ghosts, for the properties */
byte ncommit; /* messages committed (the store made, perhaps still buffered) */
byte nrecv;   /* messages received, by every consumer together */
byte ndone;   /* consumers that returned -EPIPE */
byte ptail;   /* the producer's next message */
byte cpos[NP]; /* SPSC consumer's head; broadcast reader's next message */

/* ---- memory ---- */

inline locname(v) {
    if
    :: v < TAIL -> printf("hdr/seq[%d]", v - HDR)
    :: v == TAIL -> printf("tail")
    :: v == HEAD -> printf("head")
    :: v == PSTATE -> printf("prod.state")
    :: v == PWAIT -> printf("prod.waiting")
    :: v == PFUTEX -> printf("prod.futex")
    :: v == CWAIT -> printf("cons.waiting")
    :: v == CFUTEX -> printf("cons.futex")
    fi
}

/* the oldest store of p's buffer reaches memory */
inline flush1(p) {
    printf("      [mem] p%d: ", p);
    locname(sbv[p * SB]);
    printf(" = %d now visible\n", sbx[p * SB]);
    mem[sbv[p * SB]] = sbx[p * SB];
    _i = 1;
    do
    :: _i < sbn[p] ->
        sbv[p * SB + _i - 1] = sbv[p * SB + _i];
        sbx[p * SB + _i - 1] = sbx[p * SB + _i];
        _i++
    :: else -> break
    od;
    sbn[p]--;
    sbv[p * SB + sbn[p]] = 0;
    sbx[p * SB + sbn[p]] = 0;
    _i = 0
}

inline drain(p) {
    do
    :: sbn[p] > 0 -> flush1(p)
    :: else -> break
    od;
    _i = 0 /* a break must land inside the d_step */
}

inline drain_all() {
    _j = 0;
    do
    :: _j < NP -> drain(_j); _j++
    :: else -> break
    od;
    _j = 0
}

/* load, with store forwarding (in a d_step) */
inline ld(p, v, out) {
    out = mem[v];
    _i = 0;
    do
    :: _i < sbn[p] ->
        if
        :: sbv[p * SB + _i] == v -> out = sbx[p * SB + _i]
        :: else -> skip
        fi;
        _i++
    :: else -> break
    od;
    _i = 0
}

/* store into the buffer, once there is room (in a d_step, as its first statement) */
inline st(p, v, x) {
    sbn[p] < SB -> sbv[p * SB + sbn[p]] = v; sbx[p * SB + sbn[p]] = x; sbn[p]++
}

/* One flusher per buffer, so that weak fairness drains every buffer eventually. */
active [NP] proctype flusher() {
    byte p = _pid; /* the flushers are the first processes: 0 .. NP - 1 */
end_flush:
    do
    :: d_step { sbn[p] > 0 -> flush1(p) }
    od
}

/* ---- futex and wake-ups ---- */

/* FUTEX_WAKE INT_MAX */
inline futex_wake(p, addr) {
    d_step {
        printf("p%d: FUTEX_WAKE ", p);
        locname(addr);
        printf("\n");
        _i = 0;
        do
        :: _i < NP ->
            if
            :: blocked[_i] && waddr[_i] == addr ->
                printf("      p%d woken\n", _i);
                blocked[_i] = 0;
                waddr[_i] = 0;
#ifdef MUT_WAKE_ONE
                break
#endif
            :: else -> skip
            fi;
            _i++
        :: else -> break
        od;
        _i = 0
    }
}

/* ipc__ring_wake: exchange waiting for 0; if it was not 0, futex + 1 and wake them all */
inline ring_wake(p, wv, fv) {
    d_step {
        drain(p);
        w = mem[wv];
        mem[wv] = 0;
        printf("p%d: exchange(waiting, 0) = %d\n", p, w)
    }
    if
    :: w != 0 ->
        d_step {
            drain(p);
            mem[fv] = mem[fv] + 1;
            w = 0;
            printf("p%d: futex + 1 = %d\n", p, mem[fv])
        }
        futex_wake(p, fv)
    :: else -> skip
    fi
}

/* ipc__ring_wake_all: futex + 1, then wake (close) */
inline wake_all(p, fv) {
    d_step { drain(p); mem[fv] = mem[fv] + 1; printf("p%d: futex + 1 = %d\n", p, mem[fv]) }
    futex_wake(p, fv)
}

/* the publisher after its store: light barrier, load the peer's waiting, wake */
inline publisher_check(p, wv, fv) {
#if PUB_FENCE
    d_step { drain(p) } /* ipc__ring_light_barrier with r->fence: a seq_cst fence */
#endif
#ifndef MUT_NO_WAITCHECK
    d_step { ld(p, wv, w); printf("p%d: loads waiting = %d\n", p, w) }
    if
    :: w != 0 -> ring_wake(p, wv, fv)
    :: else -> skip
    fi
#else
    skip
#endif
}

/* ---- the sleeper: one turn of ipc__ring_wait's for (phase = 0;; phase++) ---- */

/* Uses the caller's locals me, seq, c, g, w, phase, timedout and the inlines cond(c) and
   gone(g) below. Ends with c != 0 (the condition holds), g != 0 (-EPIPE), or both 0
   after a sleep. */
inline sleep_once(wv, fv) {
#ifndef MUT_SEQ_LATE
    d_step { ld(me, fv, seq); printf("p%d: seq = futex = %d\n", me, seq) }
#endif
    d_step { /* ipc__ring_announce(on); the count saturates at 2 (only 0 or not counts) */
        drain(me);
        mem[wv] = (mem[wv] < 2 -> mem[wv] + 1 : 2);
        printf("p%d: waiting + 1 = %d\n", me, mem[wv])
    }
    if
    :: phase == 0 -> d_step { drain(me); printf("p%d: thread fence (first sleep)\n", me) }
    :: else ->
#if MB_FAIL || defined(MUT_NO_MB)
        d_step { drain(me); printf("p%d: thread fence (no membarrier)\n", me) }
#else
        d_step { printf("p%d: membarrier\n", me); drain_all() }
#endif
    fi;
#ifndef MUT_NO_RECHECK
    cond(c);
    if
    :: c == 0 ->
        gone(g);
        if
        :: g != 0 -> cond(c)
        :: else -> skip
        fi
    :: else -> skip
    fi;
#endif
#ifdef MUT_SEQ_LATE
    d_step { ld(me, fv, seq); printf("p%d: seq = futex = %d\n", me, seq) }
#endif
    if
    :: c != 0 || g != 0 -> announce_off(wv)
    :: else ->
        d_step { /* ipc_futex_wait_until(&side->futex, seq, until) */
            if
            :: mem[fv] == seq -> blocked[me] = 1; waddr[me] = fv
            :: else -> skip
            fi;
            printf("p%d: FUTEX_WAIT(seq %d), futex = %d: ", me, seq, mem[fv]);
            if
            :: blocked[me] -> printf("sleeps\n")
            :: else -> printf("returns at once\n")
            fi;
            seq = 0
        }
#ifndef STRICT_END
end_sleep: /* asleep for good is a valid end, unless STRICT_END */
#endif
        if
        :: d_step { !blocked[me] -> skip }
        :: d_step {
               blocked[me] && ((phase == 0 && TO_FIRST) || (phase != 0 && TO_SLICE)) ->
               blocked[me] = 0;
               waddr[me] = 0;
               timedout = 1;
               printf("p%d: the slice's timer ends the sleep\n", me)
           }
        fi;
        announce_off(wv);
        cond(c)
    fi
}

#if !MP
/* ================================ SPSC ================================ */

/* ipc__ring_announce(off): the side's only sleeper takes its announcement back */
inline announce_off(wv) {
    d_step { st(me, wv, 0) }
}

/* Producer: ipc__ring_has_room, which refreshes the cached head. */
inline p_cond(c) {
    d_step { ld(me, HEAD, ph); c = (ptail - ph < CAP); printf("p0: has room: %d\n", c) }
}

/* Consumer: ipc__ring_has_data. The header at our head; the tail only to tell a record
   in flight from corruption (-EBADMSG, which must never happen). */
inline c_cond(c) {
    d_step { ld(me, HDR + cpos[me], x) }
    if
    :: x != 0 -> d_step { c = 1; x = 0; printf("p%d: has data: 1\n", me) }
    :: else ->
        d_step { ld(me, TAIL, t) }
        if
        :: t <= cpos[me] -> d_step { c = 0; t = 0; printf("p%d: has data: 0\n", me) }
        :: else ->
            d_step { ld(me, HDR + cpos[me], x) }
            assert(x != 0); /* else -EBADMSG */
            d_step { c = 1; x = 0; t = 0 }
        fi
    fi
}

/* Consumer: ipc__ring_peer_gone(r, IPC_PRODUCER, 0). Closed: -EPIPE. Else the lock,
   asked on the first call, after a full slice, or once 100 ms passed since it last was. */
inline c_gone(g) {
    d_step { ld(me, PSTATE, x) }
    if
    :: x == CLOSED -> g = 1
    :: else ->
        if
        :: must_check -> peer_dead = !plock; must_check = 0
        :: !must_check -> skip
        :: !must_check -> peer_dead = !plock
        fi;
        g = peer_dead
    fi;
    d_step { x = 0; printf("p%d: producer gone: %d\n", me, g) }
}

/* The wait's condition and peer check, by role. The consumer never leaves in this model:
   the producer's peer is never gone. */
inline cond(c) {
    if
    :: me == PROD -> p_cond(c)
    :: else -> c_cond(c)
    fi
}

inline gone(g) {
    if
    :: me == PROD -> g = 0
    :: else -> c_gone(g)
    fi
}

proctype consumer() {
    byte me = 1, x, t, c, g, seq, w, phase, ph;
    bool timedout, must_check = 1, peer_dead;
next: skip; /* ipc__ring_next: the header word at our head */
    d_step { ld(me, HDR + cpos[me], x) }
    if
    :: x != 0 -> x = 0; goto got
    :: else -> skip
    fi;
    /* ipc__ring_wait(r, IPC_CONSUMER, ipc__ring_has_data, 0, IPC_FOREVER) */
    cond(c);
    if
    :: c != 0 -> goto waited
    :: else -> skip
    fi;
    gone(g);
    if
    :: g != 0 ->
        cond(c);
        if
        :: c != 0 -> goto waited
        :: else -> goto epipe
        fi
    :: else -> skip
    fi;
    phase = 0;
sleep: skip;
    sleep_once(CWAIT, CFUTEX);
    if
    :: c != 0 -> goto waited
    :: c == 0 && g != 0 -> goto epipe
    :: else -> skip
    fi;
    if
    :: phase != 0 && timedout -> must_check = 1 /* a full slice: peer_check = 0 */
    :: else -> skip
    fi;
    d_step { timedout = 0; phase = 1; c = 0; g = 0 }
    goto sleep;
waited: skip;
    d_step { ld(me, HDR + cpos[me], x) }
    assert(x != 0);
got: skip; /* ipc_ring_recv: the record, then ipc__ring_consume */
    d_step {
        printf("p%d: receives record %d\n", me, cpos[me]);
        nrecv++;
        cpos[me]++;
        x = 0;
        c = 0;
        g = 0;
        phase = 0
    }
    d_step { st(me, HEAD, cpos[me]) }
    publisher_check(me, PWAIT, PFUTEX);
    goto next;
epipe: skip;
    d_step { printf("p%d: -EPIPE after %d records\n", me, nrecv); ndone++ }
    assert(nrecv == ncommit) /* every committed record came first */
}

proctype producer() {
    byte me = 0, x, t, c, g, seq, w, phase, ph;
    bool timedout, must_check, peer_dead;
    {
        do
        :: ptail < NMSG ->
            /* ipc__ring_make_room: the cached head, then ipc__ring_has_room */
            if
            :: ptail - ph >= CAP ->
                p_cond(c);
                if
                :: c == 0 -> /* ipc__ring_wait(r, IPC_PRODUCER, ipc__ring_has_room...) */
                    phase = 0;
psleep: skip;
                    sleep_once(PWAIT, PFUTEX);
                    if
                    :: c == 0 -> d_step { timedout = 0; phase = 1 } goto psleep
                    :: else -> skip
                    fi
                :: else -> skip
                fi
            :: else -> skip
            fi;
            d_step { c = 0; phase = 0; timedout = 0 }
            /* ipc__ring_publish: the header (the commit), then the tail */
            d_step {
                st(me, HDR + ptail, 1);
                printf("p0: commits record %d (header store buffered)\n", ptail);
                ncommit++;
                ptail++
            }
            d_step { st(me, TAIL, ptail) }
            publisher_check(me, CWAIT, CFUTEX)
        :: else -> break
        od;
        if
        :: ENDING != 0 -> /* ipc_ring_close */
            d_step { st(me, PSTATE, CLOSED); printf("p0: close: state = closed\n") }
#ifndef MUT_CLOSE_NOWAKE
            wake_all(me, CFUTEX);
#endif
            plock = 0 /* ipc__ring_undo: the lock fd closed */
        :: ENDING != 1 -> skip
        fi;
#if DEATH
end_idle:
        killed /* attached and idle until it dies */
#endif
    } unless {
        /* Death. The kernel frees the lock on the exiting task's own CPU, after every
           store the process made (its buffer drains first). */
        killed -> d_step {
            printf("p0: dies\n");
            drain(me);
            plock = 0;
            blocked[me] = 0;
            waddr[me] = 0
        }
    }
}

init {
    mem[PSTATE] = ATTACHED;
    atomic {
        run producer();
        run consumer()
    }
}

#else
/* ================ slot kinds: several sleepers on one side ================ */

/* A side of the slot kinds keeps its count: only the waker resets it. */
inline announce_off(wv) {
#ifdef MUT_MP_RESET
    d_step { st(me, wv, 0) }
#else
    skip
#endif
}

#if BCAST
/* Reader: ipc__bc_has_data, the slot at its head published. */
inline cond(c) {
    d_step { ld(me, HDR + cpos[me], t); c = (t != 0); t = 0; printf("p%d: has data: %d\n", me, c) }
}

/* Reader: ipc__ring_peer_gone (SPSC's producer side): closed, else the lock. */
inline gone(g) {
    d_step { ld(me, PSTATE, x) }
    if
    :: x == CLOSED -> g = 1
    :: else ->
        if
        :: must_check -> peer_dead = !plock; must_check = 0
        :: !must_check -> skip
        :: !must_check -> peer_dead = !plock
        fi;
        g = peer_dead
    fi;
    d_step { x = 0; printf("p%d: producer gone: %d\n", me, g) }
}
#else
/* Consumer: ipc__mp_has_data, the head's slot published, or the head moved on. */
inline cond(c) {
    d_step { ld(me, HEAD, x) }
    d_step { ld(me, HDR + x, t); c = (t != 0); x = 0; t = 0; printf("p%d: has data: %d\n", me, c) }
}

/* Consumer: ipc__mp_peer_gone(r, IPC_PRODUCER, 0). No producer attached: -EPIPE. Else
   the locks of the producers' entries, as SPSC's. */
inline gone(g) {
    d_step { ld(me, PSTATE, x) }
    if
    :: x == 0 -> g = 1
    :: else ->
        if
        :: must_check -> peer_dead = !plock; must_check = 0
        :: !must_check -> skip
        :: !must_check -> peer_dead = !plock
        fi;
        g = peer_dead
    fi;
    d_step { x = 0; printf("p%d: producer gone: %d\n", me, g) }
}
#endif

proctype consumer(byte me) {
    byte x, t, c, g, seq, w, phase, pos, got;
    bool timedout, must_check = 1, peer_dead;
next: skip;
    if
    :: QUOTA != 0 && got == QUOTA -> goto quota /* the application stops receiving */
    :: else -> skip
    fi;
#if BCAST
    /* ipc__bc_read: the slot at our head published: read it, ipc__bc_advance */
    d_step { ld(me, HDR + cpos[me], x) }
    if
    :: x != 0 ->
        d_step {
            printf("p%d: reads message %d\n", me, cpos[me]);
            nrecv++;
            got++;
            cpos[me]++;
            x = 0
        }
        goto next
    :: else -> skip
    fi;
#else
    /* ipc__mp_take: the head's slot published: take it (CAS on head), free it */
    d_step { ld(me, HEAD, pos) }
    d_step { ld(me, HDR + pos, x) }
    if
    :: x == 1 ->
        d_step {
            drain(me);
            if
            :: mem[HEAD] == pos ->
                mem[HEAD] = pos + 1;
                nrecv++;
                got++;
                printf("p%d: takes message %d\n", me, pos)
            :: else -> x = 0
            fi
        }
        if
        :: x != 0 -> d_step { st(me, HDR + pos, 2); x = 0 } /* ipc__mp_free */
        :: else -> skip
        fi;
        d_step { pos = 0; x = 0 }
        goto next
    :: x == 2 -> d_step { pos = 0; x = 0 } goto next /* taken meanwhile */
    :: x == 0 -> skip
    fi;
    d_step { pos = 0 }
#endif
    /* ipc__ring_wait(r, IPC_CONSUMER, ipc__mp_has_data or ipc__bc_has_data, ...) */
    cond(c);
    if
    :: c != 0 -> c = 0; goto next
    :: else -> skip
    fi;
    gone(g);
    if
    :: g != 0 ->
        cond(c);
        if
        :: c != 0 -> d_step { c = 0; g = 0 } goto next
        :: else -> goto epipe
        fi
    :: else -> skip
    fi;
    phase = 0;
sleep: skip;
    sleep_once(CWAIT, CFUTEX);
    if
    :: c != 0 -> d_step { c = 0; g = 0; phase = 0; timedout = 0 } goto next
    :: c == 0 && g != 0 -> goto epipe
    :: else -> skip
    fi;
    if
    :: phase != 0 && timedout -> must_check = 1
    :: else -> skip
    fi;
    d_step { timedout = 0; phase = 1 }
    goto sleep;
epipe: skip;
    d_step { printf("p%d: -EPIPE\n", me); ndone++ }
#if BCAST
    assert(cpos[me] == ncommit); /* it read every message first */
#else
    assert(nrecv == ncommit); /* every committed message was taken first */
#endif
quota: skip
}

/* Producer (room: CAP >= NMSG). MPMC: claim the tail's position, then publish its slot
   (ipc__mp_publish). Broadcast: publish the slot, then the tail (ipc__bc_publish). */
proctype producer() {
    byte me = 0, w;
    {
        do
        :: ptail < NMSG ->
#if !BCAST
            d_step { drain(me); mem[TAIL] = ptail + 1 } /* CAS tail */
#endif
            d_step {
                st(me, HDR + ptail, 1);
                printf("p0: publishes message %d (store buffered)\n", ptail);
                ncommit++;
                ptail++
            }
#if BCAST
            d_step { st(me, TAIL, ptail) }
#endif
            publisher_check(me, CWAIT, CFUTEX)
        :: else -> break
        od;
        if
        :: ENDING != 0 -> /* ipc_ring_close */
#if BCAST
            d_step { st(me, PSTATE, CLOSED); printf("p0: close: state = closed\n") }
#else
            d_step { drain(me); mem[PSTATE] = mem[PSTATE] - 1; printf("p0: close\n") }
#endif
#ifndef MUT_CLOSE_NOWAKE
            wake_all(me, CFUTEX);
#endif
            plock = 0
        :: ENDING != 1 -> skip
        fi;
#if DEATH
end_idle:
        killed
#endif
    } unless {
        killed -> d_step {
            printf("p0: dies\n");
            drain(me);
            plock = 0;
            blocked[me] = 0;
            waddr[me] = 0
        }
    }
}

init {
    byte k;
    mem[PSTATE] = 1; /* SPSC's ATTACHED, or one producer attached */
    atomic {
        run producer();
        k = 1;
        do
        :: k <= NCONS -> run consumer(k); k++
        :: else -> break
        od;
        k = 0
    }
}
#endif

#if DEATH
active proctype killer() {
    killed = 1
}
#endif

/* ---- properties ---- */

/* A sleeper that should not sleep: its condition holds in memory, or the producer closed. */
#if !MP
#define SHOULD_WAKE(p) \
    (blocked[p] && (p == PROD -> ptail - mem[HEAD] < CAP \
                                : (mem[HDR + cpos[p]] != 0 || mem[PSTATE] == CLOSED)))
#elif BCAST
#define SHOULD_WAKE(p) (blocked[p] && (mem[HDR + cpos[p]] == 1 || mem[PSTATE] == CLOSED))
#else
#define SHOULD_WAKE(p) (blocked[p] && (mem[HDR + mem[HEAD]] == 1 || mem[PSTATE] == 0))
#endif

/* No lost wake-up: once nothing can move (every buffer drained, every process ended or
   asleep), no sleeper has a reason to be awake. */
active proctype quiescence() {
    timeout ->
    d_step {
        assert(!SHOULD_WAKE(0));
        assert(!SHOULD_WAKE(1));
#if NP > 2
        assert(!SHOULD_WAKE(2));
#endif
#if NP > 3
        assert(!SHOULD_WAKE(3));
#endif
    }
}

/* Liveness, under weak fairness (spin -DLIVE; pan -a -f -N name). */
#ifdef LIVE
#if BCAST
#define NALL (NMSG * NC)
#else
#define NALL NMSG
#endif
ltl all_received { <> (nrecv == NALL) }
ltl epipe_seen { <> (ndone == NC) }
#endif
