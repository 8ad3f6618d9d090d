/* hakmem's region protocol in Promela. Read side by side with the cited C++ functions;
 * formal/spin/README.md says what is abstracted and why, formal/spin/sources.txt pins
 * the cited functions (formal/sources.py).
 *
 * Granularity. One Promela step per access to a location that another thread may access
 * at that moment in a conflicting way, in program order: remote_head (every load, store,
 * exchange, CAS), owner (loads and stores), the
 * orphan lock, the mapping and the pages (region_create, region_release, os_decommit).
 * free_remote keeps every one of its atomic operations as a step, the alloc-bit
 * load and the remote-bit fetch_or / fetch_and included. Accesses only the running thread
 * can make at that moment (its box and lists, its region's owner-side fields and
 * active_local, the bits and link of a block it is freeing or has just taken off a
 * remote list by an exchange, state under the orphan lock it holds) are folded into the
 * step of the neighbouring shared access; taking the lock is folded into the next step
 * (a right mover), releasing it into the previous one (a left mover). Such accesses
 * commute with every other thread's steps (Lipton's reduction), so folding them hides
 * no interleaving; the ghost state (loc[], nlive[], inflight[]) and the assertions check
 * the "only this thread" premise itself: a variant that breaks it fails an assertion.
 * Each step's comment names the function and the operation it models.
 *
 * Bounds: NT threads, NR regions of NB blocks, one block per slab (as in the 256 KiB mid
 * class, whose 7 blocks sit in 7 slabs), one size class. The threads run G operations
 * in all (malloc, free of any live block, collect), at most K each, then exit. W is
 * HAKMEM_WARM_REGIONS. */

#ifndef W
#define W 1
#endif
#ifndef G
#define G 4          /* operations in all (the exits not counted) */
#endif
#ifndef K
#define K G          /* operations per thread */
#endif
#define NT 3
#define NR 2
#define NB 2
#define NBLK 4           /* NR * NB; block b is block b % NB (slab b % NB) of region b / NB */
#define NOBODY 255       /* owner == nullptr; SlotState::box_region == nullptr */

#define REG(b) ((b) / NB)
#define BLKOF(r, i) ((r) * NB + (i))

/* mem[r]: the region's mapping (region_create / region_release). A slab's pages given
 * back (os_decommit) are tracked per block in committed[]. */
#define UNMAPPED 0
#define MAPPED 1

/* loc[b] (ghost): where block b is. Exactly one place by construction; the quiescent
 * check says the places agree with the data structures that encode them. */
#define UNCARVED 0   /* in an uncarved slab, or its region is unmapped */
#define SLAB 1       /* on its slab's free list (SlabMeta::free) */
#define BOX 2        /* in its owner's box (Box::free) */
#define LIVE 3       /* returned by malloc, not yet freed */
#define FREEING 4    /* a free() of it has started and not reached its linearization point */
#define RLIST 5      /* on its region's remote list (freed, pending) */
#define DROPPED 6    /* dropped from a box by purge_caches, awaiting the slab reset */
#define SPILL 7      /* on its region's spill (Region::spill): freed by its owner while
                      * the region is not its box's */

/* rlist[r]: Region::list */
#define L_NONE 0
#define L_PARTIAL 1
#define L_FULL 2
#define L_POOL 3
#define L_ABANDONED 4

/* remote_head: 0 = empty, (b + 1) << 1 = list starting at block b; bit 0 = kAbandonedTag.
 * link[b]: 0 = nullptr, else the next block + 1. */
#define TAG 1
#define HEAD(b) (((b) + 1) << 1)
#define HBLK(h) (((h) >> 1) - 1)

#define HDR(r) assert(mem[r] == MAPPED)                       /* header access */
#define BLK(b) assert(mem[REG(b)] == MAPPED && committed[b])  /* block content access */

/* --- a region's header (region.h Region) --- */
byte mem[NR];
byte owner[NR];
byte active_local[NR];
byte remote_head[NR];
bit warm[NR];
byte rlist[NR];
/* Region::purge_listed: on its owner's purge list (pages to give back after the purge
 * delay). Left listed when the region leaves the warm state (the purge skips it). */
bit plisted[NR];
/* Region::local_head: 1 = &box.free of its owner's box (the box's region), 0 = &spill.
 * The free path reads it; box_set_region / box_clear write it. */
bit lbox[NR];
/* per block: its state map entry (Region::states: BlockState), the link word, pages */
#define ST_FREE 0    /* kFree */
#define ST_LIVE 1    /* kLive */
#define ST_REMOTE 2  /* kRemote */
byte st[NBLK];
byte link[NBLK];
bit committed[NBLK];

/* --- remote.cc: the region queue of each thread's slot (SlotState::remote_regions,
 * a stack through Region::queue_next; r + 1, 0 = end) and Region::dequeued --- */
byte qhead[NT];
byte qnext[NR];
bit dequeued[NR];

/* --- lifecycle.cc: the orphan lock, the pool and the abandoned list (head first; r + 1, 0 = end) --- */
byte lock = NOBODY;
byte pool_count;

/* --- context.h: per thread, the one slot's Box and SlotState --- */
byte box_region[NT];     /* SlotState::box_region (box_pop finds it from the block) */
byte box_slab[NT];       /* SlotState::box_slab */
byte warm_count[NT];
/* every list in one array qs[]: thread t's partial and full lists, the pool, the
 * abandoned list; a list is qs[base] (head), qs[base + 1] */
#define PART(t) ((t) * NR)
#define FULL(t) (NT * NR + (t) * NR)
#define POOLQ (2 * NT * NR)
#define ABQ (2 * NT * NR + NR)
byte qs[2 * NT * NR + 2 * NR];

/* --- ghost --- */
byte loc[NBLK];
byte nlive[NR];      /* SPEC live count: blocks LIVE or FREEING */
byte inflight[NR];   /* remote frees of a block of r between their start and last access */
byte nrlist;         /* blocks on remote lists */
byte nfreeing;       /* free() calls in progress */
byte nbusy;          /* threads inside an operation */
byte budget = G;     /* operations left to all threads (their exits not counted) */
bit queued[NR];      /* on its owner's queue, or taken off it and its list not yet taken */
bit qpush[NR];       /* its push on the queue is under way (after the block's push) */
#if defined(COVER)
/* coverage events (formal/spin/witness.py): each claim says "never", Spin's trail is the
 * witness */
bit cov_free_released;   /* a free emptied an abandoned region, not its old owner's */
bit cov_adopt_inflight;  /* an abandoned region adopted while a remote free of it is in flight */
bit cov_released_remote; /* a region unmapped after a remote push into it */
bit cov_pool_reuse;      /* a pooled region taken by a thread that did not pool it */
byte abandoner[NR];
byte pooler[NR];
bit remote_freed[NR];
#define COV(x) x
#else
#define COV(x) skip
#endif

/* An operation's start and end (ghost): folded into its first and last steps; `done`
 * says the end was folded. */
#define OP_BEGIN budget > 0 -> budget--; nbusy++
#define OP_END \
  nbusy--; \
  if \
  :: nbusy == 0 -> quiescent_check() \
  :: else -> skip \
  fi; \
  done = 1
