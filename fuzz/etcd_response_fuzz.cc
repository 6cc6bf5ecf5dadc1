// What etcd (or whatever answers on its port) sends back to a relay: a range
// response is parsed into key-values or refused, never trusted; every key and
// value that comes out is bytes that base64 carries back unchanged.
#include <cstdlib>
#include <string>
#include <string_view>

#include "mnedc/cluster/etcd_client.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace mnedc::cluster;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  std::string error;
  if (auto kvs = ParseRangeResponse(body, &error)) {
    for (const KeyValue& kv : *kvs) {
      if (Base64Decode(Base64Encode(kv.key)) != kv.key) std::abort();
      if (Base64Decode(Base64Encode(kv.value)) != kv.value) std::abort();
    }
  } else if (error.empty()) {
    std::abort();  // A refusal always says why.
  }
  // The decoder on raw input refuses it or gives bytes whose encoding is as
  // long as the text (non-canonical trailing bits aside, the same text).
  const std::string text(body);
  if (auto bytes = Base64Decode(text)) {
    if (Base64Encode(*bytes).size() != text.size()) std::abort();
  }
  return 0;
}
