#include "util/wait_word.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#else
#error "util/wait_word.cc needs a futex (Linux); port Wait/WakeAll first"
#endif

namespace shardtx {

void WaitWord::Wait(uint32_t seen) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word_), FUTEX_WAIT_PRIVATE, seen, nullptr,
          nullptr, 0);
}

void WaitWord::WakeAll() {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word_), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
}

}  // namespace shardtx
