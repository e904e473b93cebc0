#include "replication/snapshot_stream.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "engine/lmdb_store.h"
#include "replication/snapshot.grpc.pb.h"
#include "replication/snapshot.pb.h"
#include "util/coding.h"
#include "util/mutex.h"
#include "util/status_macros.h"

namespace shardtx::replication {

namespace pb = ::shardtx::replication::snapshot;

namespace {

// Room for a message's fields around its Data bytes.
constexpr uint32_t kMessageSlack = 64u << 10;
constexpr uint32_t kMinChunk = 4u << 10, kMaxChunk = 16u << 20;
constexpr char kStoreFile[] = "lmdb/data.mdb";
constexpr char kTruncatedByTest[] = "stream truncated by SnapshotServerOptions::tamper";

absl::Status ErrnoStatus(absl::string_view op, const std::string& path, int err) {
  const std::string msg = absl::StrCat(op, " ", path, ": ", std::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(msg);
  if (err == EEXIST) return absl::AlreadyExistsError(msg);
  return absl::InternalError(msg);
}

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

void RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

std::string ParentOf(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

// An XXH3-64 streaming state (RAII).
class Hasher {
 public:
  Hasher() : state_(XXH3_createState()) {
    if (state_ != nullptr) XXH3_64bits_reset(state_);
  }
  ~Hasher() {
    if (state_ != nullptr) XXH3_freeState(state_);
  }
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  bool ok() const { return state_ != nullptr; }
  void Reset() { XXH3_64bits_reset(state_); }
  void Add(const void* p, size_t n) { XXH3_64bits_update(state_, p, n); }
  void Add(const std::string& s) { Add(s.data(), s.size()); }
  void Add64(uint64_t v) {
    char b[8];
    EncodeFixed64(b, v);
    Add(b, sizeof b);
  }
  // A string with its length, so that adjacent fields cannot trade bytes.
  void AddString(const std::string& s) {
    Add64(s.size());
    Add(s);
  }
  uint64_t Digest() const { return XXH3_64bits_digest(state_); }

 private:
  XXH3_state_t* state_;
};

// The check of a message: XXH3-64 over its sequence number, its kind and each field in a fixed
// encoding (not protobuf's bytes, which need not be canonical). `h` is scratch.
uint64_t CheckOf(const pb::Chunk& c, Hasher* h) {
  h->Reset();
  h->Add64(c.seq());
  h->Add64(static_cast<uint64_t>(c.body_case()));
  switch (c.body_case()) {
    case pb::Chunk::kHeader: {
      const pb::Header& x = c.header();
      h->AddString(x.cluster());
      h->Add64(x.shard());
      h->Add64(x.producer());
      h->Add64(x.raft_index());
      h->Add64(x.raft_term());
      h->Add64(x.wal_from_lsn());
      h->Add64(x.chunk_bytes());
      break;
    }
    case pb::Chunk::kFileStart:
      h->AddString(c.file_start().path());
      break;
    case pb::Chunk::kData:
      h->Add64(c.data().offset());
      h->AddString(c.data().bytes());
      break;
    case pb::Chunk::kFileEnd:
      h->Add64(c.file_end().size());
      break;
    case pb::Chunk::kTrailer: {
      const pb::Trailer& x = c.trailer();
      h->Add64(x.wal_cut_lsn());
      h->Add64(x.data_bytes());
      h->Add64(x.messages());
      h->Add64(x.digest());
      break;
    }
    case pb::Chunk::BODY_NOT_SET:
      break;
  }
  return h->Digest();
}

// A file descriptor, closed when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Close(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void Reset(int fd) {
    Close();
    fd_ = fd;
  }
  int Close() {
    int rc = 0;
    if (fd_ >= 0) rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// Reads up to n bytes, retrying short reads until n or end of file. Returns the count.
absl::StatusOr<size_t> ReadFull(int fd, char* p, size_t n, const std::string& what) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, p + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", what, errno);
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

absl::Status WriteFull(int fd, const char* p, size_t n, const std::string& what) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", what, errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return absl::OkStatus();
}

void IgnoreSigpipe() {
  struct sigaction old;
  if (::sigaction(SIGPIPE, nullptr, &old) == 0 && old.sa_handler == SIG_DFL) {
    ::signal(SIGPIPE, SIG_IGN);
  }
}

}  // namespace

// ------------------------------------------------------------------------------------------
// Server

class SnapshotServer::Impl final : public pb::SnapshotStream::Service {
 public:
  explicit Impl(const SnapshotServerOptions& options) : options_(options) {}