/* ---------------------------------------------------------------------------------
 * Intrusive lists (src/region/region.h region_list_push / region_list_unlink), NR == 2:
 * qs[base] is the head, qs[base + 1] the second. */
inline q_push(base, r) {
  assert(qs[base + 1] == 0);
  qs[base + 1] = qs[base];
  qs[base] = r + 1
}
inline q_unlink(base, r) {
  if
  :: qs[base] == r + 1 -> qs[base] = qs[base + 1]; qs[base + 1] = 0
  :: else -> assert(qs[base + 1] == r + 1); qs[base + 1] = 0
  fi
}
/* The region after r (its `next`), NOBODY at the end. */
inline q_next(base, r, out) {
  if
  :: qs[base] == r + 1 && qs[base + 1] != 0 -> out = qs[base + 1] - 1
  :: else -> out = NOBODY
  fi
}

/* context.h slot_list_unlink / slot_list_push on thread t's lists */
inline list_unlink(t, r) {
  if
  :: rlist[r] == L_PARTIAL -> q_unlink(PART(t), r)
  :: rlist[r] == L_FULL -> q_unlink(FULL(t), r)
  fi;
  rlist[r] = L_NONE
}
inline list_push(t, r, l) {
  if
  :: l == L_PARTIAL -> q_push(PART(t), r)
  :: else -> q_push(FULL(t), r)
  fi;
  rlist[r] = l
}

/* src/region/region.h region_slab_has_free: slab_free_mask | uncarved mask; has_free_space:
 * those of any slab, or a spill */
#define SLAB_HAS_FREE(r, i) (loc[BLKOF(r, i)] == SLAB || loc[BLKOF(r, i)] == UNCARVED)
#define HAS_SPILL(r) (loc[BLKOF(r, 0)] == SPILL || loc[BLKOF(r, 1)] == SPILL)
/* region_pending / region_remote_blocks: the blocks in state kRemote (no counter keeps
 * them); PENDING(r): those on its remote list (ghost) */
#define NREMOTE(r) ((st[BLKOF(r, 0)] == ST_REMOTE) + (st[BLKOF(r, 1)] == ST_REMOTE))
#define PENDING(r) ((loc[BLKOF(r, 0)] == RLIST) + (loc[BLKOF(r, 1)] == RLIST))
#define HAS_FREE_SPACE(r) (SLAB_HAS_FREE(r, 0) || SLAB_HAS_FREE(r, 1) || HAS_SPILL(r))
/* the lowest slab with a free list or uncarved blocks (ctz of the mask); NB if none */
#define FIRST_FREE_SLAB(r) (SLAB_HAS_FREE(r, 0) -> 0 : (SLAB_HAS_FREE(r, 1) -> 1 : NB))
#define CARVED(b) (loc[b] != UNCARVED)   /* slab_carved_mask: one block per slab */
#define HAS_SLAB_LIST(r) (loc[BLKOF(r, 0)] == SLAB || loc[BLKOF(r, 1)] == SLAB)

/* src/thread/context.h relist */
inline relist(t, r) {
  if
  :: HAS_FREE_SPACE(r) && rlist[r] != L_PARTIAL -> list_unlink(t, r); list_push(t, r, L_PARTIAL)
  :: !HAS_FREE_SPACE(r) && rlist[r] != L_FULL -> list_unlink(t, r); list_push(t, r, L_FULL)
  :: else -> skip
  fi
}

/* ---------------------------------------------------------------------------------
 * Pages. A slab's pages go back only when none of its blocks is live, pending, in a free
 * in flight or in a cache (SPEC section 4: "before a region is released or its pages
 * given back, its blocks are removed from every cache"). */
inline decommit_block(b) {
  if
  :: CARVED(b) ->
     assert(loc[b] == SLAB || loc[b] == DROPPED);
     committed[b] = 0
  :: else -> skip
  fi;
  loc[b] = UNCARVED
}

/* src/region/region.cc region_reset (decommit): os_decommit of the carved span, then
 * every slab uncarved. One step: the system call. */
inline region_reset_decommit(r) {
  d_step {
    HDR(r);
    decommit_block(BLKOF(r, 0));
    decommit_block(BLKOF(r, 1))
  }
}

/* src/region/region.cc region_reset_except: every slab but `keep` uncarved, their
 * pages back (two system calls, below and above keep: one step, nothing else touches
 * them in between: the region is empty). */
inline region_reset_except(r, keep) {
  d_step {
    HDR(r);
    for (xi : 0 .. NB - 1) {
      if
      :: xi != keep && CARVED(BLKOF(r, xi)) -> decommit_block(BLKOF(r, xi))
      :: else -> skip
      fi
    }
    xi = 0
  }
}

/* src/region/region.cc region_release: region_map_set(kNone), magic = 0, then the
 * large-run cache (large_cache_put_region: unmapped in spirit, its pages kept for the purge
 * delay; modelled as unmapped, so an access after the release is still caught). One step. The release rule is asserted here: no live block, no pending remote free, no
 * free in flight, no block in a cache. */
inline region_release(r) {
  d_step { region_release_body(r) }
}
inline region_release_body(r) {
    HDR(r);
    assert(nlive[r] == 0 && PENDING(r) == 0 && inflight[r] == 0);
    assert(!queued[r] && !qpush[r]);  /* on no queue, no push of it under way */
#if defined(COVER)
    cov_released_remote = cov_released_remote || remote_freed[r];
    remote_freed[r] = 0;
#endif
    for (xi : 0 .. NB - 1) {
      assert(loc[BLKOF(r, xi)] == UNCARVED || loc[BLKOF(r, xi)] == SLAB ||
             loc[BLKOF(r, xi)] == DROPPED);
      loc[BLKOF(r, xi)] = UNCARVED;
      committed[BLKOF(r, xi)] = 0;
      st[BLKOF(r, xi)] = ST_FREE;
      link[BLKOF(r, xi)] = 0
    }
    xi = 0;
    mem[r] = UNMAPPED;
    owner[r] = NOBODY;
    active_local[r] = 0;
    remote_head[r] = 0;
    qnext[r] = 0;
    warm[r] = 0;
    lbox[r] = 0;
    assert(plisted[r] == 0);  /* unlisted first: a purge list never holds an unmapped region */
    rlist[r] = L_NONE
}

/* src/region/lifecycle.cc purge_caches(ctx, r, -1) (all = 1: every block) or
 * (ctx, r, keep) (all = 0: every block but those of slab keep): owner-private, folded into
 * the next step. The spill first (its blocks of slab keep back on that slab's list, a walk
 * of its links), then the box; box_clear points local_head at the spill again. */
inline purge_caches(t, r, all, slab) {
  for (xi : 0 .. NB - 1) {
    if
    :: loc[BLKOF(r, xi)] == SPILL && all -> loc[BLKOF(r, xi)] = DROPPED
    :: loc[BLKOF(r, xi)] == SPILL && !all ->
       BLK(BLKOF(r, xi));
       loc[BLKOF(r, xi)] = (xi != slab -> DROPPED : SLAB)
    :: else -> skip
    fi
  }
  xi = 0;
  if
  :: box_region[t] == r ->
     for (xi : 0 .. NB - 1) {
       if
       :: loc[BLKOF(r, xi)] == BOX && (all || xi != slab) -> BLK(BLKOF(r, xi)); loc[BLKOF(r, xi)] = DROPPED
       :: else -> skip
       fi
     }
     xi = 0;
     if
#if !defined(BUG_BOX_KEEPS_REGION)
     :: all -> box_region[t] = NOBODY; lbox[r] = 0
#else
     :: all -> skip  /* bug: the box's blocks dropped, box_region kept */
#endif
     :: else -> skip
     fi
  :: else -> skip
  fi
}

