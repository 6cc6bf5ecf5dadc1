// mnedc client: joins the relay, puts the leased address on a TUN interface and
// moves packets between the two, so unmodified applications reach every peer.
#include <gflags/gflags.h>
#include <net/if.h>
#include <glog/logging.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>
#include <vector>
#include <sys/stat.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/signal_set.hpp>

#include "mnedc/base/atomic_file.h"
#include "mnedc/base/device_id.h"
#include "mnedc/base/ipv4.h"
#include "mnedc/base/ipv6.h"
#include "mnedc/client/dns_responder.h"
#include "mnedc/client/resolved_link.h"
#include "mnedc/dns/names.h"
#include "mnedc/cli/cli_support.h"
#include "mnedc/cli/status_socket.h"
#include "mnedc/cli/client_config.h"
#include "mnedc/cli/peer_hook.h"
#include "mnedc/admin/http_service.h"
#include "mnedc/client/client.h"
#include "mnedc/client/status.h"
#include "mnedc/client/tun_bridge.h"
#include "mnedc/transport/dial.h"
#include "mnedc/transport/server_address.h"
#include "mnedc/transport/tls_context.h"
#include "mnedc/tun/lasting_tun.h"

DEFINE_string(server, "",
              "Relay to join: HOST[:PORT] (native TCP) or tls://HOST[:PORT], port 3334 if omitted; "
              "ws://HOST[:PORT]/PATH (port 80) or wss://HOST[:PORT]/PATH (port 443). A comma-"
              "separated list names several relays of one network: the first that answers is "
              "joined, and when it fails the next, keeping the address and the TUN (relays also "
              "name the others in their Lease). Without it, the relay is read from --config.");
DEFINE_string(token_file, "", "File holding the relay's join token, if it requires one.");
DEFINE_string(ca_file, "",
              "tls:// and wss://: trust relays whose certificate chains to these CAs (PEM) and "
              "names the host dialed. Default: the system's CAs.");
DEFINE_string(pin_sha256, "",
              "tls:// and wss://: trust exactly the relay certificate with this SHA-256 "
              "fingerprint (hex; for self-signed relays; see the relay's start-up log).");
DEFINE_string(tls_cert, "", "Client certificate (PEM), for relays that require mutual TLS.");
DEFINE_string(tls_key, "", "Private key of --tls_cert (PEM).");
DEFINE_string(proxy, "",
              "HTTP proxy to tunnel through with CONNECT, http://HOST:PORT. Default: "
              "$https_proxy / $HTTPS_PROXY unless $no_proxy names the relay; --proxy=none for "
              "no proxy.");
DEFINE_string(config, "",
              "MNEDC client-config.yaml (keys server-ip, port; server-ip may be a list of relays). "
              "Default when --server is not given: /var/edge-orchestration/mnedc/client-config.yaml");
DEFINE_string(device_id, "",
              "This device's stable identity on the relay. Default: hostname plus the start of "
              "/etc/machine-id.");
DEFINE_string(tun_name, "mnedc0", "Name of the TUN interface to create (at most 15 characters).");
DEFINE_string(on_peer, "",
              "Shell command run when a peer joins or leaves, with MNEDC_EVENT (up|down), "
              "MNEDC_PEER_ID and MNEDC_PEER_ADDR in its environment, and MNEDC_PEER_ADDR6 on a "
              "dual-stack network. Runs one at a time, in order.");
DEFINE_string(peers_file, "",
              "If set, this file always holds the current peer table (device id, virtual "
              "address, address seen by the relay, virtual IPv6 address or -), rewritten "
              "atomically within 0.2 s of a change.");
DEFINE_bool(peers, true,
            "Hear about the other devices (peer table, --on_peer, --peers_file, ctl peers). "
            "--nopeers asks the relay for no peer messages at all: for a device that only "
            "talks to the relay host or to addresses it already knows, in a large fleet.");
DEFINE_string(status_socket, "",
              "Unix socket for the local status endpoint that 'ctl status' reads (JSON status, "
              "Prometheus /metrics); owner-only. Default: /run/mnedc/<--tun_name>.sock; 'none' "
              "to disable.");
DEFINE_bool(dns, true,
            "Answer DNS queries sent to the relay's overlay address (10.0.0.1:53, [PREFIX::1]:53) on "
            "this device, from its own peer table: every member is DEVICE_ID.--dns_domain (A, AAAA, "
            "and PTR for its addresses); other names are refused. The query never leaves the device.");
DEFINE_string(dns_domain, "mnedc.internal",
              "The domain the overlay's names are under ('internal' is reserved for private use). "
              "Lowercase labels of a-z, 0-9 and '-'.");
