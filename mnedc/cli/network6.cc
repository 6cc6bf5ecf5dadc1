#include "mnedc/cli/network6.h"

#include <openssl/evp.h>

#include <array>
#include <fstream>

namespace mnedc::cli {

base::Prefix6 DerivedUniqueLocalPrefix(std::string_view seed) {
  const std::string input = "mnedc network6 global ID\n" + std::string(seed);
  std::array<uint8_t, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_Digest(input.data(), input.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return base::UniqueLocalPrefix(std::span<const uint8_t, 5>(digest.data(), 5));
}

std::optional<base::Prefix6> Network6FromFlag(std::string_view flag, std::string_view seed, std::string* error) {
  error->clear();
  if (flag == "none") return std::nullopt;
  if (flag == "auto") {
    if (seed.empty()) {
      *error = "'auto' needs /etc/machine-id (or --cluster) to make a /64 that stays the same across "
               "restarts, and this host has none: give --network6=fdXX:XXXX:XXXX::/64 (any random "
               "40 bits after fd), or --network6=none";
      return std::nullopt;
    }
    return DerivedUniqueLocalPrefix(seed);
  }
  return base::ParsePrefix6(flag, error);
}

std::string MachineId() {
  std::ifstream file("/etc/machine-id");
  std::string id;
  std::getline(file, id);
  return id;
}

}  // namespace mnedc::cli
