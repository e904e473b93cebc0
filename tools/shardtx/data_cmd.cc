// `dump DIR` and `load DIR FILE`: every key and value in key order, in the format of
// dump_format.h, and back. Both open the database as a host does (Database::Open: its lock,
// recovery); dump reads in one snapshot transaction, load commits in bounded transactions after
// checking the whole file.
#include <sys/stat.h>

#include <cstdio>
#include <fstream>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "shardtx/database.h"
#include "shardtx/iterator.h"
#include "tools/shardtx/cli.h"
#include "tools/shardtx/commands.h"
#include "tools/shardtx/dump_format.h"

namespace shardtx::cli {
namespace {

// A --from/--to key: a dump field if it starts with '"' or "0x", else the text itself.
absl::StatusOr<std::string> KeyArgument(const std::string& text) {
  if (!absl::StartsWith(text, "\"") && !absl::StartsWith(text, "0x")) return text;
  absl::string_view in = text;
  absl::StatusOr<std::string> key = ParseField(&in);
  if (key.ok() && !in.empty()) return absl::InvalidArgumentError("trailing bytes");
  return key;
}

void ReadOnlyTuning(Options* o) {
  // Dump adds nothing of its own: no checkpoint while it runs or when it closes (Open itself
  // may still write: recovery's resolutions, a format-1 upgrade).
  o->checkpoint_on_close = false;
  o->checkpoint_wal_bytes = 0;
  o->checkpoint_overlay_bytes = 0;
  o->checkpoint_interval = absl::ZeroDuration();
}

// Walks the dump file: the header, each record (to `each`, with its line number), the trailer.
// kInvalidArgument names the line of the first thing wrong.
template <typename Fn>
absl::Status WalkDump(const std::string& path, Fn each) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::string line, key, value;
  uint64_t number = 0, records = 0;
  bool ended = false;
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(path, " line ", number, ": ", why));
  };
  while (std::getline(in, line)) {
    ++number;
    if (number == 1) {
      if (line != kDumpHeader) return bad(absl::StrCat("expected '", kDumpHeader, "'"));
      continue;
    }
    if (ended) return bad("after the '# end' line");
    uint64_t count;
    if (ParseDumpTrailer(line, &count)) {
      if (count != records) {
        return bad(absl::StrCat("the dump says ", count, " records, the file holds ", records));
      }
      ended = true;
      continue;
    }
    if (absl::Status s = ParseRecordLine(line, &key, &value); !s.ok()) return bad(s.message());
    if (key.empty() || key.size() > kMaxKeySize) {
      return bad(absl::StrCat("key of ", key.size(), " bytes (1 to ", kMaxKeySize, ")"));
    }
    if (key.size() + value.size() + 64 > Options().max_txn_bytes) {
      return bad(absl::StrCat("value of ", value.size(), " bytes: above a transaction's limit"));
    }
    ++records;
    if (absl::Status s = each(key, value); !s.ok()) return s;
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  if (number == 0) return absl::InvalidArgumentError(absl::StrCat(path, ": empty"));
  if (!ended) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no '# end N records' line after line ", number, " (truncated?)"));
  }
  return absl::OkStatus();
}

}  // namespace

int RunDump(const Args& args) {
  auto pos = ParseArgs(args, {"from", "to", "hex"});
  if (!pos.ok()) return Fail(pos.status());
  if (pos->size() != 1) return Fail("usage: shardtx dump DIR [--from KEY] [--to KEY] [--hex]");
  IteratorOptions range;
  for (auto [flag, bound] :
       {std::pair{&FLAGS_from, &range.lower_bound}, std::pair{&FLAGS_to, &range.upper_bound}}) {
    auto key = KeyArgument(absl::GetFlag(*flag));
    if (!key.ok()) return Fail(absl::StrCat("bad key argument: ", key.status().message()));
    *bound = std::move(*key);
  }
  const bool hex = absl::GetFlag(FLAGS_hex);
  auto db = OpenDatabase((*pos)[0], ReadOnlyTuning);
  if (!db.ok()) return Fail(db.status());

  StdoutBuffer out;
  uint64_t records = 0;
  absl::Status status;
  {
    Progress progress("dump: records", 0);
    std::unique_ptr<Transaction> txn = (*db)->Begin();
    std::unique_ptr<Iterator> it = txn->NewIterator(range);
    out.Line(kDumpHeader);
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      out.Line(absl::StrCat(EncodeField(it->key(), hex), " ", EncodeField(it->value(), hex)));
      if (++records % 4096 == 0) progress.Set(records);
    }
    status = it->status();
    it.reset();
    txn->Rollback().IgnoreError();
  }
  if (!status.ok()) {
    out.Flush();  // without the trailer: load refuses the incomplete dump
    return Fail(absl::StrCat("dump stopped after ", records, " records: ", status.message()));
  }
  out.Line(DumpTrailer(records));
  if (!out.Flush()) return Fail("writing the dump to stdout failed");
  if (absl::Status s = (*db)->Close(); !s.ok()) return Fail(s);
  return kExitOk;
}

