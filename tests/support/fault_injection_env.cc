#include "tests/support/fault_injection_env.h"

#include <algorithm>
#include <filesystem>
#include <random>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace shardtx::testing {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kSectorSize = 512;

std::string Normalize(const std::string& path) {
  std::string p = fs::path(path).lexically_normal().string();
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

std::string Parent(const std::string& normalized) {
  std::string parent = fs::path(normalized).parent_path().string();
  return parent.empty() ? "." : parent;
}

bool IsUnder(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         path[dir.size()] == '/';
}

absl::Status FsError(absl::string_view op, const std::string& path, const std::error_code& ec) {
  return absl::InternalError(
      absl::StrCat("FaultInjectionEnv: ", op, " ", path, ": ", ec.message()));
}

}  // namespace

// One file's changes since it was last durable. Guarded by the env's mu_.
struct FaultInjectionEnv::FileState {
  struct Undo {
    uint64_t offset = 0;
    uint64_t old_size = 0;  // file size before the change
    std::string old_bytes;  // the bytes the write overwrote (within old_size)
    std::string new_bytes;  // kept for the file's last write only (for tearing)
    bool is_write = false;  // false: Allocate (a size change)
  };
  std::string path;        // where the file is now; empty once removed
  std::vector<Undo> undo;  // unsynced changes, oldest first
};

// A directory change not yet made durable by SyncDir.
struct FaultInjectionEnv::DirOp {
  enum Kind { kCreateFile, kCreateDir, kRename, kRemove } kind;
  std::string path;  // created or removed path; the target of a rename
  std::string from;  // the source of a rename
  // kRemove: the removed file's durable content. kRename: the durable content of the file the
  // rename replaced, if any.
  std::optional<std::string> content;
  std::vector<std::string> dirs;  // directories still to be synced before the change is durable
};

class FaultInjectionEnv::TrackedFile final : public File {
 public:
  TrackedFile(FaultInjectionEnv* env, std::string path, std::unique_ptr<File> base,
              std::shared_ptr<FileState> state)
      : env_(env), path_(std::move(path)), base_(std::move(base)), state_(std::move(state)) {}

  absl::Status Write(uint64_t offset, absl::string_view data) override {
    return env_->FileWrite(this, offset, data);
  }
  absl::StatusOr<size_t> Read(uint64_t offset, size_t n, char* scratch) override {
    return env_->FileRead(this, offset, n, scratch);
  }
  absl::Status Sync() override { return env_->FileSync(this); }
  absl::Status Allocate(uint64_t offset, uint64_t len) override {
    return env_->FileAllocate(this, offset, len);
  }
  absl::StatusOr<uint64_t> Size() override { return env_->FileSize(this); }

 private:
  friend class FaultInjectionEnv;
  FaultInjectionEnv* const env_;
  const std::string path_;  // as opened (renames do not update it; used in messages)
  const std::unique_ptr<File> base_;
  const std::shared_ptr<FileState> state_;
};

FaultInjectionEnv::FaultInjectionEnv(Env* base) : FaultInjectionEnv(base, Options()) {}

FaultInjectionEnv::FaultInjectionEnv(Env* base, Options options) : base_(base), options_(options) {}

FaultInjectionEnv::~FaultInjectionEnv() = default;

// ---- Crash, faults, counters ----

absl::Status FaultInjectionEnv::CheckAlive(const std::string& what) const {
  if (crashed_) return absl::InternalError(absl::StrCat("simulated crash: ", what));
  return absl::OkStatus();
}

absl::Status FaultInjectionEnv::BeginOp(Op op, const std::string& what) {
  RETURN_IF_ERROR(CheckAlive(what));
  ++ops_;
  if (crash_countdown_ > 0 && --crash_countdown_ == 0) {
    crash_status_ = CrashLocked(crash_options_);
    return absl::InternalError(absl::StrCat("simulated crash: ", what));
  }
  if (fault_.has_value() && (fault_->ops & op) != 0) {
    bool fail = fault_failing_;
    if (!fail && --fault_countdown_ == 0) {
      fail = true;
      if (fault_->persistent) {
        fault_failing_ = true;
      }
    }
    if (fail) {
      ++faults_injected_;
      const absl::StatusCode code = fault_->code;
      if (!fault_failing_) fault_.reset();  // a one-shot fault is used up
      if (code == absl::StatusCode::kResourceExhausted) {
        return absl::ResourceExhaustedError(
            absl::StrCat("injected disk full (ENOSPC): ", what, ": No space left on device"));
      }
      return absl::Status(code, absl::StrCat("injected I/O error: ", what));
    }
  }
  return absl::OkStatus();
}

