// Real OS threads: remote frees across all sizes, thread churn with exits, fork while
// other threads allocate, allocation in TLS destructors during teardown.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "region/region.h"
#include "support.h"
#include "tiny/size_class.h"

namespace {

size_t pick_size(std::mt19937& rng) {
  switch (rng() % 4) {
    case 0:
      return rng() % 1025;
    case 1:
      return 1025 + rng() % 8000;
    case 2:
      return rng() % 262144;
    default:
      return 262145 + rng() % (1 << 20);
  }
}

// A bounded single-producer single-consumer queue.
struct Queue {
  std::vector<std::atomic<void*>> slots;
  std::atomic<size_t> head{0}, tail{0};
  explicit Queue(size_t n) : slots(n) {}
  bool push(void* p) {
    size_t t = tail.load(std::memory_order_relaxed);
    if (t - head.load(std::memory_order_acquire) == slots.size()) return false;
    slots[t % slots.size()].store(p, std::memory_order_relaxed);
    tail.store(t + 1, std::memory_order_release);
    return true;
  }
  void* pop() {
    size_t h = head.load(std::memory_order_relaxed);
    if (h == tail.load(std::memory_order_acquire)) return nullptr;
    void* p = slots[h % slots.size()].load(std::memory_order_relaxed);
    head.store(h + 1, std::memory_order_release);
    return p;
  }
};

}  // namespace

TEST(Threads, ProducerConsumerRemoteFreesAcrossAllSizes) {
  fresh_settings(1);
  constexpr int kItems = 300000;
  Queue q(4096);
  std::atomic<bool> bad{false};
  std::thread producer([&] {
    std::mt19937 rng(1);
    for (int i = 0; i < kItems; ++i) {
      size_t s = pick_size(rng) + 9;  // room for the size stamp and a tail byte after it
      auto* p = static_cast<uint8_t*>(hak_malloc(s));
      if (!p) {
        bad = true;
        return;
      }
      memcpy(p, &s, sizeof s);
      p[s - 1] = static_cast<uint8_t>(s);
      while (!q.push(p)) std::this_thread::yield();
    }
    while (!q.push(nullptr)) std::this_thread::yield();
  });
  std::thread consumer([&] {
    int got = 0;
    for (;;) {
      void* p = q.pop();
      if (!p) {
        if (got == kItems) break;
        std::this_thread::yield();
        continue;
      }
      size_t s;
      memcpy(&s, p, sizeof s);
      if (hak_malloc_usable_size(p) < s ||
          static_cast<uint8_t*>(p)[s - 1] != static_cast<uint8_t>(s)) {
        if (!bad.exchange(true)) {
          hk::RegionInfo r;
          bool found = hk::region_of(p, &r);
          ADD_FAILURE() << "block " << p << " stamp " << std::hex << s << std::dec << " usable "
                        << hak_malloc_usable_size(p) << " region " << found << " "
                        << hk::kind_name(r.kind) << " cls " << r.cls << " got " << got;
        }
      }
      hak_free(p);
      ++got;
    }
  });
  producer.join();
  consumer.join();
  EXPECT_FALSE(bad);
  // Both threads exited: nothing live remains, only the warm pool.
  for (auto& r : hk::regions())
    if (r.kind != hk::Kind::kLarge) {
      EXPECT_EQ(r.active, 0u) << hk::kind_name(r.kind) << " class " << r.cls;
      EXPECT_TRUE(r.warm);
    }
  EXPECT_EQ(count_regions(hk::Kind::kLarge), 0u);
}

TEST(Threads, ChurnWithExitsAndAdoption) {
  fresh_settings(1);
  std::vector<void*> survivors;
  std::mutex mu;
  for (int round = 0; round < 20; ++round) {
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t) {
      ts.emplace_back([&, round, t] {
        std::mt19937 rng(round * 16 + t);
        std::vector<void*> mine;
        for (int i = 0; i < 5000; ++i) {
          mine.push_back(hak_malloc(rng() % 2048));
          if (rng() % 3 == 0) {
            size_t j = rng() % mine.size();
            hak_free(mine[j]);
            mine[j] = mine.back();
            mine.pop_back();
          }
        }
        // Leave some blocks behind for other threads to free after we exit.
        std::lock_guard<std::mutex> g(mu);
        for (size_t i = 0; i < mine.size(); ++i) {
          if (i % 2)
            survivors.push_back(mine[i]);
          else
            hak_free(mine[i]);
        }
      });
    }
    for (auto& t : ts) t.join();
    // Free half the survivors from a new thread (into abandoned regions).
    std::thread([&] {
      std::lock_guard<std::mutex> g(mu);
      for (size_t i = 0; i < survivors.size() / 2; ++i) hak_free(survivors[i]);
      survivors.erase(survivors.begin(), survivors.begin() + survivors.size() / 2);
    }).join();
  }
  std::thread([&] {
    for (void* p : survivors) hak_free(p);
  }).join();
  for (auto& r : hk::regions()) {
    EXPECT_EQ(r.active, 0u);
    EXPECT_TRUE(r.warm);
  }
}

