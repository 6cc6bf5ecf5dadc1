#pragma once
// Split DNS through systemd-resolved: tells resolved, over its D-Bus API
// (org.freedesktop.resolve1.Manager on the system bus), that the overlay's
// domain is answered at the relay's overlay addresses on the TUN interface
// (SetLinkDNS, and SetLinkDomains with the domain routing-only: "~DOMAIN"),
// so every application on the device resolves DEVICE.DOMAIN and nothing else
// goes there. The registration is reverted (RevertLink) when the object goes.
// Each call waits at most a second: resolved answers in microseconds or not
// at all.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mnedc/base/ipv6.h"

struct sd_bus;

namespace mnedc::client {

class ResolvedLink {
 public:
  // Connects to the system bus ($DBUS_SYSTEM_BUS_ADDRESS, else the standard
  // socket). Null with `why` when there is no bus or resolved is not on it.
  static std::unique_ptr<ResolvedLink> Connect(std::string* why);
  ~ResolvedLink();
  ResolvedLink(const ResolvedLink&) = delete;
  ResolvedLink& operator=(const ResolvedLink&) = delete;

  // Points `domain` on interface `ifindex` at `server` (and `server6`);
  // again after a new lease. False with `why` if resolved refused.
  bool Register(int ifindex, uint32_t server, const std::optional<base::Ipv6Address>& server6,
                const std::string& domain, std::string* why);

 private:
  explicit ResolvedLink(sd_bus* bus) : bus_(bus) {}
  // Calls Manager.RevertLink for the registered interface, if any.
  void Revert();

  sd_bus* bus_;
  int ifindex_ = 0;  // Registered, or 0.
};

}  // namespace mnedc::client
