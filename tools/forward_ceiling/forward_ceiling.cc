// What a relay could gain by not copying: one TCP stream forwarded from a
// sender to a sink through a forwarder, three ways (tools/forward-ceiling runs
// it on the test network):
//   copy    recv into a buffer, send from it (what mnedc's relay does)
//   splice  socket -> pipe -> socket, 1 MiB per call, never looking at the bytes
//   framed  per frame of --frame bytes: read its first 2 KiB (the routing
//           header a relay must see), write them into the pipe, splice the
//           rest in, then the pipe out: splice with a routing decision per frame
//   peek    per frame of --frame bytes: peek at its first 64 bytes (MSG_PEEK,
//           nothing consumed), splice the whole frame into the pipe; frames
//           already waiting join it (up to 4), then the pipe out in one call
// The sender sends frames of --frame bytes (a 4-byte length, then zeros).
// A measurement tool, not part of mnedc: blocking sockets, one stream.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gflags/gflags.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

DEFINE_string(mode, "copy", "forward: copy, splice, framed or peek");
DEFINE_uint32(frame, 65536 + 20, "bytes per frame (send, and forward --mode=framed)");
DEFINE_uint32(from_port, 6001, "forward: the port the sender connects to");
DEFINE_uint32(to_port, 6000, "forward: the port the sink connects to (first)");
DEFINE_string(to, "", "send and sink: the forwarder's IP:PORT");
DEFINE_double(seconds, 4, "send: how long; sink: how long to measure after a 1 s warm-up");

namespace {
using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const char* what) {
  std::perror(what);
  std::exit(1);
}

int Listen(uint16_t port) {
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  if (bind(s, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || listen(s, 4) != 0) Die("listen");
  return s;
}

int Connect(const std::string& to) {
  const auto colon = to.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "--to takes IP:PORT\n");
    std::exit(2);
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(std::stoi(to.substr(colon + 1))));
  if (inet_pton(AF_INET, to.substr(0, colon).c_str(), &address.sin_addr) != 1) Die("address");
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(s, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) Die("connect");
  return s;
}

bool SendAll(int fd, const uint8_t* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, 0);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Moves `size` bytes from `in` to `out` by splice, waiting for them; false
// at end of stream.
bool SpliceAll(int in, int out, std::size_t size) {
  while (size > 0) {
    const ssize_t n = splice(in, nullptr, out, nullptr, size, SPLICE_F_MOVE);
    if (n <= 0) return false;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

void ForwardCopy(int from, int to) {
  std::vector<uint8_t> buffer(256 * 1024);
  for (;;) {
    const ssize_t n = recv(from, buffer.data(), buffer.size(), 0);
    if (n <= 0 || !SendAll(to, buffer.data(), static_cast<std::size_t>(n))) return;
  }
}

void ForwardSplice(int from, int to, bool framed) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) Die("pipe");
  fcntl(pipe_fds[0], F_SETPIPE_SZ, 1 << 20);
  std::vector<uint8_t> head(2048);
  for (;;) {
    if (!framed) {
      const ssize_t n = splice(from, nullptr, pipe_fds[1], nullptr, 1 << 20, SPLICE_F_MOVE);
      if (n <= 0 || !SpliceAll(pipe_fds[0], to, static_cast<std::size_t>(n))) break;
      continue;
    }
    const ssize_t got = recv(from, head.data(), head.size(), MSG_WAITALL);
    if (got <= 0 || write(pipe_fds[1], head.data(), static_cast<std::size_t>(got)) != got) break;
    // The rest in, and out whenever the pipe is full (its slots are per
    // piece of the socket's buffers, so a large frame may not fit at once).
    std::size_t rest = FLAGS_frame - static_cast<std::size_t>(got);
    std::size_t in_pipe = static_cast<std::size_t>(got);
    bool ok = true;
    while (ok && rest > 0) {
      const ssize_t n = splice(from, nullptr, pipe_fds[1], nullptr, rest, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        rest -= static_cast<std::size_t>(n);
        in_pipe += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EAGAIN && in_pipe > 0) {
        ok = SpliceAll(pipe_fds[0], to, in_pipe);
        in_pipe = 0;
      } else if (n < 0 && errno == EAGAIN) {
        pollfd readable{from, POLLIN, 0};  // Wait for the rest, never spin.
        ok = poll(&readable, 1, -1) == 1;
      } else {
        ok = false;
      }
    }
    if (!ok || !SpliceAll(pipe_fds[0], to, in_pipe)) break;
  }
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

void ForwardPeek(int from, int to) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) Die("pipe");
  fcntl(pipe_fds[0], F_SETPIPE_SZ, 1 << 20);
  uint8_t head[64];
  for (;;) {
    // The first frame of a run: wait for its header.
    if (recv(from, head, sizeof head, MSG_PEEK | MSG_WAITALL) != static_cast<ssize_t>(sizeof head)) break;
    std::size_t in_pipe = 0;
    int frames = 0;
    bool ok = true;
    do {
      ok = SpliceAll(from, pipe_fds[1], FLAGS_frame);  // Blocks until all of it is in.
      in_pipe += FLAGS_frame;
      ++frames;
    } while (ok && frames < 4 &&
             recv(from, head, sizeof head, MSG_PEEK | MSG_DONTWAIT) == static_cast<ssize_t>(sizeof head));
    if (!ok || !SpliceAll(pipe_fds[0], to, in_pipe)) break;
  }
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