absl::Status FaultInjectionEnv::SimulateCrash(const CrashOptions& options) {
  MutexLock l(&mu_);
  crash_status_ = CrashLocked(options);
  return crash_status_;
}

absl::Status FaultInjectionEnv::SimulateCrash() { return SimulateCrash(CrashOptions()); }

void FaultInjectionEnv::CrashAfter(uint64_t n) { CrashAfter(n, CrashOptions()); }

void FaultInjectionEnv::CrashAfter(uint64_t n, const CrashOptions& options) {
  MutexLock l(&mu_);
  crash_countdown_ = std::max<uint64_t>(n, 1);
  crash_options_ = options;
}

bool FaultInjectionEnv::crashed() const {
  MutexLock l(&mu_);
  return crashed_;
}

absl::Status FaultInjectionEnv::crash_status() const {
  MutexLock l(&mu_);
  return crash_status_;
}

void FaultInjectionEnv::Reset() {
  MutexLock l(&mu_);
  crashed_ = false;
  crash_countdown_ = 0;
  fault_.reset();
  fault_failing_ = false;
  allocate_disabled_ = false;
  for (auto& [path, state] : files_) state->undo.clear();
  dir_ops_.clear();
}

void FaultInjectionEnv::InjectFault(const Fault& fault) {
  MutexLock l(&mu_);
  fault_ = fault;
  fault_countdown_ = std::max<uint64_t>(fault.after, 1);
  fault_failing_ = false;
}

void FaultInjectionEnv::FailAfter(uint64_t n, bool persistent) {
  InjectFault(Fault{n, persistent, kAllOps, absl::StatusCode::kInternal});
}

void FaultInjectionEnv::FailSyncAfter(uint64_t n, bool persistent) {
  InjectFault(Fault{n, persistent, kSync, absl::StatusCode::kInternal});
}

void FaultInjectionEnv::FailWriteAfter(uint64_t n, bool persistent) {
  InjectFault(Fault{n, persistent, kWrite, absl::StatusCode::kInternal});
}

void FaultInjectionEnv::DiskFullAfter(uint64_t n, bool persistent) {
  InjectFault(Fault{n, persistent, kWrite | kAllocate, absl::StatusCode::kResourceExhausted});
}

void FaultInjectionEnv::ClearFaults() {
  MutexLock l(&mu_);
  fault_.reset();
  fault_failing_ = false;
}

uint64_t FaultInjectionEnv::faults_injected() const {
  MutexLock l(&mu_);
  return faults_injected_;
}

void FaultInjectionEnv::DisableAllocate(bool disabled) {
  MutexLock l(&mu_);
  allocate_disabled_ = disabled;
}

uint64_t FaultInjectionEnv::ops() const {
  MutexLock l(&mu_);
  return ops_;
}

uint64_t FaultInjectionEnv::unsynced_bytes() const {
  MutexLock l(&mu_);
  uint64_t n = 0;
  for (const auto& [path, state] : files_) {
    for (const FileState::Undo& u : state->undo) {
      if (u.is_write) n += std::max(u.old_bytes.size(), u.new_bytes.size());
    }
  }
  return n;
}

absl::Status FaultInjectionEnv::FlipBit(const std::string& path, uint64_t offset, int bit) {
  MutexLock l(&mu_);
  ASSIGN_OR_RETURN(std::unique_ptr<File> f, base_->OpenFile(path, OpenMode::kReadWrite));
  char c;
  ASSIGN_OR_RETURN(size_t got, f->Read(offset, 1, &c));
  if (got != 1) {
    return absl::OutOfRangeError(absl::StrCat("FlipBit: ", path, " has no byte at ", offset));
  }
  c = static_cast<char>(c ^ (1 << (bit & 7)));
  return f->Write(offset, absl::string_view(&c, 1));
}

// ---- Crash: put the disk into the state the durability model says survives ----

absl::Status FaultInjectionEnv::CrashLocked(const CrashOptions& options) {
  crashed_ = true;
  crash_countdown_ = 0;
  absl::Status result;
  // File contents first, at their current paths; then directory changes, newest first, which
  // moves files back to where they durably were.
  uint64_t index = 0;
  for (auto& [path, state] : files_) {
    ++index;
    if (state->undo.empty()) continue;
    absl::Status s =
        RevertFile(state.get(), options.tear, options.seed ^ (index * 0x9E3779B97F4A7C15ull));
    if (result.ok()) result = s;
  }
  for (auto it = dir_ops_.rbegin(); it != dir_ops_.rend(); ++it) {
    absl::Status s = UndoDirOp(*it);
    if (result.ok()) result = s;
  }
  dir_ops_.clear();
  return result;
}

