// MNEDC's client-config.yaml, as the client reads it at start.
#include <string>
#include <string_view>

#include "mnedc/cli/client_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::string error;
  mnedc::cli::ParseClientConfig(std::string_view(reinterpret_cast<const char*>(data), size), &error);
  return 0;
}