/* collect_queued: active_local.load() == 0 && !warm (owner-side) */
#if defined(BUG_EMPTY_BY_ACTIVE)
/* bug: the exact count active() = active_local - region_pending (the kRemote blocks) taken
 * for "empty": it is exact only when no free is in flight */
#define EMPTY_TEST(r) cempty = (active_local[r] - NREMOTE(r) == 0 && !warm[r])
#else
#define EMPTY_TEST(r) cempty = (active_local[r] == 0 && !warm[r])
#endif

/* ---------------------------------------------------------------------------------
 * src/region/region.cc region_collect: the list taken by an exchange goes back into
 * the slabs. Caller is the owner ct (then relist and the empty test of collect_queued
 * are folded into the last step: owner-side), or holds the orphan lock (ct == NOBODY).
 * Uses cb, cn; h is the list; sets cempty. */
inline region_collect(ct, r, h) {
  cn = 0;
  do
  :: (h >> 1) != 0 ->
     /* region_collect, per block: link_next(b); st.load() == kRemote; st.store(kFree);
      * region_put. One step: after the exchange the block and its state entry are the
      * collector's alone (its freer is done with it; other freers touch other entries),
      * so these accesses commute with every other thread's. (The branch for an entry that
      * is not kRemote, a racing double free, is not modelled: the programs are correct.) */
     d_step {
       cb = HBLK(h);
       BLK(cb); HDR(r);
       assert(loc[cb] == RLIST && st[cb] == ST_REMOTE);
       h = link[cb] << 1;
       st[cb] = ST_FREE;
       link[cb] = 0;  /* region_put's link_set: the slab list's order is not modelled */
       loc[cb] = SLAB;
       nrlist--;
       cn++;
       cb = 0
     }
  :: else -> break
  od;
  skip;  /* (a loop's exit may not jump into a d_step) */
  /* region_collect: active_local.store(load - n) (owner-side) */
  d_step {
    h = 0;
    if
    :: cn > 0 ->
       HDR(r);
       active_local[r] = active_local[r] - cn
    :: else -> skip
    fi;
    cn = 0;
    if
    :: ct != NOBODY ->
       relist(ct, r);
       EMPTY_TEST(r)
    :: else -> skip
    fi
  }
}


/* ---------------------------------------------------------------------------------
 * The orphan lock. Taking it is folded into the first step of its critical section (a
 * right mover), releasing it into the last (a left mover). */
#define LOCK(t) lock == NOBODY -> lock = t
#define UNLOCK(t) assert(lock == t); lock = NOBODY

/* src/region/lifecycle.cc release_empty_locked (lock held; r ownerless, empty, on no list),
 * then the caller's unlock. */
inline release_empty_locked_unlock(t, r) {
  if
  :: pool_count < W ->
     /* the pages at once (HAKMEM_PURGE_DELAY_MS = 0) or kept until orphan_purge */
     if
     :: region_reset_decommit(r)
     :: skip
     fi;
     /* release_empty_locked: warm = 1; remote_head.store(kAbandonedTag); pool push */
     d_step {
       HDR(r);
       warm[r] = 1;
       remote_head[r] = TAG;
       q_push(POOLQ, r);
       rlist[r] = L_POOL;
       COV(pooler[r] = t);
       pool_count++;
       UNLOCK(t)
     }
  :: else -> d_step { region_release_body(r); UNLOCK(t) }
  fi
}

/* src/region/lifecycle.cc orphan_purge (a purge point: refill_tick, and with force
 * context_collect): when a pooled region kept its pages (the hint), under the lock,
 * each such region gives them back if its delay has passed (a choice: any delay; always
 * with force). */
#define POOL_DIRTY(r) (rlist[r] == L_POOL && (CARVED(BLKOF(r, 0)) || CARVED(BLKOF(r, 1))))
inline orphan_purge(t, force) {
  if
  :: POOL_DIRTY(0) || POOL_DIRTY(1) ->
#if !defined(BUG_POOL_PURGE_NO_LOCK)
     d_step { LOCK(t) }
#endif
     for (ci : 0 .. NR - 1) {
       if
       :: POOL_DIRTY(ci) ->
          if
          :: region_reset_decommit(ci)
          :: !force -> skip
          fi
       :: else -> skip
       fi
     }
     ci = 0;
#if !defined(BUG_POOL_PURGE_NO_LOCK)
     d_step { UNLOCK(t) }
#endif
  :: else -> skip
  fi
}

/* src/region/remote.cc region_queue_leave (orphan lock held; r's list was not
 * empty): until r is marked, take the queue and mark every region on it; then r's mark is
 * cleared. The wait is a guard: the thread blocks until a push makes the queue non-empty
 * (the C++ spins; spinning changes no state). */
inline region_queue_leave(t, r) {
  do
  :: dequeued[r] -> dequeued[r] = 0; queued[r] = 0; break
  :: !dequeued[r] && qhead[t] != 0 ->
     /* region_queue_leave: queue_take (remote_regions.exchange(nullptr)); the marks and
      * queue_next loads of regions off the queue (the owner's: folded) */
     d_step {
       cq = qhead[t];
       qhead[t] = 0;
       do
       :: cq != 0 -> HDR(cq - 1); dequeued[cq - 1] = 1; cq = qnext[cq - 1]
       :: else -> break
       od
     }
  od
}

/* src/region/lifecycle.cc orphan_abandon (the exiting owner gives r up). Uses ch. */
inline orphan_abandon(t, r) {
#if defined(BUG_ABANDON_NO_TAG)
  /* bug (b): the list is taken but not closed: exchange(0) instead of the tag */
  d_step { LOCK(t); HDR(r); ch = remote_head[r]; remote_head[r] = 0 }
#else
  /* orphan_abandon: lock; remote_head.exchange(kAbandonedTag) */
  d_step { LOCK(t); HDR(r); ch = remote_head[r]; remote_head[r] = TAG }
#endif
#if !defined(BUG_ABANDON_NO_WAIT)
  /* orphan_abandon: a list that was not empty: region_queue_leave */
  if
  :: (ch >> 1) != 0 -> region_queue_leave(t, r)
  :: else -> skip
  fi;
#endif
#if defined(BUG_ABANDON_NO_COLLECT)
  /* bug (c): the exchanged list is dropped */
  ch = 0;
#endif
  region_collect(NOBODY, r, ch);
  /* orphan_abandon: owner.store(nullptr); active_local.load() == 0 (lock-protected) */
  d_step { HDR(r); owner[r] = NOBODY; ch = (active_local[r] == 0) }
  if
  :: ch -> ch = 0; release_empty_locked_unlock(t, r)
  :: else ->
     d_step {
       HDR(r);
       q_push(ABQ, r);
       rlist[r] = L_ABANDONED;
       COV(abandoner[r] = t);
       UNLOCK(t)
     }
  fi
}

