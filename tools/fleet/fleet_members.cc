// Simulated members for the fleet and soak benchmarks. One process holds
// --count connections to a relay from --source (a 127.0.0.x address, so
// several processes get ports of their own), each a minimal member: it sends
// a Hello, answers pings, and keeps its peer table as a bitmap of addresses
// (no strings: ten thousand members each hearing of ten thousand peers must
// not cost more here than in the relay). It prints one status line a second
// and a final one; times are seconds since --epoch_ms (wall clock), so the
// lines of several processes can be compared.
//
// Churn (--churn_per_second, for the soak): that many members a second end
// their connection in one of three ways and join again as a new device:
// leave (close), vanish (RST: SO_LINGER 0) or go half-open (stop reading and
// answering, so the relay must find them dead).
//
// Flood (--flood, for tools/bench): two members; the first becomes a stalled
// receiver once leased (it reads 4 KiB every 2 s: the relay's queue for it is
// full, yet it is alive), the second sends 1400-byte packets to it as fast as
// the relay takes them, in 64 KiB writes.
//
// --tls: each member speaks TLS to the relay (without checking its
// certificate: this measures the relay, not trust). --ws: WebSocket (over
// TLS too with both), each write one binary message of whole frames.
#include <gflags/gflags.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "mnedc/link/frame_reader.h"
#include "mnedc/protocol/control_codec.h"
#include "mnedc/protocol/frame.h"

DEFINE_string(server, "127.0.0.1:3334", "Relay to join, IPv4:PORT.");
DEFINE_string(source, "127.0.0.1", "Local address to connect from.");
DEFINE_int32(count, 100, "Members (connections) in this process.");
DEFINE_string(id_prefix, "m-", "Device IDs are this prefix and a number.");
DEFINE_string(peers, "batched", "Peer messages to ask for: batched, each or none.");
DEFINE_int32(expect_peers, 0,
             "A member's table is complete when it holds this many peers (the fleet minus one).");
DEFINE_double(seconds, 60, "Run this long, then close every connection and exit.");
DEFINE_int64(epoch_ms, 0, "Times are reported from this wall-clock time (ms); default: start.");
DEFINE_double(connect_per_second, 0, "Open connections at this rate; 0: all at once.");
DEFINE_double(churn_per_second, 0, "Members per second that end (leave, RST or half-open) and rejoin.");
DEFINE_int32(prefix_bits, 16, "Prefix length of the relay's network (sizes the peer bitmap).");
DEFINE_bool(tls, false, "Members speak TLS (the relay must have --tls_cert).");
DEFINE_bool(ws, false, "Members speak WebSocket (with --tls: over TLS).");
DEFINE_bool(flood, false,
            "Two members: the first stalls once leased, the second floods it (see the top of the file).");
DEFINE_double(packets_per_second, 0,
              "Packets (100-byte IPv4/UDP) sent a second in all, each from a random joined member "
              "to another random member of this process.");

namespace {
namespace asio = boost::asio;
using asio::ip::tcp;
using google::protobuf::io::CodedInputStream;
using google::protobuf::internal::WireFormatLite;
using mnedc::protocol::ControlMessage;
using Clock = std::chrono::steady_clock;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Stats {
  uint64_t connected = 0, leased = 0, complete = 0, closed = 0, connect_failed = 0;
  uint64_t refused_busy = 0, errors = 0, churned = 0, peer_changes = 0, bytes_in = 0;
  uint64_t packets_sent = 0, packets_in = 0;
  double last_lease_s = 0, last_complete_s = 0, first_connect_s = -1;
};

class Fleet;

class Member : public std::enable_shared_from_this<Member> {
 public:
  Member(Fleet& fleet, asio::io_context& io, std::string id) : fleet_(fleet), socket_(io), id_(std::move(id)) {}
  void Start();
  // How it ends: 0 leave (FIN), 1 vanish (RST), 2 half-open (goes silent).
  void End(int how);
  bool leased() const { return address_ != 0; }
  uint32_t address() const { return address_; }
  // Sends one IPv4/UDP packet to `destination` (if joined and not silent).
  void SendPacket(uint32_t destination);
  bool live() const { return live_; }
  // --flood: become the stalled receiver; or send to `destination` without end.
  void Stall();
  void Flood(uint32_t destination);

