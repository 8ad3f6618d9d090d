#include "lockstep.h"

#include <fcntl.h>
#include <hakmem/hakmem.h>
#include <hakmem/inspect.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <sstream>

namespace hakmodel {

namespace {

namespace hk = hakmem::inspect;

Kind kind_of(hk::Kind k) {
  switch (k) {
    case hk::Kind::kUltra:
      return Kind::kUltra;
    case hk::Kind::kMid:
      return Kind::kMid;
    case hk::Kind::kLarge:
      return Kind::kLarge;
    default:
      return Kind::kSuperSlab;
  }
}

hk::Route route_for(Kind k) {
  switch (k) {
    case Kind::kSuperSlab:
      return hk::Route::kV3;
    case Kind::kUltra:
      return hk::Route::kUltra;
    case Kind::kMid:
      return hk::Route::kMid;
    case Kind::kLarge:
      return hk::Route::kLarge;
  }
  return hk::Route::kInvalid;
}

RegionView view_of(const hk::RegionInfo& r) {
  RegionView v;
  v.base = r.base;
  v.bytes = r.bytes;
  v.kind = kind_of(r.kind);
  v.cls = r.cls;
  v.owner = r.owner;
  v.active = r.active;
  v.pending = r.pending;
  v.warm = r.warm;
  v.abandoned = r.abandoned;
  v.serial = r.serial;
  v.carved_slabs = r.carved_slabs;
  return v;
}

// Production's regions now. The buffers are kept across ops and runs (the interpreter
// takes a snapshot after every op): nothing is allocated once they have grown. The result
// is valid until the next call.
const Snapshot& snapshot() {
  static std::vector<hk::RegionInfo> info(512);
  static Snapshot s;
  size_t n;
  while ((n = hk::regions(info.data(), info.size())) > info.size()) info.resize(n * 2);
  s.clear();
  s.reserve(info.size());
  for (size_t i = 0; i < n; ++i) s.add(view_of(info[i]));
  return s;
}

// Production's region that holds p, alone (empty if none): what Model::on_malloc reads of
// a snapshot when p is in a region new to the model and no collection is possible. A bulk
// op of n blocks that each map a region took n full snapshots (quadratic: a quarter of a
// malloc_n of 1000 large blocks); the full comparison follows the op as before.
const Snapshot& snapshot_of(uintptr_t p) {
  static Snapshot s;
  s.clear();
  if (hk::RegionInfo info; hk::region_of(reinterpret_cast<void*>(p), &info)) s.add(view_of(info));
  return s;
}

const Snapshot kNoSnapshot;

std::string hex(uintptr_t v) {
  std::ostringstream o;
  o << "0x" << std::hex << v;
  return o.str();
}

size_t pow2_at_least(size_t n) {
  size_t p = 1;
  while (p < n) p *= 2;
  return p;
}

alignas(64) char g_foreign[256];

struct LiveBlock {
  uintptr_t p;
  size_t size;
  size_t usable;
  uint64_t id;
};

// The last kRecent addresses freed, oldest first ([0] is the oldest), in a ring: the
// vector it replaces erased its front at every free past 64 (2.5% of the profile of
// fuzz_ops's lighter inputs).
class RecentFrees {
 public:
  static constexpr size_t kRecent = 64;
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  uintptr_t operator[](size_t i) const { return a_[(head_ + i) % kRecent]; }
  void push_back(uintptr_t p) {
    a_[(head_ + n_) % kRecent] = p;
    if (n_ < kRecent)
      ++n_;
    else
      head_ = (head_ + 1) % kRecent;
  }
  void clear() { head_ = n_ = 0; }

 private:
  uintptr_t a_[kRecent] = {};
  size_t head_ = 0, n_ = 0;
};

// The interpreter's lists, kept across runs (one run at a time per process).
struct Scratch {
  std::vector<LiveBlock> live;
  RecentFrees freed;
};
Scratch& scratch() {
  static Scratch s = [] {
    Scratch n;
    n.live.reserve(16384);  // a fuzzer input's bulk budget is 8192 blocks
    return n;
  }();
  return s;
}

class Runner {
 public:
  explicit Runner(const Trace& tr)
      : tr_(tr), model_(tr.cfg), live_(scratch().live), freed_(scratch().freed) {
    static const bool reserved = [] {
      Model::reserve(16384, 1024);  // a fuzzer input's bulk budget is 8192 blocks
      return true;
    }();
    (void)reserved;
    live_.clear();
    freed_.clear();
  }