/* src/region/lifecycle.cc orphan_take: an abandoned region with free space (adopted), else
 * one from the pool, now owned by t; NOBODY if none. Result in `pick`. */
inline orphan_take(t) {
  /* orphan_take: lock; the list walk (lock-protected cold state of ownerless regions);
   * owner.store(ctx) */
  d_step {
    LOCK(t);
    pick = NOBODY;
    if
    :: qs[ABQ + 0] != 0 && HAS_FREE_SPACE(qs[ABQ + 0] - 1) -> pick = qs[ABQ + 0] - 1
    :: qs[ABQ + 0] != 0 && !HAS_FREE_SPACE(qs[ABQ + 0] - 1) && qs[ABQ + 1] != 0 &&
       HAS_FREE_SPACE(qs[ABQ + 1] - 1) ->
       pick = qs[ABQ + 1] - 1
    :: else -> skip
    fi;
    if
    :: pick != NOBODY ->
       HDR(pick);
       q_unlink(ABQ, pick);
       rlist[pick] = L_NONE;
       COV(cov_adopt_inflight = cov_adopt_inflight || inflight[pick] > 0)
    :: pick == NOBODY && qs[POOLQ + 0] != 0 ->
       pick = qs[POOLQ + 0] - 1;
       COV(cov_pool_reuse = cov_pool_reuse || pooler[pick] != t);
       HDR(pick);
       q_unlink(POOLQ, pick);
       rlist[pick] = L_NONE;
       pool_count--;
       warm[pick] = 0
    :: else -> skip
    fi;
    if
    :: pick != NOBODY -> owner[pick] = t
    :: else -> UNLOCK(t)
    fi
  }
  if
  :: pick != NOBODY ->
#if !defined(BUG_TAKE_KEEPS_TAG)
     /* orphan_take: remote_head.store(0, release); unlock; then (owner-side) the
      * region joins t's lists and the refill */
     d_step { HDR(pick); remote_head[pick] = 0; UNLOCK(t); adopt_box_region(t); refill_pop(t); OP_END }
#else
     /* bug: the tag is left on: a remote free into the adopted region takes the locked
      * path, which trusts the tag */
     d_step { UNLOCK(t); adopt_box_region(t); refill_pop(t); OP_END }
#endif
  :: else -> skip
  fi
}

/* src/region/lifecycle.cc free_abandoned: the free of block fb of the ownerless
 * region fr, under the lock. fok = 0: the region was adopted meanwhile (retry). */
inline free_abandoned(t, fr, fb) {
  /* free_abandoned: lock; remote_head.load() & kAbandonedTag */
  d_step {
    LOCK(t);
    HDR(fr);
    fok = remote_head[fr] & TAG;
    if
    :: !fok -> UNLOCK(t)
    :: else -> skip
    fi
  }
  if
  :: fok ->
     /* free_abandoned: st.load() (the double-free test), st.store(kFree),
      * region_put, active_local load/store: an entry only this free writes and
      * lock-protected state, one step; the free's linearization point. */
     d_step {
       HDR(fr); BLK(fb);
       assert(st[fb] == ST_LIVE && loc[fb] == FREEING);
       st[fb] = ST_FREE;
       loc[fb] = SLAB;
       active_local[fr] = active_local[fr] - 1;
       nlive[fr]--;
       nfreeing--;
       inflight[fr]--;
       printf("OP free %d %d\n", t, fb);
#if !defined(BUG_FREE_ABANDONED_NO_RELEASE)
       ch = (active_local[fr] == 0);
#else
       /* bug: the region that this free emptied stays abandoned */
       ch = 0;
#endif
       if
       :: ch ->
          q_unlink(ABQ, fr);
          rlist[fr] = L_NONE;
          COV(cov_free_released = cov_free_released || abandoner[fr] != t)
       :: else -> UNLOCK(t)
       fi
     }
     if
     :: ch -> ch = 0; release_empty_locked_unlock(t, fr)
     :: else -> skip
     fi
  :: else -> skip
  fi
}

/* ---------------------------------------------------------------------------------
 * src/region/lifecycle.cc give_back_pages (owner t, r warm): purge_unlist; the region t
 * carves from (the box's) keeps its box_slab (purge_caches(ctx, r, box_slab), region_reset_except),
 * any other gives back every carved slab (purge_caches(ctx, r, -1), region_reset). */
inline give_back_pages(t, r) {
  plisted[r] = 0;
  if
  :: r == box_region[t] ->
#if !defined(BUG_NO_PURGE)
     d_step { purge_caches(t, r, 0, box_slab[t]) }
#endif
     region_reset_except(r, box_slab[t]);
     d_step { relist(t, r) }
  :: r != box_region[t] ->
#if !defined(BUG_NO_PURGE)
     d_step { purge_caches(t, r, 1, 0) }
#endif
     region_reset_decommit(r);
     d_step { relist(t, r) }
  fi
}

/* src/region/lifecycle.cc region_became_empty (owner t, r has no live block and no
 * pending free). keep: Pages::kKeep. Warm: its pages go back at once (kGiveBack with
 * HAKMEM_PURGE_DELAY_MS = 0), or it joins the purge list (purge_list) and a later purge
 * point gives them back: both are choices here, so every delay is covered. */
inline region_became_empty(t, r, keep) {
  if
  :: warm[r] -> skip
  :: !warm[r] && warm_count[t] < W ->
     d_step {
       warm_count[t]++;
       warm[r] = 1
     }
     if
     :: !keep -> give_back_pages(t, r)
     :: d_step { plisted[r] = 1; relist(t, r) }
     fi
  :: else ->
     /* purge_unlist; purge_caches(ctx, r, -1) (the box leaves r if it is the box's region);
      * list_unlink (owner-side), then region_release: one step */
     d_step {
       plisted[r] = 0;
       purge_caches(t, r, 1, 0);
       list_unlink(t, r);
       region_release_body(r)
     }
  fi
}

/* src/region/lifecycle.cc context_purge (a purge point: the refill, force at
 * collect): each region on t's list that left the warm state is unlisted; each warm one
 * gives its pages back if its delay has passed (a choice: any delay), always with force. */
inline context_purge(t, force) {
  for (ci : 0 .. NR - 1) {
    if
    :: plisted[ci] && owner[ci] == t ->
       if
#if !defined(BUG_PURGE_IN_USE)
       :: !warm[ci] -> plisted[ci] = 0
       :: warm[ci] -> give_back_pages(t, ci)
       :: warm[ci] && !force -> skip
#else
       /* bug: the purge does not skip a region that is in use again */
       :: give_back_pages(t, ci)
       :: !force -> skip
#endif
       fi
    :: else -> skip
    fi
  }
  ci = 0
}

/* src/region/remote.cc collect_queued: a region the owner took off its queue:
 * queue_next.load() (the caller's `next`; off the queue the link is the owner's, folded),
 * remote_head.exchange(0, acq_rel), region_collect (then relist and the empty test;
 * the caller applies the empty rule). */
inline collect_queued(t, r) {
  d_step {
    HDR(r);
    assert(owner[r] == t && queued[r] && (remote_head[r] >> 1) != 0);
    cnx = qnext[r];
    ch = remote_head[r];
    remote_head[r] = 0;
    queued[r] = 0
  }
  region_collect(t, r, ch)
}

