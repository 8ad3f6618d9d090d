// fuzz_ops: fuzzer bytes -> a trace of the op language (fuzz/ops_input.h) -> hakmem and
// the reference model in lockstep. A disagreement aborts and leaves the trace on disk.
#include "ops_target.h"

namespace {
const hakfuzz::OpTable kTable = hakfuzz::make_table(hakfuzz::kOpsWeights);
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return hakfuzz::run_ops_input(data, size, kTable, "fuzz-ops");
}
