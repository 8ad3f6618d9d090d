// server: a larson-like server simulation. Two threads, each with its own table of `slots`
// objects. Each operation picks a slot, frees the object there (if any) and mallocs a new
// one, touching its first byte. Lifetimes are mixed: the first eighth of the slots (hot) gets
// 90% of the picks, so hot objects are replaced after a few hundred operations and cold ones
// after tens of thousands. Every `every` operations a thread takes `batch` objects out of
// random slots (leaving them empty) and posts them to the other thread's mailbox (a mutex and
// a fixed array); the other thread, at its next multiple of `every`, puts each received
// object into one of its own random slots (freeing what it displaces), so handed objects live
// on for a short or a long time and are freed by a thread that did not allocate them.
//
//   bench_server [--ops N] [--slots N] [--every K] [--batch B] [--min S] [--max S]
//                [--seed N] [--name NAME]
//
// Sizes (fixed seeds, one per thread): 3 in 4 uniform in [min, min(512, max)], else uniform
// in [min, max]; defaults 16..4096. --ops is the total over both threads (half each).
//
// Prints one line:
//   RESULT name=server ops=... slots=2048 every=64 batch=16 seconds=... mops=...
//          peak_rss_kb=... rss_start_kb=... rss_after_kb=... handed=...
// (seconds from the start until both threads are done and have freed everything; mops =
// million operations (a malloc and, in the steady state, a free each) per second;
// peak_rss_kb is the process's high-water mark, rss_start_kb the RSS before the run,
// rss_after_kb once both threads have freed everything and exited; handed = objects passed
// between the threads.)
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

#include <atomic>

#include "common.h"

namespace {

struct Params {
  uint64_t ops_per_thread, slots, every, batch, min, max, seed;
};

struct Mailbox {
  pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
  void** items = nullptr;
  uint64_t count = 0, cap = 0;
};

struct Worker {
  const Params* p = nullptr;
  Worker* peer = nullptr;
  Mailbox inbox;
  void** slots = nullptr;
  void** received = nullptr;  // drained mailbox contents, cap entries
  void** outgoing = nullptr;  // batch entries
  uint64_t index = 0, handed = 0;
  bool failed = false;
};

std::atomic<bool> go{false};
std::atomic<int> done{0};

void* map(size_t bytes) {
  void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    perror("mmap");
    exit(1);
  }
  return m;
}

size_t pick_size(const Params& p, bench::Rng& rng) {
  uint64_t hi = rng.below(4) < 3 && p.max > 512 && p.min <= 512 ? 512 : p.max;
  return p.min + rng.below(static_cast<uint32_t>(hi - p.min + 1));
}

uint64_t pick_slot(uint64_t nslots, bench::Rng& rng) {
  uint64_t hot = nslots / 8 ? nslots / 8 : 1;
  if (rng.below(10) < 9 || hot == nslots) return rng.below(static_cast<uint32_t>(hot));
  return hot + rng.below(static_cast<uint32_t>(nslots - hot));
}

// Takes everything in the inbox. place: put each object into a random slot (freeing what it
// displaces); otherwise (shutting down) free it.
void drain(Worker& w, bench::Rng& rng, bool place) {
  pthread_mutex_lock(&w.inbox.lock);
  uint64_t n = w.inbox.count;
  memcpy(w.received, w.inbox.items, n * sizeof(void*));
  w.inbox.count = 0;
  pthread_mutex_unlock(&w.inbox.lock);
  for (uint64_t i = 0; i < n; ++i) {
    if (!place) {
      free(w.received[i]);
      continue;
    }
    uint64_t s = rng.below(static_cast<uint32_t>(w.p->slots));
    if (w.slots[s]) free(w.slots[s]);
    w.slots[s] = w.received[i];
  }
}

void post(Worker& w, bench::Rng& rng, uint64_t n) {
  Mailbox& box = w.peer->inbox;
  for (unsigned tries = 0;; ++tries) {
    pthread_mutex_lock(&box.lock);
    if (box.count + n <= box.cap) {
      memcpy(box.items + box.count, w.outgoing, n * sizeof(void*));
      box.count += n;
      pthread_mutex_unlock(&box.lock);
      w.handed += n;
      return;
    }
    pthread_mutex_unlock(&box.lock);
    drain(w, rng, true);  // the peer may be waiting on us: keep our own inbox moving
    sched_yield();
  }
}

