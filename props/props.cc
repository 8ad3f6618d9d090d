// Property suites: random op sequences run in lockstep on hakmem and the model
// (model/lockstep.h). Each property runs over ULTRA on/off and warm reserves 0 and 1,
// with up to four simulated threads; RC_TAG / RC_CLASSIFY show what the cases reached.
//
// Case count and seed: RC_PARAMS (see README), e.g. RC_PARAMS="max_success=500 seed=42".
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <ostream>

#include "lockstep.h"

namespace hakmodel {
void showValue(const Op& op, std::ostream& os) {
  os << to_text(op);
}
}  // namespace hakmodel

namespace {

using hakmodel::Op;
using hakmodel::OpCode;

// Sizes at every class edge, plus mid and large edges.
const std::vector<uint64_t> kEdges = {
    0,    1,    7,    8,    9,    15,    16,    17,     31,     32,     33,      63,     64,   65,
    127,  128,  129,  255,  256,  257,   511,   512,    513,    1000,   1023,    1024,   1025, 1280,
    1281, 2048, 2049, 4096, 5000, 65536, 65537, 262143, 262144, 262145, 1 << 20, 3 << 20};

rc::Gen<uint64_t> gen_size() {
  return rc::gen::weightedOneOf<uint64_t>({{6, rc::gen::elementOf(kEdges)},
                                           {3, rc::gen::inRange<uint64_t>(0, 1025)},
                                           {1, rc::gen::inRange<uint64_t>(1025, 300000)}});
}

// Bulk sizes and counts that fill a slab (64 KiB) or a whole region (2 MiB).
rc::Gen<Op> gen_bulk(int t) {
  return rc::gen::map(rc::gen::elementOf(std::vector<std::pair<uint64_t, uint64_t>>{{1024, 70},
                                                                                    {1024, 2100},
                                                                                    {512, 4100},
                                                                                    {64, 1100},
                                                                                    {16, 4200},
                                                                                    {2048, 1050},
                                                                                    {5000, 420}}),
                      [t](std::pair<uint64_t, uint64_t> sc) {
                        return Op{OpCode::kMallocN, t, sc.first, sc.second};
                      });
}

rc::Gen<Op> gen_op(int threads, bool bad_frees) {
  auto thread = rc::gen::inRange(0, threads);
  auto idx = rc::gen::arbitrary<uint32_t>();
  return rc::gen::mapcat(thread, [=](int t) -> rc::Gen<Op> {
    auto malloc_op = rc::gen::map(gen_size(), [t](uint64_t n) {
      return Op{OpCode::kMalloc, t, n, 0};
    });
    auto free_op = rc::gen::map(idx, [t](uint32_t i) { return Op{OpCode::kFree, t, i, 0}; });
    auto free_n = rc::gen::map(rc::gen::pair(idx, rc::gen::inRange<uint32_t>(1, 3000)),
                               [t](std::pair<uint32_t, uint32_t> p) {
                                 return Op{OpCode::kFreeN, t, p.first, p.second};
                               });
    auto realloc_op =
        rc::gen::map(rc::gen::pair(idx, gen_size()), [t](std::pair<uint32_t, uint64_t> p) {
          return Op{OpCode::kRealloc, t, p.first, p.second};
        });
    auto memalign_op = rc::gen::map(rc::gen::pair(rc::gen::inRange<uint32_t>(0, 22), gen_size()),
                                    [t](std::pair<uint32_t, uint64_t> p) {
                                      return Op{OpCode::kMemalign, t, p.first, p.second};
                                    });
    // calloc draws its element size like malloc's (up to 3 MiB, class and large edges, so
    // it often reuses a block of the same size just freed), mostly one element.
    auto calloc_op = rc::gen::map(
        rc::gen::pair(rc::gen::weightedOneOf<uint64_t>({{6, rc::gen::just<uint64_t>(1)},
                                                        {2, rc::gen::inRange<uint64_t>(0, 40)}}),
                      gen_size()),
        [t](std::pair<uint64_t, uint64_t> p) {
          uint64_t size = p.first > 1 && p.second > (4u << 20) / p.first ? 300 : p.second;
          return Op{OpCode::kCalloc, t, p.first, size};
        });
    auto collect_op = rc::gen::just(Op{OpCode::kCollect, t, 0, 0});
    auto exit_op = rc::gen::just(Op{OpCode::kExit, t, 0, 0});
    // Time for purge delays (0..2 x 10 ms): due purges happen at the next refills.
    auto tick_op = rc::gen::map(rc::gen::element<uint64_t>(1, 5, 10, 20), [t](uint64_t ms) {
      return Op{OpCode::kTick, t, ms, 0};
    });
    auto bad_op =
        rc::gen::map(rc::gen::pair(rc::gen::inRange<uint64_t>(0, hakmodel::kBadKinds), idx),
                     [t](std::pair<uint64_t, uint32_t> p) {
                       return Op{OpCode::kBadFree, t, p.first, p.second};
                     });
    if (bad_frees)
      return rc::gen::weightedOneOf<Op>({{30, malloc_op},
                                         {30, free_op},
                                         {4, gen_bulk(t)},
                                         {5, free_n},
                                         {6, realloc_op},
                                         {4, memalign_op},
                                         {3, calloc_op},
                                         {3, collect_op},
                                         {2, exit_op},
                                         {2, tick_op},
                                         {8, bad_op}});
    return rc::gen::weightedOneOf<Op>({{30, malloc_op},
                                       {30, free_op},
                                       {4, gen_bulk(t)},
                                       {5, free_n},
                                       {6, realloc_op},
                                       {4, memalign_op},
                                       {3, calloc_op},
                                       {3, collect_op},
                                       {2, exit_op},
                                       {2, tick_op}});
  });
}

hakmodel::Config gen_config() {
  hakmodel::Config c;
  c.warm = *rc::gen::element(0u, 1u);
  c.ultra = *rc::gen::arbitrary<bool>();
  c.purge = *rc::gen::element(0u, 10u);  // at once, or after 10 ms of ticks
  return c;
}

void check(const hakmodel::Trace& tr) {
  hakmodel::Verdict v = hakmodel::run_isolated(tr);
  RC_TAG(tr.cfg.ultra ? "ultra on" : "ultra off", tr.cfg.warm ? "warm 1" : "warm 0",
         tr.cfg.purge ? "purge delay" : "purge at once");
  RC_CLASSIFY(v.regions_released > 0, "a region was released");
  RC_CLASSIFY(v.remote_frees > 0, "remote frees");
  RC_CLASSIFY(v.adoptions > 0, "adoption or pool reuse");
  RC_CLASSIFY(v.ultra_blocks > 0, "ULTRA blocks");
  RC_CLASSIFY(v.large_blocks > 0, "large blocks");
  RC_CLASSIFY(v.errors > 0, "bad frees reported");
  RC_CLASSIFY(v.tail_bad_frees > 0, "bad free into a large block's tail");
  RC_CLASSIFY(v.big_callocs > 0, "calloc above 4 KiB");
  if (!v.ok) RC_FAIL(hakmodel::describe(v));
}

}  // namespace