  Verdict go(const RunOptions& opt) {
    // Every run starts from an empty heap and ends with one: the regions it unmaps are
    // the next run's (the OS contract holds: fresh, zeroed).
    hk::set_region_recycling(true);
    hk::set_manual_clock(true);  // deterministic: only tick ops advance it
    hk::Settings s;
    s.warm_regions = 0;
    s.c7_ultra = tr_.cfg.ultra;
    s.report_errors = true;
    s.quiet = true;
    hk::set_settings(s);
    hk::trim();
    s.warm_regions = tr_.cfg.warm;
    s.purge_delay_ms = tr_.cfg.purge;
    hk::set_settings(s);
    errors0_ = hk::error_count();
    if (const Snapshot& left = snapshot(); !left.empty()) {
      std::ostringstream what;
      what << "the heap is not empty at the start of the run:";
      for (const RegionView& r : left)
        what << ' ' << hex(r.base) << '(' << kind_name(r.kind) << " class " << r.cls << " active "
             << r.active << (r.abandoned ? " abandoned" : "") << (r.warm ? " warm" : "") << ')';
      fail_at(0, what.str());
    }
    for (size_t i = 0; i < tr_.ops.size() && v_.ok; ++i) {
      index_ = i;
      step(tr_.ops[i]);
      if (v_.ok && opt.check_every_op) compare();
    }
    if (v_.ok && opt.finish) finish();
    cleanup();
    v_.errors = hk::error_count() - errors0_;
    if (!v_.ok) {
      Trace upto = tr_;
      upto.ops.resize(std::min(tr_.ops.size(), v_.op_index + 1));
      v_.trace = to_text(upto);
    }
    return v_;
  }

 private:
  hk::Context* context(int t) {
    if (!ctx_[t]) {
      ctx_[t] = hk::context_create();
      ids_[t] = hk::context_id(ctx_[t]);
    }
    return ctx_[t];
  }

  bool fail(const std::string& m) { return fail_at(index_, m); }
  bool fail_at(size_t i, const std::string& m) {
    if (v_.ok) {
      v_.ok = false;
      v_.op_index = i;
      v_.message = m;
    }
    return false;
  }

  static uint8_t pattern(uint64_t id) { return static_cast<uint8_t>(id * 131 + 7) | 1; }
  static void fill(const LiveBlock& b) {
    auto* c = reinterpret_cast<unsigned char*>(b.p);
    size_t head = std::min<size_t>(b.size, 4096);
    memset(c, pattern(b.id), head);
    if (b.size > head)
      memset(c + b.size - std::min<size_t>(64, b.size - head), pattern(b.id),
             std::min<size_t>(64, b.size - head));
  }
  // Whether c[0, n) all hold `byte`, by memcmp against a page of it (the check runs on
  // every block at every free: byte by byte under ASan it was a fifth of the fuzzers' time;
  // ASan's memcmp checks the range once, then compares as fast as libc does).
  static bool all_bytes(const unsigned char* c, size_t n, unsigned char byte) {
    static unsigned char pages[256][4096];
    static bool filled[256];
    if (!filled[byte]) {
      memset(pages[byte], byte, sizeof pages[byte]);
      filled[byte] = true;
    }
    for (size_t i = 0; i < n; i += 4096)
      if (memcmp(c + i, pages[byte], std::min<size_t>(4096, n - i)) != 0) return false;
    return true;
  }
  static bool intact(const LiveBlock& b, size_t n) {
    auto* c = reinterpret_cast<const unsigned char*>(b.p);
    size_t head = std::min<size_t>(n, 4096);
    if (!all_bytes(c, head, pattern(b.id))) return false;
    if (n == b.size && b.size > head) {
      size_t tail = std::min<size_t>(64, b.size - head);
      if (!all_bytes(c + b.size - tail, tail, pattern(b.id))) return false;
    }
    return true;
  }

