// txbench: durable transactions per second of shardtx next to RocksDB TransactionDB and LMDB,
// in the same run on the same disk (issue 5). See txbench.h and --help.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "bench/txbench/config.h"
#include "bench/txbench/txbench.h"

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "txbench: shardtx vs RocksDB vs LMDB, same keys, values, durability and threads.\n"
      "  txbench --engines=shardtx,rocksdb,lmdb,fsync --workload=single --threads=64\n"
      "  txbench --make-bench --json=results.json --chart=results.png\n"
      "Flag names take '-' or '_' (--shards-per-txn = --shards_per_txn).");
  std::vector<std::string> args(argv, argv + argc);
  args = txbench::NormalizeFlagNames(args);
  std::vector<char*> normalized;
  for (std::string& a : args) normalized.push_back(a.data());
  normalized.push_back(nullptr);
  absl::ParseCommandLine(argc, normalized.data());
  auto config = txbench::ConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "txbench: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  return txbench::Run(*config, stdout).exit_code;
}