 private:
  void SlowRead();
  void FloodWrite();
  void Joined();  // Connected (and the TLS handshake done): say Hello.
  void ConnectFailed();  // Connecting or a handshake failed: counted, never retried.
  void WebSocketHandshake();
  template <class Buffers, class Handler>
  void ReadSome(const Buffers& buffers, Handler&& handler) {
    if (ws_) return ws_->async_read_some(buffers, std::forward<Handler>(handler));
    if (wss_) return wss_->async_read_some(buffers, std::forward<Handler>(handler));
    if (tls_) return tls_->async_read_some(buffers, std::forward<Handler>(handler));
    socket_.async_read_some(buffers, std::forward<Handler>(handler));
  }
  template <class Buffers, class Handler>
  void WriteAll(const Buffers& buffers, Handler&& handler) {
    if (ws_) return ws_->async_write(buffers, std::forward<Handler>(handler));
    if (wss_) return wss_->async_write(buffers, std::forward<Handler>(handler));
    if (tls_) return asio::async_write(*tls_, buffers, std::forward<Handler>(handler));
    asio::async_write(socket_, buffers, std::forward<Handler>(handler));
  }
  void Read();
  void OnFrames();
  void OnControl(std::span<const uint8_t> payload);
  void ScanPeerList(CodedInputStream& in);
  void Apply(uint32_t address, bool gone);
  void Send(const ControlMessage& message);
  void Write();
  void Closed(const char* why);

  Fleet& fleet_;
  tcp::socket socket_;
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
  std::unique_ptr<boost::beast::websocket::stream<tcp::socket&>> ws_;
  std::unique_ptr<boost::beast::websocket::stream<asio::ssl::stream<tcp::socket&>&>> wss_;
  std::string id_;
  mnedc::link::FrameReader reader_{1024};
  std::vector<uint64_t> bitmap_;
  uint32_t address_ = 0;
  uint32_t peers_ = 0;
  std::deque<std::vector<uint8_t>> out_;
  bool writing_ = false;
  bool live_ = true;
  bool complete_ = false;
  bool silent_ = false;
  bool stalled_ = false;
  std::unique_ptr<asio::steady_timer> slow_timer_;
  std::vector<uint8_t> flood_;  // Pre-built frames, written again and again.
  ControlMessage decoded_;
};

class Fleet {
 public:
  explicit Fleet(asio::io_context& io) : io_(io), tick_(io), connect_timer_(io), churn_timer_(io) {
    epoch_ms_ = FLAGS_epoch_ms ? FLAGS_epoch_ms : NowMs();
    const auto colon = FLAGS_server.rfind(':');
    server_ = tcp::endpoint(asio::ip::make_address(FLAGS_server.substr(0, colon)),
                            static_cast<uint16_t>(std::stoi(FLAGS_server.substr(colon + 1))));
    source_ = tcp::endpoint(asio::ip::make_address(FLAGS_source), 0);
    if (FLAGS_peers == "batched") mode_ = mnedc::protocol::PEERS_BATCHED;
    else if (FLAGS_peers == "each") mode_ = mnedc::protocol::PEERS_EACH;
    else mode_ = mnedc::protocol::PEERS_NONE;
  }

  double Now() const { return (NowMs() - epoch_ms_) / 1000.0; }
  void Run() {
    ConnectMore();
    Tick();
    if (FLAGS_churn_per_second > 0) Churn();
    if (FLAGS_packets_per_second > 0) Traffic();
    if (FLAGS_flood) StartFlood();
  }
  void Stop() {
    stopping_ = true;
    tick_.cancel();
    connect_timer_.cancel();
    churn_timer_.cancel();
    traffic_timer_.cancel();
    for (auto& member : members_) member->End(0);
    for (auto& member : half_open_) member->End(0);
    Report("final");
  }

  Stats stats;
  asio::ssl::context tls_context_{asio::ssl::context::tls_client};
  mnedc::protocol::PeerMode mode_;
  tcp::endpoint server_, source_;
  asio::io_context& io_;
  bool stopping_ = false;

