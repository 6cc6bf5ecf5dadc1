#include "mnedc/tun/packet_port.h"

namespace mnedc::tun {

std::string Offloads::ToString() const {
  std::string text;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!text.empty()) text += ", ";
    text += name;
  };
  add(checksum, "checksum");
  add(tcp4, "tso4");
  add(tcp6, "tso6");
  add(udp, "uso");
  return text.empty() ? "none" : text;
}

}  // namespace mnedc::tun
