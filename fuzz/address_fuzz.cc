// What people type and environments hold: --server, --proxy / https_proxy,
// --network, device IDs. A parsed HOST:PORT must print back to what parses
// to the same thing.
#include <cstdlib>
#include <string>
#include <string_view>

#include "mnedc/base/device_id.h"
#include "mnedc/base/ipv4.h"
#include "mnedc/transport/dial.h"
#include "mnedc/transport/endpoint.h"
#include "mnedc/transport/server_address.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace mnedc;
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::string error;
  if (const auto server = transport::ParseServerAddress(text, 3334, &error)) {
    std::string again_error;
    const auto again = transport::ParseServerAddress(server->ToString(), 3334, &again_error);
    if (!again || again->ToString() != server->ToString()) std::abort();
  }
  if (const auto host_port = transport::ParseHostPort(text, 3334, &error)) {
    const auto again = transport::ParseHostPort(host_port->ToString(), 1, &error);
    if (!again || again->host != host_port->host || again->port != host_port->port) std::abort();
  }
  transport::ParseProxy(text, &error);
  if (const auto prefix = base::ParsePrefix(text, &error)) {
    if (prefix->length < 8 || prefix->length > 30) std::abort();
  }
  if (const auto address = base::ParseIpv4(text)) {
    if (base::ParseIpv4(base::Ipv4ToString(*address)) != address) std::abort();
  }
  if (base::IsValidDeviceId(text) && (text.empty() || text.size() > base::kMaxDeviceIdLength)) {
    std::abort();
  }
  return 0;
}