// Everything at once: all ops, four threads.
RC_GTEST_PROP(Lockstep, ProductionAgreesWithTheModel, ()) {
  hakmodel::Trace tr;
  tr.cfg = gen_config();
  tr.ops = *rc::gen::container<std::vector<Op>>(*rc::gen::inRange(1, 200), gen_op(4, false));
  check(tr);
}

// Fill and drain whole slabs and regions of one thread: the empty-release rule, exactly.
RC_GTEST_PROP(Lockstep, EmptyReleaseAgrees, ()) {
  hakmodel::Trace tr;
  tr.cfg = gen_config();
  auto op = rc::gen::weightedOneOf<Op>(
      {{3, gen_bulk(0)},
       {3, rc::gen::map(
               rc::gen::pair(rc::gen::arbitrary<uint32_t>(), rc::gen::inRange<uint32_t>(1, 5000)),
               [](std::pair<uint32_t, uint32_t> p) {
                 return Op{OpCode::kFreeN, 0, p.first, p.second};
               })},
       {1, rc::gen::just(Op{OpCode::kCollect, 0, 0, 0})}});
  tr.ops = *rc::gen::container<std::vector<Op>>(*rc::gen::inRange(1, 30), op);
  check(tr);
}

// Remote frees, collection points, exits, abandonment and adoption across three threads.
RC_GTEST_PROP(Lockstep, RemoteFreesExitsAndAdoptionAgree, ()) {
  hakmodel::Trace tr;
  tr.cfg = gen_config();
  tr.ops = *rc::gen::container<std::vector<Op>>(*rc::gen::inRange(1, 150), gen_op(3, false));
  check(tr);
}

// Bad frees in report mode are counted and change nothing.
RC_GTEST_PROP(Lockstep, BadFreesAreReportedAndChangeNothing, ()) {
  hakmodel::Trace tr;
  tr.cfg = gen_config();
  tr.ops = *rc::gen::container<std::vector<Op>>(*rc::gen::inRange(1, 150), gen_op(3, true));
  check(tr);
}

// Pointers into large blocks of several regions: interior pointers of the head region and
// pointers k * 2 MiB in (the region map says "large tail" there), freed and reallocated,
// between mallocs, callocs and frees of such blocks.
RC_GTEST_PROP(Lockstep, PointersIntoLargeBlocksAreRejected, ()) {
  hakmodel::Trace tr;
  tr.cfg = gen_config();
  auto idx = rc::gen::arbitrary<uint32_t>();
  auto big = rc::gen::inRange<uint64_t>((2u << 20) + 1, 9u << 20);
  auto op = rc::gen::weightedOneOf<Op>(
      {{4, rc::gen::map(big,
                        [](uint64_t n) {
                          return Op{OpCode::kMalloc, 0, n, 0};
                        })},
       {2, rc::gen::map(big,
                        [](uint64_t n) {
                          return Op{OpCode::kCalloc, 0, 1, n};
                        })},
       {3, rc::gen::map(idx,
                        [](uint32_t i) {
                          return Op{OpCode::kFree, 0, i, 0};
                        })},
       {5, rc::gen::map(rc::gen::pair(rc::gen::element<uint64_t>(0, 1, 4), idx),
                        [](std::pair<uint64_t, uint32_t> p) {
                          return Op{OpCode::kBadFree, 0, p.first, p.second};
                        })}});
  tr.ops = *rc::gen::container<std::vector<Op>>(*rc::gen::inRange(1, 40), op);
  check(tr);
}
