// thread_pool: every index exactly once, exceptions propagate, nesting and reuse work.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "qmr/core/thread_pool.hpp"

TEST_CASE("parallel_for visits every index exactly once", "[thread_pool]") {
  for (unsigned threads : {1u, 2u, 4u, 7u}) {
    qmr::thread_pool pool(threads);
    REQUIRE(pool.size() == threads);
    for (std::int64_t n : {0, 1, 5, 64, 1000, 12345}) {
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(n));
      for (int rep = 0; rep < 3; ++rep)  // the same pool runs job after job
        pool.parallel_for(n, [&](std::int64_t lo, std::int64_t hi) {
          REQUIRE(lo < hi);
          for (std::int64_t i = lo; i < hi; ++i) hits[static_cast<std::size_t>(i)].fetch_add(1);
        });
      for (auto& h : hits) REQUIRE(h.load() == 3);
    }
  }
}

TEST_CASE("parallel_for respects begin, end and grain", "[thread_pool]") {
  qmr::thread_pool pool(3);
  std::atomic<std::int64_t> sum{0};
  pool.parallel_for(10, 110, 7, [&](std::int64_t lo, std::int64_t hi) {
    REQUIRE(hi - lo <= 7);
    REQUIRE(lo >= 10);
    REQUIRE(hi <= 110);
    for (std::int64_t i = lo; i < hi; ++i) sum += i;
  });
  REQUIRE(sum.load() == (10 + 109) * 100 / 2);
}

TEST_CASE("an exception in a chunk reaches the caller and the pool stays usable", "[thread_pool]") {
  qmr::thread_pool pool(4);
  REQUIRE_THROWS_WITH(pool.parallel_for(0, 1000, 1,
                                        [&](std::int64_t lo, std::int64_t) {
                                          if (lo == 500) throw std::runtime_error("chunk 500 failed");
                                        }),
                      "chunk 500 failed");
  std::atomic<int> count{0};
  pool.parallel_for(100, [&](std::int64_t lo, std::int64_t hi) { count += static_cast<int>(hi - lo); });
  REQUIRE(count.load() == 100);
}

TEST_CASE("nested parallel_for runs inline instead of deadlocking", "[thread_pool]") {
  qmr::thread_pool pool(3);
  std::atomic<int> count{0};
  pool.parallel_for(0, 8, 1, [&](std::int64_t, std::int64_t) {
    pool.parallel_for(10, [&](std::int64_t lo, std::int64_t hi) { count += static_cast<int>(hi - lo); });
  });
  REQUIRE(count.load() == 80);
}

TEST_CASE("the free parallel_for runs serially without a pool", "[thread_pool]") {
  int calls = 0;
  qmr::parallel_for(nullptr, 50, [&](std::int64_t lo, std::int64_t hi) {
    ++calls;
    REQUIRE(lo == 0);
    REQUIRE(hi == 50);
  });
  REQUIRE(calls == 1);
}

TEST_CASE("jobs back to back and after idle gaps see the caller's data and publish their own", "[thread_pool]") {
  // Workers spin between close jobs and sleep after a gap longer than their spin:
  // both paths must hand over the job's inputs and return its outputs (plain,
  // non-atomic writes to distinct slots, read by the caller after parallel_for).
  qmr::thread_pool pool(3);
  std::vector<std::int64_t> in(64), out(64);  // [64] each
  std::int64_t expected = 0, got = 0;
  for (int job = 0; job < 600; ++job) {
    for (std::size_t i = 0; i < in.size(); ++i) in[i] = job * 64 + static_cast<std::int64_t>(i);
    pool.parallel_for(0, 64, 1, [&](std::int64_t lo, std::int64_t hi) {
      for (std::int64_t i = lo; i < hi; ++i) out[static_cast<std::size_t>(i)] = 2 * in[static_cast<std::size_t>(i)];
    });
    for (std::size_t i = 0; i < out.size(); ++i) {
      got += out[i];
      expected += 2 * (job * 64 + static_cast<std::int64_t>(i));
    }
    if (job % 100 == 99) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // past the spin: workers sleep
  }
  REQUIRE(got == expected);
}
