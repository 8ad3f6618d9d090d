// fuzz_bad_free: fuzz_ops with a third of the ops bad frees of every kind (interior,
// misaligned, foreign, double) among valid ops. The lockstep run is in report mode: every
// bad free on a checked route must be counted and change nothing, so the verdict stays ok.
#include "ops_target.h"

namespace {
const hakfuzz::OpTable kTable = hakfuzz::make_table(hakfuzz::kBadFreeWeights);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return hakfuzz::run_ops_input(data, size, kTable, "fuzz-bad-free");
}