int RunLoad(const Args& args) {
  auto pos = ParseArgs(args, {"batch_keys", "batch_bytes", "create", "shards", "log_layout"});
  if (!pos.ok()) return Fail(pos.status());
  if (pos->size() != 2) return Fail("usage: shardtx load DIR FILE [--batch_keys N] ...");
  const std::string& dir = (*pos)[0];
  const std::string& file = (*pos)[1];
  const uint64_t batch_keys = absl::GetFlag(FLAGS_batch_keys);
  const uint64_t batch_bytes = absl::GetFlag(FLAGS_batch_bytes);
  if (batch_keys == 0 || batch_bytes == 0)
    return Fail("--batch_keys and --batch_bytes must be > 0");
  const absl::StatusOr<Options::LogLayout> layout =
      ParseLogLayout(absl::GetFlag(FLAGS_log_layout));
  if (!layout.ok()) return Fail(absl::StrCat("--log_layout: ", layout.status().message()));

  // The whole file is checked before anything is opened or written.
  uint64_t total = 0;
  absl::Status valid = WalkDump(file, [&](const std::string&, const std::string&) {
    ++total;
    return absl::OkStatus();
  });
  if (!valid.ok()) return Fail(absl::StrCat(valid.message(), " (nothing loaded)"));

  absl::StatusOr<std::unique_ptr<Database>> db;
  struct stat st;
  if (absl::GetFlag(FLAGS_create) && ::stat(dir.c_str(), &st) != 0) {
    Options options;
    options.path = dir;
    options.num_shards = absl::GetFlag(FLAGS_shards);
    options.log_layout = *layout;
    db = Database::Open(options);
  } else {
    auto info = InspectDb(dir);
    if (!info.ok()) return Fail(info.status());
    if (absl::StartsWith(info->partitioning, "explicit")) {
      return Fail(absl::StrCat(dir,
                               " places keys with its host's own function (explicit "
                               "partitioning), which the tool cannot know: load refused"));
    }
    db = OpenDatabase(dir);
  }
  if (!db.ok()) return Fail(db.status());

  Progress progress("load", total);
  uint64_t loaded = 0, txns = 0, in_batch = 0, batch_size = 0;
  std::unique_ptr<Transaction> txn;
  auto commit = [&]() -> absl::Status {
    if (txn == nullptr) return absl::OkStatus();
    absl::Status s = txn->Commit();
    txn.reset();
    if (!s.ok()) return s;
    ++txns;
    loaded += in_batch;
    in_batch = batch_size = 0;
    progress.Set(loaded);
    return absl::OkStatus();
  };
  absl::Status s = WalkDump(file, [&](const std::string& key, const std::string& value) {
    if (txn != nullptr &&
        (in_batch >= batch_keys || batch_size + key.size() + value.size() > batch_bytes)) {
      if (absl::Status c = commit(); !c.ok()) return c;
    }
    if (txn == nullptr) txn = (*db)->Begin();
    ++in_batch;
    batch_size += key.size() + value.size();
    return txn->Put(key, value);
  });
  if (s.ok()) s = commit();
  txn.reset();
  progress.Done();
  absl::Status closed = (*db)->Close();
  if (!s.ok()) {
    std::fprintf(stderr,
                 "shardtx: load failed after %llu records (%llu transactions committed): %s\n",
                 static_cast<unsigned long long>(loaded), static_cast<unsigned long long>(txns),
                 std::string(s.message()).c_str());
    return kExitProblem;
  }
  if (!closed.ok()) return Fail(closed);
  std::printf("loaded %llu records in %llu transactions\n", static_cast<unsigned long long>(loaded),
              static_cast<unsigned long long>(txns));
  return kExitOk;
}

}  // namespace shardtx::cli