/* src/region/remote.cc collect_slot: with no owned region nothing (owner-side
 * lists); else queue_take, then each region taken from the head: `next` read,
 * collect_queued, the empty rule. */
inline collect_slot(t, keep) {
  if
  :: qs[PART(t)] == 0 && qs[FULL(t)] == 0 -> assert(qhead[t] == 0); cq = 0
  :: else ->
     /* queue_take: remote_regions.exchange(nullptr) */
     d_step { cq = qhead[t]; qhead[t] = 0 }
  fi;
  do
  :: cq != 0 ->
     cr = cq - 1;
     collect_queued(t, cr);
     if
     :: cempty -> cempty = 0; region_became_empty(t, cr, keep)
     :: else -> skip
     fi;
     cq = cnx;
     cnx = 0
  :: else -> break
  od;
  cr = 0
}

/* ---------------------------------------------------------------------------------
 * src/thread/context.h box_pop: the box's first block becomes live. The link read,
 * the alloc-bit store and active_local touch only t's block and t's region's owner-side
 * words: one step, the malloc's linearization point. (The box's order is not modelled:
 * the lowest block.) */
inline box_pop(t) {
  mr = box_region[t];
  HDR(mr);
  assert(owner[mr] == t);
  mb = (loc[BLKOF(mr, 0)] == BOX -> BLKOF(mr, 0) : BLKOF(mr, 1));
  assert(loc[mb] == BOX);
  BLK(mb);
  loc[mb] = LIVE;
  st[mb] = ST_LIVE;
  nlive[mr]++;
  /* a == 0: region_left_empty */
  if
  :: active_local[mr] == 0 && warm[mr] -> warm[mr] = 0; warm_count[t]--
  :: else -> skip
  fi;
  active_local[mr]++;
  printf("OP malloc %d %d\n", t, mb);
  mr = 0;
  mb = 0
}

#define BOX_HAS(t) (box_region[t] != NOBODY && \
  (loc[BLKOF(box_region[t], 0)] == BOX || loc[BLKOF(box_region[t], 1)] == BOX))

/* src/thread/context.h box_set_region: the box hands out blocks of r (its spill
 * is empty); the previous box region's frees go to its own spill again */
inline box_set_region(t, r) {
  if
  :: box_region[t] != r ->
     if
#if !defined(BUG_SWITCH_KEEPS_HEAD)
     :: box_region[t] != NOBODY -> assert(!HAS_SPILL(box_region[t])); lbox[box_region[t]] = 0
#else
     :: box_region[t] != NOBODY -> skip  /* bug: the old region's frees still go to the box */
#endif
     :: else -> skip
     fi;
     lbox[r] = 1;
     box_region[t] = r
  :: else -> skip
  fi
}

/* src/thread/context.cc mid_freed_elsewhere: the box's region has no freed block left (no
 * spill, no slab list: its next block would be carved, every page of a mid block faulted
 * in), so a region on t's partial list other than it with freed blocks (a spill or a slab
 * list) takes the box, one not warm first. The model's class is a mid one (one block per
 * slab, as in the 256 KiB class). */
inline mid_freed_elsewhere(t) {
  if
  :: qs[PART(t)] != 0 && qs[PART(t)] - 1 != box_region[t] &&
     (HAS_SPILL(qs[PART(t)] - 1) || HAS_SLAB_LIST(qs[PART(t)] - 1)) ->
     pick = qs[PART(t)] - 1
  :: else -> skip
  fi;
  if
  :: qs[PART(t) + 1] != 0 && qs[PART(t) + 1] - 1 != box_region[t] &&
     (HAS_SPILL(qs[PART(t) + 1] - 1) || HAS_SLAB_LIST(qs[PART(t) + 1] - 1)) &&
     (pick == NOBODY || (warm[pick] && !warm[qs[PART(t) + 1] - 1])) ->
     pick = qs[PART(t) + 1] - 1
  :: else -> skip
  fi
}
/* context_ensure_slab's switch to that region: box_set_region, box_slab = the ctz of its
 * slab_free_mask (0 with a spill alone: the refill takes the spill) */
inline set_box_region_freed(t) {
  assert(HAS_SPILL(pick) || HAS_SLAB_LIST(pick));
  box_set_region(t, pick);
  box_slab[t] = (loc[BLKOF(pick, 0)] == SLAB -> 0 : (loc[BLKOF(pick, 1)] == SLAB -> 1 : 0));
  pick = 0;
  ok = 1
}
/* src/thread/context.cc context_ensure_slab's owner-side part: keep the box's
 * region if it has a spill or its slab (or another) has a block, else relist it and pick a
 * partial region with free space, preferring one not warm (the box moves to it: an
 * exhausted region stays the box's until then). ok = 1: the box's region has a block. (No walk of the
 * full list: a region that gets a block back leaves it at that free, free_fast's
 * free_list_started, and collection.) */
inline ensure_decide(t) {
  ok = 0;
  pick = NOBODY;
  if
  :: box_region[t] != NOBODY && HAS_SPILL(box_region[t]) -> ok = 1
  :: box_region[t] != NOBODY && !HAS_SPILL(box_region[t]) && !HAS_SLAB_LIST(box_region[t]) ->
     mid_freed_elsewhere(t)
  :: else -> skip
  fi;
  if
  :: pick != NOBODY -> relist(t, box_region[t]); set_box_region_freed(t)
  :: pick == NOBODY && box_region[t] != NOBODY && !HAS_SPILL(box_region[t]) ->
     if
     :: !SLAB_HAS_FREE(box_region[t], box_slab[t]) && HAS_FREE_SPACE(box_region[t]) ->
        box_slab[t] = FIRST_FREE_SLAB(box_region[t])
     :: else -> skip
     fi;
     if
     :: SLAB_HAS_FREE(box_region[t], box_slab[t]) -> ok = 1
     :: else -> relist(t, box_region[t])
     fi
  :: else -> skip
  fi;
  pick = NOBODY;
  if
  :: !ok && qs[PART(t)] != 0 && HAS_FREE_SPACE(qs[PART(t)] - 1) ->
     pick = qs[PART(t)] - 1
  :: else -> skip
  fi;
  if
  :: !ok && qs[PART(t) + 1] != 0 && HAS_FREE_SPACE(qs[PART(t) + 1] - 1) &&
     (pick == NOBODY || (warm[pick] && !warm[qs[PART(t) + 1] - 1])) ->
     pick = qs[PART(t) + 1] - 1
  :: else -> skip
  fi;
  if
  :: pick != NOBODY -> set_box_region(t)
  :: else -> skip
  fi
}
/* ensure_slab's loop: box_set_region(box, pick), box_slab = ctz(free | uncarved); the
 * next round returns true */
inline set_box_region(t) {
  assert(HAS_FREE_SPACE(pick));
  box_set_region(t, pick);
  /* a spill alone: slab 0 */
  box_slab[t] = (FIRST_FREE_SLAB(pick) == NB -> 0 : FIRST_FREE_SLAB(pick));
  pick = 0;
  ok = 1
}
/* a region from orphan_take or region_create joins t's lists, then the box moves to it */
inline adopt_box_region(t) {
  list_push(t, pick, (HAS_FREE_SPACE(pick) -> L_PARTIAL : L_FULL));
  set_box_region(t)
}

