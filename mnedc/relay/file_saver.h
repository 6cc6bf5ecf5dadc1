#pragma once
// Writes a file of the relay's state (leases, device keys) soon after it
// changes: within a second, so a burst of changes (joins after a restart)
// costs one write, not one each; and at once on SaveNow (shutdown). A relay
// killed outright loses at most the last second of changes.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>

namespace mnedc::relay {

class FileSaver {
 public:
  // `save` writes the file; false (it logs why) leaves the change pending
  // for the next SaveNow or Changed. No `save` (an empty file name at the
  // owner): Changed and SaveNow do nothing.
  using Save = std::function<bool()>;
  FileSaver(boost::asio::any_io_executor executor, Save save);
  FileSaver(const FileSaver&) = delete;
  FileSaver& operator=(const FileSaver&) = delete;

  // Something changed: save within a second.
  void Changed();
  // Saves now if anything changed since the last save.
  void SaveNow();

 private:
  Save save_;
  boost::asio::steady_timer timer_;
  // The timer's callback holds a weak reference: once the saver is gone, an
  // expiry already queued finds it expired and touches nothing.
  std::shared_ptr<FileSaver*> self_;
  bool dirty_ = false;
  bool pending_ = false;
};

}  // namespace mnedc::relay