  absl::Status Start() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(options_.address, grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    builder.SetMaxSendMessageSize(static_cast<int>(options_.chunk_bytes + kMessageSlack));
    builder.SetMaxReceiveMessageSize(static_cast<int>(kMessageSlack));
    // A fixed flow-control window (the bound in the header): no BDP probe to grow it.
    builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES,
                               static_cast<int>(kStreamWindowBytes));
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat("snapshot server: cannot listen on ", options_.address));
    }
    const size_t colon = options_.address.rfind(':');
    host_ = colon == std::string::npos ? options_.address : options_.address.substr(0, colon);
    return absl::OkStatus();
  }

  void Stop() {
    std::unique_ptr<grpc::Server> server;
    {
      MutexLock l(&mu_);
      stopping_ = true;
      for (auto& [id, served] : shards_) {
        for (grpc::ServerContext* ctx : served.contexts) ctx->TryCancel();
      }
      server = std::move(server_);
    }
    if (options_.after_cancel) options_.after_cancel();
    if (server != nullptr) {
      // Cancels what is still running, then waits for the handlers.
      server->Shutdown(std::chrono::system_clock::now());
      server->Wait();
    }
  }

  absl::Status AddShard(uint32_t shard, SnapshotSource* source) {
    MutexLock l(&mu_);
    if (stopping_) return absl::FailedPreconditionError("snapshot server: stopped");
    auto [it, inserted] = shards_.try_emplace(shard);
    if (!inserted) {
      return absl::AlreadyExistsError(absl::StrCat("snapshot server: shard ", shard, " is served"));
    }
    it->second.source = source;
    return absl::OkStatus();
  }

  void RemoveShard(uint32_t shard) {
    MutexLock l(&mu_);
    auto it = shards_.find(shard);
    if (it == shards_.end()) return;
    Served& served = it->second;
    served.removing = true;
    for (grpc::ServerContext* ctx : served.contexts) ctx->TryCancel();
    if (options_.after_cancel) options_.after_cancel();
    while (!served.contexts.empty()) cv_.Wait();
    shards_.erase(it);
  }

  grpc::Status Fetch(grpc::ServerContext* ctx, const pb::FetchRequest* req,
                     grpc::ServerWriter<pb::Chunk>* writer) override {
    started_.fetch_add(1);
    grpc::Status s = FetchImpl(ctx, req, writer);
    if (s.error_code() == grpc::ABORTED && s.error_message() == kTruncatedByTest) {
      s = grpc::Status::OK;
    }
    (s.ok() ? completed_ : failed_).fetch_add(1);
    return s;
  }

  const SnapshotServerOptions options_;
  std::string host_;
  int port_ = 0;
  std::atomic<uint64_t> started_{0}, completed_{0}, failed_{0};

 private:
  struct Served {
    SnapshotSource* source = nullptr;
    bool removing = false;
    std::set<grpc::ServerContext*> contexts;
    std::multiset<engine::Lsn> pins;  // one per stream that pinned the WAL
  };

  // A stream's hold on its shard: registered until destroyed, its WAL pin with it.
  class Hold {
   public:
    Hold(Impl* impl, uint32_t shard, grpc::ServerContext* ctx)
        : impl_(impl), shard_(shard), ctx_(ctx) {}
    ~Hold() {
      MutexLock l(&impl_->mu_);
      --impl_->active_;
      impl_->cv_.SignalAll();
      // (Always there: RemoveShard waits for this stream before it erases the shard.)
      auto it = impl_->shards_.find(shard_);
      if (it == impl_->shards_.end()) return;
      UnpinLocked(it->second);
      it->second.contexts.erase(ctx_);
    }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    // Replaces this stream's pin (0: none) and tells the source the smallest of all.
    void Pin(engine::Lsn lsn) {
      MutexLock l(&impl_->mu_);
      Served& served = impl_->shards_.at(shard_);
      UnpinLocked(served);
      if (lsn != 0) {
        served.pins.insert(lsn);
        pinned_ = lsn;
      }
      served.source->PinWal(served.pins.empty() ? 0 : *served.pins.begin());
    }

   private:
    void UnpinLocked(Served& served) {
      if (pinned_ == 0) return;
      served.pins.erase(served.pins.find(pinned_));
      pinned_ = 0;
      served.source->PinWal(served.pins.empty() ? 0 : *served.pins.begin());
    }
    Impl* const impl_;
    const uint32_t shard_;
    grpc::ServerContext* const ctx_;
    engine::Lsn pinned_ = 0;
  };

  static grpc::Status Gone() { return grpc::Status(grpc::CANCELLED, "snapshot stream cancelled"); }

  // Sends messages with their sequence numbers, checks and the running digest.
  class Sender {
   public:
    Sender(const SnapshotServerOptions& options, grpc::ServerWriter<pb::Chunk>* writer)
        : options_(options), writer_(writer) {}
    bool ok() const { return check_.ok() && digest_.ok(); }
    // Sends `c` (its body set); false if the stream is gone (cancelled, peer away).
    bool Send(pb::Chunk* c) {
      c->set_seq(seq_++);
      if (c->has_file_start()) digest_.Add(c->file_start().path());
      if (c->has_data()) {
        digest_.Add(c->data().bytes());
        data_bytes_ += c->data().bytes().size();
      }
      c->set_check(CheckOf(*c, &check_));
      if (options_.tamper &&
          options_.tamper(c->seq(), c->has_data() ? c->mutable_data()->mutable_bytes() : nullptr)) {
        truncated_ = true;  // the test ends the stream here, as if all was sent
        return false;
      }
      return writer_->Write(*c);
    }
    // What the handler returns after Send failed.
    // (The truncation travels up as kTruncatedByTest; Fetch turns it into OK.)
    grpc::Status Broken() const {
      return truncated_ ? grpc::Status(grpc::ABORTED, kTruncatedByTest) : Gone();
    }
    uint64_t seq() const { return seq_; }
    uint64_t data_bytes() const { return data_bytes_; }
    uint64_t digest() const { return digest_.Digest(); }

   private:
    const SnapshotServerOptions& options_;
    grpc::ServerWriter<pb::Chunk>* const writer_;
    Hasher check_, digest_;
    uint64_t seq_ = 0, data_bytes_ = 0;
    bool truncated_ = false;
  };

  // Streams `fd` to its end as the file `path`. *gone: the stream broke (the caller stops).
  grpc::Status SendFile(Sender* out, int fd, const std::string& path, pb::Chunk* c) {
    c->mutable_file_start()->set_path(path);
    if (!out->Send(c)) return out->Broken();
    uint64_t offset = 0;
    while (true) {
      std::string* bytes = c->mutable_data()->mutable_bytes();
      bytes->resize(options_.chunk_bytes);
      absl::StatusOr<size_t> n = ReadFull(fd, bytes->data(), bytes->size(), path);
      if (!n.ok()) return ToGrpc(n.status());
      if (*n == 0) break;
      bytes->resize(*n);
      c->mutable_data()->set_offset(offset);
      offset += *n;
      if (!out->Send(c)) return out->Broken();
      if (*n < options_.chunk_bytes) break;
    }
    c->mutable_file_end()->set_size(offset);
    if (!out->Send(c)) return out->Broken();
    return grpc::Status::OK;
  }

  grpc::Status FetchImpl(grpc::ServerContext* ctx, const pb::FetchRequest* req,
                         grpc::ServerWriter<pb::Chunk>* writer) {
    if (req->cluster() != options_.cluster) {
      return grpc::Status(grpc::INVALID_ARGUMENT,
                          absl::StrCat("snapshot server of cluster '", options_.cluster,
                                       "' asked for cluster '", req->cluster(), "'"));
    }
    SnapshotSource* source = nullptr;
    {
      MutexLock l(&mu_);
      auto it = shards_.find(req->shard());
      if (stopping_ || it == shards_.end() || it->second.removing) {
        return grpc::Status(grpc::NOT_FOUND,
                            absl::StrCat("snapshot server of server ", options_.producer,
                                         " does not serve shard ", req->shard()));
      }
      if (ctx->IsCancelled()) return Gone();
      if (active_ >= options_.max_streams) {
        return grpc::Status(grpc::RESOURCE_EXHAUSTED,
                            absl::StrCat("snapshot server of server ", options_.producer, ": ",
                                         active_, " streams running"));
      }
      ++active_;
      it->second.contexts.insert(ctx);
      source = it->second.source;
    }
    Hold hold(this, req->shard(), ctx);
    engine::Shard& shard = source->snapshot_shard();
    engine::RaftPosition at;
    {
      MutexLock l(shard.commit_mu());
      at = shard.raft_applied_locked();
    }
    if (at.index < req->min_raft_index()) {
      return grpc::Status(
          grpc::FAILED_PRECONDITION,
          absl::StrCat("server ", options_.producer, " has applied raft index ", at.index,
                       " of shard ", req->shard(), ", asked for ", req->min_raft_index()));
    }
    // The WAL pin, as Database::Backup takes it: the whole log first, so that a checkpoint that
    // read the pins before has published its applied LSN by now; then from that LSN on.
    hold.Pin(1);
    const engine::Lsn from = shard.applied_lsn() + 1;
    hold.Pin(from);

    Sender out(options_, writer);
    if (!out.ok()) return grpc::Status(grpc::RESOURCE_EXHAUSTED, "XXH3_createState");
    pb::Chunk c;
    {
      pb::Header* h = c.mutable_header();
      h->set_cluster(options_.cluster);
      h->set_shard(req->shard());
      h->set_producer(options_.producer);
      h->set_raft_index(at.index);
      h->set_raft_term(at.term);
      h->set_wal_from_lsn(from);
      h->set_chunk_bytes(options_.chunk_bytes);
    }
    if (!out.Send(&c)) return out.Broken();

    // 1. The LMDB copy, through a pipe: LMDB's copy runs on a thread of ours and blocks when the
    // pipe is full; this thread reads the pipe as fast as the stream drains.
    {
      int p[2];
      if (::pipe2(p, O_CLOEXEC) != 0) return ToGrpc(ErrnoStatus("pipe", "", errno));
      Fd read_end(p[0]);
      auto write_end = std::make_shared<Fd>(p[1]);
      absl::Status copy_status;
      std::thread copier([&shard, write_end, &copy_status] {
        copy_status = shard.CopyStoreToFd(write_end->get());
        write_end->Close();  // end of file for the reader
      });
      grpc::Status sent = SendFile(&out, read_end.get(), kStoreFile, &c);
      // On a failure the reader goes away first: LMDB's next write gets EPIPE and the copy ends.
      read_end.Close();
      copier.join();
      if (!sent.ok()) return sent;
      if (!copy_status.ok()) return ToGrpc(copy_status);
    }

    // 2. The cut, after the copy (its applied LSN is at most the cut), durable; then the WAL
    // from `from` through it, staged on disk and streamed from there.
    engine::Lsn cut;
    {
      MutexLock l(shard.commit_mu());
      cut = shard.last_lsn_locked();
    }
    if (absl::Status s = shard.SyncWal(); !s.ok()) return ToGrpc(s);
    const uint64_t n = next_scratch_.fetch_add(1);
    const std::string scratch =
        options_.scratch_dir.empty()
            ? absl::StrCat(source->snapshot_shard_dir(), ".stream-", ::getpid(), "-", n)
            : absl::StrCat(options_.scratch_dir, "/stream-", req->shard(), "-", ::getpid(), "-", n);
    RemoveTree(scratch);
    absl::Cleanup remove_scratch = [&scratch] { RemoveTree(scratch); };
    if (absl::Status s = options_.env->CreateDir(scratch); !s.ok()) return ToGrpc(s);
    if (absl::Status s = shard.CopyWalTo(scratch, from, cut); !s.ok()) return ToGrpc(s);
    hold.Pin(0);  // the staged copy is ours
    absl::StatusOr<std::vector<std::string>> names = options_.env->ListDir(scratch + "/wal");
    if (!names.ok()) return ToGrpc(names.status());
    std::sort(names->begin(), names->end());
    for (const std::string& name : *names) {
      const std::string path = scratch + "/wal/" + name;
      Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      if (fd.get() < 0) return ToGrpc(ErrnoStatus("open", path, errno));
      if (grpc::Status s = SendFile(&out, fd.get(), "wal/" + name, &c); !s.ok()) return s;
    }

    // 3. The trailer.
    {
      const uint64_t messages = out.seq();
      pb::Trailer* t = c.mutable_trailer();
      t->set_wal_cut_lsn(cut);
      t->set_data_bytes(out.data_bytes());
      t->set_messages(messages);
      t->set_digest(out.digest());
    }
    if (!out.Send(&c)) return out.Broken();
    return grpc::Status::OK;
  }

  Mutex mu_;
  CondVar cv_{&mu_};
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint32_t active_ ABSL_GUARDED_BY(mu_) = 0;  // streams holding a shard
  std::unique_ptr<grpc::Server> server_ ABSL_GUARDED_BY(mu_);
  std::map<uint32_t, Served> shards_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> next_scratch_{0};
};

