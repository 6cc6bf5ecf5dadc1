#include "mnedc/link/framed_link.h"

#include <glog/logging.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>
#include <limits>

#include "mnedc/base/coro.h"
#include "mnedc/protocol/control_codec.h"
#include "mnedc/protocol/frame.h"

namespace mnedc::link {
namespace {
namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using base::kUse;

using base::NoThrowOnCancel;

// Slots the data queue starts with (and keeps when idle); it grows to
// data_queue_frames as traffic needs.
constexpr std::size_t kInitialDataSlots = 4;
// Splicing: frames too small to splice read in a row before reads stop
// peeking (set_splice_reads).
constexpr uint32_t kSmallFramesBeforeReadsStopPeeking = 8;
}  // namespace

FramedLink::FramedLink(asio::any_io_executor executor, std::unique_ptr<Stream> stream,
                       LinkOptions options)
    : stream_(std::move(stream)),
      options_(options),
      data_queue_(kInitialDataSlots, options.data_queue_frames),
      reader_(options.read_buffer_small, protocol::kMaxFramePayload, options.read_buffer_large,
              options.idle_release),
      wake_writer_(executor, Clock::time_point::max()),
      timers_(executor),
      joined_(executor),
      last_receive_(Clock::now()),
      handshake_deadline_(last_receive_ + options.handshake_timeout),
      jitter_(static_cast<unsigned>(reinterpret_cast<uintptr_t>(this) ^
                                    Clock::now().time_since_epoch().count())) {}

void FramedLink::set_end_reason(std::string reason) {
  if (end_reason_.empty()) end_reason_ = std::move(reason);
}

bool FramedLink::SendControl(const protocol::ControlMessage& message) {
  if (closing_) return false;
  auto frame = std::make_shared<std::vector<uint8_t>>();
  if (!protocol::EncodeControlFrame(message, *frame)) {
    LOG(ERROR) << "control message too large to send to " << stream_->peer();
    return false;
  }
  return SendEncodedControl(std::move(frame));
}

bool FramedLink::SendEncodedControl(SharedFrames frames) {
  if (closing_) return false;
  if (control_queue_.size() >= options_.control_queue_frames) {
    set_end_reason("control queue full: peer too slow to keep up");
    Close();
    return false;
  }
  control_queue_.push_back(std::move(frames));
  wake_writer_.cancel();
  return true;
}

void FramedLink::SendErrorAndClose(int code, const std::string& text) {
  protocol::ControlMessage message;
  message.mutable_error()->set_code(static_cast<protocol::Error::Code>(code));
  message.mutable_error()->set_text(text);
  SendControl(message);
  CloseAfterFlush();
}

void FramedLink::MarkEstablished() {
  established_ = true;
  timers_.cancel();  // Re-plan: keepalive now instead of the handshake deadline.
}

void FramedLink::CloseAfterFlush() {
  if (!closing_ && !closed_) {
    // A peer that stopped reading would keep the writer blocked forever: the
    // timers close the link if the flush is not done by then.
    closing_at_ = Clock::now();
    closing_ = true;
    Replan(closing_at_ + options_.flush_timeout);
  }
  closing_ = true;
  wake_writer_.cancel();
}

void FramedLink::Close() {
  closing_ = true;
  if (closed_) return;
  closed_ = true;
  counters_.data_dropped_on_close += data_queue_.size();
  control_queue_.clear();
  data_queue_.Clear();
  pipe_.Close();
  pipe_pending_ = 0;
  stream_->Close();
  wake_writer_.cancel();
  timers_.cancel();
}

asio::awaitable<void> FramedLink::Run(FrameSink& sink) {
  // Every timer of the link lives in this tree: when Run returns, nothing the
  // link started is still pending, and the owner may destroy it at once.
  auto executor = co_await asio::this_coro::executor;
  writer_running_ = true;
  asio::co_spawn(executor, RunWriter(), [this](std::exception_ptr) {
    writer_running_ = false;
    joined_.cancel();
  });
  ping_interval_ = Jittered(options_.keepalive_interval);
  ArmTimers();
  co_await RunReader(sink);
  // The reader is done; the writer flushes and closes (or the timers do).
  while (writer_running_ || timers_armed_) {
    joined_.expires_at(Clock::time_point::max());
    co_await joined_.async_wait(kUse);
  }
  Close();
}

asio::awaitable<void> FramedLink::RunWriter() {
  co_await NoThrowOnCancel();
  while (!closed_) {
    if (control_queue_.empty() && on_control_drained_ && !closing_) on_control_drained_();
    if (control_queue_.empty() && data_queue_.empty() && direct_rest_.empty() && pipe_pending_ == 0) {
      if (closing_) break;
      // Idle for a while (this wake-up was a ping or the like): give back
      // the storage the last burst of packets left in the queue.
      if (data_storage_held_ && Clock::now() - last_data_out_ >= options_.idle_release) {
        data_queue_.ReleaseStorage(kInitialDataSlots);
        std::vector<std::vector<uint8_t>>().swap(inflight_);
        std::vector<uint8_t>().swap(direct_rest_);
        pipe_.Close();
        data_storage_held_ = false;
      }
      wake_writer_.expires_at(Clock::time_point::max());
      co_await wake_writer_.async_wait(kUse);
      if (co_await base::Cancelled()) {
        Close();
        co_return;
      }
      continue;
    }
    if (pipe_pending_ > 0) {
      // Spliced frames: their bytes are older than anything queued now.
      writing_ = true;
      write_started_at_ = Clock::now();
      Replan(write_started_at_ + options_.write_timeout);
      const error_code ec = co_await FlushPipe();
      writing_ = false;
      if (ec) {
        set_end_reason("write failed: " + ec.message());
        Close();
        co_return;
      }
      continue;
    }
    // Control first, so a packet flood cannot delay a Pong or PeerGone.
    gather_.clear();
    // The rest of a direct send first: those bytes are counted already.
    const bool sending_rest = !direct_rest_.empty();
    if (sending_rest) gather_.emplace_back(direct_rest_.data(), direct_rest_.size());
    std::size_t bytes = 0;
    const std::size_t control_count = control_queue_.size();
    control_queue_.swap(control_inflight_);  // control_inflight_ was empty.
    for (const auto& frames : control_inflight_) {
      gather_.emplace_back(frames->data(), frames->size());
      bytes += frames->size();
    }
    if (inflight_.size() < data_queue_.size()) inflight_.resize(data_queue_.size());
    const std::size_t data_count = data_queue_.TakeAll(inflight_, 0);
    for (std::size_t i = 0; i < data_count; ++i) {
      gather_.emplace_back(inflight_[i].data(), inflight_[i].size());
      bytes += inflight_[i].size();
    }
    if (data_count > 0) {
      data_storage_held_ = true;
      if (on_data_taken_) {
        std::size_t data_bytes = 0;
        for (std::size_t i = 0; i < data_count; ++i) {
          data_bytes += inflight_[i].size() - protocol::kFrameHeaderSize;
        }
        on_data_taken_(data_count, data_bytes);
      }
    }
    writing_ = true;
    write_started_at_ = Clock::now();
    if (data_count > 0) last_data_out_ = write_started_at_;
    Replan(write_started_at_ + options_.write_timeout);
    const error_code ec = co_await stream_->WriteAll(gather_);
    writing_ = false;
    control_inflight_.clear();  // Shared buffers go back as soon as they are sent.
    // (A frame spliced meanwhile may have left a rest of its own there.)
    if (sending_rest) direct_rest_.clear();
    if (ec) {
      set_end_reason("write failed: " + ec.message());
      Close();
      co_return;
    }
    counters_.frames_out += control_count + data_count;
    counters_.bytes_out += bytes;
  }
  if (closed_) co_return;
  // Closing with everything flushed: FIN, and give the peer a moment to read
  // it and close its side (our reader then sees EOF and closes); the timers
  // close regardless after flush_timeout.
  flushed_ = true;
  flushed_at_ = Clock::now();
  stream_->ShutdownSend();
  if (reading_done_) {
    Close();
  } else {
    Replan(flushed_at_ + options_.flush_timeout);
  }
}

asio::awaitable<void> FramedLink::RunReader(FrameSink& sink) {
  co_await NoThrowOnCancel();
  co_await ReadFrames(sink);
  // What it spliced last is sent (ReadFrames may end right after a splice;
  // nothing runs between its end and this). Not in a destructor of
  // ReadFrames': a frame destroyed with its io_context may outlive the link.
  FinishSplicing();
  // Reading ended: flush what is queued, then close (at once if the flush is done).
  reading_done_ = true;
  if (flushed_) {
    Close();
  } else {
    CloseAfterFlush();
  }
}

asio::awaitable<void> FramedLink::ReadFrames(FrameSink& sink) {
  bool handed_data = false;  // Since the last OnReadBatchEnd.
  for (;;) {
    // Hand over every complete frame already buffered.
    for (;;) {
      if (closing_) {
        set_end_reason("ended by the session");
        co_return;
      }
      const protocol::ParseResult frame = reader_.Next();
      if (frame.status == protocol::ParseStatus::kNeedMore) break;
      if (frame.status == protocol::ParseStatus::kOversize) {
        const std::string why = "frame of " + std::to_string(frame.announced_length) +
                                " bytes exceeds the maximum of " +
                                std::to_string(protocol::kMaxFramePayload);
        set_end_reason(why);
        SendErrorAndClose(protocol::Error::BAD_REQUEST, why);
        co_return;
      }
      ++counters_.frames_in;
      small_frames_in_row_ = frame.payload.size() >= kSpliceMin ? 0 : small_frames_in_row_ + 1;
      if (frame.status == protocol::ParseStatus::kUnknownType) {
        // A newer peer's frame type: skip it, as the protocol promises.
        ++counters_.unknown_frames_skipped;
        continue;
      }
      bool keep_going = true;
      if (frame.type == protocol::FrameType::kData || frame.type == protocol::FrameType::kSuperPacket ||
          frame.type == protocol::FrameType::kSealed) {
        std::span<const uint8_t> packet = frame.payload;
        packet::Gso gso;
        if (frame.type == protocol::FrameType::kSuperPacket && !CheckSuperPacket(frame.payload, &packet, &gso)) {
          continue;  // Dropped and counted: the frame itself was whole, read on.
        }
        if (frame.type == protocol::FrameType::kSealed &&
            frame.payload.size() < protocol::kSealedHeaderSize + protocol::kSealedTagSize) {
          ++counters_.bad_sealed;
          continue;
        }
        // (Offer is no lambda here: what a coroutine holds across its waits
        // is in its frame, one per member.)
        DataVerdict verdict = Offer(sink, frame, packet, gso);
        // The payload stays valid while paused: nothing is read meanwhile.
        while (verdict == DataVerdict::kRetryLater && !closing_) {
          sink.OnReadBatchEnd();
          co_await sink.WaitToRetry();
          if (co_await base::Cancelled()) co_return;
          verdict = Offer(sink, frame, packet, gso);
        }
        if (verdict == DataVerdict::kPause && !closing_) {
          sink.OnReadBatchEnd();
          co_await sink.WaitToRetry();
          if (co_await base::Cancelled()) co_return;
        }
        keep_going = verdict != DataVerdict::kStop;
        handed_data = true;
      } else {
        keep_going = HandleControl(frame.payload, sink);
        if (keep_going && !closing_ && sink.ControlPending()) {
          keep_going = co_await sink.FinishControl();
          if (co_await base::Cancelled()) co_return;
        }
        // Handled: a Hello and its strings need not stay for the life of
        // the connection (an idle member's relay keeps nothing else of it).
        decoded_.Clear();
      }
      if (!keep_going || closing_) {
        set_end_reason("ended by the session");
        co_return;
      }
    }
    if (handed_data) {
      handed_data = false;
      sink.OnReadBatchEnd();
    }
    std::size_t limit = std::numeric_limits<std::size_t>::max();
    if (splice_reads_ && small_frames_in_row_ < kSmallFramesBeforeReadsStopPeeking) {
      const SpliceStep step = TrySplice(sink, &limit);
      if (step == SpliceStep::kSpliced) continue;
      if (step == SpliceStep::kBroken) {
        // Part of a frame went on and its rest could not be read: this stream
        // is cut mid-frame, as the receiver's is (which closed itself).
        set_end_reason("a frame spliced on lost its rest");
        co_return;
      }
      if (step == SpliceStep::kWaitReadable || step == SpliceStep::kWaitWhole) {
        if (handed_data) {
          handed_data = false;
          sink.OnReadBatchEnd();
        }
        if (step == SpliceStep::kWaitWhole) SetReadLowWater(waited_whole_);
        const error_code ec = co_await stream_->WaitReady(false);
        if (step == SpliceStep::kWaitWhole) SetReadLowWater(1);
        if (ec) {
          set_end_reason(ec == asio::error::operation_aborted ? "closed locally" : "read failed: " + ec.message());
          co_return;
        }
        continue;
      }
    }
    std::span<uint8_t> space = reader_.Space(last_receive_);
    if (space.size() > limit) space = space.first(limit);
    auto [ec, n] = co_await stream_->ReadSome(asio::buffer(space.data(), space.size()));
    if (ec) {
      if (ec == asio::error::eof) {
        set_end_reason(reader_.mid_frame() ? "closed by peer in the middle of a frame"
                                           : "closed by peer");
      } else if (ec == asio::error::operation_aborted) {
        set_end_reason("closed locally");
      } else {
        set_end_reason("read failed: " + ec.message());
      }
      co_return;
    }
    reader_.Commit(n);
    counters_.bytes_in += n;
    last_receive_ = Clock::now();
  }
}

DataVerdict FramedLink::Offer(FrameSink& sink, const protocol::ParseResult& frame, std::span<const uint8_t> packet,
                              packet::Gso gso) {
  if (frame.type != protocol::FrameType::kSealed) return sink.OnData(packet, gso);
  // Handed over writable: it lies in the reader's own buffer, and nothing
  // reads it after the sink.
  return sink.OnSealed(std::span<uint8_t>(const_cast<uint8_t*>(frame.payload.data()), frame.payload.size()));
}

bool FramedLink::CheckSuperPacket(std::span<const uint8_t> payload, std::span<const uint8_t>* packet,
                                  packet::Gso* gso) {
  packet::SuperPacketLayout layout;
  packet::GsoVerdict verdict = packet::GsoVerdict::kBadIpHeader;
  if (protocol::ReadSuperPacketHeader(payload, gso, packet)) {
    verdict = packet::ParseSuperPacket(*packet, *gso, &layout);
  }
  if (verdict == packet::GsoVerdict::kOk) {
    ++counters_.super_packets_in;
    return true;
  }
  // A peer's bug or a lie: never passed on, and said once per link.
  if (counters_.bad_super_packets++ == 0) {
    LOG(WARNING) << "dropping a super-packet from " << stream_->peer() << ": "
                 << packet::GsoVerdictName(verdict) << " (further ones are only counted)";
  }
  return false;
}

bool FramedLink::HandleControl(std::span<const uint8_t> payload, FrameSink& sink) {
  // Empty: ReadFrames clears it once a message is handled (and parsing clears it too).
  if (!protocol::DecodeControl(payload, decoded_)) {
    const std::string why = "unparsable control message (" + std::to_string(payload.size()) + " bytes)";
    set_end_reason(why);
    SendErrorAndClose(protocol::Error::BAD_REQUEST, why);
    return false;
  }
  switch (decoded_.body_case()) {
    case protocol::ControlMessage::kPing: {
      protocol::ControlMessage pong;
      pong.mutable_pong()->set_nonce(decoded_.ping().nonce());
      SendControl(pong);
      return true;
    }
    case protocol::ControlMessage::kPong:
      return true;  // Receiving it already refreshed last_receive_.
    case protocol::ControlMessage::BODY_NOT_SET:
      return true;  // A message type from a newer version: skipped.
    default:
      return sink.OnControl(decoded_);
  }
}

}  // namespace mnedc::link
