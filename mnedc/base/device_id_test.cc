#include "mnedc/base/device_id.h"

#include <gtest/gtest.h>

#include <string>

namespace mnedc::base {
namespace {

TEST(DeviceId, PrintableAsciiUpTo128) {
  EXPECT_TRUE(IsValidDeviceId("kitchen-pi"));
  EXPECT_TRUE(IsValidDeviceId(std::string(128, 'a')));
  EXPECT_FALSE(IsValidDeviceId(""));
  EXPECT_FALSE(IsValidDeviceId(std::string(129, 'a')));
  EXPECT_FALSE(IsValidDeviceId("kitchen pi"));
  EXPECT_FALSE(IsValidDeviceId("tab\there"));
  EXPECT_FALSE(IsValidDeviceId("caf\xc3\xa9"));
  EXPECT_FALSE(IsValidDeviceId(std::string("nul\0x", 5)));
}

}  // namespace
}  // namespace mnedc::base
