#pragma once
// The direct path: a UDP socket on which a device learns its outside
// address from the relay (STUN), probes its peers' candidates, and, to each
// peer whose probe round-tripped, sends its packets as sealed datagrams
// instead of through the relay. Everything on it is sealed with the pair
// keys (mnedc/client/sealing.h), pings and pongs included: a datagram from
// anyone else, or changed on the way, opens to nothing and is counted.
//
// A peer's path is looked for when traffic first goes to it (or it asks,
// with a CallMeMaybe through the relay): a fleet of thousands costs nothing
// until two of them talk. The two send each other their candidates through
// the relay and probe at the same time, so each side's NAT has a mapping
// out before the other's probe arrives (hole punching). What to probe, when
// to go direct and when to fall back is PathState's (direct_path.h); this
// is the I/O.
//
// A datagram: kDatagramMarker, then a SEALED frame's payload (header,
// sealed packet or disco message, tag). A super-packet is sealed whole and
// goes in fragments (fragments.h), handed to the kernel as one UDP GSO send;
// datagrams come in as GRO batches, and the super-packet, put back together
// and opened, goes to the TUN whole. Established direct paths keep working while the relay is
// away (only new peers wait for it).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <netinet/in.h>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "mnedc/client/direct_path.h"
#include "mnedc/client/fragments.h"
#include "mnedc/client/sealing.h"
#include "mnedc/packet/gso.h"
#include "mnedc/stun/message.h"

namespace mnedc::client {

inline constexpr uint8_t kDatagramMarker = 0xD1;  // Never the first byte of STUN (top bits 00).

struct DirectOptions {
  uint16_t port = 0;  // The UDP port to bind (0: any).
  PathConfig path;
  // A peer nothing went to or came from for this long is forgotten (its
  // keepalives stop); the next packet to it looks for a path again.
  std::chrono::steady_clock::duration idle_forget = std::chrono::minutes(2);
  std::chrono::steady_clock::duration stun_refresh = std::chrono::seconds(25);
};

struct DirectCounters {
  uint64_t packets_out = 0;      // Packets (super-packets count once) sent direct (a full socket then drops some: send_drops).
  uint64_t packets_in = 0;       // Packets that came direct and opened.
  uint64_t datagrams_out = 0;
  uint64_t datagrams_in = 0;
  uint64_t send_calls = 0;       // System calls that sent them (a batch of packets is one).
  uint64_t send_drops = 0;       // The socket's buffer was full: dropped, as a full NIC queue would.
  uint64_t send_errors = 0;      // Other send failures (no route, ...).
  uint64_t unopened = 0;         // Datagrams that did not open (Sealing's counters say why).
  uint64_t not_ours = 0;         // Neither mnedc nor an answer from our STUN server.
  uint64_t pings_sent = 0;
  uint64_t pongs_sent = 0;
  uint64_t pongs_received = 0;
  uint64_t call_me_maybe_sent = 0;
  uint64_t call_me_maybe_received = 0;
  uint64_t stun_requests = 0;
  uint64_t stun_answers = 0;
  uint64_t fragments_in = 0;     // Datagrams carrying part of a sealed super-packet.
  uint64_t reassembly_drops = 0; // Super-packets given up on (a fragment lost), or fragments that made no sense.
  uint64_t went_direct = 0;      // Times a peer's path became direct.
  uint64_t fell_back = 0;        // Times a direct path went silent and the peer went back to the relay.
};

class DatagramBatch;

class Direct {
 public:
  using Endpoint = boost::asio::ip::udp::endpoint;
  using Clock = std::chrono::steady_clock;
  // Sends a disco message (a CallMeMaybe) to the peer through the relay,
  // sealed; false if it could not go (no relay now).
  using RelaySender = std::function<bool(uint32_t peer, std::span<const uint8_t> body)>;
  // A packet (or super-packet) that came direct and opened.
  using Deliver = std::function<void(std::span<const uint8_t> packet, packet::Gso gso)>;

  Direct(boost::asio::any_io_executor executor, Sealing& sealing, DirectOptions options, RelaySender relay,
         Deliver deliver, std::function<void()> batch_end);
  ~Direct();

  // Binds the socket; false (and why) if it cannot.
  bool Open(std::string* error);
  uint16_t port() const { return port_; }
  // Receives and keeps the paths until Close().
  boost::asio::awaitable<void> Run();
  void Close();

  // The relay's STUN address (from the Lease), or none.
  void SetStunServer(std::optional<Endpoint> server);
  // The overlay's IPv4 network: never a candidate (that way lies the tunnel
  // itself); and its MTU, which sizes the datagrams.
  void SetOverlay(uint32_t network, uint32_t prefix_length, uint32_t mtu);

