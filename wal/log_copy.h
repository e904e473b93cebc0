// CopyLog: a copy of a stretch of a live log, for backups. The copy is a log of its own that a
// WalReader reads to a clean end and a WalWriter continues, as after a clean Close.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "shardtx/env.h"
#include "wal/format.h"

namespace shardtx::wal {

// Copies the log in `from_dir` into `to_dir` (created; it must hold no segment yet): records
// from_lsn through to_lsn, in the segments that hold them. The first copied segment starts at
// from_lsn: its header (same number and salt, so the records' checksums hold) says so, and the
// records before it are left out. The last is cut right after record `to_lsn` and closed there
// with a close mark (format.h), so that the copy ends at a record boundary with nothing after
// it. With from_lsn > to_lsn nothing is needed: the copy is the header of the segment that
// holds (or is to hold) LSN to_lsn + 1, saying it starts there, and its close mark; the
// segment holding to_lsn need not exist any more. (With to_lsn 0, an empty log, likewise.)
// Segments are not padded to their preallocated size. Every record read is checked (checksum,
// LSN). Every file written is synced, and so is `to_dir`; the caller syncs its parent.
//
// REQUIRES: every record up to to_lsn has been written to `from_dir` (is durable, say), and
// nothing frees the segments from the one holding min(from_lsn, to_lsn + 1) on while this runs
// (a WAL pin). A writer may go on appending after to_lsn meanwhile: nothing beyond it is read
// into the copy. Streams the files: memory is one read buffer of 1 MiB (or one record, if
// larger).
//
// Errors: kDataLoss when the log no longer holds min(from_lsn, to_lsn + 1), its segments from
// there are not contiguous, or a record up to to_lsn is unreadable (naming file and offset); the
// Env's.
absl::Status CopyLog(Env* env, const std::string& from_dir, const std::string& to_dir, Lsn from_lsn,
                     Lsn to_lsn);

}  // namespace shardtx::wal
