#include "txn/txn_records.h"

#include "engine/log_record.h"
#include "util/coding.h"

namespace shardtx::txn {

namespace {

// A list of shard numbers: a varint count, then each as a varint.
void PutShardList(std::string* out, const std::vector<uint32_t>& shards) {
  PutVarint64(out, shards.size());
  for (uint32_t s : shards) PutVarint64(out, s);
}

bool GetShardList(absl::string_view* in, std::vector<uint32_t>* shards) {
  uint64_t n;
  if (!GetVarint64(in, &n) || n > in->size()) return false;  // each takes at least a byte
  shards->clear();
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t s;
    if (!GetVarint64(in, &s) || s > UINT32_MAX) return false;
    shards->push_back(static_cast<uint32_t>(s));
  }
  return true;
}

}  // namespace

std::string EncodePrepare(const PrepareRecord& r) {
  std::string out;
  PutFixed64(&out, r.txn_id);
  PutLengthPrefixed(&out, r.name);
  PutFixed64(&out, r.snapshot_ts);
  PutShardList(&out, r.participants);
  engine::EncodeWrites(&out, r.writes);
  if (!r.read_keys.empty() || !r.read_ranges.empty()) {
    PutVarint64(&out, r.read_keys.size());
    for (const std::string& k : r.read_keys) PutLengthPrefixed(&out, k);
    PutVarint64(&out, r.read_ranges.size());
    for (const auto& [lower, upper] : r.read_ranges) {
      PutLengthPrefixed(&out, lower);
      PutLengthPrefixed(&out, upper);
    }
  }
  return out;
}

bool DecodePrepare(absl::string_view in, PrepareRecord* r) {
  absl::string_view name;
  if (!GetFixed64(&in, &r->txn_id) || !GetLengthPrefixed(&in, &name) ||
      !GetFixed64(&in, &r->snapshot_ts) || !GetShardList(&in, &r->participants)) {
    return false;
  }
  if (!engine::DecodeWrites(&in, &r->writes)) return false;
  r->name = std::string(name);
  r->read_keys.clear();
  r->read_ranges.clear();
  if (in.empty()) return true;
  uint64_t n;
  // Each key takes at least its one-byte length prefix, each range two.
  if (!GetVarint64(&in, &n) || n > in.size()) return false;
  for (uint64_t i = 0; i < n; ++i) {
    absl::string_view k;
    if (!GetLengthPrefixed(&in, &k)) return false;
    r->read_keys.emplace_back(k);
  }
  if (!GetVarint64(&in, &n) || n > in.size() / 2) return false;
  for (uint64_t i = 0; i < n; ++i) {
    absl::string_view lower, upper;
    if (!GetLengthPrefixed(&in, &lower) || !GetLengthPrefixed(&in, &upper)) return false;
    r->read_ranges.emplace_back(std::string(lower), std::string(upper));
  }
  return in.empty() && (!r->read_keys.empty() || !r->read_ranges.empty());
}

std::string EncodeTxnTs(uint64_t txn_id, uint64_t ts) {
  std::string out;
  PutFixed64(&out, txn_id);
  PutFixed64(&out, ts);
  return out;
}

bool DecodeTxnTs(absl::string_view in, uint64_t* txn_id, uint64_t* ts) {
  return GetFixed64(&in, txn_id) && GetFixed64(&in, ts) && in.empty();
}

std::string EncodeTxn(uint64_t txn_id) {
  std::string out;
  PutFixed64(&out, txn_id);
  return out;
}

bool DecodeTxn(absl::string_view in, uint64_t* txn_id) {
  return GetFixed64(&in, txn_id) && in.empty();
}

std::string EncodeDecision(const DecisionRecord& r) {
  std::string out;
  PutFixed64(&out, r.txn_id);
  out.push_back(r.commit ? 1 : 0);
  PutFixed64(&out, r.commit_ts);
  PutShardList(&out, r.shards);
  return out;
}

bool DecodeDecision(absl::string_view in, DecisionRecord* r) {
  if (!GetFixed64(&in, &r->txn_id) || in.empty()) return false;
  const uint8_t c = static_cast<uint8_t>(in[0]);
  in.remove_prefix(1);
  if (c > 1) return false;
  r->commit = c == 1;
  return GetFixed64(&in, &r->commit_ts) && GetShardList(&in, &r->shards) && in.empty();
}

std::string PreparedTableKey(uint64_t txn_id) {
  std::string k(8, '\0');
  for (int i = 0; i < 8; ++i) k[i] = static_cast<char>(txn_id >> (56 - 8 * i));
  return k;
}

}  // namespace shardtx::txn