  // The first nonzero byte a calloc check finds, or n: every byte of the first 4 KiB, 16
  // bytes at the start of every later page, and the last 64 bytes (where fill() leaves a
  // freed block's pattern). A page that is neither resident nor swapped out reads as zero
  // (the kernel fills it on demand) and is not read: reading it faulted in a zero page, a
  // read fault for every page of an 8 MiB calloc (15% of the page faults over fuzz_ops's
  // corpus). Only such pages are skipped: a page hakmem or the harness wrote is resident
  // or swapped out, and read as before.
  static size_t first_nonzero(const unsigned char* c, size_t n) {
    PageMap pages;
    auto scan = [&](size_t from, size_t to) {
      to = std::min(to, n);
      if (from >= to || pages.untouched(c + from, to - from)) return n;
      if (all_bytes(c + from, to - from, 0)) return n;
      for (size_t i = from;; ++i)
        if (c[i]) return i;
    };
    if (size_t at = scan(0, 4096); at != n) return at;
    for (size_t page = 4096; page < n; page += 4096)
      if (size_t at = scan(page, page + 16); at != n) return at;
    return scan(n > 64 ? n - 64 : 0, n);
  }

  // Whether pages are neither resident nor swapped out (so they read as zero), from
  // /proc/self/pagemap (bits 63 and 62 of a page's entry; readable without privileges).
  // The entries of up to 2048 pages are read at once and kept for the object's later
  // questions (one calloc check: nothing writes in between). "No" when pagemap cannot be
  // read: the bytes are read then.
  class PageMap {
   public:
    bool untouched(const void* p, size_t n) {
      static const int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
      if (fd < 0 || n == 0) return false;
      uintptr_t a = reinterpret_cast<uintptr_t>(p) / 4096;
      uintptr_t b = (reinterpret_cast<uintptr_t>(p) + n - 1) / 4096;
      if (a < first_ || b >= first_ + count_) {
        ssize_t r = pread(fd, entries_, sizeof entries_, static_cast<off_t>(a * sizeof(uint64_t)));
        first_ = a;
        count_ = r > 0 ? static_cast<uintptr_t>(r) / sizeof(uint64_t) : 0;
        if (b >= first_ + count_) return false;
      }
      for (uintptr_t i = a; i <= b; ++i)
        if (entries_[i - first_] & (uint64_t{3} << 62)) return false;
      return true;
    }

   private:
    uint64_t entries_[2048];
    uintptr_t first_ = 0, count_ = 0;
  };

  void compare() {
    // Every region, every op: agrees() walks both sorted lists once and builds no message;
    // compare() says what differs when they do not.
    const Snapshot& snap = snapshot();
    uint64_t errors = hk::error_count() - errors0_;
    if (!model_.agrees(snap, ids_, errors)) {
      std::string e = model_.compare(snap, ids_, errors);
      fail(e.empty() ? "hakmem and the model disagree (no detail)" : e);
      return;
    }
    // Resolution: a few live blocks (start, middle, one past the end), recently freed
    // addresses and a foreign pointer resolve to the same region in both.
    uintptr_t probes[1 + 3 * 4 + 4];
    size_t np = 0;
    probes[np++] = reinterpret_cast<uintptr_t>(g_foreign);
    for (size_t k = 0; k < live_.size() && k < 4; ++k) {
      const LiveBlock& b = live_[(k * 7919 + index_) % live_.size()];
      probes[np++] = b.p;
      probes[np++] = b.p + b.usable / 2;
      probes[np++] = b.p + b.usable;
    }
    for (size_t k = 0; k < freed_.size() && k < 4; ++k)
      probes[np++] = freed_[freed_.size() - 1 - k];
    for (size_t k = 0; k < np; ++k) {
      uintptr_t x = probes[k];
      hk::RegionInfo info;
      bool found = hk::region_of(reinterpret_cast<void*>(x), &info);
      const Model::Region* r = model_.region_of(x);
      if (found != (r != nullptr) || (r && r->base != info.base)) {
        fail("pointer " + hex(x) + " resolves to " +
             (found ? hex(info.base) : std::string("no region")) + ", the model says " +
             (r ? hex(r->base) : std::string("no region")));
        return;
      }
    }
  }

