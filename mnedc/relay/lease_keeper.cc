#include "mnedc/relay/lease_keeper.h"

#include <glog/logging.h>

#include "mnedc/relay/lease_file.h"

namespace mnedc::relay {

LeaseKeeper::LeaseKeeper(boost::asio::any_io_executor executor, Prefix prefix, std::string file)
    : pool_(prefix),
      file_(std::move(file)),
      timer_(executor),
      self_(std::make_shared<LeaseKeeper*>(this)) {}

bool LeaseKeeper::Restore(std::string* error) {
  if (file_.empty()) return true;
  int skipped = 0;
  if (!LoadLeaseFile(file_, pool_, &skipped, error)) return false;
  saved_generation_ = pool_.generation();
  LOG(INFO) << "restored " << pool_.Leases().size() << " leases from " << file_
            << (skipped ? " (skipped " + std::to_string(skipped) + " lines outside " +
                              pool_.prefix().ToString() + " or in conflict)"
                        : "");
  return true;
}

void LeaseKeeper::Changed() {
  if (file_.empty() || pending_ || pool_.generation() == saved_generation_) return;
  pending_ = true;
  timer_.expires_after(std::chrono::seconds(1));
  timer_.async_wait([weak = std::weak_ptr<LeaseKeeper*>(self_)](const boost::system::error_code& ec) {
    const auto self = weak.lock();
    if (ec || !self) return;
    (*self)->pending_ = false;
    (*self)->SaveNow();
  });
}

void LeaseKeeper::SaveNow() {
  if (pending_) {
    timer_.cancel();
    pending_ = false;
  }
  if (file_.empty() || pool_.generation() == saved_generation_) return;
  std::string error;
  if (!SaveLeaseFile(file_, pool_, &error)) {
    LOG_EVERY_N(ERROR, 10) << error << "; leases stay in memory";
    return;
  }
  saved_generation_ = pool_.generation();
}

}  // namespace mnedc::relay
