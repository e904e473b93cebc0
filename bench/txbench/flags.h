// txbench's command-line flags (defined in config.cc). Read them through ConfigFromFlags; tests
// set them with absl::SetFlag.
#pragma once

#include <cstdint>
#include <string>

#include "absl/flags/declare.h"

ABSL_DECLARE_FLAG(std::string, engines);
ABSL_DECLARE_FLAG(std::string, workload);
ABSL_DECLARE_FLAG(int, threads);
ABSL_DECLARE_FLAG(double, seconds);
ABSL_DECLARE_FLAG(uint32_t, shards);
ABSL_DECLARE_FLAG(uint32_t, shards_per_txn);
ABSL_DECLARE_FLAG(double, cross_pct);
ABSL_DECLARE_FLAG(uint64_t, keys);
ABSL_DECLARE_FLAG(uint32_t, key_size);
ABSL_DECLARE_FLAG(uint32_t, value_size);
ABSL_DECLARE_FLAG(double, zipf);
ABSL_DECLARE_FLAG(std::string, durability);
ABSL_DECLARE_FLAG(std::string, rocksdb_layout);
ABSL_DECLARE_FLAG(std::string, log_layout);
ABSL_DECLARE_FLAG(std::string, dir);
ABSL_DECLARE_FLAG(std::string, json);
ABSL_DECLARE_FLAG(std::string, csv);
ABSL_DECLARE_FLAG(std::string, chart);
ABSL_DECLARE_FLAG(bool, make_bench);
ABSL_DECLARE_FLAG(bool, long_bench);
ABSL_DECLARE_FLAG(int, reps);
ABSL_DECLARE_FLAG(double, warmup);
ABSL_DECLARE_FLAG(int, replicas);
ABSL_DECLARE_FLAG(int64_t, catchup_bytes);
ABSL_DECLARE_FLAG(bool, keep_data);
ABSL_DECLARE_FLAG(uint64_t, seed);
ABSL_DECLARE_FLAG(bool, progress);