DEFINE_string(dns_forward, "",
              "IP[:PORT] (port 53 by default) of a resolver to pass queries for names outside the "
              "overlay to, for a device that sends all its DNS to the relay's address. Default: "
              "refuse them (REFUSED), for split DNS.");
DEFINE_bool(dns_register, true,
            "Where systemd-resolved runs, register --dns_domain for this device's TUN over its D-Bus "
            "API (split DNS: only names under the domain go to the relay's address, answered here), "
            "and remove it on exit. Elsewhere, see the README's one line for dnsmasq.");
DEFINE_bool(offload, true,
            "Use the kernel's TUN offloads: read and write up to 64 KiB of one TCP or UDP flow at "
            "once and send it to the relay as one super-packet, where the relay takes them. "
            "--offload=false: one packet per read, write and frame, as before.");
DEFINE_string(state_dir, "/var/lib/mnedc",
              "Where the device keeps its key (device.key: an X25519 private key in base64, made on "
              "first start, owner-only). Its public half, logged at start, is the device's identity: "
              "the relay binds the device ID to it.");
DEFINE_bool(seal, true,
            "Seal unicast packets end to end to peers that have keys (ChaCha20-Poly1305; the relay "
            "forwards what it cannot read). --seal=false seals nothing to or from this device (the "
            "relay still checks its key), as with an older version.");
DEFINE_string(cipher, "auto",
              "The AEAD this device seals with: 'auto' (AES-256-GCM where the CPU has AES instructions, "
              "else ChaCha20-Poly1305), 'aes-256-gcm' or 'chacha20-poly1305'. Each peer opens both; a "
              "peer of the first sealing version is sealed to with ChaCha20-Poly1305 whatever this says.");
DEFINE_bool(direct, true,
            "Look for a direct path to each peer this device talks to (UDP through the NATs: the "
            "relay's STUN tells the outside address, both sides probe at once) and send its packets "
            "there, sealed, while it works; back through the relay within a second when it goes "
            "silent. Needs --seal. --direct=false: everything through the relay.");
DEFINE_int32(direct_port, 0,
             "UDP port for direct paths (0: any free one). A fixed port helps where a firewall "
             "must let it through.");
DEFINE_int32(keepalive_seconds, 15, "Ping the relay after this much silence (jittered +-20%).");
DEFINE_int32(dead_after_seconds, 45, "Reconnect when nothing came from the relay for this long.");
DEFINE_int32(max_backoff_seconds, 30, "Longest wait between reconnect attempts.");

