// hak-replay FILE...: re-runs traces in lockstep and prints the verdict of each.
// Exit status 0 when every trace agrees.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "lockstep.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s TRACE...\n", argv[0]);
    return 2;
  }
  int bad = 0;
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i]);
    if (!in) {
      fprintf(stderr, "%s: cannot read\n", argv[i]);
      return 2;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    hakmodel::Trace tr;
    std::string err;
    if (!hakmodel::parse(ss.str(), &tr, &err)) {
      fprintf(stderr, "%s: %s\n", argv[i], err.c_str());
      return 2;
    }
    hakmodel::Verdict v = hakmodel::run(tr);
    printf("%s: %zu ops: %s\n", argv[i], tr.ops.size(), hakmodel::describe(v).c_str());
    if (!v.ok) ++bad;
  }
  return bad ? 1 : 0;
}