SnapshotServer::SnapshotServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SnapshotServer::~SnapshotServer() { Stop(); }

absl::StatusOr<std::unique_ptr<SnapshotServer>> SnapshotServer::Start(
    const SnapshotServerOptions& options) {
  if (options.env == nullptr || options.max_streams == 0 || options.chunk_bytes < kMinChunk ||
      options.chunk_bytes > kMaxChunk) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot server: needs an Env, max_streams > 0 and chunk_bytes in [",
                     kMinChunk, ", ", kMaxChunk, "]"));
  }
  IgnoreSigpipe();
  auto impl = std::make_unique<Impl>(options);
  RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<SnapshotServer>(new SnapshotServer(std::move(impl)));
}

int SnapshotServer::port() const { return impl_->port_; }
std::string SnapshotServer::address() const {
  return absl::StrCat(impl_->host_, ":", impl_->port_);
}
absl::Status SnapshotServer::AddShard(uint32_t shard, SnapshotSource* source) {
  return impl_->AddShard(shard, source);
}
void SnapshotServer::RemoveShard(uint32_t shard) { impl_->RemoveShard(shard); }
void SnapshotServer::Stop() { impl_->Stop(); }
uint64_t SnapshotServer::streams_started() const { return impl_->started_.load(); }
uint64_t SnapshotServer::streams_completed() const { return impl_->completed_.load(); }
uint64_t SnapshotServer::streams_failed() const { return impl_->failed_.load(); }