/* src/thread/context.cc box_refill_slow after ensure_slab, box_fill: the box region's
 * spill (all of it), else the box slab's free list or a carved batch, into the box; then
 * box_pop. Owner-side: one step. */
inline refill_pop(t) {
  mr = box_region[t];
  HDR(mr);
  if
  :: HAS_SPILL(mr) ->
     for (xi : 0 .. NB - 1) {
       if
       :: loc[BLKOF(mr, xi)] == SPILL -> loc[BLKOF(mr, xi)] = BOX
       :: else -> skip
       fi
     }
     xi = 0
  :: else ->
     mb = BLKOF(mr, box_slab[t]);
     if
     :: loc[mb] == SLAB -> skip
     :: else -> assert(loc[mb] == UNCARVED); committed[mb] = 1  /* carving touches it */
     fi;
     loc[mb] = BOX
  fi;
  mr = 0;
  mb = 0;
  ok = 0;
  box_pop(t)
}

/* src/front/hot.h malloc_fast -> box_pop; src/thread/context.cc malloc_slot_slow
 * (a slab list of the box's region into the box (box_take_slab_list)) -> box_pop; else box_refill_slow ->
 * context_ensure_slab (collect_slot(kKeep), relist, orphan_take, region_create). */
inline do_malloc(t) {
  d_step {
    OP_BEGIN;
    if
    :: BOX_HAS(t) -> box_pop(t); OP_END
    :: !BOX_HAS(t) && box_region[t] != NOBODY && HAS_SLAB_LIST(box_region[t]) ->
       mr = box_region[t];
       mb = (loc[BLKOF(mr, 0)] == SLAB -> BLKOF(mr, 0) : BLKOF(mr, 1));
       loc[mb] = BOX;
       box_slab[t] = mb % NB;
       mr = 0;
       mb = 0;
       box_pop(t);
       OP_END
    :: else -> ok = 1  /* the refill */
    fi
  }
  if
  :: ok ->
     ok = 0;
     /* box_refill_slow -> refill_tick, before ensure_slab: now and then collect_slot of
      * every other slot (the model has one slot: that is the collect op's collect_slot,
      * which any thread may run at any point), then the purge point */
     context_purge(t, 0);
     orphan_purge(t, 0);
     collect_slot(t, 1);
     d_step {
       ensure_decide(t);
       if
       :: ok -> refill_pop(t); OP_END
       :: else -> skip
       fi
     }
     if
     :: !ok && done == 0 ->
        orphan_take(t);   /* its last step runs adopt_box_region, refill_pop, OP_END */
        if
        :: pick == NOBODY ->
           /* region_create (a fresh mapping, or a released region from the large-run
            * cache cleared to read as one; region_map_set publishes it last) and
            * owner.store(ctx): no other thread can hold a pointer into it yet; then the
            * refill. One step. */
           d_step {
             pick = (mem[0] == UNMAPPED -> 0 : (mem[1] == UNMAPPED -> 1 : NOBODY));
             if
             :: pick != NOBODY ->
                mem[pick] = MAPPED;
                owner[pick] = t;
                adopt_box_region(t);
                refill_pop(t)
             :: else -> skip  /* out of memory: NULL, ENOMEM */
             fi;
             pick = 0;
             OP_END
           }
        :: else -> skip
        fi
     :: else -> skip
     fi
  :: else -> skip
  fi;
  pick = 0
}

/* src/region/lifecycle.cc region_check_empty (after a local free found
 * active_local == 0: nothing pending either, so no collection) */
inline region_check_empty(t, r) {
  /* region_check_empty: the short path's tests (owner-side); the box's region is the one
   * whose local_head points at the box */
  ch = (lbox[r] && !warm[r] && warm_count[t] < W && !(CARVED(BLKOF(r, 1 - box_slab[t]))));
  if
  :: ch ->
     d_step {
       /* no relist: only its box slab is carved, so it has free space and is on the
        * partial list already (the box's region leaves it only when exhausted) */
       assert(rlist[r] == L_PARTIAL && HAS_FREE_SPACE(r));
       warm_count[t]++;
       warm[r] = 1;
       ch = 0
     }
  :: else -> region_became_empty(t, r, 0)
  fi
}

/* src/region/remote.cc region_queue_push (after the push that found fr's list
 * empty): the owner, then queue_push onto its queue. */
inline region_queue_push(fr) {
  /* region_queue_push: owner.load() */
  d_step { HDR(fr); fqo = owner[fr]; assert(fqo != NOBODY) }
  /* queue_push: remote_regions.load() */
  d_step { fqt = qhead[fqo] }
  do
  :: true ->
     /* queue_push: queue_next.store(top) (the region's link: no other thread touches it
      * now), then remote_regions.compare_exchange_weak(top, r) (modelled strong) */
     d_step {
       HDR(fr);
       qnext[fr] = fqt;
       if
       :: qhead[fqo] == fqt ->
          qhead[fqo] = fr + 1;
          qpush[fr] = 0;
          queued[fr] = 1;
#if !defined(BUG_WRITE_AFTER_PUSH)
          inflight[fr]--;
#endif
          fq = 0
       :: else -> fqt = qhead[fqo]
       fi
     }
     if
     :: !fq -> break
     :: else -> skip
     fi
  od;
  fqo = 0;
  fqt = 0
}

/* src/region/remote.cc free_remote: the free of fb (region fr) by t, who
 * does not own fr. */
inline free_remote(t, fr, fb) {
  do
  :: true ->
     /* free_remote: st.compare_exchange_strong(kLive, kRemote) (the block is
      * live: the program frees it once) */
     d_step { HDR(fr); assert(st[fb] == ST_LIVE); st[fb] = ST_REMOTE }
     /* free_remote: remote_head.load() */
     d_step { HDR(fr); fh = remote_head[fr] }
     do
     :: !(fh & TAG) ->
        /* free_remote: link_set(p, head) */
        d_step { BLK(fb); assert(loc[fb] == FREEING); link[fb] = fh >> 1 }
        /* free_remote: remote_head.compare_exchange_weak(head, p) (modelled
         * strong: a spurious failure only repeats the loop) */
        d_step {
          HDR(fr);
          if
          :: remote_head[fr] == fh ->
             remote_head[fr] = HEAD(fb);
             COV(remote_freed[fr] = 1);
             loc[fb] = RLIST;
             nrlist++;
             nlive[fr]--;
             nfreeing--;
             /* head == 0: this free queues the region (region_queue_push) */
#if defined(BUG_QUEUE_EVERY_PUSH)
             fq = 1;  /* bug: every push queues the region */
#else
             fq = (fh == 0);
#endif
             if
             :: fq -> assert(!queued[fr] && !qpush[fr]); qpush[fr] = 1
             :: else -> skip
             fi;
#if !defined(BUG_WRITE_AFTER_PUSH)
             if
             :: !fq -> inflight[fr]--  /* else after the region's push */
             :: else -> skip
             fi;
#endif
             printf("OP free %d %d\n", t, fb);
             fok = 1
#if defined(BUG_CAS_NO_RELOAD)
          /* bug: the CAS's expected value is a copy: `head` is not refreshed on failure */
          :: else -> fok = 0
#else
          :: else -> fh = remote_head[fr]; fok = 0
#endif
          fi
        }
        if
        :: fok -> break
        :: else -> skip
        fi
     :: else -> break
     od;
     if
     :: fok ->
        if
        :: fq -> region_queue_push(fr)
        :: else -> skip
        fi;
#if defined(BUG_WRITE_AFTER_PUSH)
        /* bug (a'): the block written after the push (e.g. cleared) */
        d_step { BLK(fb); assert(loc[fb] == RLIST); link[fb] = 0; inflight[fr]-- }
#endif
        break
     :: else -> skip
     fi;
     /* free_remote: st.store(kLive) (undone: the lock holder frees it) */
     d_step { HDR(fr); st[fb] = ST_LIVE; fh = 0 }
     free_abandoned(t, fr, fb);
     if
     :: fok -> break
     :: else -> skip
     fi
  od;
  fh = 0;
  fok = 0
}