int Forward() {
  if (FLAGS_mode != "copy" && FLAGS_mode != "splice" && FLAGS_mode != "framed" && FLAGS_mode != "peek") {
    std::fprintf(stderr, "--mode is copy, splice, framed or peek\n");
    return 2;
  }
  if (FLAGS_frame < 4096) {
    std::fprintf(stderr, "--frame is at least 4096 bytes\n");
    return 2;
  }
  const int to_listener = Listen(static_cast<uint16_t>(FLAGS_to_port));
  const int from_listener = Listen(static_cast<uint16_t>(FLAGS_from_port));
  const int to = accept(to_listener, nullptr, nullptr);
  const int from = accept(from_listener, nullptr, nullptr);
  if (to < 0 || from < 0) Die("accept");
  if (FLAGS_mode == "copy") {
    ForwardCopy(from, to);
  } else if (FLAGS_mode == "peek") {
    ForwardPeek(from, to);
  } else {
    ForwardSplice(from, to, FLAGS_mode == "framed");
  }
  return 0;
}

int Send() {
  if (FLAGS_frame < 4096) {
    std::fprintf(stderr, "--frame is at least 4096 bytes\n");
    return 2;
  }
  const int s = Connect(FLAGS_to);
  std::vector<uint8_t> frame(FLAGS_frame, 0);
  const uint32_t length = htonl(FLAGS_frame - 4);
  std::memcpy(frame.data(), &length, sizeof length);
  const auto end = Clock::now() + std::chrono::duration<double>(FLAGS_seconds);
  while (Clock::now() < end && SendAll(s, frame.data(), frame.size())) {
  }
  return 0;
}

int Sink() {
  const int s = Connect(FLAGS_to);
  std::vector<uint8_t> buffer(256 * 1024);
  uint64_t counted = 0;
  Clock::time_point start{};
  Clock::time_point first{};
  for (;;) {
    const ssize_t n = recv(s, buffer.data(), buffer.size(), 0);
    if (n <= 0) break;
    const auto now = Clock::now();
    if (first == Clock::time_point{}) first = now;
    if (start == Clock::time_point{}) {
      if (now - first >= std::chrono::seconds(1)) start = now;  // Warm-up over.
      continue;
    }
    counted += static_cast<uint64_t>(n);
    if (now - start >= std::chrono::duration<double>(FLAGS_seconds)) break;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (start == Clock::time_point{} || seconds <= 0) {
    std::fprintf(stderr, "the stream ended before the warm-up was over\n");
    return 1;
  }
  std::printf("%.0f\n", static_cast<double>(counted) * 8 / seconds / 1e6);
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "forward_ceiling forward|send|sink [flags]: one TCP stream through a forwarder that copies or "
      "splices (see tools/forward-ceiling)");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  const std::string verb = argc > 1 ? argv[1] : "";
  if (verb == "forward") return Forward();
  if (verb == "send") return Send();
  if (verb == "sink") return Sink();
  std::fprintf(stderr, "usage: forward_ceiling forward|send|sink [flags] (--help)\n");
  return 2;
}