absl::StatusOr<std::string> FaultInjectionEnv::ReadWholeFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<File> f, base_->OpenFile(path, OpenMode::kRead));
  ASSIGN_OR_RETURN(uint64_t size, f->Size());
  std::string content(size, '\0');
  ASSIGN_OR_RETURN(size_t got, f->Read(0, size, content.data()));
  content.resize(got);
  return content;
}

absl::Status FaultInjectionEnv::WriteWholeFile(const std::string& path,
                                               const std::string& content) {
  {
    ASSIGN_OR_RETURN(std::unique_ptr<File> f, base_->OpenFile(path, OpenMode::kCreate));
    RETURN_IF_ERROR(f->Write(0, content));
  }
  std::error_code ec;
  fs::resize_file(path, content.size(), ec);
  if (ec) return FsError("resize", path, ec);
  return absl::OkStatus();
}

namespace {

// Undoes `undo` (oldest first) on `content`, newest first.
template <class UndoList>
void ApplyUndo(const UndoList& undo, std::string* content) {
  for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
    if (it->is_write) {
      const uint64_t end = it->offset + it->old_bytes.size();
      if (content->size() < end) content->resize(end);
      content->replace(it->offset, it->old_bytes.size(), it->old_bytes);
    }
    content->resize(it->old_size);
  }
}

}  // namespace

absl::StatusOr<std::optional<std::string>> FaultInjectionEnv::DurableContent(
    const std::string& path) {
  absl::StatusOr<std::string> content = ReadWholeFile(path);
  if (absl::IsNotFound(content.status())) return std::optional<std::string>();
  if (!content.ok()) return content.status();
  auto it = files_.find(path);
  if (it != files_.end()) ApplyUndo(it->second->undo, &*content);
  return std::optional<std::string>(std::move(*content));
}

absl::Status FaultInjectionEnv::RevertFile(FileState* state, Tear tear, uint64_t seed) {
  std::vector<FileState::Undo> undo;
  undo.swap(state->undo);
  const std::string path = state->path;
  if (undo.empty() || path.empty()) return absl::OkStatus();
  absl::StatusOr<std::string> read = ReadWholeFile(path);
  if (absl::IsNotFound(read.status())) return absl::OkStatus();  // removed behind our back
  if (!read.ok()) return read.status();
  std::string content = std::move(*read);
  const uint64_t original_size = content.size();
  uint64_t low = original_size;  // the lowest offset that may change
  for (const FileState::Undo& u : undo) low = std::min({low, u.offset, u.old_size});
  ApplyUndo(undo, &content);

  const FileState::Undo* last = nullptr;
  for (const FileState::Undo& u : undo) {
    if (u.is_write) last = &u;
  }
  if (last != nullptr && tear != Tear::kNone && !last->new_bytes.empty()) {
    std::mt19937_64 rng(seed);
    const uint64_t off = last->offset;
    const uint64_t len = last->new_bytes.size();
    uint64_t keep = len;
    if (tear == Tear::kPrefix) {
      // Candidate ends: the write's start and end, and every sector boundary inside it.
      std::vector<uint64_t> ends = {0};
      for (uint64_t b = (off / kSectorSize + 1) * kSectorSize; b < off + len; b += kSectorSize) {
        ends.push_back(b - off);
      }
      ends.push_back(len);
      keep = ends[rng() % ends.size()];
    }
    if (keep > 0) {
      if (content.size() < off + keep) content.resize(off + keep);
      char* dst = content.data() + off;
      switch (tear) {
        case Tear::kPrefix:
          std::copy_n(last->new_bytes.data(), keep, dst);
          break;
        case Tear::kZeros:
          std::fill_n(dst, keep, '\0');
          break;
        case Tear::kGarbage:
          for (uint64_t i = 0; i < keep; ++i) dst[i] = static_cast<char>(rng());
          break;
        case Tear::kNone:
          break;
      }
    }
  }

  if (content.size() > low) {
    ASSIGN_OR_RETURN(std::unique_ptr<File> f, base_->OpenFile(path, OpenMode::kReadWrite));
    RETURN_IF_ERROR(f->Write(low, absl::string_view(content.data() + low, content.size() - low)));
  }
  if (content.size() != original_size) {
    std::error_code ec;
    fs::resize_file(path, content.size(), ec);
    if (ec) return FsError("resize", path, ec);
  }
  return absl::OkStatus();
}

