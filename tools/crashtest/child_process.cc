#include "tools/crashtest/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace shardtx::crashtest {

bool RunChildProcess(const std::string& self, const std::vector<std::string>& args,
                     const std::string& log_path,
                     const std::function<bool(bool, double, double)>& deadline, ChildExit* result,
                     std::string* error) {
  *result = ChildExit();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    *error = absl::StrCat("pipe: ", strerror(errno));
    return false;
  }
  // The child finds the pipe at fd 3. Move it above 3 first, so that dup2 always copies it
  // (a dup2 onto itself would keep FD_CLOEXEC).
  const int write_fd = fcntl(fds[1], F_DUPFD_CLOEXEC, 10);
  close(fds[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, write_fd, 3);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<std::string> all = {self};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, self.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(write_fd);
  if (rc != 0) {
    close(fds[0]);
    *error = absl::StrCat("posix_spawn ", self, ": ", strerror(rc));
    return false;
  }

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  Clock::time_point ready_at;
  auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
  std::string partial;
  char buf[1 << 16];
  while (true) {
    const auto now = Clock::now();
    if (!result->killed &&
        deadline(result->ready, ms(now - start), result->ready ? ms(now - ready_at) : 0)) {
      kill(pid, SIGKILL);
      result->killed = true;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int n = poll(&p, 1, 2);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    const ssize_t got = read(fds[0], buf, sizeof(buf));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // EOF: the child (and every copy of the pipe) is gone
    partial.append(buf, static_cast<size_t>(got));
    size_t pos;
    while ((pos = partial.find('\n')) != std::string::npos) {
      std::string line = partial.substr(0, pos);
      partial.erase(0, pos + 1);
      if (line == "R") {
        result->ready = true;
        ready_at = Clock::now();
        result->ready_ms = ms(ready_at - start);
      } else if (line.rfind("K ", 0) == 0) {
        result->fired = line.substr(2);
      } else if (line.rfind("P ", 0) == 0) {
        result->power_loss = line.substr(2);
      } else if (line == "N") {
        result->not_reached = true;
      }
      result->lines.push_back(std::move(line));
    }
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) {
    result->exited = true;
    result->exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result->signal = WTERMSIG(status);
  }
  return true;
}

}  // namespace shardtx::crashtest
