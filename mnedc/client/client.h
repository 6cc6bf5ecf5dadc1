#pragma once
// The edge agent's core: connect to a relay, join, learn the lease and the
// peers, move packets both ways, and after a lost connection reconnect asking
// for the same address: to the next relay it knows at once (those it was
// given, then those the relays named in their Lease), and once every relay
// has failed in a row, after a jittered exponential backoff. Packets come from
// and go to whatever the caller plugs in: the TUN device, or a fake in tests.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "mnedc/base/ipv6.h"
#include "mnedc/discovery/peer_table.h"
#include "mnedc/transport/endpoint.h"
#include "mnedc/link/framed_link.h"
#include "mnedc/client/direct.h"
#include "mnedc/client/sealing.h"
#include "mnedc/seal/aead.h"
#include "mnedc/seal/keys.h"
#include "mnedc/transport/dial.h"
#include "mnedc/transport/server_address.h"

namespace mnedc::client {

struct LeaseInfo {
  uint32_t address = 0;  // Host byte order.
  uint32_t prefix_length = 0;
  uint32_t mtu = 0;
  uint32_t relay_address = 0;
  bool super_packets = false;  // Both ends send super-packets whole.
  // On a dual-stack network: this device's IPv6 address and the relay's, in
  // a /prefix_length6 (64 from relays of this version); none from an
  // IPv4-only relay.
  std::optional<base::Ipv6Address> address6;
  base::Ipv6Address relay_address6{};
  uint32_t prefix_length6 = 0;
  uint16_t stun_port = 0;  // Where the relay answers STUN (at its address); 0: it does not.
  bool operator==(const LeaseInfo&) const = default;
};

struct ClientOptions {
  transport::ServerAddress server;
  // Further relays of the same network, tried in order after `server`.
  std::vector<transport::ServerAddress> more_servers;
  transport::DialOptions dial;  // TLS settings, proxy, connect timeout.
  std::string device_id;
  std::string credentials;  // Join token, if the relay wants one.
  // Hear about the other members (the peer table). Without, the relay sends
  // no peer messages at all: for a device that only talks to the relay host
  // or finds peers by name, in a fleet where the list would be large.
  bool want_peers = true;
  // Take and send super-packets (up to 64 KiB of one flow in one frame) when
  // the relay does too: for a packet port with offloads. The handler set with
  // OnSuperPacket gets them whole; without one, OnPacket's gets their segments.
  bool super_packets = false;
  // The device's static key pair (its identity for end-to-end sealing, see
  // mnedc/seal): presented in the Hello with a session key the client makes
  // for its run. Without one the client presents no keys (as older versions).
  std::optional<seal::KeyPair> device_key;
  // With device_key: make the session key and seal (false: the key is still
  // the device's identity at the relay, but nothing is sealed to or from it).
  bool seal = true;
  // The AEAD this device seals with, to peers that open it (every peer of
  // this version opens both): none picks AES-256-GCM where the CPU has AES
  // instructions, else ChaCha20-Poly1305.
  std::optional<seal::Cipher> cipher;
  // With sealing: look for a direct path (UDP, through the NATs) to each
  // peer this device talks to, and use it while it works (see direct.h).
  bool direct = true;
  uint16_t direct_port = 0;  // The UDP port for it (0: any free one).
  link::LinkOptions link;
  std::chrono::steady_clock::duration backoff_initial = std::chrono::milliseconds(250);
  std::chrono::steady_clock::duration backoff_max = std::chrono::seconds(30);
};

struct ClientCounters {
  uint64_t connect_attempts = 0;
  uint64_t connect_failures = 0;
  uint64_t joins = 0;
  uint64_t packets_sent = 0;
  uint64_t packets_received = 0;
  uint64_t bytes_sent = 0;      // IP bytes queued to the relay.
  uint64_t bytes_received = 0;  // IP bytes the relay delivered.
  uint64_t dropped_not_connected = 0;  // Sent while no connection was up.
  uint64_t dropped_queue_full = 0;     // Sent faster than the connection drains.
  uint64_t dropped_unsealed = 0;       // Sealed packets that did not open (Sealing's counters say why).
};

class Client final : private link::FrameSink {
 public:
  // Opens a connection to the given relay; defaults to transport::Dial(relay, options.dial).
  using Dialer = std::function<boost::asio::awaitable<transport::DialOutcome>(const transport::ServerAddress&)>;

  Client(boost::asio::any_io_executor executor, ClientOptions options, Dialer dialer = nullptr);
  ~Client() override;

  // Called with each packet the relay delivers (destined to this device).
  void OnPacket(std::function<void(std::span<const uint8_t>)> handler) {
    packet_handler_ = std::move(handler);
  }
  // Called instead of OnPacket's handler, with super-packets whole.
  void OnSuperPacket(std::function<void(std::span<const uint8_t>, packet::Gso)> handler) {
    super_packet_handler_ = std::move(handler);
  }
  // Called when the packets delivered so far are all there is for now (the
  // end of what one read from the relay brought): time to flush a TUN that
  // joins segments.
  void OnReadBatchEnd(std::function<void()> handler) { batch_end_handler_ = std::move(handler); }
  // Called on every Lease: first join and each rejoin (the address may differ).
  void OnLease(std::function<void(const LeaseInfo&)> handler) { lease_handler_ = std::move(handler); }

  // The session key pair of this run (fresh for every Client): present when
  // options().device_key is.
  const std::optional<seal::KeyPair>& session_key() const { return session_key_; }
  // End-to-end sealing with the peers that have keys; null without a device key.
  const Sealing* sealing() const { return sealing_.get(); }
  // Direct paths to peers; null without sealing, with options().direct off,
  // or if its UDP socket could not be opened.
  const Direct* direct() const { return direct_.get(); }

