#include "mnedc/relay/file_saver.h"

namespace mnedc::relay {

FileSaver::FileSaver(boost::asio::any_io_executor executor, Save save)
    : save_(std::move(save)), timer_(executor), self_(std::make_shared<FileSaver*>(this)) {}

void FileSaver::Changed() {
  if (!save_) return;
  dirty_ = true;
  if (pending_) return;
  pending_ = true;
  timer_.expires_after(std::chrono::seconds(1));
  timer_.async_wait([weak = std::weak_ptr<FileSaver*>(self_)](const boost::system::error_code& ec) {
    const auto self = weak.lock();
    if (ec || !self) return;
    (*self)->pending_ = false;
    (*self)->SaveNow();
  });
}

void FileSaver::SaveNow() {
  if (pending_) {
    timer_.cancel();
    pending_ = false;
  }
  if (!save_ || !dirty_) return;
  if (save_()) dirty_ = false;
}

}  // namespace mnedc::relay
