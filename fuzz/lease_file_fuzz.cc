// The relay's lease file, read at start: whatever it holds, the pool that
// comes out gives each address to one device and each device one address.
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include "mnedc/relay/lease_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace mnedc::relay;
  LeasePool pool(Prefix{0x0a000000, 24});
  ParseLeases(std::string_view(reinterpret_cast<const char*>(data), size), pool);
  auto check = [&pool] {
    std::set<std::string> devices;
    std::set<uint32_t> addresses;
    for (const auto& [device, address] : pool.Leases()) {
      if (!devices.insert(device).second || !addresses.insert(address).second) std::abort();
      if ((address & 0xffffff00u) != 0x0a000000u) std::abort();
    }
  };
  check();
  // The pool still works for a newcomer, and stays consistent.
  pool.Acquire("newcomer-device");
  check();
  return 0;
}
