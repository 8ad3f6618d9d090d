// The byte format of fuzz_api: a program of malloc-family calls on 16 slots.
//
//   per call  header h: op = (h >> 4) % 11, slot = h & 15; then the operands
//     malloc S SIZE             calloc S N SIZE          realloc S SIZE
//     reallocarray S N SIZE     memalign S ALIGN SIZE    aligned_alloc S ALIGN SIZE
//     posix_memalign S ALIGN SIZE                        valloc S SIZE
//     pvalloc S SIZE            free S                   usable S
//   SIZE, N  k = byte, by k >> 6: 0 edge table[k & 63]; 1 ((k & 63) << 8) | byte;
//            2 huge table[k & 31] (SIZE_MAX, PTRDIFF_MAX +- 1, 2^47, ...); 3 u64
//   ALIGN    k = byte, by k >> 6: 0 alignment table[k & 63]; 1 1 << (k & 63);
//            2 (1 << (k & 63)) + (int8_t)byte; 3 u64
//   u64      8 bytes, little endian (the dictionary holds the interesting ones)
// realloc / reallocarray / free / usable act on the slot's block (NULL when empty); the
// allocating calls free the slot's block first. At most kMaxCalls calls.
//
// The text form (hak-fuzz-codec, the seeds in fuzz/seeds/fuzz_api/) is one call per line
// as above; a number is decimal, 0x hex, 2^K, SIZE_MAX or PTRDIFF_MAX, with an optional
// +N or -N; '#' starts a comment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hakfuzz {

inline constexpr size_t kMaxCalls = 256;
inline constexpr unsigned kSlots = 16;

enum class ApiOp : uint8_t {
  kMalloc,
  kCalloc,
  kRealloc,
  kReallocArray,
  kMemalign,
  kAlignedAlloc,
  kPosixMemalign,
  kValloc,
  kPvalloc,
  kFree,
  kUsable,
};
inline constexpr unsigned kApiOps = 11;

struct ApiCall {
  ApiOp op = ApiOp::kMalloc;
  unsigned slot = 0;
  uint64_t a = 0, b = 0;  // operands in the order of the text form
};

const char* api_name(ApiOp op);
int api_operands(ApiOp op);  // after the slot

std::vector<ApiCall> decode_api(const uint8_t* data, size_t size);
std::vector<uint8_t> encode_api(const std::vector<ApiCall>& calls);
std::string to_text(const ApiCall& c);
std::string to_text(const std::vector<ApiCall>& calls);
bool parse_api(const std::string& text, std::vector<ApiCall>* out, std::string* err);
bool parse_number(const std::string& s, uint64_t* out);

}  // namespace hakfuzz
