#include "mnedc/base/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace mnedc::base {
namespace {

std::string Dir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir ? dir : "/tmp";
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(AtomicFile, ReplacesContentAndLeavesNoTemporary) {
  const std::string path = Dir() + "/atomic-a";
  std::string error;
  ASSERT_TRUE(WriteFileAtomically(path, "first\n", false, &error)) << error;
  ASSERT_TRUE(WriteFileAtomically(path, "second\n", true, &error, 0600)) << error;
  EXPECT_EQ(ReadAll(path), "second\n");
  struct stat info {};
  EXPECT_NE(::stat((path + ".tmp").c_str(), &info), 0);
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
}

TEST(AtomicFile, SaysWhichStepFailed) {
  std::string error;
  EXPECT_FALSE(WriteFileAtomically(Dir() + "/no/such/dir/file", "x", false, &error));
  EXPECT_NE(error.find("cannot write '"), std::string::npos) << error;
  EXPECT_NE(error.find("No such file or directory"), std::string::npos) << error;
}

}  // namespace
}  // namespace mnedc::base
