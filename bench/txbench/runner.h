// The runner: for each planned run, a fresh directory, the engine opened, the keys preloaded,
// then N client threads running transactions for S seconds (aborts retried and counted), and
// the figures the report prints.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/txbench/config.h"

namespace txbench {

struct RunResult {
  RunSpec spec;
  uint32_t shards = 1;
  DurabilityMode durability = DurabilityMode::kSync;
  absl::Status status;  // not OK: the run failed (the figures below are not valid)
  std::string engine_description;
  std::string notes;  // Engine::Notes() after the run

  uint64_t committed = 0;    // committed transactions in the measured window
  uint64_t aborts = 0;       // aborted attempts (each retried)
  uint64_t ops = 0;          // Gets and Puts of committed transactions
  uint64_t cross_shard = 0;  // committed transactions that wrote on several shards
  double elapsed_s = 0;      // from the start signal until every client stopped

  double txn_per_s = 0, ops_per_s = 0, abort_pct = 0;
  // Latency of committed transactions, first attempt to successful commit, microseconds.
  double p50_us = 0, p95_us = 0, p99_us = 0, p999_us = 0;
  std::optional<double> fsyncs_per_s;  // nullopt: the engine cannot tell
  double cpu_cores = 0;                // this process's CPU seconds per second
  double other_cores = 0;              // the rest of the machine's
  double preload_s = 0;
  std::optional<int64_t> bank_total;  // bank: the checked total
};

// Called with a transient progress text (nullptr-free); the runner prints nothing itself.
using ProgressFn = std::function<void(const std::string& line, bool transient)>;

// Runs one spec. Never throws; failures are in RunResult::status.
RunResult RunOne(const Config& config, const RunSpec& spec, const ProgressFn& progress);

// The fsync floor: one thread, pwrite of `record_size` bytes at the next offset of a
// preallocated (written and synced) file, then fdatasync; `seconds` long.
RunResult RunFsyncFloor(const Config& config, uint32_t record_size, double seconds,
                        const ProgressFn& progress);

// The size of one commit record of the single workload, for the fsync floor: shards_per_txn
// writes of key_size + value_size bytes plus 64 bytes of framing.
uint32_t RecordSize(const Config& config);

// Whether the rocksdb engine uses one TransactionDB per shard for this workload.
bool RocksdbPerShard(const Config& config, Workload workload);

}  // namespace txbench