TEST(Threads, ForkWhileOtherThreadsAllocate) {
  fresh_settings(1);
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; ++t)
    ts.emplace_back([&] {
      std::vector<void*> v;
      while (!stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < 100; ++i) v.push_back(hak_malloc(i * 37 % 3000));
        for (void* p : v) hak_free(p);
        v.clear();
      }
    });
  for (int i = 0; i < 20; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      // The child allocates, frees, and allocates from a new thread. Only hakmem is used
      // here: a sanitizer's own allocator may be locked by a thread that no longer exists.
      static void* v[10000];
      for (int k = 0; k < 10000; ++k) v[k] = hak_malloc(k % 5000);
      for (void* p : v) hak_free(p);
      if (!kSanitized) {  // sanitizer runtimes cannot start threads after a multi-threaded fork
        pthread_t th;
        pthread_create(
            &th, nullptr,
            [](void*) -> void* {
              hak_free(hak_malloc(100));
              return nullptr;
            },
            nullptr);
        pthread_join(th, nullptr);
      }
      _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "child " << i << " status " << status;
  }
  stop = true;
  for (auto& t : ts) t.join();
}

namespace {
// Block p as a remote free leaves it when its thread stops after its state step and
// before pushing it (free_remote: kLive -> kRemote). The destructor undoes it: in the
// parent that free never happened.
class CaughtMidPush {
 public:
  explicit CaughtMidPush(void* p)
      : ss_(hak::region_of(p)),
        state_(hak::region_state(ss_, reinterpret_cast<uintptr_t>(p) - ss_->base())) {
    uint8_t live = hak::kLive;
    EXPECT_TRUE(state_.compare_exchange_strong(live, hak::kRemote));
  }
  ~CaughtMidPush() { state_.store(hak::kLive); }
  CaughtMidPush(const CaughtMidPush&) = delete;
  CaughtMidPush& operator=(const CaughtMidPush&) = delete;

 private:
  hak::Region* ss_;
  std::atomic<uint8_t>& state_;
};

// Runs fn() in a fork child, whose exit status is its result; returns waitpid's status.
template <class Fn>
int status_of_fork_child(Fn fn) {
  pid_t pid = fork();
  if (pid == 0) _exit(fn());
  int status = -1;
  if (pid > 0) waitpid(pid, &status, 0);
  return status;
}
}  // namespace

// A fork child inherits the regions of the parent's other threads, which do not exist
// in it: the regions are given up at the fork, so the child's frees of those blocks
// release them (down to the warm reserve), as after a thread exit. blocks[0] is being
// freed by a third thread at the fork, caught between its remote bit and the push (as
// free_remote leaves it): the child completes that free.
TEST(Threads, ForkChildReleasesTheRegionsOfThreadsItLost) {
  fresh_settings(1);
  constexpr size_t kSize = 3000;
  constexpr int kBlocks = 2000;  // 3 mid regions of 3072-byte blocks
  const int cls = static_cast<int>(hak::size_to_class(kSize));
  std::vector<void*> blocks(kBlocks);
  std::atomic<bool> filled{false}, done{false};
  std::thread holder([&] {
    for (void*& p : blocks) p = hak_malloc(kSize);
    filled = true;
    while (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    for (void* p : blocks) hak_free(p);
  });
  while (!filled) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  ASSERT_GE(count_regions(hk::Kind::kMid, cls), 3u);
  int status;
  {
    CaughtMidPush caught(blocks[0]);
    status = status_of_fork_child([&] {
      for (size_t i = 1; i < blocks.size(); ++i) hak_free(blocks[i]);
      // Exit status: the regions of that class still mapped (1: the pool's reserve).
      return static_cast<int>(count_regions(hk::Kind::kMid, cls));
    });
  }
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 1) << "mid regions of class " << cls << " left in the child";
  done = true;
  holder.join();
}