 private:
  void ConnectMore() {
    const int batch = FLAGS_connect_per_second > 0 ? std::max(1, static_cast<int>(FLAGS_connect_per_second / 100)) : FLAGS_count;
    for (int i = 0; i < batch && started_ < FLAGS_count; ++i) StartOne();
    if (started_ < FLAGS_count) {
      connect_timer_.expires_after(std::chrono::milliseconds(10));
      connect_timer_.async_wait([this](boost::system::error_code ec) { if (!ec) ConnectMore(); });
    }
  }
  void StartOne() {
    auto member = std::make_shared<Member>(*this, io_, FLAGS_id_prefix + std::to_string(next_id_++));
    ++started_;
    members_.push_back(member);
    member->Start();
  }
  void Churn() {
    churn_timer_.expires_after(std::chrono::milliseconds(100));
    churn_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || stopping_) return;
      churn_budget_ += FLAGS_churn_per_second / 10;
      std::uniform_int_distribution<std::size_t> pick(0, members_.size() - 1);
      while (churn_budget_ >= 1 && !members_.empty()) {
        churn_budget_ -= 1;
        const std::size_t i = pick(random_);
        const int how = static_cast<int>(random_() % 3);
        members_[i]->End(how);
        // A half-open member keeps its socket (unread) until the relay gives up on it.
        if (how == 2) half_open_.push_back(members_[i]);
        ++stats.churned;
        // A new device takes its place.
        auto member = std::make_shared<Member>(*this, io_, FLAGS_id_prefix + std::to_string(next_id_++));
        members_[i] = member;
        member->Start();
      }
      Churn();
    });
  }
  void Traffic() {
    traffic_timer_.expires_after(std::chrono::milliseconds(10));
    traffic_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || stopping_ || members_.empty()) return;
      traffic_budget_ += FLAGS_packets_per_second / 100;
      std::uniform_int_distribution<std::size_t> pick(0, members_.size() - 1);
      while (traffic_budget_ >= 1) {
        traffic_budget_ -= 1;
        members_[pick(random_)]->SendPacket(members_[pick(random_)]->address());
      }
      Traffic();
    });
  }
  // Once both members are leased: the first stalls, the second floods it.
  void StartFlood() {
    traffic_timer_.expires_after(std::chrono::milliseconds(10));
    traffic_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec || stopping_) return;
      if (members_.size() < 2 || !members_[0]->leased() || !members_[1]->leased()) return StartFlood();
      members_[0]->Stall();
      members_[1]->Flood(members_[0]->address());
    });
  }
  void Tick() {
    tick_.expires_after(std::chrono::seconds(1));
    tick_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      Report("status");
      Tick();
    });
  }
  void Report(const char* kind) {
    std::printf(
        "%s t=%.2f source=%s members=%d connected=%lu leased=%lu complete=%lu closed=%lu "
        "connect_failed=%lu refused_busy=%lu errors=%lu churned=%lu peer_changes=%lu bytes_in=%lu "
        "packets_sent=%lu packets_in=%lu first_connect_s=%.3f last_lease_s=%.3f last_complete_s=%.3f\n",
        kind, Now(), FLAGS_source.c_str(), FLAGS_count, stats.connected, stats.leased, stats.complete,
        stats.closed, stats.connect_failed, stats.refused_busy, stats.errors, stats.churned,
        stats.peer_changes, stats.bytes_in, stats.packets_sent, stats.packets_in, stats.first_connect_s, stats.last_lease_s,
        stats.last_complete_s);
    std::fflush(stdout);
  }

  asio::steady_timer tick_, connect_timer_, churn_timer_, traffic_timer_{io_};
  double traffic_budget_ = 0;
  std::vector<std::shared_ptr<Member>> members_;
  std::vector<std::shared_ptr<Member>> half_open_;
  int64_t epoch_ms_;
  int started_ = 0;
  uint64_t next_id_ = 0;
  double churn_budget_ = 0;
  std::minstd_rand random_{12345};
};

void Member::ConnectFailed() {
  ++fleet_.stats.connect_failed;
  live_ = false;
}