absl::Status FaultInjectionEnv::UndoDirOp(const DirOp& op) {
  std::error_code ec;
  switch (op.kind) {
    case DirOp::kCreateFile: {
      SetState(op.path, nullptr);
      absl::Status s = base_->RemoveFile(op.path);
      return absl::IsNotFound(s) ? absl::OkStatus() : s;
    }
    case DirOp::kCreateDir: {
      for (auto it = files_.begin(); it != files_.end();) {
        if (IsUnder(it->first, op.path)) {
          it->second->path.clear();
          it = files_.erase(it);
        } else {
          ++it;
        }
      }
      fs::remove_all(op.path, ec);
      if (ec) return FsError("remove_all", op.path, ec);
      return absl::OkStatus();
    }
    case DirOp::kRename: {
      if (fs::exists(op.path, ec)) {
        RETURN_IF_ERROR(base_->RenameFile(op.path, op.from));
        auto it = files_.find(op.path);
        std::shared_ptr<FileState> moved = it == files_.end() ? nullptr : it->second;
        SetState(op.path, nullptr);
        SetState(op.from, std::move(moved));
      }
      if (op.content.has_value()) RETURN_IF_ERROR(WriteWholeFile(op.path, *op.content));
      return absl::OkStatus();
    }
    case DirOp::kRemove:
      SetState(op.path, nullptr);
      if (!op.content.has_value()) return absl::OkStatus();
      return WriteWholeFile(op.path, *op.content);
  }
  return absl::OkStatus();
}

void FaultInjectionEnv::SetState(const std::string& path, std::shared_ptr<FileState> state) {
  auto it = files_.find(path);
  if (it != files_.end()) {
    if (it->second == state) return;
    it->second->path.clear();
    files_.erase(it);
  }
  if (state == nullptr) return;
  state->path = path;
  files_[path] = std::move(state);
}

std::shared_ptr<FaultInjectionEnv::FileState> FaultInjectionEnv::StateFor(const std::string& path) {
  auto it = files_.find(path);
  if (it != files_.end()) return it->second;
  SetState(path, std::make_shared<FileState>());
  return files_[path];
}

// ---- File operations ----

absl::Status FaultInjectionEnv::FileWrite(TrackedFile* f, uint64_t offset, absl::string_view data) {
  MutexLock l(&mu_);
  RETURN_IF_ERROR(BeginOp(kWrite, "write " + f->path_));
  FileState::Undo u;
  u.is_write = true;
  u.offset = offset;
  ASSIGN_OR_RETURN(u.old_size, f->base_->Size());
  if (offset < u.old_size) {
    u.old_bytes.resize(std::min<uint64_t>(data.size(), u.old_size - offset));
    ASSIGN_OR_RETURN(size_t got, f->base_->Read(offset, u.old_bytes.size(), u.old_bytes.data()));
    u.old_bytes.resize(got);
  }
  u.new_bytes.assign(data.data(), data.size());
  // Even a failed write may have changed some bytes: remember how to undo it either way.
  std::vector<FileState::Undo>& undo = f->state_->undo;
  for (FileState::Undo& older : undo) older.new_bytes.clear();  // only the last one tears
  undo.push_back(std::move(u));
  return f->base_->Write(offset, data);
}

absl::StatusOr<size_t> FaultInjectionEnv::FileRead(TrackedFile* f, uint64_t offset, size_t n,
                                                   char* scratch) {
  MutexLock l(&mu_);
  RETURN_IF_ERROR(CheckAlive("read " + f->path_));
  return f->base_->Read(offset, n, scratch);
}

absl::Status FaultInjectionEnv::FileSync(TrackedFile* f) {
  MutexLock l(&mu_);
  absl::Status s = BeginOp(kSync, "sync " + f->path_);
  if (s.ok() && options_.sync_base) s = f->base_->Sync();
  if (crashed_) return s;
  if (s.ok()) {
    f->state_->undo.clear();
  } else {
    // The kernel dropped the pages it could not write: the unsynced writes are gone.
    absl::Status reverted = RevertFile(f->state_.get(), Tear::kNone, 0);
    if (!reverted.ok()) return reverted;
  }
  return s;
}

absl::Status FaultInjectionEnv::FileAllocate(TrackedFile* f, uint64_t offset, uint64_t len) {
  MutexLock l(&mu_);
  RETURN_IF_ERROR(BeginOp(kAllocate, "fallocate " + f->path_));
  if (allocate_disabled_) {
    return absl::UnimplementedError(
        absl::StrCat("fallocate ", f->path_, ": not supported (FaultInjectionEnv)"));
  }
  FileState::Undo u;
  ASSIGN_OR_RETURN(u.old_size, f->base_->Size());
  absl::Status s = f->base_->Allocate(offset, len);
  f->state_->undo.push_back(std::move(u));
  return s;
}