// The same race into the forking thread's own region: a thread the child lost had counted
// its remote free of blocks[0] (the kRemote state) but not pushed it. The child completes
// that free, so its own frees empty the region (without it, active_local kept counting the
// block and the region was never empty again).
TEST(Threads, ForkChildCompletesAFreeCaughtMidPushIntoItsOwnRegion) {
  fresh_settings(1);
  constexpr size_t kSize = 3000;
  constexpr int kBlocks = 2000;  // 3 mid regions of 3072-byte blocks
  const int cls = static_cast<int>(hak::size_to_class(kSize));
  std::vector<void*> blocks(kBlocks);
  for (void*& p : blocks) p = hak_malloc(kSize);
  ASSERT_GE(count_regions(hk::Kind::kMid, cls), 3u);
  void* caught = blocks[kBlocks / 2];
  int status;
  {
    CaughtMidPush mid(caught);
    status = status_of_fork_child([&] {
      for (void* p : blocks)
        if (p != caught) hak_free(p);
      // Exit status: the regions of that class still mapped (1: this context's warm one).
      return static_cast<int>(count_regions(hk::Kind::kMid, cls));
    });
  }
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 1) << "mid regions of class " << cls << " left in the child";
  for (void* p : blocks) hak_free(p);
}

// A double free racing between the owner and another thread: the owner's free loaded kLive,
// the remote free's CAS made it kRemote and pushed the block, then the owner's store
// made it kFree, and the owner's box handed it out again (kLive). The collection finds it
// not kRemote: it reports the double free, and neither lists the block (it is live) nor
// counts it again.
TEST(Threads, CollectionReportsABlockItsOwnerFreedAtTheSameTime) {
  fresh_settings(1, ultra_default(), /*report=*/true);
  hk::Context* owner = hk::context_create();
  hk::Context* other = hk::context_create();
  void *keep, *p;
  {
    hk::Use use(owner);
    keep = hak_malloc(64);
    p = hak_malloc(64);
  }
  {
    hk::Use use(other);
    hak_free(p);
  }
  hak::Region* region = hak::region_of(p);
  std::atomic<uint8_t>& state =
      hak::region_state(region, reinterpret_cast<uintptr_t>(p) - region->base());
  ASSERT_EQ(state.load(), hak::kRemote);
  state.store(hak::kLive);  // the owner's racing free, then its malloc of the block again
  uint64_t errors = hk::error_count();
  {
    hk::Use use(owner);
    hak_collect();
  }
  EXPECT_EQ(hk::error_count(), errors + 1) << "the racing double free is reported";
  hk::RegionInfo r;
  ASSERT_TRUE(hk::region_of(p, &r));
  EXPECT_EQ(r.active, 2u) << "both blocks are live";
  EXPECT_EQ(r.pending, 0u);
  {
    hk::Use use(owner);
    void* q = hak_malloc(64);
    EXPECT_NE(q, p) << "a live block handed out again";
    hak_free(q);
    hak_free(p);
    hak_free(keep);
  }
  EXPECT_EQ(hk::error_count(), errors + 1) << "p was live: its free is no double free";
  hk::context_exit(other);
  hk::context_exit(owner);
}

namespace {
pthread_key_t g_late_key;
std::atomic<int> g_late_ok{0};
void late_destructor(void* p) {
  // Runs during thread teardown, possibly after hakmem's own exit hook.
  hak_free(p);
  void* q = hak_malloc(48);
  if (q) {
    memset(q, 1, 48);
    hak_free(q);
    g_late_ok.fetch_add(1);
  }
}
}  // namespace

TEST(Threads, AllocationFromOtherTlsDestructors) {
  pthread_key_create(&g_late_key, late_destructor);
  for (int i = 0; i < 50; ++i) {
    std::thread([] {
      void* p = hak_malloc(100);
      pthread_setspecific(g_late_key, p);
      thread_local std::vector<int> cxx_tls(10);  // a C++ TLS destructor too
      cxx_tls[0] = 1;
    }).join();
  }
  EXPECT_EQ(g_late_ok.load(), 50);
}

TEST(Threads, FirstCallIsAFreeOfAnotherThreadsBlock) {
  void* p = hak_malloc(700);
  std::thread([p] { hak_free(p); }).join();
  void* big = hak_malloc(1 << 20);
  std::thread([big] { hak_free(big); }).join();
}