// ------------------------------------------------------------------------------------------
// Client

namespace {

// Receives one stream into `staging` (created by the caller), checking as it goes.
class Receiver {
 public:
  Receiver(const FetchOptions& options, std::string staging)
      : options_(options), staging_(std::move(staging)) {}

  absl::StatusOr<FetchResult> Run() {
    if (!check_.ok() || !digest_.ok()) return absl::ResourceExhaustedError("XXH3_createState");
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(static_cast<int>(options_.max_chunk_bytes + kMessageSlack));
    args.SetMaxSendMessageSize(static_cast<int>(kMessageSlack));
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    args.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, static_cast<int>(kStreamWindowBytes));
    args.SetInt(GRPC_ARG_TCP_MAX_READ_CHUNK_SIZE, static_cast<int>(kTcpReadBytes));
    // A channel of its own: the connection lives as long as this fetch.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    std::shared_ptr<grpc::Channel> channel =
        grpc::CreateCustomChannel(options_.address, grpc::InsecureChannelCredentials(), args);
    std::unique_ptr<pb::SnapshotStream::Stub> stub = pb::SnapshotStream::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     absl::ToChronoMicroseconds(options_.timeout));
    pb::FetchRequest req;
    req.set_cluster(options_.cluster);
    req.set_shard(options_.shard);
    req.set_min_raft_index(options_.min_raft_index);
    std::unique_ptr<grpc::ClientReader<pb::Chunk>> reader = stub->Fetch(&ctx, req);
    absl::Status mine;
    pb::Chunk c;
    while (reader->Read(&c)) {
      mine = Take(c);
      if (!mine.ok() || done_) break;
    }
    if (!mine.ok() || done_) {
      // Whatever else the producer would send is not wanted (after the trailer: nothing).
      if (!done_) ctx.TryCancel();
      while (reader->Read(&c)) {
        if (done_ && mine.ok()) {
          mine = absl::DataLossError(absl::StrCat("snapshot stream of shard ", options_.shard,
                                                  ": data after the trailer"));
        }
      }
    }
    const grpc::Status finished = reader->Finish();
    if (!mine.ok()) return mine;
    if (!finished.ok()) {
      absl::Status s = FromGrpc(finished);
      // A stream the producer broke off (it stopped, its node died): nothing to blame the data.
      if (absl::IsCancelled(s)) {
        return absl::UnavailableError(absl::StrCat("snapshot stream of shard ", options_.shard,
                                                   " from ", options_.address,
                                                   " broke off: ", s.message()));
      }
      return s;
    }
    if (!done_) {
      return absl::DataLossError(absl::StrCat("snapshot stream of shard ", options_.shard, " from ",
                                              options_.address, " ended after ", next_seq_,
                                              " messages without its trailer"));
    }
    return result_;
  }

 private:
  absl::Status Loss(absl::string_view what) const {
    return absl::DataLossError(absl::StrCat("snapshot stream of shard ", options_.shard, " from ",
                                            options_.address, ", message ", next_seq_, ": ", what));
  }

  // A path the stream may write: the store file, or a plain name under wal/.
  static bool ValidPath(const std::string& p) {
    if (p == kStoreFile) return true;
    if (p.size() <= 4 || p.compare(0, 4, "wal/") != 0) return false;
    const std::string name = p.substr(4);
    return name != "." && name != ".." && name.find('/') == std::string::npos &&
           name.find('\0') == std::string::npos;
  }

  absl::Status Take(const pb::Chunk& c) {
    if (c.seq() != next_seq_) {
      return Loss(absl::StrCat("sequence number ", c.seq(), ", expected ", next_seq_));
    }
    if (c.check() != CheckOf(c, &check_)) return Loss("check mismatch");
    switch (c.body_case()) {
      case pb::Chunk::kHeader: {
        if (next_seq_ != 0) return Loss("a second header");
        const pb::Header& h = c.header();
        if (h.cluster() != options_.cluster) {
          return absl::InvalidArgumentError(absl::StrCat(
              "snapshot of cluster '", h.cluster(), "', this node is in '", options_.cluster, "'"));
        }
        if (h.shard() != options_.shard) {
          return absl::InvalidArgumentError(
              absl::StrCat("snapshot stream of shard ", h.shard(), ", asked for ", options_.shard));
        }
        if (h.raft_index() < options_.min_raft_index) {
          return absl::FailedPreconditionError(absl::StrCat(
              "snapshot at raft index ", h.raft_index(), ", asked for ", options_.min_raft_index));
        }
        if (h.chunk_bytes() > options_.max_chunk_bytes) {
          return absl::InvalidArgumentError(absl::StrCat("producer's chunks of ", h.chunk_bytes(),
                                                         " bytes exceed ",
                                                         options_.max_chunk_bytes));
        }
        result_.producer = h.producer();
        result_.raft = engine::RaftPosition{h.raft_index(), h.raft_term()};
        result_.wal_from_lsn = h.wal_from_lsn();
        header_ = true;
        break;
      }
      case pb::Chunk::kFileStart: {
        if (!header_ || file_.get() >= 0) return Loss("file start out of order");
        const std::string& p = c.file_start().path();
        if (!ValidPath(p)) return Loss(absl::StrCat("bad path '", p, "'"));
        if (p == kStoreFile ? store_seen_ : !store_seen_) return Loss("files out of order");
        store_seen_ = true;
        path_ = staging_ + "/" + p;
        file_.Reset(::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
        if (file_.get() < 0) return ErrnoStatus("create", path_, errno);
        digest_.Add(p);
        offset_ = 0;
        ++result_.files;
        break;
      }
      case pb::Chunk::kData: {
        if (file_.get() < 0) return Loss("data outside a file");
        const std::string& b = c.data().bytes();
        if (c.data().offset() != offset_) {
          return Loss(absl::StrCat("data at offset ", c.data().offset(), ", expected ", offset_));
        }
        if (b.size() > options_.max_chunk_bytes) return Loss("data piece too large");
        RETURN_IF_ERROR(WriteFull(file_.get(), b.data(), b.size(), path_));
        digest_.Add(b);
        offset_ += b.size();
        result_.data_bytes += b.size();
        break;
      }
      case pb::Chunk::kFileEnd: {
        if (file_.get() < 0) return Loss("file end outside a file");
        if (c.file_end().size() != offset_) {
          return Loss(absl::StrCat(path_, " has ", offset_, " bytes, the producer sent ",
                                   c.file_end().size()));
        }
        if (::fsync(file_.get()) != 0) return ErrnoStatus("fsync", path_, errno);
        if (file_.Close() != 0) return ErrnoStatus("close", path_, errno);
        break;
      }
      case pb::Chunk::kTrailer: {
        const pb::Trailer& t = c.trailer();
        if (!store_seen_ || file_.get() >= 0) return Loss("trailer out of order");
        if (t.messages() != next_seq_ || t.data_bytes() != result_.data_bytes ||
            t.digest() != digest_.Digest()) {
          return Loss("trailer does not match the stream (digest, bytes or messages)");
        }
        result_.wal_cut_lsn = t.wal_cut_lsn();
        done_ = true;
        break;
      }
      case pb::Chunk::BODY_NOT_SET:
        return Loss("empty message");
    }
    ++next_seq_;
    result_.messages = next_seq_;
    if (options_.on_message) options_.on_message(c.seq());
    return absl::OkStatus();
  }

  const FetchOptions& options_;
  const std::string staging_;
  Hasher check_, digest_;
  uint64_t next_seq_ = 0;
  bool header_ = false, store_seen_ = false, done_ = false;
  Fd file_;
  std::string path_;
  uint64_t offset_ = 0;
  FetchResult result_;
};

