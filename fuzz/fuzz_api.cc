// fuzz_api: the edges of the malloc-family API (fuzz/api_input.h) against glibc 2.36.
//
// The oracle is glibc 2.36's documented and implemented behaviour, written out below
// (malloc/malloc.c: __libc_malloc, __libc_calloc, __libc_realloc, _mid_memalign,
// __posix_memalign, __libc_valloc, __libc_pvalloc; malloc/reallocarray.c):
//   - a request above PTRDIFF_MAX fails with ENOMEM (checked_request2size); so does one
//     that cannot fit in the 47-bit address space, and one the kernel cannot commit
//     (more than RAM + swap under the heuristic overcommit policy, more than CommitLimit
//     under the strict one: glibc maps without MAP_NORESERVE, hakmem too); one of at most
//     64 MiB succeeds; one in between may do either, but a failure is ENOMEM. A realloc
//     of a live block is only sure to fail beyond the limit plus the block (glibc's
//     mremap commits the growth alone);
//   - calloc: n * size overflowing (glibc: into ptrdiff_t) -> NULL, ENOMEM; the block is
//     zero;
//   - realloc(NULL, n) = malloc(n); realloc(p, 0) frees p and returns NULL; a failed
//     realloc leaves p alone; the contents are kept up to the smaller size;
//   - reallocarray: n * size overflowing size_t -> NULL, ENOMEM (p kept); else realloc;
//   - memalign / aligned_alloc (2.36: the same function): alignment <= 16 is malloc;
//     above SIZE_MAX / 2 + 1 -> NULL, EINVAL; below 32 it becomes 32; not a power of
//     two: rounded up to one; then the block needs size + alignment bytes;
//   - posix_memalign: alignment 0, not a multiple of sizeof(void*) or not a power-of-two
//     multiple -> EINVAL; else memalign, 0 or ENOMEM; *out untouched on failure;
//   - valloc(n) = memalign(page, n); pvalloc: n + page - 1 overflowing -> ENOMEM, else
//     memalign(page, n rounded up); malloc_usable_size(NULL) = 0, of a block >= its size.
// Blocks are aligned to the requested alignment, and malloc's to min(16, size rounded up
// to a power of two) (the C rule: enough for any object that fits; glibc gives 16).
//
// Each input runs on hakmem (hak_*). When the system's C library is glibc 2.36 the same
// calls also run on glibc itself (its functions found with dlsym(RTLD_NEXT): the
// program's malloc is ASan's) and must meet the same oracle, which checks the oracle.
// At start a table of known glibc 2.36 answers checks the oracle once more.
// HAKMEM_FUZZ_API_GLIBC=0 turns the glibc side off; HAKMEM_FUZZ_PRINT=1 prints each
// decoded program; HAKMEM_FUZZ_API_GRAY_MAX=N skips (on both sides) the calls that may
// succeed or fail and need more than N bytes (fuzz/README.md: ASan builds).

#include <dlfcn.h>
#include <errno.h>
#include <gnu/libc-version.h>
#include <hakmem/hakmem.h>
#include <sys/sysinfo.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "api_input.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/allocator_interface.h>
#define HAKFUZZ_ASAN 1
#endif
#endif

