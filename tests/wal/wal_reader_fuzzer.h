// The WalReader fuzz harness (wal_reader_fuzzer.cc), shared by the libFuzzer target and the
// deterministic driver that runs in the default test suite (wal_reader_fuzz_driver.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>

namespace shardtx::wal::fuzz {

// Builds segment files from `data` in a scratch directory, reads them with WalReader and checks
// what it returns; sometimes reopens a WalWriter after the tail and reads again. Aborts (after
// printing what went wrong and calling `failure_hook`) if a property is violated.
void RunOne(const uint8_t* data, size_t size);

// A structured input in RunOne's format that reaches deep into the reader: valid headers and
// records, with gaps, damage and torn records sprinkled in. Deterministic in `rng`.
std::string GenerateInput(std::mt19937_64& rng);

// Called before aborting, e.g. to save the input. May be null.
extern void (*failure_hook)();

// Outcomes so far (for the driver's summary).
struct Counters {
  uint64_t inputs = 0;
  uint64_t open_failed = 0;
  uint64_t data_loss = 0;
  uint64_t clean_end = 0;
  uint64_t torn = 0;
  uint64_t lost = 0;
  uint64_t records = 0;
  uint64_t reopened = 0;
};
const Counters& counters();

}  // namespace shardtx::wal::fuzz
