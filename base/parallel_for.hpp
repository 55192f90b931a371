#pragma once
// Runs body(i) for i in [0, count) on `threads` threads (the caller's included), each taking
// the next index when it is free. The first exception stops the hand-out of indices and is
// rethrown once every thread has stopped.
#include <cstdint>
#include <functional>
#include <string>

namespace gf::base {

void parallel_for(int64_t count, int threads, const std::function<void(int64_t)>& body);

// The one meaning of a `threads` setting (--threads, train.threads): threads > 0 as given;
// 0 = automatic: OMP_NUM_THREADS when set (`launch --threads` and SLURM job scripts share
// cores out through it), else this node's hardware threads shared by the `processes_on_node`
// processes of the job (at least 1). A count over max_threads() (given, or from
// OMP_NUM_THREADS) is refused, naming `what`.
int resolve_threads(int threads, int processes_on_node = 1, const std::string& what = "--threads");

// The most threads one setting (threads, loader workers) may start: 4x this machine's
// hardware threads, at least 16. More only contend for the cores, and thousands exhaust the
// process's thread and memory limits (thread creation then fails or spins).
int max_threads();
// `count` when 0 <= count <= max_threads(), else throws "<what>: found N, expected ...".
int check_thread_count(int count, const std::string& what);

}  // namespace gf::base
