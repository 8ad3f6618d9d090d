// Remote frees (model/SPEC.md section 3): the free of a block by a context that does not
// own its region, the region queue that tells the owner which regions have such frees,
// and the owner's collection of them. Implemented in remote.cc.
#pragma once

#include <cstdint>

#include "region/lifecycle.h"

namespace hak {

// A free by a context that does not own the region (or of an ownerless region).
void free_remote(Region* r, void* p, uintptr_t off, const char* call) noexcept;
// A collection point of `slot`: the regions on its queue (the only ones with remote frees
// to collect) take their frees back, then the empty rule. Returns the regions visited.
uint64_t collect_slot(Context* ctx, unsigned slot, Pages pages) noexcept;
// The exiting owner of `r` closed its remote list, which was not empty: waits until `r`
// is on ctx's region queue (its pusher may be under way) and takes it off. Orphan lock held.
void region_queue_leave(Context* ctx, Region* r) noexcept;
// The fork child: a lost thread may have stopped between a push on a remote list and the
// region's push on the queue. Each of t's queues is rebuilt from its lists.
void region_queues_rebuild(Context* t) noexcept;

}  // namespace hak