void Member::Start() {
  boost::system::error_code ec;
  socket_.open(tcp::v4(), ec);
  if (!ec) socket_.bind(fleet_.source_, ec);
  if (ec) return ConnectFailed();
  socket_.async_connect(fleet_.server_, [self = shared_from_this()](boost::system::error_code ec) {
    if (!self->live_) return;
    if (ec) return self->ConnectFailed();
    if (!FLAGS_tls) return FLAGS_ws ? self->WebSocketHandshake() : self->Joined();
    self->tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(self->socket_, self->fleet_.tls_context_);
    self->tls_->async_handshake(asio::ssl::stream_base::client, [self](boost::system::error_code ec) {
      if (!self->live_) return;
      if (ec) return self->ConnectFailed();
      FLAGS_ws ? self->WebSocketHandshake() : self->Joined();
    });
  });
}

void Member::WebSocketHandshake() {
  auto done = [self = shared_from_this()](boost::system::error_code ec) {
    if (!self->live_) return;
    if (ec) return self->ConnectFailed();
    if (self->ws_) self->ws_->binary(true);
    if (self->wss_) self->wss_->binary(true);
    self->Joined();
  };
  const std::string host = fleet_.server_.address().to_string();
  if (tls_) {
    wss_ = std::make_unique<boost::beast::websocket::stream<asio::ssl::stream<tcp::socket&>&>>(*tls_);
    wss_->async_handshake(host, "/mnedc", std::move(done));
  } else {
    ws_ = std::make_unique<boost::beast::websocket::stream<tcp::socket&>>(socket_);
    ws_->async_handshake(host, "/mnedc", std::move(done));
  }
}

void Member::Joined() {
  auto& stats = fleet_.stats;
  ++stats.connected;
  if (stats.first_connect_s < 0) stats.first_connect_s = fleet_.Now();
  ControlMessage hello;
  hello.mutable_hello()->set_protocol_version(mnedc::protocol::kProtocolVersion);
  hello.mutable_hello()->set_device_id(id_);
  hello.mutable_hello()->set_peers(fleet_.mode_);
  Send(hello);
  Read();
}

void Member::End(int how) {
  if (!live_) return;
  if (how == 2) {  // Half-open: stop reading and answering, keep the socket.
    silent_ = true;
    return;
  }
  live_ = false;
  boost::system::error_code ignored;
  if (how == 1) socket_.set_option(asio::socket_base::linger(true, 0), ignored);
  socket_.close(ignored);
}

void Member::Read() {
  const auto space = reader_.Space();
  ReadSome(asio::buffer(space.data(), space.size()),
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                            if (!self->live_) return;
                            if (ec) return self->Closed(ec.message().c_str());
                            if (self->silent_) return;  // Half-open: never reads again.
                            if (self->stalled_) return self->SlowRead();
                            self->fleet_.stats.bytes_in += n;
                            self->reader_.Commit(n);
                            self->OnFrames();
                            if (self->live_) self->Read();
                          });
}

void Member::Closed(const char* /*why*/) {
  if (!live_) return;
  live_ = false;
  ++fleet_.stats.closed;
  if (leased()) --fleet_.stats.leased;
  if (complete_) --fleet_.stats.complete;
  --fleet_.stats.connected;
  boost::system::error_code ignored;
  socket_.close(ignored);
}

void Member::OnFrames() {
  for (;;) {
    const auto frame = reader_.Next();
    if (frame.status == mnedc::protocol::ParseStatus::kNeedMore) return;
    if (frame.status != mnedc::protocol::ParseStatus::kFrame) {
      if (frame.status == mnedc::protocol::ParseStatus::kUnknownType) continue;
      ++fleet_.stats.errors;
      return Closed("bad frame");
    }
    if (frame.type == mnedc::protocol::FrameType::kControl) OnControl(frame.payload);
    if (frame.type == mnedc::protocol::FrameType::kData) ++fleet_.stats.packets_in;
    if (!live_) return;
  }
}