void* worker(void* arg) {
  Worker& w = *static_cast<Worker*>(arg);
  const Params& p = *w.p;
  bench::Rng rng(p.seed + 0x9E37'79B9'7F4A'7C15ull * (w.index + 1));
  while (!go.load(std::memory_order_acquire)) sched_yield();
  for (uint64_t i = 1; i <= p.ops_per_thread; ++i) {
    uint64_t s = pick_slot(p.slots, rng);
    if (w.slots[s]) free(w.slots[s]);
    size_t size = pick_size(p, rng);
    void* obj = malloc(size);
    if (!obj) {
      fprintf(stderr, "malloc(%zu) failed\n", size);
      w.failed = true;
      break;
    }
    *static_cast<volatile char*>(obj) = static_cast<char>(i);
    w.slots[s] = obj;
    if (i % p.every == 0) {
      drain(w, rng, true);
      uint64_t n = 0;
      for (uint64_t k = 0; k < p.batch; ++k) {
        uint64_t t = rng.below(static_cast<uint32_t>(p.slots));
        if (w.slots[t]) {
          w.outgoing[n++] = w.slots[t];
          w.slots[t] = nullptr;
        }
      }
      if (n) post(w, rng, n);
    }
  }
  // Done posting. Keep taking deliveries until the peer is done too, then free everything.
  done.fetch_add(1, std::memory_order_acq_rel);
  while (done.load(std::memory_order_acquire) < 2) {
    drain(w, rng, false);
    sched_yield();
  }
  drain(w, rng, false);
  for (uint64_t s = 0; s < p.slots; ++s) {
    free(w.slots[s]);
    w.slots[s] = nullptr;
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t ops = 10'000'000;
  Params p{0, 2048, 64, 16, 16, 4096, 0x5E4F'E400'0000'0001ull};
  const char* name = "server";
  for (int i = 1; i < argc; ++i) {
    if (bench::arg_u64(argc, argv, i, "--ops", &ops) ||
        bench::arg_u64(argc, argv, i, "--slots", &p.slots) ||
        bench::arg_u64(argc, argv, i, "--every", &p.every) ||
        bench::arg_u64(argc, argv, i, "--batch", &p.batch) ||
        bench::arg_u64(argc, argv, i, "--min", &p.min) ||
        bench::arg_u64(argc, argv, i, "--max", &p.max) ||
        bench::arg_u64(argc, argv, i, "--seed", &p.seed) ||
        bench::arg_str(argc, argv, i, "--name", &name))
      continue;
    fprintf(stderr,
            "usage: %s [--ops N] [--slots N] [--every K] [--batch B] [--min S] [--max S] "
            "[--seed N] [--name NAME]\n",
            argv[0]);
    return 2;
  }
  if (ops < 2 || p.slots < 2 || p.slots > (1u << 24) || p.every == 0 || p.batch == 0 ||
      p.batch > p.slots || p.min == 0 || p.max < p.min || p.max - p.min >= (1ull << 31)) {
    fprintf(stderr, "bad parameters\n");
    return 2;
  }
  p.ops_per_thread = ops / 2;
  ops = p.ops_per_thread * 2;

  // Tables and mailboxes come from mmap, not malloc. A mailbox holds 64 batches.
  static Worker w[2];
  for (uint64_t t = 0; t < 2; ++t) {
    w[t].p = &p;
    w[t].peer = &w[1 - t];
    w[t].index = t;
    w[t].inbox.cap = 64 * p.batch;
    w[t].slots = static_cast<void**>(map(p.slots * sizeof(void*)));
    w[t].inbox.items = static_cast<void**>(map(w[t].inbox.cap * sizeof(void*)));
    w[t].received = static_cast<void**>(map(w[t].inbox.cap * sizeof(void*)));
    w[t].outgoing = static_cast<void**>(map(p.batch * sizeof(void*)));
  }
  pthread_t threads[2];
  for (int t = 0; t < 2; ++t) {
    if (pthread_create(&threads[t], nullptr, worker, &w[t]) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      return 1;
    }
  }

  long rss_start = bench::rss_kb();
  double t0 = bench::now_seconds();
  go.store(true, std::memory_order_release);
  for (int t = 0; t < 2; ++t) pthread_join(threads[t], nullptr);
  double seconds = bench::now_seconds() - t0;
  long rss_after = bench::rss_kb();
  long peak = bench::peak_rss_kb(rss_after);
  if (w[0].failed || w[1].failed) return 1;

  printf(
      "RESULT name=%s ops=%llu slots=%llu every=%llu batch=%llu seconds=%.6f mops=%.3f "
      "peak_rss_kb=%ld rss_start_kb=%ld rss_after_kb=%ld handed=%llu\n",
      name, (unsigned long long)ops, (unsigned long long)p.slots, (unsigned long long)p.every,
      (unsigned long long)p.batch, seconds, static_cast<double>(ops) / seconds / 1e6, peak,
      rss_start, rss_after, (unsigned long long)(w[0].handed + w[1].handed));
  return 0;
}