  // Sends a packet for `peer` direct if its path is: true if it went (or
  // was dropped and counted) there, false if the caller should use the relay.
  bool Send(uint32_t peer, std::span<const uint8_t> packet, packet::Gso gso);
  // A disco message from `peer`, opened: through the relay (no `from`) or
  // over UDP from `from`.
  void OnDisco(uint32_t peer, std::span<const uint8_t> body, const std::optional<Endpoint>& from);
  void PeerDown(uint32_t peer);

  // The path to a peer this device has looked for one to; null otherwise.
  const PathState* PathTo(uint32_t peer) const;
  // This device's candidates: its local addresses and the outside one.
  const std::vector<Endpoint>& candidates() const { return candidates_; }
  const std::optional<Endpoint>& outside() const { return outside_; }
  const DirectCounters& counters() const { return counters_; }

 private:
  struct Peer {
    PathState path;
    Clock::time_point last_call_me_maybe{};
    Clock::time_point last_active{};
    uint64_t rounds_seen = 0;
    uint64_t fallbacks_seen = 0;
    bool was_direct = false;
  };
  boost::asio::awaitable<void> ReceiveLoop();
  boost::asio::awaitable<void> TickLoop();
  // Sends what Send queued, once the turn that queued it is over.
  boost::asio::awaitable<void> FlushLoop();
  // Seals `body` for `peer` into the batch as one datagram to `to`; false if
  // it cannot be (too large, no keys, not an IPv4 address).
  bool QueueDatagram(uint32_t peer, const Endpoint& to, std::span<const uint8_t> body);
  // A message sealed whole, into the batch as its fragments to `to`.
  bool QueueFragments(const Endpoint& to, std::span<const uint8_t> sealed);
  // `to` for the batch; false (a send error, counted) if it is not IPv4.
  bool BatchAddress(const Endpoint& to, sockaddr_in* address);
  // Room in the batch for `size` bytes in `datagrams` datagrams, what is
  // queued sent first if it would not fit beside it; empty if it never fits.
  std::span<uint8_t> BatchRoom(std::size_t size, std::size_t datagrams);
  // After a commit: the first datagram of a turn wakes FlushLoop.
  void Queued(bool batch_was_empty);
  // A commit the batch refused: counted as a send error; false.
  bool CommitFailed();
  // Sends the batch now; returns how many datagrams went.
  uint64_t FlushBatch();
  Peer& PeerFor(uint32_t peer, Clock::time_point now);
  // Does what is due; returns when something next is.
  Clock::time_point Tick(Clock::time_point now);
  void Observe(uint32_t address, Peer& peer);
  void HandleDatagram(std::span<uint8_t> datagram, const Endpoint& from);
  // Opens a sealed message that came direct from `from`, and hands it on.
  void Open(std::span<uint8_t> sealed, const Endpoint& from);
  void SendPing(uint32_t address, Peer& peer, const Endpoint& to, Clock::time_point now);
  bool SendSealed(uint32_t peer, const Endpoint& to, std::span<const uint8_t> body);
  void SendCallMeMaybe(uint32_t address, Peer& peer, Clock::time_point now);
  void SendStunRequest(Clock::time_point now);
  void RefreshCandidates();
  void Wake() { timer_.cancel(); }
  static std::string Text(const Endpoint& endpoint);  // "ip:port", for logs.

  Sealing& sealing_;
  DirectOptions options_;
  RelaySender relay_;
  Deliver deliver_;
  std::function<void()> batch_end_;
  boost::asio::ip::udp::socket socket_;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer flush_timer_;  // Cancelled: the batch has something to send.
  // Every datagram this socket sends goes through it: packets and fragments
  // wait for the end of the turn, probes go at once.
  std::unique_ptr<DatagramBatch> batch_;
  uint16_t port_ = 0;
  bool closed_ = false;
  bool udp_gso_ = true;  // Until the kernel refuses UDP_SEGMENT.
  bool udp_gro_ = false;
  std::unordered_map<uint32_t, Peer> peers_;
  std::vector<Endpoint> candidates_;
  std::optional<Endpoint> outside_;
  std::optional<Endpoint> stun_server_;
  stun::TransactionId stun_transaction_{};
  Clock::time_point next_stun_{};
  uint32_t overlay_network_ = 0;
  uint32_t overlay_mask_ = 0;
  std::size_t datagram_size_ = 1 + 20 + 1400 + 16;  // A packet of the overlay's MTU, sealed.
  uint32_t message_number_ = 0;          // Of fragmented super-packets.
  std::vector<uint8_t> seal_buffer_;     // A super-packet, sealed whole.
  Reassembly reassembly_;
  std::vector<uint8_t> receive_buffer_;  // One GRO batch.
  std::vector<Endpoint> due_;            // Scratch for Tick.
  DirectCounters counters_;
};

}  // namespace mnedc::client