namespace {
namespace asio = boost::asio;
using mnedc::cli::Fail;
using mnedc::base::Ipv4ToString;

constexpr char kUsage[] =
    "mnedc client: joins a relay and gives this device a virtual address on a TUN interface.\n"
    "\n"
    "Usage: client --server=HOST[:PORT] [flags]     (needs root or CAP_NET_ADMIN for the TUN)\n"
    "       client --server=wss://relay.example.net/ --token_file=token [--proxy=http://proxy:3128]\n"
    "       client --config=client-config.yaml\n"
    "Example: bazel run //mnedc/cli:client -- --server=relay.example.net:3334 \\\n"
    "           --on_peer='echo \"$MNEDC_EVENT $MNEDC_PEER_ID $MNEDC_PEER_ADDR\"'";

// Rewrites --peers_file through a temporary file, so readers never see half of it.
void WritePeersFile(const std::vector<mnedc::discovery::Peer>& peers) {
  if (FLAGS_peers_file.empty()) return;
  std::ostringstream out;
  out << "# device_id virtual_address seen_from virtual_address6 (- on an IPv4-only network)\n";
  for (const auto& peer : peers) {
    out << peer.device_id << " " << Ipv4ToString(peer.address) << " " << peer.seen_from << " "
        << (peer.address6 ? mnedc::base::Ipv6ToString(*peer.address6) : "-") << "\n";
  }
  std::string error;
  if (!mnedc::base::WriteFileAtomically(FLAGS_peers_file, out.str(), /*durable=*/false, &error)) {
    LOG(WARNING) << "--peers_file: " << error;
  }
}

std::vector<mnedc::transport::ServerAddress> RelaysFromFlags() {
  std::string error;
  if (!FLAGS_server.empty()) {
    std::vector<mnedc::transport::ServerAddress> relays;
    std::vector<std::string> items;
    if (!mnedc::cli::SplitList(FLAGS_server, &items, &error)) Fail("--server: " + error);
    for (const std::string& one : items) {
      auto relay = mnedc::transport::ParseServerAddress(one, mnedc::cli::kDefaultPort, &error);
      if (!relay) Fail("--server=" + error);
      relays.push_back(*relay);
    }
    return relays;
  }
  const std::string path = FLAGS_config.empty() ? mnedc::cli::kMnedcConfigPath : FLAGS_config;
  if (FLAGS_config.empty() && access(path.c_str(), F_OK) != 0) {
    Fail("no relay given: pass --server=HOST[:PORT], or --config=PATH (" + path + " not found)");
  }
  auto relays = mnedc::cli::LoadClientConfig(path, &error);
  if (!relays) Fail("--config: " + error);
  std::vector<mnedc::transport::ServerAddress> addresses;
  for (const auto& relay : *relays) {
    mnedc::transport::ServerAddress address;
    address.endpoint = relay;
    addresses.push_back(address);
  }
  return addresses;
}

// How to dial each relay: the proxy (per relay: $no_proxy may name some), and
// one TLS context for every tls:// and wss:// relay, made at start if one is
// given (so a bad --ca_file fails at once), else when a relay learned from a
// Lease first needs it.
class RelayDialer {
 public:
  explicit RelayDialer(const std::vector<mnedc::transport::ServerAddress>& relays) {
    std::string error;
    if (!FLAGS_proxy.empty() && FLAGS_proxy != "none") {
      proxy_ = mnedc::transport::ParseProxy(FLAGS_proxy, &error);
      if (!proxy_) Fail("--proxy: " + error);
    }
    for (const auto& relay : relays) For(relay, &error);  // $https_proxy is checked here.
    if (!error.empty()) Fail(error);
    const bool tls_flags = !FLAGS_ca_file.empty() || !FLAGS_pin_sha256.empty() ||
                           !FLAGS_tls_cert.empty() || !FLAGS_tls_key.empty();
    const bool any_tls = std::any_of(relays.begin(), relays.end(), [](const auto& r) { return r.uses_tls(); });
    if (tls_flags && !any_tls) Fail("TLS flags given, but no --server is tls:// or wss://");
    if (!FLAGS_ca_file.empty() && !FLAGS_pin_sha256.empty()) {
      Fail("give --ca_file or --pin_sha256, not both");
    }
    if (any_tls && !MakeTls(&error)) Fail(error);
  }

  // The options for one relay; empty `error` unless they cannot be made.
  mnedc::transport::DialOptions For(const mnedc::transport::ServerAddress& relay, std::string* error) {
    mnedc::transport::DialOptions dial;
    if (proxy_) {
      dial.proxy = proxy_;
    } else if (FLAGS_proxy != "none") {
      dial.proxy = mnedc::transport::ProxyFromEnvironment(relay.endpoint.host, error);
      if (!error->empty()) *error = "https_proxy: " + *error;
    }
    if (relay.uses_tls() && (tls_ || MakeTls(error))) {
      dial.tls = tls_;
      dial.verify_host_name = FLAGS_pin_sha256.empty();
    }
    return dial;
  }

  mnedc::client::Client::Dialer Dialer() {
    return [this](const mnedc::transport::ServerAddress& relay) -> asio::awaitable<mnedc::transport::DialOutcome> {
      std::string error;
      mnedc::transport::DialOptions dial = For(relay, &error);
      if (!error.empty()) {
        co_return mnedc::transport::DialOutcome{asio::error::invalid_argument, error, nullptr};
      }
      co_return co_await mnedc::transport::Dial(relay, std::move(dial));
    };
  }

 private:
  bool MakeTls(std::string* error) {
    mnedc::transport::TlsClientOptions tls{FLAGS_ca_file, FLAGS_pin_sha256, FLAGS_tls_cert, FLAGS_tls_key};
    tls_ = mnedc::transport::MakeTlsClientContext(tls, error);
    return tls_ != nullptr;
  }

  std::optional<mnedc::transport::HostPort> proxy_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
};
}  // namespace

