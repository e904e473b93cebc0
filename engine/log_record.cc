#include "engine/log_record.h"

#include "util/coding.h"

namespace shardtx::engine {

void EncodeWrites(std::string* dst, const std::vector<Write>& writes) {
  PutVarint64(dst, writes.size());
  for (const Write& w : writes) {
    dst->push_back(static_cast<char>(w.op));
    PutLengthPrefixed(dst, w.key);
    PutLengthPrefixed(dst, w.op == WriteOp::kPut ? absl::string_view(w.value) : "");
  }
}

bool DecodeWrites(absl::string_view* in, std::vector<Write>* writes) {
  uint64_t n;
  if (!GetVarint64(in, &n) || n > in->size() / 3) return false;  // each entry >= 3 bytes
  writes->clear();
  writes->reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    if (in->empty()) return false;
    uint8_t op = static_cast<uint8_t>((*in)[0]);
    in->remove_prefix(1);
    if (op != 1 && op != 2) return false;
    absl::string_view key, value;
    if (!GetLengthPrefixed(in, &key) || !GetLengthPrefixed(in, &value)) return false;
    writes->push_back(Write{static_cast<WriteOp>(op), std::string(key), std::string(value)});
  }
  return true;
}

void SetCommitTs(std::string* commit_record, uint64_t commit_ts) {
  EncodeFixed64(commit_record->data(), commit_ts);
}

std::string EncodeCommit(uint64_t commit_ts, uint64_t txn_id, const std::vector<Write>& writes) {
  std::string out;
  // One allocation: an upper bound of the encoding (a varint takes at most 10 bytes).
  size_t size = 16 + 10;
  for (const Write& w : writes) size += 1 + 10 + w.key.size() + 10 + w.value.size();
  out.reserve(size);
  PutFixed64(&out, commit_ts);
  PutFixed64(&out, txn_id);
  EncodeWrites(&out, writes);
  return out;
}

bool DecodeCommitHeader(absl::string_view in, uint64_t* commit_ts, uint64_t* txn_id) {
  return GetFixed64(&in, commit_ts) && GetFixed64(&in, txn_id);
}

bool DecodeCommit(absl::string_view in, uint64_t* commit_ts, uint64_t* txn_id,
                  std::vector<Write>* writes) {
  return GetFixed64(&in, commit_ts) && GetFixed64(&in, txn_id) && DecodeWrites(&in, writes) &&
         in.empty();
}

std::string EncodeClosedTs(const ClosedTs& closed) {
  std::string out;
  PutFixed64(&out, closed.ts);
  PutFixed64(&out, static_cast<uint64_t>(closed.leader_time_us));
  return out;
}

bool DecodeClosedTs(absl::string_view in, ClosedTs* closed) {
  uint64_t time = 0;
  if (!GetFixed64(&in, &closed->ts) || !GetFixed64(&in, &time) || !in.empty()) return false;
  closed->leader_time_us = static_cast<int64_t>(time);
  return true;
}

void AppendEntryRecord(std::string* entry, uint8_t type, absl::string_view payload) {
  entry->push_back(static_cast<char>(type));
  PutLengthPrefixed(entry, payload);
}

bool DecodeEntryRecords(absl::string_view entry, std::vector<EntryRecord>* records) {
  records->clear();
  if (entry.empty()) return false;
  while (!entry.empty()) {
    const uint8_t type = static_cast<uint8_t>(entry[0]);
    entry.remove_prefix(1);
    absl::string_view payload;
    if (type == kRaftEntry || !GetLengthPrefixed(&entry, &payload)) return false;
    records->push_back({type, payload});
  }
  return true;
}

std::string EncodeRaftEntry(const RaftPosition& position, absl::string_view entry) {
  std::string out;
  out.reserve(16 + entry.size());
  PutFixed64(&out, position.index);
  PutFixed64(&out, position.term);
  out.append(entry.data(), entry.size());
  return out;
}

bool DecodeRaftEntry(absl::string_view in, RaftPosition* position, absl::string_view* entry) {
  if (!GetFixed64(&in, &position->index) || !GetFixed64(&in, &position->term)) return false;
  *entry = in;
  return true;
}

}  // namespace shardtx::engine
