// The op language: one description of a run, used by the properties, the fuzzers and
// the replay tool. A trace is a config line and one op per line:
//
//   config warm=1 ultra=1 [purge=MS]
//   malloc T SIZE           memalign T ALIGN SIZE     calloc T N SIZE
//   free T I                realloc T I SIZE
//   malloc_n T SIZE COUNT   free_n T I COUNT          (bulk: fill / drain in one step)
//   collect T               exit T
//   tick T MS               (the clock of purge delays advances MS ms; T is not used)
//   bad_free T KIND I       (KIND: interior misaligned foreign double tail)
//
// T is a simulated thread (0..kMaxThreads-1). I picks a live block: the (I mod n)-th of
// the n live blocks, so any number is valid and shrinking never breaks a trace. In bad_free,
// I / n also picks the offset of an interior pointer (8, a multiple of 16, the lowest set
// bit of the block size, half the block) and, for tail (a pointer k * 2 MiB into a live
// large block of more than one region), k and whether it is freed or reallocated.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model.h"

namespace hakmodel {

inline constexpr int kMaxThreads = 4;

enum class OpCode {
  kMalloc,
  kFree,
  kRealloc,
  kMemalign,
  kCalloc,
  kCollect,
  kExit,
  kBadFree,
  kMallocN,
  kFreeN,
  kTick
};
enum class BadKind { kInterior, kMisaligned, kForeign, kDouble, kTail };
inline constexpr uint64_t kBadKinds = 5;

struct Op {
  OpCode code = OpCode::kMalloc;
  int t = 0;
  uint64_t a = 0, b = 0;  // operands in the order of the text form
};

struct Trace {
  Config cfg;
  std::vector<Op> ops;
};

std::string to_text(const Op& op);
std::string to_text(const Trace& tr);
// Parses a trace; on error returns false and says where in `err`.
bool parse(const std::string& text, Trace* out, std::string* err);

}  // namespace hakmodel
