#include "replication/machine_callbacks.h"

#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "replication/raft_shim.h"

namespace shardtx::replication {

void ReleaseTo(StateMachine* machine, uint64_t term, uint64_t index, const void* data, size_t len) {
  machine->Release(
      ReleasedEntry{term, index, std::string_view(static_cast<const char*>(data), len)});
}

int SnapshotOf(StateMachine* machine, void** data, size_t* len) {
  absl::StatusOr<std::string> state = machine->Snapshot();
  if (!state.ok()) return 1;
  void* buf = rs_buffer_alloc(state->size());
  if (buf == nullptr) return 1;
  if (!state->empty()) std::memcpy(buf, state->data(), state->size());
  *data = buf;
  *len = state->size();
  return 0;
}

int RestoreInto(StateMachine* machine, const void* data, size_t len) {
  return machine->Restore(std::string_view(static_cast<const char*>(data), len)).ok() ? 0 : 1;
}

}  // namespace shardtx::replication
