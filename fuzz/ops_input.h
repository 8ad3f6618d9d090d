// The byte format of fuzz_ops and fuzz_bad_free: fuzzer bytes <-> a trace of the op
// language (model/ops.h). Plain code, no hakmem: the fuzzers and hak-fuzz-codec share it.
//
//   byte 0          config: warm = (b & 3) % 3, ultra = !(b & 4), purge delay 10 ms if b & 8
//                   (the clock stands still: purges happen at collect only)
//   then per op     header h: thread = h >> 6, op = table[h & 63] (weights per target)
//                   and its operands, each read forward (a missing byte reads as 0):
//     malloc        SIZE                      memalign  LOG SIZE  (align 1 << LOG % 22)
//     free          IDX                       calloc    NCODE SIZE
//     realloc       IDX SIZE                  malloc_n  SIZE COUNT
//     free_n        IDX COUNT                 bad_free  KIND IDX
//     collect, exit (nothing)
//   SIZE   k = byte: k < 128 edge table[k] (every class edge -1/0/+1, large run edges);
//          k < 192 ((k & 63) << 8) | byte (0..16383); k < 248 (((k - 192) << 16) | u16)
//          (below 256 KiB, mid); else ((((k - 248) << 16) | u16) << 3) (large, < 4 MiB)
//   COUNT  k = byte, d = k & 31: by k >> 5: 0 d; 1 8d; 2 slab fill + d - 16; 3 two slabs
//          + d - 16; 4 region fill + d - 16; 5 two regions + d - 16; 6 d * 64; 7 u16
//          (slab / region fill: 64 KiB / 2 MiB over the block size of SIZE)
//   NCODE  k < 240: k % 65 elements; else an overflowing (n, size) pair (SIZE ignored)
//   u16    little endian
// At most kMaxOps ops; malloc_n counts are cut to a per-input budget (bulk_blocks blocks
// of the target, kBulkBytes bytes of footprint: a class block's size, a large block's run
// of 2 MiB regions, so at most 128 runs of 2 MiB, twice the large cache's slots) and calloc
// products to kCallocMax, so one input stays under ~50 ms.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ops.h"

namespace hakfuzz {

inline constexpr size_t kMaxOps = 300;
inline constexpr uint64_t kBulkBytes = uint64_t{256} << 20;
inline constexpr uint64_t kCallocMax = uint64_t{8} << 20;

struct OpWeights {  // out of 64
  int malloc, free, realloc, memalign, calloc, malloc_n, free_n, collect, exit, bad_free;
  uint64_t bulk_blocks;  // blocks all malloc_n of one input may allocate
};
// fuzz_ops: everything, bad frees rare; bulk ops fill slabs and regions (a region of
// 256-byte blocks, four ULTRA segments). fuzz_bad_free: a third of the ops are bad frees;
// less bulk (a region of 1024-byte blocks), which keeps it fast.
inline constexpr OpWeights kOpsWeights{16, 12, 6, 5, 4, 6, 5, 4, 4, 2, 8192};
inline constexpr OpWeights kBadFreeWeights{13, 8, 4, 3, 2, 4, 3, 3, 3, 21, 2560};

struct OpTable {
  std::array<hakmodel::OpCode, 64> ops;
  uint64_t bulk_blocks;
};
OpTable make_table(const OpWeights& w);  // aborts unless the weights add up to 64

const std::vector<uint64_t>& edge_sizes();  // the 128-entry table of SIZE codes < 128

hakmodel::Trace decode(const uint8_t* data, size_t size, const OpTable& table);
// The inverse, for seeds: bytes that decode to `tr`. False (and why in `err`) for an op the
// format cannot express exactly (a size above 4 MiB not in the table, an index >= 256, a
// count no COUNT code gives, an op the table has no slot for, more than kMaxOps ops).
bool encode(const hakmodel::Trace& tr, const OpTable& table, std::vector<uint8_t>* out,
            std::string* err);

}  // namespace hakfuzz