namespace {

using hakfuzz::ApiCall;
using hakfuzz::ApiOp;

constexpr uint64_t kMax = ~uint64_t{0};
constexpr uint64_t kPtrdiffMax = kMax >> 1;
constexpr uint64_t kPage = 4096;
constexpr uint64_t kSure = uint64_t{64} << 20;  // a request this big or smaller must succeed
constexpr uint64_t kNever = uint64_t{1} << 47;  // the x86-64 user address space
// Bytes no single request can commit (vm.overcommit_memory 0: RAM + swap; 2:
// CommitLimit; 1: no limit). Set at start.
uint64_t g_commit_limit = kNever;

// ---------------------------------------------------------------- the oracle

enum class Outcome {
  kOk,       // a block
  kFail,     // NULL (posix_memalign: ENOMEM), errno = err
  kEither,   // a block, or NULL with errno = err
  kFreed,    // realloc(p, 0): p freed, NULL returned
  kInvalid,  // posix_memalign: EINVAL returned
};
const char* outcome_name(Outcome o) {
  static const char* n[] = {"a block", "failure", "a block or ENOMEM", "free and NULL", "EINVAL"};
  return n[static_cast<int>(o)];
}

struct Expect {
  Outcome out = Outcome::kOk;
  int err = 0;
  bool uncommittable = false;  // kFail only because the kernel cannot commit `foot`
  uint64_t align = 1;
  uint64_t usable = 0;  // at least
  uint64_t foot = 0;    // bytes the request needs, alignment included
  bool zero = false;
};

Expect fail(int err) {
  Expect e;
  e.out = Outcome::kFail;
  e.err = err;
  return e;
}

uint64_t product_or_max(uint64_t a, uint64_t b) {  // no wrap-around (UBSan's unsigned check)
  uint64_t p;
  return __builtin_mul_overflow(a, b, &p) ? kMax : p;
}

uint64_t pow2_at_least(uint64_t n) {  // n <= 2^63
  uint64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

// `n` bytes wanted, `slack` more needed to place it, blocks aligned to `align`.
Expect sized(uint64_t n, uint64_t slack, uint64_t align) {
  if (n > kPtrdiffMax) return fail(ENOMEM);
  uint64_t foot;
  if (__builtin_add_overflow(n, slack, &foot) || foot >= kNever) return fail(ENOMEM);
  Expect e;
  e.out = foot <= kSure ? Outcome::kOk : Outcome::kEither;
  // Just past the limit either answer: the kernel's own count of RAM moves (a balloon, pages
  // it reserves), and glibc got 25.3 GB, 0.18% past this machine's RAM, in one fuzzing run.
  if (foot > g_commit_limit + g_commit_limit / 32) {
    e.out = Outcome::kFail;
    e.uncommittable = true;
  }
  e.err = ENOMEM;
  e.align = align;
  e.usable = n;
  e.foot = foot;
  return e;
}

Expect expect_malloc(uint64_t n) {
  return sized(n, 0, pow2_at_least(std::clamp<uint64_t>(n, 1, 16)));
}

Expect expect_memalign(uint64_t a, uint64_t n) {
  if (a <= 16) {
    Expect e = expect_malloc(n);
    e.align = pow2_at_least(std::clamp<uint64_t>(std::max(n, a), 1, 16));
    return e;
  }
  if (a > kMax / 2 + 1) return fail(EINVAL);
  uint64_t ea = a < 32 ? 32 : pow2_at_least(a);
  return sized(n, ea, ea);
}

// `live`: the slot holds a block (realloc and reallocarray act on it).
Expect expect(const ApiCall& c, bool live) {
  uint64_t product;
  switch (c.op) {
    case ApiOp::kMalloc:
      return expect_malloc(c.a);
    case ApiOp::kCalloc: {
      if (__builtin_mul_overflow(c.a, c.b, &product)) return fail(ENOMEM);
      Expect e = expect_malloc(product);
      e.zero = true;
      return e;
    }
    case ApiOp::kRealloc:
    case ApiOp::kReallocArray: {
      uint64_t n = c.a;
      if (c.op == ApiOp::kReallocArray) {
        if (__builtin_mul_overflow(c.a, c.b, &product)) return fail(ENOMEM);
        n = product;
      }
      if (live && n == 0) {
        Expect e;
        e.out = Outcome::kFreed;
        return e;
      }
      return expect_malloc(n);
    }
    case ApiOp::kMemalign:
    case ApiOp::kAlignedAlloc:
      return expect_memalign(c.a, c.b);
    case ApiOp::kPosixMemalign:
      if (c.a == 0 || c.a % sizeof(void*) != 0 ||
          ((c.a / sizeof(void*)) & (c.a / sizeof(void*) - 1))) {
        Expect e;
        e.out = Outcome::kInvalid;
        e.err = EINVAL;
        return e;
      }
      return expect_memalign(c.a, c.b);
    case ApiOp::kValloc:
      return expect_memalign(kPage, c.a);
    case ApiOp::kPvalloc: {
      uint64_t rounded;
      if (__builtin_add_overflow(c.a, kPage - 1, &rounded)) return fail(ENOMEM);
      return expect_memalign(kPage, c.a);
    }
    case ApiOp::kFree:
    case ApiOp::kUsable:
      break;
  }
  return Expect{};
}

// ---------------------------------------------------------------- the two allocators

struct Api {
  const char* name = nullptr;
  void* (*malloc)(size_t);
  void (*free)(void*);
  void* (*calloc)(size_t, size_t);
  void* (*realloc)(void*, size_t);
  void* (*reallocarray)(void*, size_t, size_t);
  void* (*memalign)(size_t, size_t);
  void* (*aligned_alloc)(size_t, size_t);
  int (*posix_memalign)(void**, size_t, size_t);
  void* (*valloc)(size_t);
  void* (*pvalloc)(size_t);
  size_t (*usable)(void*);
};

const Api kHakmem{"hakmem",           hak_malloc,       hak_free,     hak_calloc,
                  hak_realloc,        hak_reallocarray, hak_memalign, hak_aligned_alloc,
                  hak_posix_memalign, hak_valloc,       hak_pvalloc,  hak_malloc_usable_size};

template <typename F>
bool next_symbol(const char* name, F* out) {
  *out = reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
  return *out != nullptr;
}

// glibc's own functions (the next definition after this program's, which are ASan's).
void* (*g_glibc_realloc)(void*, size_t);
// glibc's reallocarray calls realloc through the PLT, which lands in ASan's: this is its
// source (malloc/reallocarray.c) calling glibc's realloc instead.
void* glibc_reallocarray(void* p, size_t n, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(n, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  return g_glibc_realloc(p, bytes);
}

Api find_glibc() {
  Api a;
  bool ok = next_symbol("malloc", &a.malloc) && next_symbol("free", &a.free) &&
            next_symbol("calloc", &a.calloc) && next_symbol("realloc", &a.realloc) &&
            next_symbol("memalign", &a.memalign) &&
            next_symbol("aligned_alloc", &a.aligned_alloc) &&
            next_symbol("posix_memalign", &a.posix_memalign) && next_symbol("valloc", &a.valloc) &&
            next_symbol("pvalloc", &a.pvalloc) && next_symbol("malloc_usable_size", &a.usable);
  g_glibc_realloc = a.realloc;
  a.reallocarray = glibc_reallocarray;
  if (ok) a.name = "glibc";
  return a;
}

// ---------------------------------------------------------------- running a program

uint64_t g_gray_max = kMax;  // HAKMEM_FUZZ_API_GRAY_MAX

uint8_t pattern(uint64_t id) {
  return static_cast<uint8_t>(id * 131 + 7) | 1;
}

struct Block {
  unsigned char* p = nullptr;
  uint64_t n = 0, usable = 0, id = 0;
};

// Whether c[from, to) all hold `byte`, by memcmp against a page of it: a loop over the
// bytes, built with the fuzzer's comparison tracing like the rest of this file, took most
// of the target's time (and steered nothing: these branches are the harness's).
bool all_bytes(const unsigned char* c, uint64_t from, uint64_t to, unsigned char byte) {
  static unsigned char pages[256][4096];
  static bool filled[256];
  if (!filled[byte]) {
    memset(pages[byte], byte, sizeof pages[byte]);
    filled[byte] = true;
  }
  for (uint64_t i = from; i < to; i += 4096)
    if (memcmp(c + i, pages[byte], std::min<uint64_t>(4096, to - i)) != 0) return false;
  return true;
}

// The first byte of c[from, to) that is not `byte`, or `to`.
uint64_t first_other(const unsigned char* c, uint64_t from, uint64_t to, unsigned char byte) {
  if (all_bytes(c, from, to, byte)) return to;
  for (uint64_t i = from;; ++i)
    if (c[i] != byte) return i;
}

// The bytes a block's pattern covers: the first 4 KiB and the last 64 of its size, as
// the ranges [0, head) and [tail, n).
struct PatternRanges {
  uint64_t head, tail;
};
PatternRanges pattern_ranges(uint64_t n) {
  uint64_t head = std::min<uint64_t>(n, 4096);
  return {head, n - std::min<uint64_t>(64, n - head)};
}

class Runner {
 public:
  Runner(const Api& api, const std::vector<ApiCall>& calls) : api_(api), calls_(calls) {}

  void run() {
    for (index_ = 0; index_ < calls_.size(); ++index_) step(calls_[index_]);
    for (unsigned s = 0; s < hakfuzz::kSlots; ++s) release(s);
  }

 private:
  [[noreturn]] void die(const std::string& what) {
    size_t end = std::min(index_ + 1, calls_.size());
    std::vector<ApiCall> upto(calls_.begin(), calls_.begin() + static_cast<long>(end));
    fprintf(stderr, "\nfuzz_api: %s: %s: %s\n", api_.name,
            end ? hakfuzz::to_text(calls_[end - 1]).c_str() : "(end)", what.c_str());
    if (strcmp(api_.name, kHakmem.name) != 0)
      fprintf(stderr,
              "fuzz_api: the oracle disagrees with the system's glibc: the oracle is wrong (or "
              "this glibc is not 2.36)\n");
    fprintf(stderr, "calls so far (hak-fuzz-codec encode-api turns them back into bytes):\n%s",
            hakfuzz::to_text(upto).c_str());
    fflush(stderr);
    abort();
  }

  static std::string num(uint64_t v) { return std::to_string(v); }

  // The pattern bytes of b below `limit` hold b's pattern at p.
  bool intact(const Block& b, const unsigned char* p, uint64_t limit) const {
    uint8_t want = pattern(b.id);
    PatternRanges r = pattern_ranges(b.n);
    uint64_t end = std::min(b.n, limit);
    return all_bytes(p, 0, std::min(r.head, end), want) &&
           (r.tail >= end || all_bytes(p, r.tail, end, want));
  }

  void fill(const Block& b) {
    uint8_t v = pattern(b.id);
    uint64_t head = std::min<uint64_t>(b.n, 4096);
    memset(b.p, v, head);
    uint64_t tail = std::min<uint64_t>(64, b.n - head);
    memset(b.p + b.n - tail, v, tail);
    if (b.usable > b.n) b.p[b.usable - 1] = v;  // the whole usable size is the program's
  }

  void forget(unsigned s) {
    live_.erase(reinterpret_cast<uintptr_t>(slot_[s].p));
    slot_[s] = Block{};
  }

  void release(unsigned s) {
    Block& b = slot_[s];
    if (!b.p) return;
    if (!intact(b, b.p, b.n)) die("block " + num(b.id) + " changed while it was live");
    api_.free(b.p);
    forget(s);
  }

  // A block the call returned: check it against `e` and keep it in slot s. `old`: the
  // block a realloc moved (its contents must have come along).
  void accept(unsigned s, void* ptr, const Expect& e, uint64_t n, const Block* old) {
    auto* p = static_cast<unsigned char*>(ptr);
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    if (e.out != Outcome::kOk && e.out != Outcome::kEither)
      die(std::string("returned a block, expected ") + outcome_name(e.out) +
          (e.err ? " with errno " + num(e.err) : ""));
    if (a % e.align) die("block " + num(a) + " is not " + num(e.align) + "-aligned");
    uint64_t usable = api_.usable(p);
    if (usable < e.usable) die("usable size " + num(usable) + " < " + num(e.usable));
    auto next = live_.lower_bound(a);
    if (next != live_.end() && next->first < a + usable) die("the block overlaps a live one");
    if (next != live_.begin() && std::prev(next)->second > a) die("the block overlaps a live one");
    if (e.zero) {
      uint64_t head = std::min<uint64_t>(n, 65536), tail = std::min<uint64_t>(n - head, 4096);
      if (uint64_t i = first_other(p, 0, head, 0); i != head)
        die("calloc block not zero at byte " + num(i));
      if (uint64_t i = first_other(p, n - tail, n, 0); i != n)
        die("calloc block not zero at byte " + num(i));
    }
    if (old && !intact(*old, p, std::min(old->n, n))) die("realloc lost the contents");
    Block b{p, n, usable, next_id_++};
    slot_[s] = b;
    live_[a] = a + usable;
    fill(b);
  }

  // NULL from a call that was expected to give `e`.
  void refused(const Expect& e, int err) {
    if (e.out == Outcome::kOk)
      die("returned NULL (errno " + num(static_cast<uint64_t>(err)) + "), expected a block");
    if ((e.out == Outcome::kFail || e.out == Outcome::kEither) && err != e.err)
      die("returned NULL with errno " + num(static_cast<uint64_t>(err)) + ", expected errno " +
          num(static_cast<uint64_t>(e.err)));
    if (e.out == Outcome::kInvalid) die("returned NULL, expected EINVAL");
  }

  void allocated(unsigned s, void* p, int err, const Expect& e, uint64_t n) {
    if (p)
      accept(s, p, e, n, nullptr);
    else
      refused(e, err);
  }

  void step(const ApiCall& c) {
    unsigned s = c.slot % hakfuzz::kSlots;
    Expect e = expect(c, slot_[s].p != nullptr);
    if (e.out == Outcome::kEither && e.foot > g_gray_max) return;
    switch (c.op) {
      case ApiOp::kMalloc:
      case ApiOp::kCalloc:
      case ApiOp::kMemalign:
      case ApiOp::kAlignedAlloc:
      case ApiOp::kValloc:
      case ApiOp::kPvalloc: {
        release(s);
        e = expect(c, false);
        errno = 0;
        void* p = nullptr;
        uint64_t n = c.a;
        switch (c.op) {
          case ApiOp::kMalloc:
            p = api_.malloc(c.a);
            break;
          case ApiOp::kCalloc:
            p = api_.calloc(c.a, c.b);
            n = product_or_max(c.a, c.b);
            break;
          case ApiOp::kMemalign:
            p = api_.memalign(c.a, c.b);
            n = c.b;
            break;
          case ApiOp::kAlignedAlloc:
            p = api_.aligned_alloc(c.a, c.b);
            n = c.b;
            break;
          case ApiOp::kValloc:
            p = api_.valloc(c.a);
            break;
          default:
            p = api_.pvalloc(c.a);
            break;
        }
        allocated(s, p, errno, e, n);
        break;
      }
      case ApiOp::kPosixMemalign: {
        release(s);
        e = expect(c, false);
        void* const kUntouched = reinterpret_cast<void*>(uintptr_t{0x5a5a5a5a5a5a5a5a});
        void* out = kUntouched;
        int rc = api_.posix_memalign(&out, c.a, c.b);
        if (rc == 0) {
          if (e.out == Outcome::kInvalid || e.out == Outcome::kFail)
            die(std::string("returned 0, expected ") + outcome_name(e.out));
          accept(s, out, e, c.b, nullptr);
          break;
        }
        if (out != kUntouched) die("a failed posix_memalign changed *out");
        int want = e.out == Outcome::kInvalid ? EINVAL : e.out == Outcome::kOk ? 0 : ENOMEM;
        if (rc != want)
          die("returned " + num(static_cast<uint64_t>(rc)) + ", expected " +
              num(static_cast<uint64_t>(want)));
        break;
      }
      case ApiOp::kRealloc:
      case ApiOp::kReallocArray: {
        Block old = slot_[s];
        if (old.p && !intact(old, old.p, old.n)) die("block changed while it was live");
        // Growing in place commits the growth alone (glibc's mremap).
        if (old.p && e.uncommittable && e.foot <= g_commit_limit + old.usable)
          e.out = Outcome::kEither;
        // Every realloc is made: neither side copies a big block (both move its pages with
        // mremap; hakmem copies blocks below 4 MiB), so no copy commits memory that the
        // fuzzer's RSS limit does not have.
        errno = 0;
        void* q =
            c.op == ApiOp::kRealloc ? api_.realloc(old.p, c.a) : api_.reallocarray(old.p, c.a, c.b);
        int err = errno;
        uint64_t n = c.op == ApiOp::kRealloc ? c.a : product_or_max(c.a, c.b);
        if (e.out == Outcome::kFreed) {
          if (q) die("realloc to 0 bytes returned a block");
          forget(s);
          break;
        }
        if (!q) {
          refused(e, err);
          if (old.p && !intact(old, old.p, old.n)) die("a failed realloc changed the block");
          break;
        }
        if (old.p) forget(s);
        accept(s, q, e, n, old.p ? &old : nullptr);
        break;
      }
      case ApiOp::kFree:
        release(s);
        break;
      case ApiOp::kUsable: {
        const Block& b = slot_[s];
        size_t u = api_.usable(b.p);
        if (!b.p && u != 0) die("malloc_usable_size(NULL) = " + num(u));
        if (b.p && u != b.usable)
          die("malloc_usable_size changed from " + num(b.usable) + " to " + num(u));
        break;
      }
    }
  }

  const Api& api_;
  const std::vector<ApiCall>& calls_;
  size_t index_ = 0;
  Block slot_[hakfuzz::kSlots];
  std::map<uintptr_t, uintptr_t> live_;  // start -> end of the usable bytes
  uint64_t next_id_ = 1;
};

// ---------------------------------------------------------------- self-check

// glibc 2.36's answers, worked out from its source. `live`: slot 0 holds a block.
struct Known {
  const char* call;
  bool live;
  Outcome out;
  int err;         // kFail / kInvalid
  uint64_t align;  // kOk
};
const Known kKnown[] = {
    {"malloc 0 0", false, Outcome::kOk, 0, 1},
    {"malloc 0 24", false, Outcome::kOk, 0, 16},
    {"malloc 0 PTRDIFF_MAX+1", false, Outcome::kFail, ENOMEM, 0},
    {"malloc 0 SIZE_MAX", false, Outcome::kFail, ENOMEM, 0},
    {"malloc 0 2^47", false, Outcome::kFail, ENOMEM, 0},
    {"calloc 0 SIZE_MAX 2", false, Outcome::kFail, ENOMEM, 0},
    {"calloc 0 2^62 2", false, Outcome::kFail, ENOMEM, 0},
    {"calloc 0 2^32 2^32", false, Outcome::kFail, ENOMEM, 0},
    {"calloc 0 0 SIZE_MAX", false, Outcome::kOk, 0, 1},
    {"calloc 0 3 5", false, Outcome::kOk, 0, 16},
    {"realloc 0 0", false, Outcome::kOk, 0, 1},
    {"realloc 0 0", true, Outcome::kFreed, 0, 0},
    {"realloc 0 SIZE_MAX", true, Outcome::kFail, ENOMEM, 0},
    {"realloc 0 PTRDIFF_MAX+1", true, Outcome::kFail, ENOMEM, 0},
    {"realloc 0 5000", true, Outcome::kOk, 0, 16},
    {"reallocarray 0 SIZE_MAX 2", true, Outcome::kFail, ENOMEM, 0},
    {"reallocarray 0 0 5", true, Outcome::kFreed, 0, 0},
    {"reallocarray 0 2^62 2", false, Outcome::kFail, ENOMEM, 0},
    {"reallocarray 0 10 10", false, Outcome::kOk, 0, 16},
    {"memalign 0 0 10", false, Outcome::kOk, 0, 16},
    {"memalign 0 48 10", false, Outcome::kOk, 0, 64},
    {"memalign 0 24 1", false, Outcome::kOk, 0, 32},
    {"memalign 0 4097 1", false, Outcome::kOk, 0, 8192},
    {"memalign 0 PTRDIFF_MAX+2 1", false, Outcome::kFail, EINVAL, 0},
    {"memalign 0 SIZE_MAX 1", false, Outcome::kFail, EINVAL, 0},
    {"memalign 0 PTRDIFF_MAX+1 1", false, Outcome::kFail, ENOMEM, 0},
    {"memalign 0 2^62+1 1", false, Outcome::kFail, ENOMEM, 0},
    {"memalign 0 64 PTRDIFF_MAX", false, Outcome::kFail, ENOMEM, 0},
    {"aligned_alloc 0 3 10", false, Outcome::kOk, 0, 16},
    {"aligned_alloc 0 100 1", false, Outcome::kOk, 0, 128},
    {"aligned_alloc 0 4096 PTRDIFF_MAX", false, Outcome::kFail, ENOMEM, 0},
    {"aligned_alloc 0 SIZE_MAX-7 8", false, Outcome::kFail, EINVAL, 0},
    {"posix_memalign 0 0 8", false, Outcome::kInvalid, EINVAL, 0},
    {"posix_memalign 0 4 8", false, Outcome::kInvalid, EINVAL, 0},
    {"posix_memalign 0 24 8", false, Outcome::kInvalid, EINVAL, 0},
    {"posix_memalign 0 SIZE_MAX 8", false, Outcome::kInvalid, EINVAL, 0},
    {"posix_memalign 0 8 8", false, Outcome::kOk, 0, 8},
    {"posix_memalign 0 16 0", false, Outcome::kOk, 0, 16},
    {"posix_memalign 0 256 300", false, Outcome::kOk, 0, 256},
    {"posix_memalign 0 PTRDIFF_MAX+1 1", false, Outcome::kFail, ENOMEM, 0},
    {"posix_memalign 0 4096 SIZE_MAX", false, Outcome::kFail, ENOMEM, 0},
    {"valloc 0 1", false, Outcome::kOk, 0, 4096},
    {"valloc 0 SIZE_MAX", false, Outcome::kFail, ENOMEM, 0},
    {"pvalloc 0 SIZE_MAX", false, Outcome::kFail, ENOMEM, 0},
    {"pvalloc 0 SIZE_MAX-4095", false, Outcome::kFail, ENOMEM, 0},
    {"pvalloc 0 0", false, Outcome::kOk, 0, 4096},
    {"pvalloc 0 5000", false, Outcome::kOk, 0, 4096},
};

bool g_print = false;
Api g_glibc;

void self_check() {
  int n = 0;
  for (const Known& k : kKnown) {
    std::vector<ApiCall> calls;
    std::string err;
    if (!hakfuzz::parse_api(k.call, &calls, &err) || calls.size() != 1) {
      fprintf(stderr, "fuzz_api self-check: %s: %s\n", k.call, err.c_str());
      abort();
    }
    Expect e = expect(calls[0], k.live);
    bool same = e.out == k.out && (k.out != Outcome::kFail || e.err == k.err) &&
                (k.out != Outcome::kOk || e.align == k.align);
    if (!same) {
      fprintf(stderr,
              "fuzz_api self-check: the oracle says %s (errno %d, align %llu) for %s%s; glibc "
              "2.36 gives %s (errno %d, align %llu)\n",
              outcome_name(e.out), e.err, static_cast<unsigned long long>(e.align), k.call,
              k.live ? " on a live block" : "", outcome_name(k.out), k.err,
              static_cast<unsigned long long>(k.align));
      abort();
    }
    if (k.live) calls.insert(calls.begin(), ApiCall{ApiOp::kMalloc, 0, 100, 0});
    if (g_glibc.name) Runner(g_glibc, calls).run();  // first: checks the oracle
    Runner(kHakmem, calls).run();
    ++n;
  }
  fprintf(stderr, "fuzz_api: oracle self-check passed (%d known glibc 2.36 answers)%s\n", n,
          g_glibc.name ? "; every input also runs on the system's glibc 2.36" : "");
}

// The kernel's limit for one request (mm/util.c, __vm_enough_memory).
uint64_t commit_limit() {
  FILE* f = fopen("/proc/sys/vm/overcommit_memory", "r");
  int mode = f ? fgetc(f) : '0';
  if (f) fclose(f);
  if (mode == '1') return kNever;
  if (mode == '2') {
    if (FILE* m = fopen("/proc/meminfo", "r")) {
      char line[256];
      unsigned long long kib = 0;
      while (fgets(line, sizeof line, m))
        if (sscanf(line, "CommitLimit: %llu kB", &kib) == 1) break;
      fclose(m);
      if (kib) return kib << 10;
    }
    return kNever;
  }
  struct sysinfo si;
  if (sysinfo(&si) != 0) return kNever;
  return (uint64_t{si.totalram} + si.totalswap) * si.mem_unit;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_commit_limit = commit_limit();
  const char* p = getenv("HAKMEM_FUZZ_PRINT");
  g_print = p && *p == '1';
  if (const char* m = getenv("HAKMEM_FUZZ_API_GRAY_MAX"); m && *m)
    g_gray_max = strtoull(m, nullptr, 0);
  const char* g = getenv("HAKMEM_FUZZ_API_GLIBC");
  bool want_glibc = !(g && *g == '0');
  if (want_glibc && strcmp(gnu_get_libc_version(), "2.36") == 0) {
    g_glibc = find_glibc();
#ifdef HAKFUZZ_ASAN
    // Make sure these really are glibc's functions, not ASan's.
    if (g_glibc.name) {
      void* q = g_glibc.malloc(24);
      if (!q || __sanitizer_get_ownership(q)) g_glibc.name = nullptr;
      if (q) g_glibc.free(q);
    }
#endif
  }
  if (want_glibc && !g_glibc.name)
    fprintf(stderr,
            "fuzz_api: the system's C library is glibc %s, not 2.36: checking hakmem "
            "against the oracle only\n",
            gnu_get_libc_version());
  self_check();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<ApiCall> calls = hakfuzz::decode_api(data, size);
  if (g_print) fprintf(stderr, "%s--\n", hakfuzz::to_text(calls).c_str());
  if (g_glibc.name) Runner(g_glibc, calls).run();  // first: a failure there is the oracle's
  Runner(kHakmem, calls).run();
  // Everything is freed: what hakmem keeps for reuse (cached large runs' pages within the
  // keep-committed budget, warm regions) goes back, so one program's pages never count
  // against the next one's RSS limit (up to 256 MiB could carry over).
  hak_malloc_trim(0);
  return 0;
}