  // Whether a malloc by t needs a snapshot for the model's collection check: a refill may
  // collect any of t's slots (SPEC section 3).
  bool has_pending(int t) const {
    for (const auto& [b, r] : model_.regions())
      if (r.owner == t && r.pending) return true;
    return false;
  }

  // Checks a block hakmem just returned and tells the model.
  bool took(int t, int slot, size_t size, size_t align, void* p, bool zeroed) {
    if (!p) return fail("allocation of " + std::to_string(size) + " bytes returned NULL");
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    size_t want = std::min<size_t>(16, pow2_at_least(size ? size : 1));
    if (align > want) want = align;
    if (a % want)
      return fail("block " + hex(a) + " of " + std::to_string(size) + " bytes is not " +
                  std::to_string(want) + "-aligned");
    size_t usable = hak_malloc_usable_size(p);
    if (usable < size)
      return fail("usable size " + std::to_string(usable) + " < " + std::to_string(size));
    if (slot != kLargeSlot && usable != slot_block_size(slot))
      return fail("usable size " + std::to_string(usable) + ", slot " + std::to_string(slot) +
                  " blocks are " + std::to_string(slot_block_size(slot)));
    if (hk::route_of(p) != route_for(slot_kind(slot)))
      return fail("block " + hex(a) + " routes to " + hk::route_name(hk::route_of(p)) +
                  ", expected " + hk::route_name(route_for(slot_kind(slot))));
    if (zeroed)
      if (size_t at = first_nonzero(static_cast<const unsigned char*>(p), size); at != size)
        return fail("calloc block " + hex(a) + " of " + std::to_string(size) +
                    " bytes not zero at byte " + std::to_string(at));
    const Model::Region* before = model_.region_of(a);
    if (before &&
        (before->state == Model::State::kPooled || before->state == Model::State::kAbandoned))
      ++v_.adoptions;
    if (!before) ++v_.regions_mapped;
    // The snapshot on_malloc reads: all of production's regions when a refill may have
    // collected, the new region alone when p is in one the model does not know.
    const Snapshot& snap = slot != kLargeSlot && has_pending(t) ? snapshot()
                           : before                             ? kNoSnapshot
                                                                : snapshot_of(a);
    size_t regions_before = model_.regions().size() + (before ? 0 : 1);
    std::string e = model_.on_malloc(t, slot, size, a, usable, snap);
    if (!e.empty()) return fail(e);
    if (model_.regions().size() < regions_before) ++v_.regions_released;
    LiveBlock b{a, size, usable, next_id_++};
    fill(b);
    live_.push_back(b);
    if (slot == kUltraSlot) ++v_.ultra_blocks;
    if (slot == kLargeSlot) ++v_.large_blocks;
    return true;
  }

  bool release(int t, size_t i) {
    LiveBlock b = live_[i];
    if (!intact(b, b.size))
      return fail("block " + hex(b.p) + " (id " + std::to_string(b.id) +
                  ") changed behind the program's back");
    const Model::Region* r = model_.region_of(b.p);
    if (!r) return fail("the model has no region for live block " + hex(b.p));
    if (hk::route_of(reinterpret_cast<void*>(b.p)) != route_for(r->kind))
      return fail("free of " + hex(b.p) + " would route to " +
                  hk::route_name(hk::route_of(reinterpret_cast<void*>(b.p))) + ", expected " +
                  hk::route_name(route_for(r->kind)));
    if (r->owner >= 0 && r->owner != t && r->state == Model::State::kOwned) ++v_.remote_frees;
    size_t regions_before = model_.regions().size();
    {
      hk::Use use(context(t));
      hak_free(reinterpret_cast<void*>(b.p));
    }
    live_[i] = live_.back();
    live_.pop_back();
    freed_.push_back(b.p);
    std::string e = model_.on_free(t, b.p, kNoSnapshot);
    if (!e.empty()) return fail(e);
    if (model_.regions().size() < regions_before) ++v_.regions_released;
    return true;
  }

