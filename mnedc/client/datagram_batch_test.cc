// A batch of datagrams goes in one system call (runs of one size to one
// address as one UDP GSO send) and arrives whole, in order, each its own
// size; a full batch asks to be flushed; failures are counted, not hidden.
#include "mnedc/client/datagram_batch.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

namespace mnedc::client {
namespace {

class Udp {
 public:
  Udp() {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in any{};
    any.sin_family = AF_INET;
    any.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&any), sizeof any), 0);
    const int big = 4 << 20;
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    socklen_t length = sizeof address_;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address_), &length);
    fcntl(fd_, F_SETFL, O_NONBLOCK);
  }
  ~Udp() { close(fd_); }
  int fd() const { return fd_; }
  const sockaddr_in& address() const { return address_; }
  // Every datagram waiting, each as it came.
  std::vector<std::string> Receive() {
    std::vector<std::string> out;
    char buffer[65536];
    for (;;) {
      const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
      if (n < 0) break;
      out.emplace_back(buffer, static_cast<std::size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
  sockaddr_in address_{};
};

// Datagram `i`: its number, then filler, `size` bytes.
std::string Datagram(int i, std::size_t size) {
  std::string d = std::to_string(i) + ":";
  while (d.size() < size) d.push_back(static_cast<char>('a' + (i + d.size()) % 26));
  d.resize(size);
  return d;
}

bool Queue(DatagramBatch& batch, const sockaddr_in& to, const std::string& datagram) {
  const std::span<uint8_t> room = batch.Reserve(datagram.size());
  if (room.size() != datagram.size()) return false;
  std::memcpy(room.data(), datagram.data(), datagram.size());
  return batch.Commit(to, datagram.size());
}

TEST(DatagramBatch, ARunToOneAddressIsOneCallAndArrivesAsItsDatagrams) {
  Udp sender, receiver;
  DatagramBatch batch;
  std::vector<std::string> sent;
  for (int i = 0; i < 50; ++i) sent.push_back(Datagram(i, i == 49 ? 300 : 1200));  // The last one short.
  for (const auto& d : sent) ASSERT_TRUE(Queue(batch, receiver.address(), d));
  EXPECT_EQ(batch.size(), 50u);
  bool gso = true;
  const auto result = batch.Flush(sender.fd(), &gso);
  EXPECT_EQ(result.sent, 50u);
  EXPECT_EQ(result.calls, 1u);
  EXPECT_EQ(result.dropped + result.failed, 0u);
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(receiver.Receive(), sent);
}

TEST(DatagramBatch, MixedAddressesAndSizesAreOneCallInOrder) {
  Udp sender, one, two;
  DatagramBatch batch;
  std::vector<std::string> to_one, to_two;
  for (int i = 0; i < 40; ++i) {
    // Pairs of one size: some to one address (a GSO run), some to two.
    const std::string d = Datagram(i, 100 + 37 * ((i / 2) % 7));
    ASSERT_TRUE(Queue(batch, i % 3 ? one.address() : two.address(), d));
    (i % 3 ? to_one : to_two).push_back(d);
  }
  for (bool gso : {true, false}) {
    if (!gso) {  // Again without UDP GSO: still one call.
      for (const auto& d : to_one) ASSERT_TRUE(Queue(batch, one.address(), d));
    }
    const auto result = batch.Flush(sender.fd(), &gso);
    EXPECT_EQ(result.calls, 1u);
    EXPECT_EQ(result.sent, gso ? 40u : to_one.size());
    EXPECT_EQ(one.Receive(), to_one);
    if (gso) {
      EXPECT_EQ(two.Receive(), to_two);
    }
  }
}

TEST(DatagramBatch, AMessagesFragmentsAreARunOfDatagrams) {
  Udp sender, receiver;
  DatagramBatch batch;
  ASSERT_TRUE(Queue(batch, receiver.address(), Datagram(0, 700)));  // A packet before them.
  std::string message;
  std::vector<std::string> sent = {Datagram(0, 700)};
  for (int i = 1; i <= 47; ++i) sent.push_back(Datagram(i, i == 47 ? 123 : 1400));
  for (std::size_t i = 1; i < sent.size(); ++i) message += sent[i];
  EXPECT_TRUE(batch.Reserve(message.size(), DatagramBatch::kMaxDatagrams).empty()) << "one is taken";
  const std::span<uint8_t> room = batch.Reserve(message.size(), 47);
  ASSERT_EQ(room.size(), message.size());
  std::memcpy(room.data(), message.data(), message.size());
  ASSERT_TRUE(batch.CommitRun(receiver.address(), message.size(), 1400));
  EXPECT_EQ(batch.size(), 48u);
  bool gso = true;
  const auto result = batch.Flush(sender.fd(), &gso);
  EXPECT_EQ(result.sent, 48u);
  EXPECT_EQ(result.calls, 1u);
  EXPECT_EQ(receiver.Receive(), sent);
}

TEST(DatagramBatch, AFullBatchAsksForAFlush) {
  Udp receiver;
  DatagramBatch batch;
  for (std::size_t i = 0; i < DatagramBatch::kMaxDatagrams; ++i) {
    ASSERT_TRUE(Queue(batch, receiver.address(), Datagram(static_cast<int>(i), 100)));
  }
  EXPECT_TRUE(batch.Reserve(100).empty()) << "no 65th datagram";
  DatagramBatch bytes;
  EXPECT_TRUE(bytes.Reserve(DatagramBatch::kBufferBytes + 1).empty());
  ASSERT_EQ(bytes.Reserve(DatagramBatch::kBufferBytes).size(), DatagramBatch::kBufferBytes);
  ASSERT_TRUE(bytes.Commit(receiver.address(), DatagramBatch::kBufferBytes - 10));
  EXPECT_TRUE(bytes.Reserve(11).empty()) << "past the buffer's end";
  EXPECT_EQ(bytes.Reserve(10).size(), 10u);
}

TEST(DatagramBatch, ACommitPastItsRoomQueuesNothing) {
  Udp receiver;
  DatagramBatch batch;
  for (std::size_t i = 0; i + 2 < DatagramBatch::kMaxDatagrams; ++i) {
    ASSERT_TRUE(Queue(batch, receiver.address(), Datagram(static_cast<int>(i), 100)));
  }
  // Two datagrams left: a run of three is refused whole, not cut to two.
  ASSERT_EQ(batch.Reserve(300, 2).size(), 300u);
  EXPECT_FALSE(batch.CommitRun(receiver.address(), 300, 100));
  EXPECT_EQ(batch.size(), DatagramBatch::kMaxDatagrams - 2);
  EXPECT_FALSE(batch.CommitRun(receiver.address(), 300, 0)) << "no segment size";
  EXPECT_TRUE(batch.CommitRun(receiver.address(), 200, 100));
  EXPECT_EQ(batch.size(), DatagramBatch::kMaxDatagrams);
  EXPECT_FALSE(batch.Commit(receiver.address(), 1)) << "past the last datagram";
  DatagramBatch bytes;
  EXPECT_FALSE(bytes.Commit(receiver.address(), DatagramBatch::kBufferBytes + 1)) << "past the buffer";
  EXPECT_FALSE(bytes.CommitRun(receiver.address(), DatagramBatch::kBufferBytes + 1, 1400));
  EXPECT_TRUE(bytes.empty());
  bool gso = true;
  Udp sender;
  const auto result = batch.Flush(sender.fd(), &gso);
  EXPECT_EQ(result.sent, DatagramBatch::kMaxDatagrams);
}

TEST(DatagramBatch, FailuresAreCountedAndTheBatchEmptied) {
  Udp receiver;
  DatagramBatch batch;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Queue(batch, receiver.address(), Datagram(i, 500)));
  bool gso = true;
  const auto result = batch.Flush(-1, &gso);  // No such socket.
  EXPECT_EQ(result.sent, 0u);
  EXPECT_EQ(result.failed, 5u);
  EXPECT_EQ(result.error, EBADF);
  EXPECT_TRUE(batch.empty());
  EXPECT_TRUE(gso) << "a bad socket is no reason to give up GSO";
}

}  // namespace
}  // namespace mnedc::client
