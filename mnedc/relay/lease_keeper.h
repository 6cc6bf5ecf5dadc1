#pragma once
// The relay's leases and their file: the pool that hands out addresses, and
// --lease_file, which keeps them across restarts (written as FileSaver says).
#include <boost/asio/any_io_executor.hpp>
#include <string>

#include "mnedc/relay/file_saver.h"
#include "mnedc/relay/lease_pool.h"

namespace mnedc::relay {

class LeaseKeeper {
 public:
  // An empty `file` keeps leases in memory only.
  LeaseKeeper(boost::asio::any_io_executor executor, Prefix prefix, std::string file);
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  // Loads the file (a missing one is fine); false with `error` if unreadable.
  bool Restore(std::string* error);
  LeasePool& pool() { return pool_; }
  const LeasePool& pool() const { return pool_; }
  // The pool may have changed: write the file soon if it did.
  void Changed();
  // Writes now if anything changed (at shutdown).
  void SaveNow();

 private:
  bool Save();

  LeasePool pool_;
  std::string file_;
  uint64_t saved_generation_ = 0;
  FileSaver saver_;  // Last: destroyed first, so no save runs on a half-destroyed keeper.
};

}  // namespace mnedc::relay