absl::StatusOr<uint64_t> FaultInjectionEnv::FileSize(TrackedFile* f) {
  MutexLock l(&mu_);
  RETURN_IF_ERROR(CheckAlive("size " + f->path_));
  return f->base_->Size();
}

// ---- Env ----

absl::StatusOr<std::unique_ptr<File>> FaultInjectionEnv::OpenFile(const std::string& path,
                                                                  OpenMode mode) {
  const std::string p = Normalize(path);
  MutexLock l(&mu_);
  RETURN_IF_ERROR(BeginOp(kOpen, "open " + p));
  const bool creates = mode == OpenMode::kCreate || mode == OpenMode::kCreateExclusive;
  const bool existed = !creates || base_->FileExists(p).ok();
  ASSIGN_OR_RETURN(std::unique_ptr<File> base_file, base_->OpenFile(p, mode));
  if (!existed) {
    SetState(p, std::make_shared<FileState>());
    dir_ops_.push_back(DirOp{DirOp::kCreateFile, p, "", std::nullopt, {Parent(p)}});
  }
  return std::unique_ptr<File>(new TrackedFile(this, p, std::move(base_file), StateFor(p)));
}

absl::Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  const std::string p = Normalize(path);
  MutexLock l(&mu_);
  RETURN_IF_ERROR(BeginOp(kRemove, "remove " + p));
  ASSIGN_OR_RETURN(std::optional<std::string> content, DurableContent(p));
  RETURN_IF_ERROR(base_->RemoveFile(p));
  SetState(p, nullptr);
  dir_ops_.push_back(DirOp{DirOp::kRemove, p, "", std::move(content), {Parent(p)}});
  return absl::OkStatus();
}

absl::Status FaultInjectionEnv::RenameFile(const std::string& from, const std::string& to) {
  const std::string f = Normalize(from);
  const std::string t = Normalize(to);
  MutexLock l(&mu_);
  RETURN_IF_ERROR(BeginOp(kRename, "rename " + f + " to " + t));
  ASSIGN_OR_RETURN(std::optional<std::string> replaced, DurableContent(t));
  RETURN_IF_ERROR(base_->RenameFile(f, t));
  auto it = files_.find(f);
  std::shared_ptr<FileState> moved = it == files_.end() ? nullptr : it->second;
  SetState(f, nullptr);
  SetState(t, std::move(moved));
  std::vector<std::string> dirs = {Parent(f)};
  if (Parent(t) != dirs[0]) dirs.push_back(Parent(t));
  dir_ops_.push_back(DirOp{DirOp::kRename, t, f, std::move(replaced), std::move(dirs)});
  return absl::OkStatus();
}

absl::Status FaultInjectionEnv::CreateDir(const std::string& path) {
  const std::string p = Normalize(path);
  MutexLock l(&mu_);
  RETURN_IF_ERROR(BeginOp(kCreateDir, "mkdir " + p));
  const bool existed = base_->FileExists(p).ok();
  RETURN_IF_ERROR(base_->CreateDir(p));
  if (!existed) dir_ops_.push_back(DirOp{DirOp::kCreateDir, p, "", std::nullopt, {Parent(p)}});
  return absl::OkStatus();
}

absl::Status FaultInjectionEnv::SyncDir(const std::string& path) {
  const std::string p = Normalize(path);
  MutexLock l(&mu_);
  RETURN_IF_ERROR(BeginOp(kSyncDir, "fsync dir " + p));
  if (options_.sync_base) RETURN_IF_ERROR(base_->SyncDir(p));
  for (DirOp& op : dir_ops_)
    op.dirs.erase(std::remove(op.dirs.begin(), op.dirs.end(), p), op.dirs.end());
  dir_ops_.erase(std::remove_if(dir_ops_.begin(), dir_ops_.end(),
                                [](const DirOp& op) { return op.dirs.empty(); }),
                 dir_ops_.end());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> FaultInjectionEnv::ListDir(const std::string& path) {
  MutexLock l(&mu_);
  RETURN_IF_ERROR(CheckAlive("list " + path));
  return base_->ListDir(path);
}

absl::Status FaultInjectionEnv::FileExists(const std::string& path) {
  MutexLock l(&mu_);
  RETURN_IF_ERROR(CheckAlive("stat " + path));
  return base_->FileExists(path);
}

absl::StatusOr<std::unique_ptr<FileLock>> FaultInjectionEnv::LockFile(const std::string& path) {
  MutexLock l(&mu_);
  RETURN_IF_ERROR(CheckAlive("lock " + path));
  return base_->LockFile(path);
}

}  // namespace shardtx::testing