absl::StatusOr<FetchResult> FetchInto(const FetchOptions& options, const std::string& staging) {
  Env* env = options.env;
  RETURN_IF_ERROR(env->CreateDir(staging));
  RETURN_IF_ERROR(env->CreateDir(staging + "/lmdb"));
  RETURN_IF_ERROR(env->CreateDir(staging + "/wal"));
  Receiver receiver(options, staging);
  ASSIGN_OR_RETURN(FetchResult result, receiver.Run());
  // The copy's own applied LSN must lie where the WAL tail continues it.
  {
    ASSIGN_OR_RETURN(std::unique_ptr<engine::ShardStore> store,
                     engine::ShardStore::Open(staging + "/lmdb", engine::StoreOptions{}));
    const engine::Lsn applied = store->meta().applied_lsn;
    if (applied + 1 < result.wal_from_lsn || applied > result.wal_cut_lsn) {
      return absl::DataLossError(
          absl::StrCat("snapshot of shard ", options.shard, ": store at LSN ", applied,
                       ", WAL tail from ", result.wal_from_lsn, " through ", result.wal_cut_lsn));
    }
  }
  RETURN_IF_ERROR(env->RemoveFile(staging + "/lmdb/lock.mdb"));
  RETURN_IF_ERROR(env->SyncDir(staging + "/lmdb"));
  RETURN_IF_ERROR(env->SyncDir(staging + "/wal"));
  RETURN_IF_ERROR(env->SyncDir(staging));
  RETURN_IF_ERROR(env->SyncDir(ParentOf(staging)));
  return result;
}

}  // namespace