  void step(const Op& op) {
    int t = op.t;
    bool ultra = tr_.cfg.ultra;
    switch (op.code) {
      case OpCode::kMalloc: {
        size_t n = op.a;
        void* p;
        {
          hk::Use use(context(t));
          p = hak_malloc(n);
        }
        took(t, size_to_slot(n, ultra), n, 0, p, false);
        break;
      }
      case OpCode::kMallocN: {
        size_t n = op.a;
        for (uint64_t k = 0; k < op.b && v_.ok; ++k) {
          void* p;
          {
            hk::Use use(context(t));
            p = hak_malloc(n);
          }
          took(t, size_to_slot(n, ultra), n, 0, p, false);
        }
        break;
      }
      case OpCode::kFree:
        if (!live_.empty()) release(t, op.a % live_.size());
        break;
      case OpCode::kFreeN:
        for (uint64_t k = 0; k < op.b && !live_.empty() && v_.ok; ++k)
          release(t, (op.a + k) % live_.size());
        break;
      case OpCode::kRealloc: {
        if (live_.empty()) break;
        size_t i = op.a % live_.size();
        LiveBlock b = live_[i];
        size_t n = op.b;
        if (!intact(b, b.size)) {
          fail("block " + hex(b.p) + " changed behind the program's back");
          break;
        }
        if (n == 0) {
          release(t, i);  // realloc(p, 0) frees, as glibc does
          break;
        }
        void* q;
        {
          hk::Use use(context(t));
          q = hak_realloc(reinterpret_cast<void*>(b.p), n);
        }
        if (!q) {
          fail("realloc to " + std::to_string(n) + " returned NULL");
          break;
        }
        if (reinterpret_cast<uintptr_t>(q) == b.p) {
          size_t usable = hak_malloc_usable_size(q);
          std::string e = model_.on_resize(b.p, n, usable);
          if (!e.empty()) {
            fail(e);
            break;
          }
          if (!intact(b, std::min(n, b.size))) fail("realloc in place changed the contents");
          live_[i].size = n;
          // A large block shrunk in place gave back its run's tail: a "tail" bad free of
          // the old usable size could name a block mapped there since.
          live_[i].usable = usable;
          fill(live_[i]);
          break;
        }
        // Moved: the new block was allocated, the contents copied, then the old freed.
        LiveBlock moved{reinterpret_cast<uintptr_t>(q), b.size, 0, b.id};
        if (!intact(moved, std::min(n, b.size))) {
          fail("realloc lost the contents");
          break;
        }
        live_[i] = live_.back();
        live_.pop_back();
        if (!took(t, size_to_slot(n, ultra), n, 0, q, false)) break;
        std::string e = model_.on_free(t, b.p, kNoSnapshot);
        if (!e.empty()) fail(e);
        break;
      }
      case OpCode::kMemalign: {
        size_t align = size_t{1} << (op.a % 22);
        size_t n = op.b;
        void* p;
        {
          hk::Use use(context(t));
          p = hak_memalign(align, n);
        }
        took(t, memalign_slot(align, n, ultra), n, align, p, false);
        break;
      }
      case OpCode::kCalloc: {
        size_t total;
        bool overflow = __builtin_mul_overflow(op.a, op.b, &total);
        void* p;
        {
          hk::Use use(context(t));
          p = hak_calloc(op.a, op.b);
        }
        if (overflow) {
          if (p) fail("calloc overflow returned a block");
          break;
        }
        if (total > 4096) ++v_.big_callocs;
        took(t, size_to_slot(total, ultra), total, 0, p, true);
        break;
      }
      case OpCode::kCollect: {
        if (!ctx_[t]) break;
        hk::context_collect(ctx_[t]);
        std::string e = model_.on_collect(t, snapshot());
        if (!e.empty()) fail(e);
        break;
      }
      case OpCode::kExit: {
        if (!ctx_[t]) break;
        hk::context_exit(ctx_[t]);
        ctx_[t] = nullptr;
        std::string e = model_.on_exit(t, snapshot());
        ids_.erase(t);
        if (!e.empty()) fail(e);
        break;
      }
      case OpCode::kBadFree:
        bad_free(t, static_cast<BadKind>(op.a % kBadKinds), op.b);
        break;
      case OpCode::kTick:  // time passes: the model's state does not change
        hk::advance_clock(op.a);
        break;
    }
  }

