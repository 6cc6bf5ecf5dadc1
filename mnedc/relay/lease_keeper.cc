#include "mnedc/relay/lease_keeper.h"

#include <glog/logging.h>

#include "mnedc/relay/lease_file.h"

namespace mnedc::relay {

LeaseKeeper::LeaseKeeper(boost::asio::any_io_executor executor, Prefix prefix, std::string file)
    : pool_(prefix),
      file_(std::move(file)),
      saver_(executor, file_.empty() ? FileSaver::Save() : [this] { return Save(); }) {}

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
  if (pool_.generation() != saved_generation_) saver_.Changed();
}

void LeaseKeeper::SaveNow() {
  Changed();
  saver_.SaveNow();
}

bool LeaseKeeper::Save() {
  if (pool_.generation() == saved_generation_) return true;
  std::string error;
  if (!SaveLeaseFile(file_, pool_, &error)) {
    LOG_EVERY_N(ERROR, 10) << error << "; leases stay in memory";
    return false;
  }
  saved_generation_ = pool_.generation();
  return true;
}

}  // namespace mnedc::relay
