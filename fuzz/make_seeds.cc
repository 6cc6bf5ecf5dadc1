// Writes the seed corpora into fuzz/corpus/ (run once; the files are
// committed): `bazel run //fuzz:make_seeds -- $PWD/fuzz/corpus`. Each seed is a
// well-formed example of what its target parses, so the fuzzer starts from
// inputs that reach deep, and mutates from there.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "mnedc/protocol/control_codec.h"
#include "mnedc/protocol/peer_frames.h"

namespace {
namespace fs = std::filesystem;
using mnedc::protocol::ControlMessage;
using Bytes = std::vector<uint8_t>;

fs::path root;

void Write(const std::string& target, const std::string& name, const Bytes& bytes) {
  const fs::path dir = root / target;
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}
void WriteText(const std::string& target, const std::string& name, const std::string& text) {
  Write(target, name, Bytes(text.begin(), text.end()));
}

Bytes Control(const ControlMessage& message) {
  Bytes frame;
  mnedc::protocol::EncodeControlFrame(message, frame);
  return frame;
}
Bytes Hello(const std::string& id, mnedc::protocol::PeerMode peers) {
  ControlMessage m;
  m.mutable_hello()->set_protocol_version(mnedc::protocol::kProtocolVersion);
  m.mutable_hello()->set_device_id(id);
  m.mutable_hello()->set_peers(peers);
  return Control(m);
}
Bytes Ipv4(uint32_t from, uint32_t to, std::size_t size) {
  Bytes p(size, 0);
  p[0] = 0x45;
  p[2] = static_cast<uint8_t>(size >> 8);
  p[3] = static_cast<uint8_t>(size);
  p[8] = 64;
  p[9] = 17;
  for (int i = 0; i < 4; ++i) {
    p[12 + i] = static_cast<uint8_t>(from >> (24 - 8 * i));
    p[16 + i] = static_cast<uint8_t>(to >> (24 - 8 * i));
  }
  return p;
}
Bytes Data(const Bytes& packet) {
  Bytes frame(5 + packet.size());
  mnedc::protocol::WriteFrameHeader(mnedc::protocol::FrameType::kData, static_cast<uint32_t>(packet.size()),
                                    frame.data());
  std::copy(packet.begin(), packet.end(), frame.begin() + 5);
  return frame;
}
Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes all;
  for (const auto& part : parts) all.insert(all.end(), part.begin(), part.end());
  return all;
}
// One WebSocket binary message from a client (masked, with a zero key).
Bytes WsMessage(const Bytes& payload) {
  Bytes frame = {0x82};
  if (payload.size() < 126) {
    frame.push_back(static_cast<uint8_t>(0x80 | payload.size()));
  } else {
    frame.push_back(0x80 | 126);
    frame.push_back(static_cast<uint8_t>(payload.size() >> 8));
    frame.push_back(static_cast<uint8_t>(payload.size()));
  }
  frame.insert(frame.end(), {0, 0, 0, 0});
  frame.insert(frame.end(), payload.begin(), payload.end());
  return frame;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds DIRECTORY (fuzz/corpus)\n");
    return 2;
  }
  root = argv[1];
  const Bytes hello = Hello("fuzzer", mnedc::protocol::PEERS_BATCHED);
  const Bytes packet = Data(Ipv4(0x0a000003, 0x0a000002, 60));  // To the anchor, if leased .3.
  const Bytes broadcast = Data(Ipv4(0x0a000003, 0x0a0000ff, 40));
  ControlMessage ping;
  ping.mutable_ping()->set_nonce(7);

  // The frame reader and control decoding (first byte: how reads are cut).
  mnedc::protocol::PeerFrameBuilder batch(mnedc::protocol::PEERS_BATCHED);
  batch.Add(mnedc::protocol::EncodePeerChange("deva", 0x0a000002, "192.0.2.1:4000", false), false);
  batch.Add(mnedc::protocol::EncodePeerChange("devb", 0x0a000003, "", true), true);
  batch.EndSnapshot();
  ControlMessage lease;
  lease.mutable_lease()->set_address(0x0a000002);
  lease.mutable_lease()->set_prefix_length(24);
  lease.mutable_lease()->set_mtu(1400);
  ControlMessage error;
  error.mutable_error()->set_code(mnedc::protocol::Error::BUSY);
  error.mutable_error()->set_text("try later");
  Write("frame_fuzz", "hello", Cat({{3}, hello}));
  Write("frame_fuzz", "lease_and_peers", Cat({{17}, Control(lease), batch.out(), Control(ping)}));
  Write("frame_fuzz", "data_and_unknown", Cat({{200}, packet, {0x42, 0, 0, 0, 2, 1, 2}, Control(error)}));

  // The relay, over each transport.
  Write("relay_session_fuzz", "native_join_and_send", Cat({hello, packet, broadcast, Control(ping)}));
  Write("relay_session_fuzz", "native_each_peers", Hello("older", mnedc::protocol::PEERS_EACH));
  const std::string upgrade =
      "GET / HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  Write("relay_session_fuzz", "websocket_join_and_send",
        Cat({Bytes(upgrade.begin(), upgrade.end()), WsMessage(hello), WsMessage(packet)}));
  Write("relay_session_fuzz", "tls_client_hello_start", {0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03});
  Write("relay_session_fuzz", "oversize_frame", {0x01, 0x7f, 0xff, 0xff, 0xff});

  // A client, from what answers it: byte 0 picks tcp (0), ws (1) or tcp through
  // a CONNECT proxy (2), the rest is the answer.
  const Bytes relay_answer = Cat({Control(lease), batch.out(), Control(ping), packet, Control(error)});
  Write("client_session_fuzz", "tcp_lease_and_peers", Cat({{0}, relay_answer}));
  const std::string switching =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  Bytes server_message = {0x82, static_cast<uint8_t>(Control(lease).size())};
  const Bytes lease_frame = Control(lease);
  server_message.insert(server_message.end(), lease_frame.begin(), lease_frame.end());
  Write("client_session_fuzz", "ws_upgrade_and_lease", Cat({{1}, Bytes(switching.begin(), switching.end()), server_message}));
  const std::string connected = "HTTP/1.1 200 Connection established\r\n\r\n";
  Write("client_session_fuzz", "proxy_connect_then_relay", Cat({{2}, Bytes(connected.begin(), connected.end()), relay_answer}));
  const std::string refused = "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n";
  Write("client_session_fuzz", "proxy_refuses", Cat({{2}, Bytes(refused.begin(), refused.end())}));

  // IP packets.
  Write("ip_packet_fuzz", "ipv4_udp", Ipv4(0x0a000002, 0x0a000003, 28));
  Bytes v6(40, 0);
  v6[0] = 0x60;
  Write("ip_packet_fuzz", "ipv6_header", v6);

  // Addresses as typed.
  for (const char* text : {"relay.example.net:3334", "wss://relay.example.net/mnedc", "tls://[2001:db8::1]:443",
                           "http://proxy:3128", "10.0.0.0/24", "192.168.1.10", "device-a.1"}) {
    WriteText("address_fuzz", std::string("seed") + std::to_string(std::hash<std::string>{}(text) % 100000), text);
  }
  WriteText("client_config_fuzz", "mnedc", "server-ip: \"192.168.1.10\"\nport: \"3334\"\n");
  WriteText("client_config_fuzz", "ipv6", "server-ip: 2001:db8::1\nport: 443\n");
  WriteText("lease_file_fuzz", "leases",
            "# mnedc relay leases for 10.0.0.0/24: address device_id\n10.0.0.2 deva\n10.0.0.3 devb\n");
  std::printf("seeds written under %s\n", root.c_str());
  return 0;
}