  void bad_free(int t, BadKind kind, uint64_t i) {
    uintptr_t p = 0;
    switch (kind) {
      case BadKind::kForeign:
        p = reinterpret_cast<uintptr_t>(g_foreign + 16);
        break;
      case BadKind::kInterior:
      case BadKind::kMisaligned: {
        if (live_.empty()) return;
        const LiveBlock& b = live_[i % live_.size()];
        const Model::Region* r = model_.region_of(b.p);
        if (!r) return;
        if (kind == BadKind::kMisaligned) {
          p = b.p + 1;
          break;
        }
        size_t off = interior_offset(b.usable, i / live_.size());
        if (!off) return;
        p = b.p + off;
        break;
      }
      case BadKind::kTail: {
        // A pointer k regions into a live large block: the region map says "large tail".
        std::vector<const LiveBlock*> big;
        for (const LiveBlock& b : live_)
          if (b.usable > kRegionSize) big.push_back(&b);
        if (big.empty()) return;
        const LiveBlock& b = *big[i % big.size()];
        uint64_t sel = i / big.size();
        size_t regions = (b.usable - 1) / kRegionSize;  // whole regions after the first
        p = b.p + (1 + sel % regions) * kRegionSize;
        ++v_.tail_bad_frees;
        if ((sel / regions) % 2) {
          void* q;
          {
            hk::Use use(context(t));
            q = hak_realloc(reinterpret_cast<void*>(p), 16);
          }
          if (q) {
            fail("realloc of " + hex(p) + ", inside large block " + hex(b.p) + ", returned " +
                 hex(reinterpret_cast<uintptr_t>(q)));
            return;
          }
          model_.on_error();
          return;
        }
        break;
      }
      case BadKind::kDouble: {
        if (freed_.empty()) return;
        p = freed_[i % freed_.size()];
        if (model_.block(p)) return;  // reused: a valid free now
        // Inside another live block: still an error (interior), fine.
        break;
      }
    }
    {
      hk::Use use(context(t));
      hak_free(reinterpret_cast<void*>(p));
    }
    model_.on_error();
  }

  // An interior offset of a block of `usable` bytes (8-aligned, so the pointer is not
  // merely misaligned), 0 if the block has none. Besides 8: multiples of 16, the lowest set
  // bit of the size (where a block-start check that tests only low bits of a
  // non-power-of-two class would accept it) and half the block.
  static size_t interior_offset(size_t usable, uint64_t sel) {
    if (usable < 16) return 0;
    size_t low = usable & (~usable + 1);
    switch (sel % 4) {
      case 0:
        return 8;
      case 1:
        return usable >= 32 ? 16 * (1 + (sel / 4) % (usable / 16 - 1)) : 8;
      case 2:
        return low < usable ? low : usable / 2 / 8 * 8;
      default:
        return usable / 2 / 8 * 8;
    }
  }

  void finish() {
    index_ = tr_.ops.size();
    while (!live_.empty() && v_.ok) release(0, live_.size() - 1);
    for (int t = 0; t < kMaxThreads && v_.ok; ++t) {
      if (!ctx_[t]) continue;
      hk::context_exit(ctx_[t]);
      ctx_[t] = nullptr;
      std::string e = model_.on_exit(t, snapshot());
      ids_.erase(t);
      if (!e.empty()) fail(e);
    }
    if (!v_.ok) return;
    compare();
    if (!v_.ok) return;
    std::map<int, unsigned> per_slot;
    for (const auto& [b, r] : model_.regions()) {
      if (r.state != Model::State::kPooled) {
        fail("after every free and exit, region " + hex(b) + " is still in use");
        return;
      }
      if (++per_slot[r.slot] > tr_.cfg.warm) {
        fail("more than W regions left for slot " + std::to_string(r.slot));
        return;
      }
    }
  }

