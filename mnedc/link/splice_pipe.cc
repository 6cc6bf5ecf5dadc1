#include "mnedc/link/splice_pipe.h"

#include <fcntl.h>
#include <unistd.h>

namespace mnedc::link {
namespace {
// Sixteen of the largest frames; the system's default limit for a pipe
// (/proc/sys/fs/pipe-max-size).
constexpr int kPipeSize = 1 << 20;
}  // namespace

bool SplicePipe::Open() {
  if (open()) return true;
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return false;
  out_ = fds[0];
  in_ = fds[1];
  // Best effort: a user over its pipe quota keeps the default size, and a
  // frame that does not fit goes on through memory.
  (void)fcntl(out_, F_SETPIPE_SZ, kPipeSize);
  return true;
}

void SplicePipe::Close() {
  if (in_ >= 0) close(in_);
  if (out_ >= 0) close(out_);
  in_ = out_ = -1;
}

}  // namespace mnedc::link
