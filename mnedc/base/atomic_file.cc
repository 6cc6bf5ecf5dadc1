#include "mnedc/base/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace mnedc::base {

bool WriteFileAtomically(const std::string& path, std::string_view content, bool durable,
                         std::string* error, int mode) {
  const std::string temporary = path + ".tmp";
  auto fail = [&](const std::string& step, int code) {
    if (error) *error = "cannot " + step + ": " + std::strerror(code);
    ::unlink(temporary.c_str());
    return false;
  };
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return fail("write '" + temporary + "'", errno);
  std::size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int code = n < 0 ? errno : EIO;
      ::close(fd);
      return fail("write '" + temporary + "'", code);
    }
    written += static_cast<std::size_t>(n);
  }
  if (durable && ::fsync(fd) != 0) {
    const int code = errno;
    ::close(fd);
    return fail("sync '" + temporary + "'", code);
  }
  if (::close(fd) != 0) return fail("write '" + temporary + "'", errno);
  if (std::rename(temporary.c_str(), path.c_str()) != 0) return fail("replace '" + path + "'", errno);
  return true;
}

}  // namespace mnedc::base