  discovery::PeerTable& peers() { return peers_; }
  const discovery::PeerTable& peers() const { return peers_; }

  // Queues one IP packet to the relay. Never blocks; false if it was dropped.
  bool SendPacket(std::span<const uint8_t> packet);
  // The same for a super-packet (sent whole if the relay takes them, else
  // as its segments).
  bool SendPacket(std::span<const uint8_t> packet, packet::Gso gso);
  // The same from a buffer the client may overwrite before it returns: a
  // packet to a peer it seals to is sealed in place and, when nothing is
  // queued ahead of it, sent from there (no copy into the queue).
  bool SendOwnedPacket(std::span<uint8_t> packet, packet::Gso gso);
  // Flow control for whoever feeds SendPacket: false while the queue to the
  // relay is full (always true while disconnected: those packets are dropped).
  bool HasRoom() const { return !joined() || !link_->data_queue_full(); }
  // Returns once HasRoom() may be true again.
  boost::asio::awaitable<void> WaitForRoom();

  // Connects and stays connected until Stop().
  boost::asio::awaitable<void> Run();
  // Leaves the relay (it tells the peers) and makes Run() return.
  void Stop();

  const ClientOptions& options() const { return options_; }
  boost::asio::any_io_executor executor() const { return executor_; }
  // The relay in use (or being dialed, or last used), and every relay known:
  // those given, then those learned from Leases (at most kMaxLearnedRelays):
  // the relay's latest list first, then any it named before and no longer does.
  const transport::ServerAddress& relay() const { return relays_[current_]; }
  const std::vector<transport::ServerAddress>& known_relays() const { return relays_; }
  static constexpr std::size_t kMaxLearnedRelays = 16;
  const std::optional<LeaseInfo>& lease() const { return lease_; }
  // The relay connection in use (or last used): "ip:port" and transport kind.
  const std::string& relay_peer() const { return relay_peer_; }
  const std::string& transport() const { return transport_; }
  // When the current session's join completed.
  std::chrono::system_clock::time_point joined_since() const { return joined_since_; }
  bool joined() const { return link_ != nullptr && joined_; }
  const ClientCounters& counters() const { return counters_; }
  // The last Error the relay sent, or why the last connection ended.
  const std::string& last_error() const { return last_error_; }

 private:
  link::DataVerdict OnData(std::span<const uint8_t> packet, packet::Gso gso) override;
  link::DataVerdict OnSealed(std::span<uint8_t> payload) override;
  // SendPacket to a peer this device seals to: sealed into the link's queue
  // (whole, or as segments if the relay takes no super-packets).
  // `writable`, if not empty, is `packet` itself, which may be sealed in place.
  link::FramedLink::Push SendSealed(uint32_t peer, std::span<const uint8_t> packet, packet::Gso gso,
                                    std::span<uint8_t> writable);
  bool Send(std::span<const uint8_t> packet, packet::Gso gso, std::span<uint8_t> writable);
  void OnReadBatchEnd() override {
    if (batch_end_handler_) batch_end_handler_();
  }
  bool OnControl(const protocol::ControlMessage& message) override;
  std::chrono::steady_clock::duration NextBackoff();
  // Which relay to try after the current one (see the .cc).
  std::size_t NextRelay() const;
  // Takes the relay list of a Lease: the given relays, then these.
  void LearnRelays(const std::vector<std::string>& urls);
  boost::asio::awaitable<transport::DialOutcome> DialUnlessStopped();
  // Run, without the direct path's loops.
  boost::asio::awaitable<void> RunRelay();
  // Sends a disco message to `peer` through the relay, sealed.
  bool SendDiscoThroughRelay(uint32_t peer, std::span<const uint8_t> body);

  boost::asio::any_io_executor executor_;
  ClientOptions options_;
  std::optional<seal::KeyPair> session_key_;
  seal::Cipher seals_with_ = seal::Cipher::kChaCha20Poly1305;
  std::unique_ptr<Sealing> sealing_;
  std::unique_ptr<Direct> direct_;  // Uses sealing_.
  Dialer dialer_;
  std::unique_ptr<link::FramedLink> link_;
  boost::asio::steady_timer backoff_timer_;
  boost::asio::steady_timer room_timer_;
  boost::asio::steady_timer stop_timer_;  // Never expires; Stop() cancels it.
  std::minstd_rand random_;
  discovery::PeerTable peers_;
  std::function<void(std::span<const uint8_t>)> packet_handler_;
  std::function<void(std::span<const uint8_t>, packet::Gso)> super_packet_handler_;
  std::function<void()> batch_end_handler_;
  std::vector<uint8_t> segment_;  // For OnPacket's handler, when a super-packet comes.
  std::function<void(const LeaseInfo&)> lease_handler_;
  std::optional<LeaseInfo> lease_;
  ClientCounters counters_;
  std::string last_error_;
  std::string relay_peer_;
  std::string transport_;
  std::chrono::system_clock::time_point joined_since_{};
  std::vector<transport::ServerAddress> relays_;  // Given, then learned.
  std::size_t given_relays_ = 1;
  std::size_t listed_relays_ = 1;  // Given and named in the latest list; the rest no longer named.
  std::size_t current_ = 0;
  std::size_t failed_this_round_ = 0;  // Relays that failed in a row since the last backoff.
  int failures_in_a_row_ = 0;
  bool joined_ = false;
  bool stopped_ = false;
};

}  // namespace mnedc::client
