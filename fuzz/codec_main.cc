// hak-fuzz-codec: between the fuzzers' bytes and readable text.
//
//   hak-fuzz-codec decode ops|bad_free FILE       an input as a trace (hak-replay's format)
//   hak-fuzz-codec encode ops|bad_free TRACE OUT  a trace as an input (seeds)
//   hak-fuzz-codec decode-api FILE                a fuzz_api input as calls
//   hak-fuzz-codec encode-api CALLS OUT           calls as a fuzz_api input
//   hak-fuzz-codec dict ops|bad_free|api          the target's dictionary (fuzz/<target>.dict)
//   hak-fuzz-codec check-seeds SEEDS CORPUS       every SEEDS/<target>/NAME.{trace,txt}
//       encodes to CORPUS/<target>/seed-NAME and decodes back to itself, and the
//       dictionaries next to CORPUS are current (ctest fuzz.seeds)
#include <dirent.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "api_input.h"
#include "ops_input.h"

namespace {

bool read_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

bool write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

const uint8_t* bytes_of(const std::string& s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

bool table_for(const std::string& which, hakfuzz::OpTable* t) {
  if (which == "ops" || which == "fuzz_ops") {
    *t = hakfuzz::make_table(hakfuzz::kOpsWeights);
  } else if (which == "bad_free" || which == "fuzz_bad_free") {
    *t = hakfuzz::make_table(hakfuzz::kBadFreeWeights);
  } else {
    fprintf(stderr, "unknown target %s (ops or bad_free)\n", which.c_str());
    return false;
  }
  return true;
}

// Text -> bytes for one target; also checks the bytes decode back to the same text.
bool encode_text(const std::string& target, const std::string& text, std::vector<uint8_t>* out,
                 std::string* err) {
  if (target == "fuzz_api") {
    std::vector<hakfuzz::ApiCall> calls;
    if (!hakfuzz::parse_api(text, &calls, err)) return false;
    *out = hakfuzz::encode_api(calls);
    if (hakfuzz::to_text(hakfuzz::decode_api(out->data(), out->size())) !=
        hakfuzz::to_text(calls)) {
      *err = "does not decode back to itself";
      return false;
    }
    return true;
  }
  hakfuzz::OpTable table;
  if (!table_for(target, &table)) return false;
  hakmodel::Trace tr;
  if (!hakmodel::parse(text, &tr, err)) return false;
  if (!hakfuzz::encode(tr, table, out, err)) return false;
  if (hakmodel::to_text(hakfuzz::decode(out->data(), out->size(), table)) !=
      hakmodel::to_text(tr)) {
    *err = "does not decode back to itself";
    return false;
  }
  return true;
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') names.push_back(e->d_name);
    closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string make_dict(const std::string& target);

int check_seeds(const std::string& seeds, const std::string& corpus) {
  int bad = 0, n = 0;
  for (const char* target : {"fuzz_ops", "fuzz_bad_free", "fuzz_api"}) {
    for (const std::string& name : list_dir(seeds + "/" + target)) {
      std::string stem = name.substr(0, name.rfind('.'));
      std::string text, committed, err;
      std::vector<uint8_t> bytes;
      std::string src = seeds + "/" + target + "/" + name;
      std::string dst = corpus + "/" + target + "/seed-" + stem;
      ++n;
      if (!read_file(src, &text) || !encode_text(target, text, &bytes, &err)) {
        fprintf(stderr, "%s: %s\n", src.c_str(), err.c_str());
        ++bad;
      } else if (!read_file(dst, &committed) ||
                 committed != std::string(bytes.begin(), bytes.end())) {
        fprintf(stderr, "%s: missing or stale; run fuzz/make-seeds.sh\n", dst.c_str());
        ++bad;
      }
    }
  }
  std::string dir =
      corpus.substr(0, corpus.rfind('/') == std::string::npos ? 0 : corpus.rfind('/') + 1);
  for (const char* target : {"fuzz_ops", "fuzz_bad_free", "fuzz_api"}) {
    std::string path = dir + target + ".dict", committed;
    if (!read_file(path, &committed) || committed != make_dict(target)) {
      fprintf(stderr, "%s: missing or stale; run fuzz/make-seeds.sh\n", path.c_str());
      ++bad;
    }
  }
  printf("%d seeds, %d bad\n", n, bad);
  return bad || n == 0 ? 1 : 0;
}

// Dictionaries: whole ops / calls and raw operands the tables do not reach in one byte.
const char* const kOpSnippets[] = {
    "malloc_n 0 1024 2048",
    "malloc_n 0 1024 64",
    "free_n 0 0 2048",
    "malloc_n 0 64 1024",
    "malloc_n 0 16 4096",
    "malloc_n 1 5000 420",
    "free_n 1 0 420",
    "collect 0",
    "collect 1",
    "exit 0",
    "exit 1",
    "malloc 0 1024",
    "malloc 0 1025",
    "malloc 0 262145",
    "memalign 0 21 262144",
    "realloc 0 0 0",
    "calloc 0 18446744073709551615 2",
    "bad_free 0 double 0",
    "bad_free 0 interior 0",
    "bad_free 0 misaligned 0",
    "bad_free 0 foreign 0",
};
const char* const kApiSnippets[] = {
    "calloc 0 SIZE_MAX 2",
    "reallocarray 0 2^62 2",
    "posix_memalign 0 24 8",
    "memalign 0 PTRDIFF_MAX+2 1",
    "pvalloc 0 SIZE_MAX-4095",
    "realloc 0 0",
    "usable 0",
};
const uint64_t kRawValues[] = {
    ~uint64_t{0},
    ~uint64_t{0} - 1,
    ~uint64_t{0} >> 1,
    (~uint64_t{0} >> 1) + 1,
    uint64_t{1} << 32,
    (uint64_t{1} << 32) + 1,
    uint64_t{1} << 40,
    uint64_t{1} << 46,
    (uint64_t{1} << 46) + 1,
    uint64_t{1} << 47,
    ~uint64_t{0} / 3 + 1,
    ~uint64_t{0} - 4095,
    ~uint64_t{0} - 8224,
    uint64_t{3} << 61,
};

std::string escaped(const std::vector<uint8_t>& b) {
  std::string s;
  char buf[5];
  for (uint8_t c : b) {
    snprintf(buf, sizeof buf, "\\x%02x", c);
    s += buf;
  }
  return s;
}

std::string make_dict(const std::string& target) {
  std::string out = "# Generated by hak-fuzz-codec dict " + target + " (fuzz/make-seeds.sh).\n";
  std::string err;
  std::vector<uint8_t> b;
  int n = 0;
  if (target == "fuzz_api") {
    for (const char* s : kApiSnippets)
      if (encode_text(target, s, &b, &err))
        out += std::string("# ") + s + "\ncall" + std::to_string(n++) + "=\"" + escaped(b) + "\"\n";
    for (uint64_t v : kRawValues) {
      b.assign(1, 192);
      for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
      out += "raw" + std::to_string(n++) + "=\"" + escaped(b) + "\"\n";
    }
    return out;
  }
  for (const char* s : kOpSnippets) {
    if (!encode_text(target, std::string("config warm=1 ultra=1\n") + s + "\n", &b, &err)) continue;
    b.erase(b.begin());  // the config byte
    out += std::string("# ") + s + "\nop" + std::to_string(n++) + "=\"" + escaped(b) + "\"\n";
  }
  return out;
}

int usage() {
  fprintf(stderr,
          "usage: hak-fuzz-codec decode ops|bad_free FILE\n"
          "       hak-fuzz-codec encode ops|bad_free TRACE OUT\n"
          "       hak-fuzz-codec decode-api FILE\n"
          "       hak-fuzz-codec encode-api CALLS OUT\n"
          "       hak-fuzz-codec dict ops|bad_free|api\n"
          "       hak-fuzz-codec check-seeds SEEDS_DIR CORPUS_DIR\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  std::string in, err;
  std::vector<uint8_t> bytes;
  if (a.size() == 3 && a[0] == "decode") {
    hakfuzz::OpTable table;
    if (!table_for(a[1], &table)) return 2;
    if (!read_file(a[2], &in)) return fprintf(stderr, "%s: cannot read\n", a[2].c_str()), 2;
    printf("%s", hakmodel::to_text(hakfuzz::decode(bytes_of(in), in.size(), table)).c_str());
    return 0;
  }
  if (a.size() == 2 && a[0] == "decode-api") {
    if (!read_file(a[1], &in)) return fprintf(stderr, "%s: cannot read\n", a[1].c_str()), 2;
    printf("%s", hakfuzz::to_text(hakfuzz::decode_api(bytes_of(in), in.size())).c_str());
    return 0;
  }
  if ((a.size() == 4 && a[0] == "encode") || (a.size() == 3 && a[0] == "encode-api")) {
    bool api = a[0] == "encode-api";
    const std::string& src = api ? a[1] : a[2];
    const std::string& dst = api ? a[2] : a[3];
    std::string target = api                  ? "fuzz_api"
                         : a[1] == "ops"      ? "fuzz_ops"
                         : a[1] == "bad_free" ? "fuzz_bad_free"
                                              : a[1];
    if (!read_file(src, &in)) return fprintf(stderr, "%s: cannot read\n", src.c_str()), 2;
    if (!encode_text(target, in, &bytes, &err))
      return fprintf(stderr, "%s: %s\n", src.c_str(), err.c_str()), 1;
    if (!write_file(dst, bytes)) return fprintf(stderr, "%s: cannot write\n", dst.c_str()), 2;
    return 0;
  }
  if (a.size() == 3 && a[0] == "check-seeds") return check_seeds(a[1], a[2]);
  if (a.size() == 2 && a[0] == "dict") {
    std::string target = a[1] == "ops"        ? "fuzz_ops"
                         : a[1] == "bad_free" ? "fuzz_bad_free"
                         : a[1] == "api"      ? "fuzz_api"
                                              : a[1];
    printf("%s", make_dict(target).c_str());
    return 0;
  }
  return usage();
}
