// OpenSSL's own allocations while sealing and opening, counted through
// CRYPTO_set_mem_functions (set before OpenSSL allocates anything, so this
// binary has its own main and nothing else that starts OpenSSL): once a
// key's contexts exist, a packet costs none.
#include <openssl/crypto.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "mnedc/seal/aead.h"

namespace {
std::atomic<uint64_t> allocations{0};
void* CountingMalloc(size_t n, const char*, int) {
  ++allocations;
  return std::malloc(n);
}
void* CountingRealloc(void* p, size_t n, const char*, int) {
  ++allocations;
  return std::realloc(p, n);
}
void CountingFree(void* p, const char*, int) { std::free(p); }
}  // namespace

int main() {
  if (CRYPTO_set_mem_functions(CountingMalloc, CountingRealloc, CountingFree) != 1) {
    std::printf("FAIL: OpenSSL allocated before the counter could be set\n");
    return 1;
  }
  std::vector<uint8_t> key(32, 7);
  bool ok = true;
  for (const auto cipher : {mnedc::seal::Cipher::kChaCha20Poly1305, mnedc::seal::Cipher::kAes256Gcm}) {
    mnedc::seal::Aead sealer(std::span<const uint8_t, 32>(key.data(), 32), 0, mnedc::seal::Aead::Use::kSeal, cipher);
    mnedc::seal::Aead opener(std::span<const uint8_t, 32>(key.data(), 32), 0, mnedc::seal::Aead::Use::kOpen, cipher);
    std::vector<uint8_t> packet(65535, 0x33), aad(20, 1);
    std::array<uint8_t, mnedc::seal::kTagSize> tag;
    // Warm: the first calls may set things up.
    for (uint64_t i = 0; i < 10; ++i) {
      sealer.Seal(i, aad, packet, tag);
      opener.Open(i, aad, packet, tag);
    }
    const uint64_t before = allocations.load();
    int failures = 0;
    for (uint64_t i = 10; i < 10010; ++i) {
      const std::size_t size = 40 + (i * 997) % 65000;
      const std::span<uint8_t> data(packet.data(), size);
      if (!sealer.Seal(i, aad, data, tag) || !opener.Open(i, aad, data, tag)) ++failures;
    }
    const uint64_t during = allocations.load() - before;
    std::printf("%s: OpenSSL allocations for 10000 packets sealed and opened: %lu; failures: %d\n",
                mnedc::seal::CipherName(cipher), static_cast<unsigned long>(during), failures);
    if (before == 0) {
      std::printf("FAIL: the counter saw no allocation at all (the contexts): it is not counting\n");
      return 1;
    }
    ok = ok && during == 0 && failures == 0;
  }
  return ok ? 0 : 1;
}