void Member::OnControl(std::span<const uint8_t> payload) {
  CodedInputStream in(payload.data(), static_cast<int>(payload.size()));
  // PeerList is by far the most common: scanned in place for addresses.
  const uint32_t tag = in.ReadTag();
  if (WireFormatLite::GetTagFieldNumber(tag) == ControlMessage::kPeerListFieldNumber &&
      WireFormatLite::GetTagWireType(tag) == WireFormatLite::WIRETYPE_LENGTH_DELIMITED) {
    uint32_t length = 0;
    if (!in.ReadVarint32(&length)) return;
    const auto limit = in.PushLimit(static_cast<int>(length));
    ScanPeerList(in);
    in.PopLimit(limit);
    return;
  }
  decoded_.Clear();
  if (!mnedc::protocol::DecodeControl(payload, decoded_)) {
    ++fleet_.stats.errors;
    return;
  }
  auto& stats = fleet_.stats;
  switch (decoded_.body_case()) {
    case ControlMessage::kLease:
      address_ = decoded_.lease().address();
      ++stats.leased;
      stats.last_lease_s = fleet_.Now();
      if (fleet_.mode_ != mnedc::protocol::PEERS_NONE) {
        bitmap_.assign((std::size_t{1} << (32 - FLAGS_prefix_bits)) / 64 + 1, 0);
      }
      Apply(0, false);  // A fleet of one is complete at once.
      break;
    case ControlMessage::kPing: {
      ControlMessage pong;
      pong.mutable_pong()->set_nonce(decoded_.ping().nonce());
      Send(pong);
      break;
    }
    case ControlMessage::kPeerAnnounce:
      Apply(decoded_.peer_announce().address(), false);
      break;
    case ControlMessage::kPeerGone:
      Apply(decoded_.peer_gone().address(), true);
      break;
    case ControlMessage::kError:
      if (decoded_.error().code() == mnedc::protocol::Error::BUSY) ++stats.refused_busy;
      else ++stats.errors;
      break;
    default:
      break;
  }
}

void Member::ScanPeerList(CodedInputStream& in) {
  for (uint32_t tag = in.ReadTag(); tag != 0; tag = in.ReadTag()) {
    if (WireFormatLite::GetTagFieldNumber(tag) != mnedc::protocol::PeerList::kChangesFieldNumber) {
      if (!WireFormatLite::SkipField(&in, tag)) return;
      continue;
    }
    uint32_t length = 0;
    if (!in.ReadVarint32(&length)) return;
    const auto limit = in.PushLimit(static_cast<int>(length));
    uint32_t address = 0;
    uint64_t gone = 0;
    for (uint32_t inner = in.ReadTag(); inner != 0; inner = in.ReadTag()) {
      const int field = WireFormatLite::GetTagFieldNumber(inner);
      if (field == mnedc::protocol::PeerChange::kAddressFieldNumber) {
        if (!in.ReadLittleEndian32(&address)) return;
      } else if (field == mnedc::protocol::PeerChange::kGoneFieldNumber) {
        if (!in.ReadVarint64(&gone)) return;
      } else if (!WireFormatLite::SkipField(&in, inner)) {
        return;
      }
    }
    in.PopLimit(limit);
    Apply(address, gone != 0);
  }
}

void Member::Apply(uint32_t address, bool gone) {
  if (address != 0 && address != address_ && !bitmap_.empty()) {
    ++fleet_.stats.peer_changes;
    const uint32_t index = address & ((uint32_t{1} << (32 - FLAGS_prefix_bits)) - 1);
    uint64_t& word = bitmap_[index / 64];
    const uint64_t bit = uint64_t{1} << (index % 64);
    if (!gone && !(word & bit)) {
      word |= bit;
      ++peers_;
    } else if (gone && (word & bit)) {
      word &= ~bit;
      --peers_;
    }
  }
  const bool complete = leased() && (fleet_.mode_ == mnedc::protocol::PEERS_NONE ||
                                     peers_ >= static_cast<uint32_t>(FLAGS_expect_peers));
  if (complete && !complete_) {
    complete_ = true;
    ++fleet_.stats.complete;
    fleet_.stats.last_complete_s = fleet_.Now();
  } else if (!complete && complete_) {
    complete_ = false;
    --fleet_.stats.complete;
  }
}

void Member::SendPacket(uint32_t destination) {
  if (!live_ || silent_ || !leased() || destination == 0) return;
  std::vector<uint8_t> frame(mnedc::protocol::kFrameHeaderSize + 100, 0);
  mnedc::protocol::WriteFrameHeader(mnedc::protocol::FrameType::kData, 100, frame.data());
  uint8_t* ip = frame.data() + mnedc::protocol::kFrameHeaderSize;
  ip[0] = 0x45;
  ip[3] = 100;
  ip[8] = 64;
  ip[9] = 17;
  for (int i = 0; i < 4; ++i) {
    ip[12 + i] = static_cast<uint8_t>(address_ >> (24 - 8 * i));
    ip[16 + i] = static_cast<uint8_t>(destination >> (24 - 8 * i));
  }
  ++fleet_.stats.packets_sent;
  out_.push_back(std::move(frame));
  if (!writing_) Write();
}

