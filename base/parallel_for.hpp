#pragma once
// Runs body(i) for i in [0, count) on `threads` threads (the caller's included), each taking
// the next index when it is free. The first exception stops the hand-out of indices and is
// rethrown once every thread has stopped.
#include <cstdint>
#include <functional>

namespace gf::base {

void parallel_for(int64_t count, int threads, const std::function<void(int64_t)>& body);

// The one meaning of a `threads` setting (--threads, train.threads): threads > 0 as given;
// 0 = automatic: OMP_NUM_THREADS when set (`launch --threads` and SLURM job scripts share
// cores out through it), else this node's hardware threads shared by the `processes_on_node`
// processes of the job (at least 1).
int resolve_threads(int threads, int processes_on_node = 1);

}  // namespace gf::base
