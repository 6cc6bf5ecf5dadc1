#include "mnedc/relay/lease_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "mnedc/protocol/control_codec.h"

namespace mnedc::relay {

bool LoadLeaseFile(const std::string& path, LeasePool& pool, int* skipped, std::string* error) {
  *skipped = 0;
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return true;
    *error = "cannot read lease file '" + path + "': " + std::strerror(errno);
    return false;
  }
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string address_text, device_id, extra;
    fields >> address_text >> device_id >> extra;
    const auto address = ParseIpv4(address_text);
    if (!address || device_id.empty() || !extra.empty() || device_id.size() > 128 ||
        !pool.Remember(device_id, *address)) {
      ++*skipped;
    }
  }
  return true;
}

bool SaveLeaseFile(const std::string& path, const LeasePool& pool, std::string* error) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << "# mnedc relay leases for " << pool.prefix().ToString() << ": address device_id\n";
    for (const auto& [device_id, address] : pool.Leases()) {
      out << protocol::Ipv4ToString(address) << " " << device_id << "\n";
    }
    out.flush();
    if (!out) {
      *error = "cannot write lease file '" + temporary + "'";
      return false;
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    *error = "cannot replace lease file '" + path + "': " + std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace mnedc::relay