void Member::Stall() {
  stalled_ = true;
  boost::system::error_code ignored;
  socket_.set_option(asio::socket_base::receive_buffer_size(4096), ignored);
}

void Member::SlowRead() {
  if (!slow_timer_) slow_timer_ = std::make_unique<asio::steady_timer>(socket_.get_executor());
  slow_timer_->expires_after(std::chrono::seconds(2));
  slow_timer_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || !self->live_ || self->fleet_.stopping_) return;
    static uint8_t discard[4096];
    self->ReadSome(asio::buffer(discard), [self](boost::system::error_code ec, std::size_t n) {
      if (!self->live_) return;
      if (ec) return self->Closed(ec.message().c_str());
      self->fleet_.stats.bytes_in += n;
      self->SlowRead();
    });
  });
}

void Member::Flood(uint32_t destination) {
  if (writing_) {  // Let the write under way finish first: one writer at a time.
    auto timer = std::make_shared<asio::steady_timer>(socket_.get_executor(), std::chrono::milliseconds(1));
    timer->async_wait([self = shared_from_this(), timer, destination](boost::system::error_code) {
      self->Flood(destination);
    });
    return;
  }
  constexpr std::size_t kPacket = 1400, kFrames = 46;
  const std::size_t frame_size = mnedc::protocol::kFrameHeaderSize + kPacket;
  flood_.assign(frame_size * kFrames, 0);
  for (std::size_t f = 0; f < kFrames; ++f) {
    uint8_t* frame = flood_.data() + f * frame_size;
    mnedc::protocol::WriteFrameHeader(mnedc::protocol::FrameType::kData, kPacket, frame);
    uint8_t* ip = frame + mnedc::protocol::kFrameHeaderSize;
    ip[0] = 0x45;
    ip[2] = kPacket >> 8;
    ip[3] = kPacket & 0xff;
    ip[8] = 64;
    ip[9] = 17;
    for (int i = 0; i < 4; ++i) {
      ip[12 + i] = static_cast<uint8_t>(address_ >> (24 - 8 * i));
      ip[16 + i] = static_cast<uint8_t>(destination >> (24 - 8 * i));
    }
  }
  FloodWrite();
}

void Member::FloodWrite() {
  if (!live_ || fleet_.stopping_) return;
  // Control frames (pongs) queued meanwhile go between two floods, never into one.
  if (!out_.empty()) {
    WriteAll(asio::buffer(out_.front()), [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
      self->out_.pop_front();
      if (!ec) self->FloodWrite();
    });
    return;
  }
  WriteAll(asio::buffer(flood_), [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
    if (ec) return;
    self->fleet_.stats.packets_sent += self->flood_.size() / (mnedc::protocol::kFrameHeaderSize + 1400);
    self->FloodWrite();
  });
}

void Member::Send(const ControlMessage& message) {
  std::vector<uint8_t> frame;
  mnedc::protocol::EncodeControlFrame(message, frame);
  out_.push_back(std::move(frame));
  if (!writing_ && flood_.empty()) Write();  // A flooder writes them in FloodWrite.
}

void Member::Write() {
  if (out_.empty() || !live_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  WriteAll(asio::buffer(out_.front()),
                    [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                      self->out_.pop_front();
                      if (ec) {
                        self->writing_ = false;
                        return;
                      }
                      self->Write();
                    });
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("fleet_members --server=IP:PORT --source=127.0.0.2 --count=N [flags]");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  asio::io_context io(1);
  Fleet fleet(io);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer deadline(io);
  auto stop = [&] {
    if (fleet.stopping_) return;
    signals.cancel();
    deadline.cancel();
    fleet.Stop();
    io.stop();
  };
  signals.async_wait([&](boost::system::error_code ec, int) { if (!ec) stop(); });
  deadline.expires_after(std::chrono::milliseconds(static_cast<int64_t>(FLAGS_seconds * 1000)));
  deadline.async_wait([&](boost::system::error_code ec) { if (!ec) stop(); });
  fleet.Run();
  io.run();
  return 0;
}