absl::StatusOr<FetchResult> FetchSnapshot(const FetchOptions& options,
                                          const std::string& staging_dir) {
  if (options.env == nullptr || options.address.empty() || staging_dir.empty()) {
    return absl::InvalidArgumentError("FetchSnapshot: needs an Env, an address and a directory");
  }
  if (options.env->FileExists(staging_dir).ok()) {
    return absl::AlreadyExistsError(absl::StrCat("FetchSnapshot: ", staging_dir, " exists"));
  }
  absl::StatusOr<FetchResult> r = FetchInto(options, staging_dir);
  if (!r.ok()) RemoveTree(staging_dir);
  return r;
}

absl::Status InstallSnapshotDir(const std::string& staging_dir, const std::string& dir) {
  Env* const env = Env::Default();
  if (::renameat2(AT_FDCWD, staging_dir.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0) {
    const int err = errno;
    if (err != EINVAL && err != ENOSYS && err != ENOTSUP) {
      return ErrnoStatus(absl::StrCat("exchange with ", dir), staging_dir, err);
    }
    // A file system that cannot exchange: two renames (see the header).
    const std::string old = dir + ".old";
    RemoveTree(old);
    if (::rename(dir.c_str(), old.c_str()) != 0) return ErrnoStatus("rename", dir, errno);
    if (::rename(staging_dir.c_str(), dir.c_str()) != 0) {
      const int e = errno;
      if (::rename(old.c_str(), dir.c_str()) != 0) return ErrnoStatus("rename back", old, errno);
      return ErrnoStatus("rename", staging_dir, e);
    }
    RETURN_IF_ERROR(env->SyncDir(ParentOf(dir)));
    RemoveTree(old);
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(env->SyncDir(ParentOf(dir)));
  if (ParentOf(staging_dir) != ParentOf(dir)) RETURN_IF_ERROR(env->SyncDir(ParentOf(staging_dir)));
  RemoveTree(staging_dir);  // the old state; a leftover is harmless (and removed next time)
  return absl::OkStatus();
}

}  // namespace shardtx::replication
