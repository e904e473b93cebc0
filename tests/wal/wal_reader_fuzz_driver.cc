// Runs the WalReader fuzz harness without libFuzzer, so that the default (g++) test suite
// exercises it: a fixed corpus of structured inputs, then N random ones, all deterministic in
// the seed (SHARDTX_SEED). Mutations of the structured inputs reach the parsing paths; raw
// random bytes the framing.
//
//   wal_reader_fuzz_driver [--iterations=N] [--write_corpus=DIR] [FILE...]
//
// With FILEs, runs each (e.g. a crash input saved by libFuzzer) and nothing else. With
// --write_corpus, also writes the structured inputs to DIR as a libFuzzer seed corpus. On a
// violated property the input is saved to wal_reader_fuzz_failure.bin before aborting.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "tests/wal/wal_reader_fuzzer.h"

namespace {

std::string g_current;

void SaveCurrent() {
  std::ofstream out("wal_reader_fuzz_failure.bin", std::ios::binary | std::ios::trunc);
  out.write(g_current.data(), static_cast<std::streamsize>(g_current.size()));
  std::fprintf(stderr, "input saved to wal_reader_fuzz_failure.bin (%zu bytes)\n",
               g_current.size());
}

void Run(const std::string& input) {
  g_current = input;
  shardtx::wal::fuzz::RunOne(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t iterations = 1500;
  std::string corpus_dir;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (absl::StartsWith(arg, "--iterations=")) {
      if (!absl::SimpleAtoi(arg.substr(13), &iterations)) return 2;
    } else if (absl::StartsWith(arg, "--write_corpus=")) {
      corpus_dir = arg.substr(15);
    } else {
      files.push_back(arg);
    }
  }
  shardtx::wal::fuzz::failure_hook = SaveCurrent;
  if (!files.empty()) {
    for (const std::string& f : files) {
      std::ifstream in(f, std::ios::binary);
      Run(std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()));
      std::printf("%s: ok\n", f.c_str());
    }
    return 0;
  }

  uint64_t seed = 20240601;
  if (const char* s = std::getenv("SHARDTX_SEED")) {
    if (!absl::SimpleAtoi(s, &seed)) return 2;
  }
  std::printf("wal_reader_fuzz_driver: SHARDTX_SEED=%llu iterations=%llu\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(iterations));
  std::fflush(stdout);

  // The fixed corpus: trivial inputs, then structured ones from a fixed seed.
  const std::vector<std::string> fixed = {"", std::string(1, '\0'), std::string(64, '\0'),
                                          std::string(300, '\xff'), "\x83\x00\x02\x00\x00\x10"};
  for (const std::string& in : fixed) Run(in);
  std::mt19937_64 corpus_rng(1);
  for (int i = 0; i < 200; ++i) {
    const std::string in = shardtx::wal::fuzz::GenerateInput(corpus_rng);
    if (!corpus_dir.empty()) {
      std::ofstream out(corpus_dir + "/seed_" + std::to_string(i), std::ios::binary);
      out.write(in.data(), static_cast<std::streamsize>(in.size()));
    }
    Run(in);
  }

  // Random inputs: structured ones with a few mutated bytes, and some raw bytes.
  std::mt19937_64 rng(seed);
  for (uint64_t i = 0; i < iterations; ++i) {
    std::string in;
    if (rng() % 8 == 0) {
      in.resize(rng() % 2048);
      for (char& c : in) c = static_cast<char>(rng());
    } else {
      in = shardtx::wal::fuzz::GenerateInput(rng);
      const uint64_t mutations = rng() % 4;
      for (uint64_t m = 0; m < mutations && !in.empty(); ++m) {
        in[rng() % in.size()] = static_cast<char>(rng());
      }
    }
    Run(in);
  }
  const auto& c = shardtx::wal::fuzz::counters();
  std::printf(
      "%llu inputs: %llu open failed, %llu data loss, %llu clean ends (%llu torn, %llu lost), "
      "%llu writer reopens, %llu records returned\n",
      static_cast<unsigned long long>(c.inputs), static_cast<unsigned long long>(c.open_failed),
      static_cast<unsigned long long>(c.data_loss), static_cast<unsigned long long>(c.clean_end),
      static_cast<unsigned long long>(c.torn), static_cast<unsigned long long>(c.lost),
      static_cast<unsigned long long>(c.reopened), static_cast<unsigned long long>(c.records));
  return 0;
}
