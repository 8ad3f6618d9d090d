// The lockstep interpreter: runs a trace on hakmem (through hak_* and inspect, with
// simulated threads) and on the model, op by op, and stops at the first disagreement.
// One implementation for the properties, the fuzzers and hak-replay.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "ops.h"

namespace hakmodel {

struct Verdict {
  bool ok = true;
  size_t op_index = 0;  // the op that disagreed (ops.size() for the final checks)
  std::string message;  // expected vs actual
  std::string trace;    // the trace up to and including that op
  // What the run reached (for coverage tags).
  uint64_t regions_mapped = 0, regions_released = 0, warm_kept = 0, remote_frees = 0, adoptions = 0,
           errors = 0, ultra_blocks = 0, large_blocks = 0;
  uint64_t tail_bad_frees = 0;  // bad frees / reallocs of a pointer into a large block's tail
  uint64_t big_callocs = 0;     // callocs above 4 KiB (their zero check reads every page)
  // Every counter above, in one list (run_isolated carries them across the fork).
  std::array<uint64_t*, 10> counters() {
    return {&regions_mapped, &regions_released, &warm_kept,    &remote_frees,   &adoptions,
            &errors,         &ultra_blocks,     &large_blocks, &tail_bad_frees, &big_callocs};
  }
};

struct RunOptions {
  bool finish = true;  // then free everything, exit every thread, check what is left
  bool check_every_op = true;
};

// Runs `tr` from a clean heap and leaves the heap clean again. Not thread-safe (one run
// at a time per process).
Verdict run(const Trace& tr, const RunOptions& opt = {});
// The same in a child process: a run that crashes cannot take the caller with it, and a
// crash is a verdict ("killed by signal N") that can be shrunk too. The child is a worker
// kept across calls (no fork and no fresh heap per run); a run that fails in a worker that
// ran others before is run again in a child forked for it alone, whose verdict counts,
// and the worker is replaced after any failure: a failure never depends on earlier runs.
Verdict run_isolated(const Trace& tr, const RunOptions& opt = {});

std::string describe(const Verdict& v);

}  // namespace hakmodel
