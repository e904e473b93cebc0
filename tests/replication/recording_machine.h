// A state machine for the replication tests: it records the payloads a server releases, in order,
// and snapshots them; it counts what would be a safety violation (indexes not increasing, a
// restore that does not extend what the server had released).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "replication/simulated_group.h"

namespace shardtx::replication {

class RecordingMachine : public StateMachine {
 public:
  void Release(const ReleasedEntry& entry) override {
    if (entry.index <= last_index_) violations_++;
    last_index_ = entry.index;
    sequence_.emplace_back(entry.payload);
  }

  // Layout: last index (8 bytes), then each payload as length (4 bytes) + bytes; host order (the
  // snapshot never leaves the process).
  absl::StatusOr<std::string> Snapshot() override {
    std::string out(reinterpret_cast<const char*>(&last_index_), sizeof last_index_);
    for (const std::string& p : sequence_) {
      uint32_t n = static_cast<uint32_t>(p.size());
      out.append(reinterpret_cast<const char*>(&n), sizeof n);
      out.append(p);
    }
    return out;
  }

  absl::Status Restore(std::string_view snapshot) override {
    if (snapshot.size() < sizeof(uint64_t)) return absl::DataLossError("short snapshot");
    uint64_t last = 0;
    std::memcpy(&last, snapshot.data(), sizeof last);
    std::vector<std::string> sequence;
    size_t pos = sizeof last;
    while (pos < snapshot.size()) {
      uint32_t n = 0;
      if (snapshot.size() - pos < sizeof n) return absl::DataLossError("torn snapshot");
      std::memcpy(&n, snapshot.data() + pos, sizeof n);
      pos += sizeof n;
      if (snapshot.size() - pos < n) return absl::DataLossError("torn snapshot");
      sequence.emplace_back(snapshot.substr(pos, n));
      pos += n;
    }
    // What this server released before is committed: the snapshot must extend it.
    if (sequence.size() < sequence_.size() ||
        !std::equal(sequence_.begin(), sequence_.end(), sequence.begin())) {
      violations_++;
    }
    if (last < last_index_) violations_++;
    sequence_ = std::move(sequence);
    last_index_ = last;
    restores_++;
    return absl::OkStatus();
  }

  const std::vector<std::string>& sequence() const { return sequence_; }
  uint64_t violations() const { return violations_; }
  uint64_t restores() const { return restores_; }

 private:
  std::vector<std::string> sequence_;
  uint64_t last_index_ = 0;
  uint64_t violations_ = 0;
  uint64_t restores_ = 0;
};

// Opens a group of `options.servers` RecordingMachines; machines[i] points at server i's.
inline std::unique_ptr<SimulatedGroup> OpenRecordingGroup(
    const SimulatedGroupOptions& options, std::vector<RecordingMachine*>* machines) {
  std::vector<std::unique_ptr<StateMachine>> owned;
  machines->clear();
  for (unsigned i = 0; i < options.servers; i++) {
    auto m = std::make_unique<RecordingMachine>();
    machines->push_back(m.get());
    owned.push_back(std::move(m));
  }
  absl::StatusOr<std::unique_ptr<SimulatedGroup>> group =
      SimulatedGroup::Open(options, std::move(owned));
  if (!group.ok()) return nullptr;
  return std::move(*group);
}

// True if `a` is a prefix of `b` or `b` of `a`.
inline bool PrefixRelated(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  size_t n = std::min(a.size(), b.size());
  return std::equal(a.begin(), a.begin() + n, b.begin());
}

}  // namespace shardtx::replication