/* src/front/hot.h free_fast: the free of block b by t. Its first step: the program
 * picks a live block (ghost: it becomes FREEING); region_kind_of and region_on_grid
 * (the region map and header constants); owner.load(). When t owns the region, the rest
 * touches t's block and t's owner-side words (the state entry's load and store, the push
 * through local_head on the box or the region's spill, active_local's -1 (one
 * read-modify-write, OwnerCount::decrement_is_zero, in free_fast or in free_list_started
 * when the list was empty): folded in; the state store is the free's linearization point. */
#if !defined(BUG_SWITCH_KEEPS_HEAD)
#define LBOX_FREE_ASSERT assert(lbox[fr] == (box_region[t] == fr))
#else
#define LBOX_FREE_ASSERT skip  /* the bug's consequence is what must be caught */
#endif
#define FREE_OPT(b) \
  :: d_step { \
       loc[b] == LIVE && budget > 0 -> \
       budget--; nbusy++; nfreeing++; \
       loc[b] = FREEING; fb = b; fr = REG(b); \
       printf("OPBEGIN free %d %d\n", t, b); \
       HDR(fr); \
       assert(box_region[t] != fr || owner[fr] == t); \
       fo = owner[fr]; \
       if \
       :: fo == t -> \
          BLK(fb); \
          assert(st[fb] == ST_LIVE); \
          st[fb] = ST_FREE; \
          /* the push through local_head: the box in its region, else the spill */ \
          LBOX_FREE_ASSERT; \
          ch = (lbox[fr] -> !BOX_HAS(t) : !HAS_SPILL(fr));  /* the list was empty */ \
          loc[fb] = (lbox[fr] -> BOX : SPILL); \
          active_local[fr]--; \
          nlive[fr]--; \
          nfreeing--; \
          /* free_list_started: a spill that starts brings a full region back to the \
           * partial list (its empty test: do_free_rest) */ \
          if \
          :: ch && !lbox[fr] && rlist[fr] == L_FULL -> \
             list_unlink(t, fr); list_push(t, fr, L_PARTIAL) \
          :: else -> skip \
          fi; \
          ch = 0; \
          printf("OP free %d %d\n", t, fb) \
       :: else -> inflight[fr]++ \
       fi \
     } \
     do_free_rest(t)

inline do_free_rest(t) {
  if
  :: fo == t ->
     /* free_fast (or free_list_started): decrement_is_zero */
     d_step {
       HDR(fr);
       ch = (active_local[fr] == 0);
       if
       :: !ch -> OP_END
       :: else -> skip
       fi
     }
     if
     :: ch -> ch = 0; region_check_empty(t, fr)
     :: else -> skip
     fi
  :: else -> free_remote(t, fr, fb)
  fi;
  fo = 0;
  fr = 0;
  fb = 0
}

/* src/thread/context.cc box_flush: the box's blocks back to their slabs; box_clear */
inline box_flush(t) {
  for (xi : 0 .. NBLK - 1) {
    if
    :: loc[xi] == BOX && REG(xi) == box_region[t] -> BLK(xi); loc[xi] = SLAB
    :: else -> skip
    fi
  }
  xi = 0;
  if
  :: box_region[t] != NOBODY -> lbox[box_region[t]] = 0
  :: else -> skip
  fi;
  box_region[t] = NOBODY
}

/* src/thread/context.cc context_exit, in src/region/lifecycle.cc context_leave_regions:
 * partial list, then full list, from the head: unlink, spill_flush (the spill's blocks back to their slabs), leave the warm
 * reserve, orphan_abandon. */
inline context_exit(t) {
  /* box_flush: in the exit's first step (proctype thread) */
  do
  :: qs[PART(t)] != 0 || qs[FULL(t)] != 0 ->
     d_step {
       cr = (qs[PART(t)] != 0 -> qs[PART(t)] - 1 : qs[FULL(t)] - 1);
       list_unlink(t, cr);
       for (xi : 0 .. NB - 1) {
         if
         :: loc[BLKOF(cr, xi)] == SPILL -> BLK(BLKOF(cr, xi)); loc[BLKOF(cr, xi)] = SLAB
         :: else -> skip
         fi
       }
       xi = 0;
       plisted[cr] = 0;  /* the purge list is dropped first: pooled regions give all back */
       if
       :: warm[cr] -> warm[cr] = 0; warm_count[t]--
       :: else -> skip
       fi
     }
     orphan_abandon(t, cr);
     cr = 0
  :: else -> break
  od
}

/* ---------------------------------------------------------------------------------
 * SPEC section 1 and the data structures, at every quiescent point (no thread inside an
 * operation): every block in exactly one place, live = active_local - pending, pending
 * (the kRemote blocks) = the list's length, one owner at a time, the warm counts. */
