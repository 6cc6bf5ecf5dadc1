#pragma once
// The relay's leases and their file: the pool that hands out addresses, and
// --lease_file, which keeps them across restarts. After a change the file is
// written within a second (a burst of joins after a restart costs one write,
// not one each), and at shutdown; a relay killed outright loses at most the
// last second of changes.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string>

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
  LeasePool pool_;
  std::string file_;
  boost::asio::steady_timer timer_;
  // The timer's callback holds a weak reference: once the keeper is gone, an
  // expiry already queued finds it expired and touches nothing.
  std::shared_ptr<LeaseKeeper*> self_;
  uint64_t saved_generation_ = 0;
  bool pending_ = false;
};

}  // namespace mnedc::relay