int main(int argc, char** argv) {
  mnedc::cli::Init(&argc, &argv, kUsage);
  mnedc::client::ClientOptions options;
  const std::vector<mnedc::transport::ServerAddress> relays = RelaysFromFlags();
  options.server = relays.front();
  options.more_servers.assign(relays.begin() + 1, relays.end());
  RelayDialer dialer(relays);
  if (!FLAGS_token_file.empty()) {
    options.credentials = mnedc::cli::ReadTokenFile("--token_file", FLAGS_token_file);
  }
  options.device_id = FLAGS_device_id.empty() ? mnedc::cli::DefaultDeviceId() : FLAGS_device_id;
  options.want_peers = FLAGS_peers;
  options.super_packets = FLAGS_offload;
  if (!FLAGS_peers && (!FLAGS_on_peer.empty() || !FLAGS_peers_file.empty())) {
    Fail("--nopeers leaves --on_peer and --peers_file with nothing to report: drop one or the other");
  }
  if (!mnedc::base::IsValidDeviceId(options.device_id)) {
    Fail("--device_id='" + options.device_id + "': " + mnedc::base::kDeviceIdRule);
  }
  if (FLAGS_max_backoff_seconds < 1) Fail("--max_backoff_seconds must be at least 1");
  mnedc::cli::ApplyKeepaliveFlags(FLAGS_keepalive_seconds, FLAGS_dead_after_seconds, options.link);
  options.backoff_max = std::chrono::seconds(FLAGS_max_backoff_seconds);

  if (std::string domain_error; FLAGS_dns && !mnedc::dns::IsValidDomain(FLAGS_dns_domain, &domain_error)) {
    Fail("--dns_domain=" + domain_error);
  }
  std::optional<asio::ip::udp::endpoint> dns_forward;
  if (!FLAGS_dns_forward.empty()) {
    std::string forward_error;
    const auto target = mnedc::transport::ParseHostPort(FLAGS_dns_forward, 53, &forward_error);
    boost::system::error_code address_error;
    const auto address = target ? asio::ip::make_address(target->host, address_error) : asio::ip::address();
    if (!target || address_error) {
      Fail("--dns_forward='" + FLAGS_dns_forward + "' is not IP[:PORT] (an address, not a name: " +
           (target ? address_error.message() : forward_error) + ")");
    }
    dns_forward = asio::ip::udp::endpoint(address, target->port);
  }
  asio::io_context io(1);
  std::string error;
  // The TUN is created once and kept across reconnects, so sockets bound to
  // the virtual address survive a relay restart; if its interface is deleted
  // under us, it is created again with the lease.
  auto tun = mnedc::tun::OpenLastingTun(io.get_executor(), FLAGS_tun_name, &error,
                                        mnedc::tun::TunOptions{FLAGS_offload});
  if (!tun) Fail(error);
  // After the TUN: without privilege, what the client needs first is root.
  {
    if (FLAGS_state_dir.empty()) Fail("--state_dir is empty: the device key needs a home");
    const std::string key_path = FLAGS_state_dir + "/device.key";
    mnedc::seal::KeyPair key;
    bool created = false;
    std::string key_error;
    if (!mnedc::seal::LoadOrCreateKeyFile(key_path, &key, &created, &key_error)) Fail(key_error);
    LOG(INFO) << (created ? "made the device key " : "device key ") << key_path << ": public key "
              << mnedc::seal::EncodeKey(key.public_key())
              << (created ? " (the relay binds " + options.device_id + " to it at the first join)" : "");
    options.device_key = key;
    options.seal = FLAGS_seal;
    if (FLAGS_cipher == "aes-256-gcm") {
      options.cipher = mnedc::seal::Cipher::kAes256Gcm;
    } else if (FLAGS_cipher == "chacha20-poly1305") {
      options.cipher = mnedc::seal::Cipher::kChaCha20Poly1305;
    } else if (FLAGS_cipher != "auto") {
      Fail("--cipher must be auto, aes-256-gcm or chacha20-poly1305, not '" + FLAGS_cipher + "'");
    }
    if (!FLAGS_seal) LOG(WARNING) << "--seal=false: nothing to or from this device is sealed";
    if (FLAGS_direct_port < 0 || FLAGS_direct_port > 65535) Fail("--direct_port must be 0 to 65535");
    options.direct = FLAGS_direct && FLAGS_seal;
    options.direct_port = static_cast<uint16_t>(FLAGS_direct_port);
    if (FLAGS_direct && !FLAGS_seal) LOG(WARNING) << "--seal=false: no direct paths either (they are sealed)";
  }

  mnedc::client::Client client(io.get_executor(), options, dialer.Dialer());
  mnedc::client::TunBridge bridge(client, *tun);
  std::unique_ptr<mnedc::client::DnsResponder> dns;
  if (FLAGS_dns) {
    dns = std::make_unique<mnedc::client::DnsResponder>(client, FLAGS_dns_domain, *tun, dns_forward);
    bridge.InterceptReads([&](std::span<const uint8_t> packet) { return dns->Intercept(packet); });
  }
  std::unique_ptr<mnedc::client::ResolvedLink> resolved;
  if (FLAGS_dns && FLAGS_dns_register) {
    std::string why;
    resolved = mnedc::client::ResolvedLink::Connect(&why);
    if (!resolved) {
      LOG(INFO) << "names: not registered with systemd-resolved (" << why << "); ask the relay address for "
                << "DEVICE." << FLAGS_dns_domain << " (README: Names)";
    }
  }
  bridge.AfterLease([&](const mnedc::client::LeaseInfo& lease) {
    if (!resolved) return;
    std::string why;
    const int ifindex = static_cast<int>(::if_nametoindex(tun->name().c_str()));
    const std::optional<mnedc::base::Ipv6Address> server6 =
        lease.address6 ? std::optional<mnedc::base::Ipv6Address>(lease.relay_address6) : std::nullopt;
    if (ifindex > 0 && resolved->Register(ifindex, lease.relay_address, server6, FLAGS_dns_domain, &why)) {
      LOG(INFO) << "names: systemd-resolved sends " << FLAGS_dns_domain << " to " << tun->name();
    } else {
      LOG(WARNING) << "names: systemd-resolved refused " << FLAGS_dns_domain << " on " << tun->name() << ": " << why;
    }
  });
  mnedc::cli::PeerHook hook(io.get_executor(), FLAGS_on_peer);
  // The peers file is rewritten at most five times a second while the table
  // changes, so joining a fleet of N costs O(N) file writes, not one per peer.
  asio::steady_timer peers_file_timer(io);
  bool peers_file_due = false;
  client.peers().Subscribe([&](mnedc::discovery::PeerEvent event, const mnedc::discovery::Peer& peer) {
    LOG(INFO) << "peer " << mnedc::discovery::PeerEventName(event) << ": " << peer.device_id << " "
              << Ipv4ToString(peer.address) << " (from " << peer.seen_from << ")";
    hook.OnEvent(event, peer);
    if (FLAGS_peers_file.empty() || peers_file_due) return;
    peers_file_due = true;
    peers_file_timer.expires_after(std::chrono::milliseconds(200));
    peers_file_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      peers_file_due = false;
      WritePeersFile(client.peers().Snapshot());
    });
  });
  WritePeersFile({});

  // The local status endpoint (ctl status).
  const std::string status_path = FLAGS_status_socket.empty()
                                      ? "/run/mnedc/" + tun->name() + ".sock"
                                      : FLAGS_status_socket;
  asio::local::stream_protocol::acceptor status_acceptor(io);
  const mnedc::client::StatusSources status_sources{&client, tun.get(), dns.get()};
  if (status_path != "none") {
    std::string status_error;
    if (mnedc::cli::OpenStatusSocket(status_path, status_acceptor, &status_error)) {
      asio::co_spawn(io,
                     mnedc::admin::ServeHttp(status_acceptor,
                                             [&](const mnedc::admin::HttpRequest& request) {
                                               return mnedc::client::HandleStatusRequest(
                                                   request, status_sources);
                                             }),
                     asio::detached);
      LOG(INFO) << "status on " << status_path << " (ctl status --socket=" << status_path << ")";
    } else {
      LOG(WARNING) << status_error << "; running without a status endpoint";
    }
  }

  asio::co_spawn(io, bridge.Run(), asio::detached);
  asio::co_spawn(io, hook.Run(), asio::detached);
  if (dns) asio::co_spawn(io, dns->Run(), asio::detached);
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    co_await client.Run();
    hook.Stop();
    if (dns) dns->Stop();
    peers_file_timer.cancel();
    WritePeersFile(client.peers().Snapshot());
    tun->Close();
    if (status_acceptor.is_open()) {
      boost::system::error_code ignored;
      status_acceptor.close(ignored);
      ::unlink(status_path.c_str());
    }
  }, asio::detached);

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    LOG(INFO) << "signal " << signal << ": leaving the relay";
    client.Stop();
  });
  std::string proxy_error;
  const auto first_dial = dialer.For(options.server, &proxy_error);
  LOG(INFO) << "mnedc client " << options.device_id << " joining relay " << options.server.ToString()
            << (first_dial.proxy ? " through proxy " + first_dial.proxy->ToString() : "")
            << (relays.size() > 1 ? " (" + std::to_string(relays.size() - 1) + " more to fail over to)" : "")
            << " on " << tun->name();
  io.run();
  const auto& counters = client.counters();
  LOG(INFO) << "stopped; sent " << counters.packets_sent << " packets, received "
            << counters.packets_received << ", dropped while disconnected "
            << counters.dropped_not_connected;
  if (!bridge.failure().empty()) {
    std::fprintf(stderr, "client: error: %s\n", bridge.failure().c_str());
    return 1;
  }
  return 0;
}
