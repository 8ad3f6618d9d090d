// The body of fuzz_ops and fuzz_bad_free: decode, run in lockstep (in process), and on a
// disagreement write the trace where hak-replay can re-run it, then abort so libFuzzer
// keeps the input as a crash.
//
// Environment:
//   HAKMEM_FUZZ_TRACE_DIR  where failure traces go (default: the current directory)
//   HAKMEM_FUZZ_PRINT=1    print every decoded trace on stderr (to look at an input)
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include "lockstep.h"
#include "ops_input.h"

namespace hakfuzz {

inline std::string fnv_hex(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// Writes the failing trace, with the verdict as comments, and returns its path.
inline std::string write_failure(const char* prefix, const hakmodel::Verdict& v) {
  const char* dir = getenv("HAKMEM_FUZZ_TRACE_DIR");
  std::string path = std::string(dir && *dir ? dir : ".") + "/" + prefix + "-failure-" +
                     fnv_hex(v.trace) + ".trace";
  std::string text =
      "# " + std::string(prefix) + ": disagreement at op " + std::to_string(v.op_index) + "\n# ";
  for (char c : v.message) {
    text += c;
    if (c == '\n') text += "# ";
  }
  text += "\n" + v.trace;
  if (FILE* f = fopen(path.c_str(), "w")) {
    fwrite(text.data(), 1, text.size(), f);
    fclose(f);
  } else {
    path = "(could not write " + path + ")";
  }
  return path;
}

inline int run_ops_input(const uint8_t* data, size_t size, const OpTable& table,
                         const char* prefix) {
  hakmodel::Trace tr = decode(data, size, table);
  static const bool print = [] {
    const char* p = getenv("HAKMEM_FUZZ_PRINT");
    return p && *p == '1';
  }();
  if (print) fprintf(stderr, "%s", hakmodel::to_text(tr).c_str());
  hakmodel::Verdict v = hakmodel::run(tr);
  if (!v.ok) {
    std::string path = write_failure(prefix, v);
    fprintf(stderr, "\n%s: hakmem and the model disagree\n%s\ntrace written to %s\n", prefix,
            hakmodel::describe(v).c_str(), path.c_str());
    fflush(stderr);
    abort();
  }
  return 0;
}

}  // namespace hakfuzz
