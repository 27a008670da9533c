// A small persistent thread pool whose only operation is a blocking parallel_for over an index range.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "error.hpp"

namespace qmr {

// A job is one parallel_for, split into chunks that the caller and the workers
// claim from an atomic counter. Between jobs a worker first spins on the job
// counter for spin_time, then sleeps on a condition variable; the caller likewise
// spins before it sleeps waiting for the workers. Decoding one token runs ~170
// parallel_fors a few microseconds apart, and a futex wake-up costs 10-50 us on a
// virtual machine, as much as a whole small GEMV. parallel_for does not allocate.
// A parallel_for issued while another one runs (nested, or from a second thread)
// runs serially on its caller instead of waiting.
class thread_pool {
 public:
  // n_threads counts the calling thread: thread_pool(1) starts no worker.
  explicit thread_pool(unsigned n_threads = std::max(1u, std::thread::hardware_concurrency())) {
    n_threads = std::max(1u, n_threads);
    try {
      workers_.reserve(n_threads - 1);
      for (unsigned i = 1; i < n_threads; ++i) workers_.emplace_back([this] { worker_loop(); });
    } catch (const std::exception& e) {
      // Out of threads or memory (a thread limit, a huge count): the workers already started
      // sleep on wake_, and unwinding would destroy it under them (pthread_cond_destroy waits
      // for its waiters: a hang) and then their joinable std::threads (std::terminate). Stop
      // and join them first, then report the count asked for.
      const std::size_t started = workers_.size();
      stop_workers();
      throw error("cannot start a pool of " + std::to_string(n_threads) + " threads (started " +
                  std::to_string(started + 1) + "): " + e.what());
    }
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() { stop_workers(); }

  unsigned size() const noexcept { return static_cast<unsigned>(workers_.size()) + 1; }

  // Calls fn(lo, hi) on disjoint sub-ranges covering [begin, end), each at most
  // `grain` long, and returns when all are done. The first exception thrown by
  // fn is rethrown here after the others finish.
  template <class F>
  void parallel_for(std::int64_t begin, std::int64_t end, std::int64_t grain, F&& fn) {
    if (end <= begin) return;
    grain = std::max<std::int64_t>(1, grain);
    std::unique_lock<std::mutex> busy(submit_mutex_, std::try_to_lock);
    if (!busy.owns_lock() || workers_.empty() || end - begin <= grain) {
      for (std::int64_t lo = begin; lo < end; lo += grain) fn(lo, std::min(end, lo + grain));
      return;
    }
    using fn_t = std::remove_reference_t<F>;
    // fn may be a const lvalue: the context pointer drops const only to travel as void*.
    job_ = job{begin, end, grain, const_cast<void*>(static_cast<const void*>(&fn)),
               [](void* ctx, std::int64_t lo, std::int64_t hi) { (*static_cast<fn_t*>(ctx))(lo, hi); }};
    next_.store(begin, std::memory_order_relaxed);
    // No worker runs between jobs (the last one waited for all of them), so error_
    // and active_ need no lock here; the release below publishes them with job_.
    error_ = nullptr;
    active_.store(static_cast<unsigned>(workers_.size()), std::memory_order_relaxed);
    {
      // Under the mutex, so that a worker about to sleep sees either the new job or
      // the notification.
      std::lock_guard<std::mutex> lock(mutex_);
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    run_chunks();
    if (!spin_until([this] { return active_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [this] { return active_.load(std::memory_order_acquire) == 0; });
    }
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

  template <class F>
  void parallel_for(std::int64_t count, F&& fn) {
    // Four chunks per thread balance uneven rows without much claiming traffic.
    const std::int64_t chunks = static_cast<std::int64_t>(size()) * 4;
    parallel_for(0, count, std::max<std::int64_t>(1, (count + chunks - 1) / chunks), std::forward<F>(fn));
  }

 private:
  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_.store(true, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  struct job {
    std::int64_t begin = 0, end = 0, grain = 1;
    void* ctx = nullptr;
    void (*call)(void*, std::int64_t, std::int64_t) = nullptr;
  };

  void run_chunks() {
    for (;;) {
      const std::int64_t lo = next_.fetch_add(job_.grain, std::memory_order_relaxed);
      if (lo >= job_.end) return;
      try {
        job_.call(job_.ctx, lo, std::min(job_.end, lo + job_.grain));
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
        next_.store(job_.end, std::memory_order_relaxed);  // stop handing out chunks
      }
    }
  }

  // Spinning this long between jobs covers the gaps of a decode step (norms, RoPE,
  // attention of one token: a few to tens of microseconds) and costs an idle pool
  // at most this much CPU per job.
  static constexpr std::chrono::microseconds spin_time{200};

  // Polls ready() for up to spin_time; whether it became true.
  template <class Ready>
  static bool spin_until(Ready&& ready) {
    const auto deadline = std::chrono::steady_clock::now() + spin_time;
    for (;;) {
      // Reading the clock costs ~20 ns: check it once per 64 polls.
      for (int i = 0; i < 64; ++i) {
        if (ready()) return true;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        asm volatile("yield");
#endif
      }
      if (std::chrono::steady_clock::now() >= deadline) return false;
    }
  }

  void worker_loop() {
    std::uint64_t seen = 0;
    for (;;) {
      const auto ready = [&] {
        return stopping_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen;
      };
      if (!spin_until(ready)) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, ready);
      }
      if (stopping_.load(std::memory_order_acquire)) return;
      seen = generation_.load(std::memory_order_acquire);
      run_chunks();
      if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        // The caller may be between its check and its wait: notify under the mutex.
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_one();
      }
    }
  }

  std::vector<std::thread> workers_;
  std::mutex submit_mutex_;  // held for the whole of one parallel_for
  std::mutex mutex_;         // pairs the sleeps on wake_/done_ with their notifications; guards error_ in a job
  std::condition_variable wake_, done_;
  std::atomic<std::uint64_t> generation_{0};  // bumped once per job
  std::atomic<unsigned> active_{0};           // workers that have not finished the current job
  std::atomic<bool> stopping_{false};
  std::exception_ptr error_;
  job job_;
  std::atomic<std::int64_t> next_{0};
};

// The grain that cuts [0, count) into chunks_per_thread chunks per thread, each of at
// least min_work (items of work_per_item). Where that minimum cuts the count of chunks,
// it stays a multiple of the thread count, so that no thread gets a chunk more than
// another: a 896x896 GEMV at 2^18 multiply-adds per chunk was 4 chunks of 293, 293, 293
// and 17 rows, 586 rows for one of 2 threads and 310 for the other (2 x 448 now). Below
// one chunk per thread, as many chunks as reach min_work (at least one).
inline std::int64_t split_grain(std::int64_t threads, std::int64_t count, std::int64_t work_per_item,
                                std::int64_t min_work, std::int64_t chunks_per_thread) {
  threads = std::max<std::int64_t>(1, threads);
  work_per_item = std::max<std::int64_t>(1, work_per_item);
  const std::int64_t min_items = (min_work + work_per_item - 1) / work_per_item;
  std::int64_t chunks = threads * std::max<std::int64_t>(1, chunks_per_thread);
  while (chunks > threads && count / chunks < min_items) chunks -= threads;
  if (count / chunks < min_items) chunks = std::max<std::int64_t>(1, count / min_items);  // min_items >= 1 here
  return std::max<std::int64_t>(1, (count + chunks - 1) / chunks);
}

// The smallest chunk of a matmul split over the pool, in multiply-adds: handing a chunk
// to a sleeping worker costs 10-50 us on a loaded 2-core machine, as much as ~256K FMAs
// at decode speed. Measured on the bundled model (hidden 256, every matrix <= 262K
// weights), 2 threads: 544 tok/s splitting at 64K, 1751 tok/s at 1M.
inline constexpr std::int64_t min_matmul_chunk_macs = std::int64_t{1} << 18;

// Runs fn over [0, count) on the pool, or serially when pool is null.
template <class F>
void parallel_for(thread_pool* pool, std::int64_t count, F&& fn) {
  if (pool) {
    pool->parallel_for(count, std::forward<F>(fn));
  } else if (count > 0) {
    fn(std::int64_t{0}, count);
  }
}

}  // namespace qmr