inline quiescent_check() {
  for (xi : 0 .. NR - 1) {
    xn = 0;  /* pending blocks */
    for (xj : 0 .. NB - 1) {
      xb = BLKOF(xi, xj);
      assert(loc[xb] != FREEING && loc[xb] != DROPPED);
      assert(st[xb] == (loc[xb] == LIVE -> ST_LIVE : (loc[xb] == RLIST -> ST_REMOTE : ST_FREE)));
      assert(loc[xb] == UNCARVED || committed[xb]);
      if
      :: loc[xb] == RLIST -> xn++
      :: else -> skip
      fi;
      if
      :: loc[xb] == BOX -> assert(owner[xi] != NOBODY && box_region[owner[xi]] == xi)
      :: else -> skip
      fi;
      /* a spill: owned, not the box's region, on the partial list */
      if
      :: loc[xb] == SPILL ->
         assert(owner[xi] != NOBODY && box_region[owner[xi]] != xi && rlist[xi] == L_PARTIAL)
      :: else -> skip
      fi
    }
    if
    :: mem[xi] == UNMAPPED ->
       assert(nlive[xi] == 0 && xn == 0 && rlist[xi] == L_NONE && owner[xi] == NOBODY);
       assert(plisted[xi] == 0);
       for (xj : 0 .. NB - 1) { assert(loc[BLKOF(xi, xj)] == UNCARVED) }
    :: else ->
       /* on a purge list: owned, on one of its owner's lists */
       assert(!plisted[xi] || (owner[xi] != NOBODY &&
                               (rlist[xi] == L_PARTIAL || rlist[xi] == L_FULL)));
       /* SPEC section 1: live = active_local - pending (region_pending: the kRemote blocks) */
       xk = active_local[xi] - NREMOTE(xi);
       assert(xk == nlive[xi]);
       assert(NREMOTE(xi) == xn);
       /* the remote list holds exactly the pending blocks (no loss, no cycle) */
       xh = remote_head[xi];
       xk = 0;
       do
       :: (xh >> 1) != 0 && xk <= NB ->
          assert(REG(HBLK(xh)) == xi && loc[HBLK(xh)] == RLIST);
          xh = link[HBLK(xh)] << 1;
          xk++
       :: else -> break
       od;
       assert(xk == xn);
       /* one owner at a time: the owner's lists hold it, and no other thread's */
       if
       :: owner[xi] != NOBODY ->
          assert(rlist[xi] == L_PARTIAL || rlist[xi] == L_FULL);
          assert((remote_head[xi] & TAG) == 0);
          /* local_head: the box's list exactly in the box's region */
#if !defined(BUG_SWITCH_KEEPS_HEAD)
          assert(lbox[xi] == (box_region[owner[xi]] == xi))
#else
          skip
#endif
       :: else -> assert(rlist[xi] == L_POOL || rlist[xi] == L_ABANDONED); assert(!lbox[xi])
       fi;
       if
       :: rlist[xi] == L_POOL -> assert(nlive[xi] == 0 && remote_head[xi] == TAG && warm[xi])
       :: rlist[xi] == L_ABANDONED ->
          assert(nlive[xi] > 0);            /* SPEC: abandoned = no owner, live > 0 */
#if !defined(NO_TAG_INVARIANT)
          assert(remote_head[xi] == TAG);   /* closed: frees take the locked path */
#endif
          skip
       :: else -> skip
       fi
    fi;
    for (xj : 0 .. NT - 1) {
      xk = (qs[PART(xj)] == xi + 1 || qs[PART(xj) + 1] == xi + 1 ||
            qs[FULL(xj)] == xi + 1 || qs[FULL(xj) + 1] == xi + 1);
      assert(xk == (owner[xi] == xj))
    }
    /* the region queue: an owned region is on its owner's queue, once, exactly while its
     * remote list is not empty; no push or exit of it under way */
    assert(!qpush[xi] && !dequeued[xi]);
    if
    :: mem[xi] == MAPPED && owner[xi] != NOBODY ->
       assert(queued[xi] == ((remote_head[xi] >> 1) != 0));
       /* owned and empty means warm: collections visit the queue alone */
       assert(active_local[xi] > 0 || warm[xi]);
       xh = qhead[owner[xi]];
       xn = 0;
       xk = 0;
       do
       :: xh != 0 && xk <= NR ->
          if
          :: xh == xi + 1 -> xn++
          :: else -> skip
          fi;
          xh = qnext[xh - 1];
          xk++
       :: else -> break
       od;
       assert(xn == queued[xi])
    :: else -> assert(!queued[xi])
    fi
  }
  for (xj : 0 .. NT - 1) {
    /* every region on a queue is queued and owned by the queue's thread; no cycle */
    xh = qhead[xj];
    xk = 0;
    do
    :: xh != 0 && xk <= NR ->
       assert(queued[xh - 1] && owner[xh - 1] == xj);
       xh = qnext[xh - 1];
       xk++
    :: else -> break
    od;
    assert(xh == 0)
  }
  for (xj : 0 .. NT - 1) {
    xk = 0;
    for (xi : 0 .. NR - 1) {
      if
      :: owner[xi] == xj && warm[xi] -> xk++
      :: else -> skip
      fi
    }
    assert(xk == warm_count[xj] && xk <= W)
  }
  xk = 0;
  for (xb : 0 .. NBLK - 1) {
    if
    :: loc[xb] == RLIST -> xk++
    :: else -> skip
    fi
  }
  assert(xk == nrlist && pool_count <= W && lock == NOBODY);
  xi = 0; xj = 0; xk = 0; xn = 0; xb = 0; xh = 0
}

inline op_end() {
  if
  :: done == 0 -> d_step { OP_END }
  :: else -> skip
  fi;
  done = 0
}

proctype thread(byte t) {
  byte nops;
  bit done;
  /* do_free / free_remote */
  byte fb, fr, fo, fh, fqo, fqt;
  bit fok, fq;
  /* malloc */
  byte mr, mb, pick;
  bit ok;
  /* collection */
  byte cl, cr, cnx, ch, cb, cn, ci, cq, cx;
  bit cempty;
  /* checks */
  byte xi, xj, xk, xn, xb, xh;

  do
  :: nops < K ->
     if
     :: do_malloc(t)
     FREE_OPT(0)
     FREE_OPT(1)
     FREE_OPT(2)
     FREE_OPT(3)
#if !defined(NO_COLLECT_OP)
     :: d_step { OP_BEGIN } collect_slot(t, 0); context_purge(t, 1); orphan_purge(t, 1);
        d_step { printf("OP collect %d\n", t); OP_END }
#endif
     :: else -> break  /* the budget is spent */
     fi;
     op_end();
     nops++
  :: else -> break
  od;
  skip;
  d_step { nbusy++; box_flush(t) }
  context_exit(t);
  skip;  /* a loop's exit may not jump into a d_step */
  d_step { printf("OP exit %d\n", t); OP_END }
  done = 0
}

/* ---------------------------------------------------------------------------------
 * Liveness (pan -a -f: weak fairness; each thread runs a finite program, so "eventually"
 * is about the protocol, not about a thread that never reaches a collection point). */
#define AEMPTY(r) (rlist[r] == L_ABANDONED && nlive[r] == 0)  /* abandoned, no live block */
#define GONE(r) (rlist[r] == L_POOL || mem[r] == UNMAPPED)     /* pooled or released */
/* every remote free is eventually collected: whenever a block is on a remote list, a
 * state follows with no block on any (so that block left its list) */
#if !defined(COVER)
ltl remote_collected { [] ((nrlist > 0) -> <> (nrlist == 0)) }
/* an empty abandoned region is eventually pooled or released */
ltl abandoned_released { [] ((AEMPTY(0) -> <> GONE(0)) && (AEMPTY(1) -> <> GONE(1))) }
/* every free() call returns (no retry loop spins forever) */
ltl frees_complete { [] ((nfreeing > 0) -> <> (nfreeing == 0)) }
#endif

#if defined(COVER)
/* Coverage claims, one per run (-DCOVER=n): each says "never", and is false: its trail is
 * a witness of the protocol reaching the situation, up to the next quiescent point (so
 * every operation it started has completed; witness.py turns it into an op trace for
 * hak-replay). */
#if COVER == 1
ltl never_free_releases_abandoned { [] !(cov_free_released && nbusy == 0) }
#elif COVER == 2
ltl never_adopt_while_inflight { [] !(cov_adopt_inflight && nbusy == 0) }
#elif COVER == 3
ltl never_release_after_remote { [] !(cov_released_remote && nbusy == 0) }
#elif COVER == 4
ltl never_pool_reuse { [] !(cov_pool_reuse && nbusy == 0) }
#endif
#endif

init {
  atomic {
    byte i;
    for (i : 0 .. NR - 1) { owner[i] = NOBODY }
    for (i : 0 .. NT - 1) { box_region[i] = NOBODY }
    i = 0;
    run thread(0);
    run thread(1);
    run thread(2)
  }
}