  void cleanup() {
    // Leave the process clean for the next run, whatever happened: every block either
    // side still holds.
    std::set<uintptr_t> left;
    for (const LiveBlock& b : live_) left.insert(b.p);
    for (const auto& [p, b] : model_.blocks()) left.insert(p);
    live_.clear();
    for (uintptr_t p : left) {
      hk::Use use(context(0));
      hak_free(reinterpret_cast<void*>(p));
    }
    for (int t = 0; t < kMaxThreads; ++t)
      if (ctx_[t]) {
        hk::context_exit(ctx_[t]);
        ctx_[t] = nullptr;
      }
    hk::Settings s = hk::settings();
    s.warm_regions = 0;
    s.purge_delay_ms = 0;
    hk::set_settings(s);
    hk::trim();
    hk::set_manual_clock(false);
  }

  const Trace& tr_;
  Model model_;
  Verdict v_;
  size_t index_ = 0;
  hk::Context* ctx_[kMaxThreads] = {};
  std::map<int, uint64_t> ids_;
  std::vector<LiveBlock>& live_;
  RecentFrees& freed_;
  uint64_t next_id_ = 1;
  uint64_t errors0_ = 0;
};

}  // namespace

Verdict run(const Trace& tr, const RunOptions& opt) {
  return Runner(tr).go(opt);
}

namespace {

void put(std::string& out, const std::string& s) {
  out += std::to_string(s.size());
  out += ':';
  out += s;
}

bool take(const std::string& in, size_t& pos, std::string* s) {
  size_t colon = in.find(':', pos);
  if (colon == std::string::npos) return false;
  size_t n = std::stoul(in.substr(pos, colon - pos));
  if (colon + 1 + n > in.size()) return false;
  *s = in.substr(colon + 1, n);
  pos = colon + 1 + n;
  return true;
}

}  // namespace

namespace {

std::string encode(const Verdict& v) {
  std::string out;
  put(out, std::to_string(v.ok));
  put(out, std::to_string(v.op_index));
  Verdict c = v;
  for (uint64_t* x : c.counters()) put(out, std::to_string(*x));
  put(out, v.message);
  put(out, v.trace);
  return out;
}

bool decode(const std::string& in, Verdict* v) {
  std::string f[2 + std::tuple_size_v<decltype(v->counters())> + 2];
  size_t pos = 0;
  for (std::string& s : f)
    if (!take(in, pos, &s)) return false;
  v->ok = f[0] == "1";
  v->op_index = std::stoul(f[1]);
  size_t i = 2;
  for (uint64_t* x : v->counters()) *x = std::stoull(f[i++]);
  v->message = f[i++];
  v->trace = f[i];
  return true;
}

// On a pipe, or on a socket without SIGPIPE (the worker's, which may have died).
bool write_all(int fd, const std::string& s, bool socket = false) {
  for (size_t off = 0; off < s.size();) {
    ssize_t w = socket ? send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL)
                       : write(fd, s.data() + off, s.size() - off);
    if (w <= 0) return false;
    off += static_cast<size_t>(w);
  }
  return true;
}

bool read_all(int fd, char* p, size_t n) {
  for (size_t off = 0; off < n;) {
    ssize_t r = read(fd, p + off, n - off);
    if (r <= 0) return false;
    off += static_cast<size_t>(r);
  }
  return true;
}

// One message: its length (8 bytes), then the bytes.
bool send_msg(int fd, const std::string& s) {
  uint64_t n = s.size();
  return write_all(fd, std::string(reinterpret_cast<const char*>(&n), sizeof n) + s, true);
}
bool recv_msg(int fd, std::string* s) {
  uint64_t n;
  if (!read_all(fd, reinterpret_cast<char*>(&n), sizeof n)) return false;
  s->resize(n);
  return n == 0 || read_all(fd, s->data(), n);
}

Verdict killed(const Trace& tr, int status) {
  Verdict v;
  v.ok = false;
  v.op_index = tr.ops.size();
  v.message = WIFSIGNALED(status)
                  ? "the run was killed by signal " + std::to_string(WTERMSIG(status))
                  : "the run ended without a verdict (status " + std::to_string(status) + ")";
  v.trace = to_text(tr);
  return v;
}

// The run in a child of its own, forked for it (the verdict of a failing run).
Verdict run_forked(const Trace& tr, const RunOptions& opt) {
  int fds[2];
  if (pipe(fds) != 0) return run(tr, opt);
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return run(tr, opt);
  }
  if (pid == 0) {
    close(fds[0]);
    write_all(fds[1], encode(run(tr, opt)));
    _exit(0);
  }
  close(fds[1]);
  std::string in;
  char buf[65536];
  for (ssize_t r; (r = read(fds[0], buf, sizeof buf)) > 0;) in.append(buf, static_cast<size_t>(r));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  Verdict v;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !decode(in, &v)) return killed(tr, status);
  return v;
}

// A child that runs trace after trace (sent as text): no fork, and no fresh heap to fault
// in, per run. Every run starts and ends with an empty heap, so runs do not see each other;
// still, a run that fails in a worker that ran others before is run again in a fresh child
// (run_forked) and that verdict counts: a failure never depends on the runs before it. A
// worker is replaced after any failure.
class Worker {
 public:
  // False when the worker died (or could not start) without a verdict: *status says how.
  // *fresh: this was the worker's first run.
  bool run(const Trace& tr, const RunOptions& opt, Verdict* v, int* status, bool* fresh) {
    *status = 0;
    if (pid_ <= 0 && !start()) return false;
    *fresh = runs_++ == 0;
    std::string req = std::string(opt.finish ? "1" : "0") + (opt.check_every_op ? "1" : "0");
    req += to_text(tr);
    std::string reply;
    if (send_msg(fd_, req) && recv_msg(fd_, &reply) && decode(reply, v)) return true;
    stop(status);
    return false;
  }
  void stop(int* status = nullptr) {
    if (pid_ <= 0) return;
    close(fd_);
    int st = 0;
    waitpid(pid_, &st, 0);  // the worker exits at the end of its input, or has died
    if (status) *status = st;
    pid_ = -1;
  }

 private:
  bool start() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return false;
    pid_t pid = fork();
    if (pid < 0) {
      close(sv[0]);
      close(sv[1]);
      return false;
    }
    if (pid == 0) {
      close(sv[0]);
      for (std::string msg; recv_msg(sv[1], &msg);) {
        Trace tr;
        std::string err;
        RunOptions o;
        o.finish = msg.size() > 0 && msg[0] == '1';
        o.check_every_op = msg.size() > 1 && msg[1] == '1';
        Verdict v;
        if (msg.size() < 2 || !parse(msg.substr(2), &tr, &err)) {
          v.ok = false;
          v.message = "the worker could not read the trace: " + err;
        } else {
          v = hakmodel::run(tr, o);
        }
        if (!send_msg(sv[1], encode(v))) break;
      }
      _exit(0);
    }
    close(sv[1]);
    pid_ = pid;
    fd_ = sv[0];
    runs_ = 0;
    return true;
  }

  pid_t pid_ = -1;
  int fd_ = -1;
  uint64_t runs_ = 0;
};

Worker& worker() {
  static Worker w;
  return w;
}

}  // namespace

Verdict run_isolated(const Trace& tr, const RunOptions& opt) {
  Verdict v;
  int status = 0;
  bool fresh = false;
  bool answered = worker().run(tr, opt, &v, &status, &fresh);
  if (answered && v.ok) return v;
  worker().stop(answered ? nullptr : &status);
  if (!fresh) return run_forked(tr, opt);
  // The worker's first run: as good as a fork of its own (rapidcheck's shrinking runs
  // failing cases one after the other).
  return answered ? v : killed(tr, status);
}

std::string describe(const Verdict& v) {
  if (v.ok) return "ok";
  std::ostringstream o;
  o << "disagreement at op " << v.op_index << ":\n" << v.message << "\ntrace so far:\n" << v.trace;
  return o.str();
}

}  // namespace hakmodel
