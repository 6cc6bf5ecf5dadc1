#pragma once
// FramedLink runs one connection: a reader that parses frames and hands them to a
// FrameSink, a writer that drains two bounded queues (control first, then data) in
// one gather write, and one timer coroutine for every deadline (the handshake,
// keepalive, a dead peer, a stalled write, an unfinished flush), all inside Run's
// coroutine tree. The relay session and the client both use it, so both ends
// behave the same. Three coroutines and one timer per link: a relay holds tens of
// thousands of them.
//
// Run() reads in its own coroutine, with the writer spawned beside it and the
// deadlines on one timer's callbacks (a parallel group of coroutines costs a
// relay kilobytes per member), and returns only when all three are done. When
// reading ends (EOF, bad input, the sink said stop) or a deadline passes, the
// writer flushes what is queued - typically an Error explaining why - and then
// the stream is closed, which ends the reader.
// Nothing here throws on the data path; every end has a reason, readable through
// end_reason().
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "mnedc/link/frame_queue.h"
#include "mnedc/link/frame_reader.h"
#include "mnedc/link/splice_pipe.h"
#include "mnedc/packet/gso.h"
#include "mnedc/protocol/control.pb.h"
#include "mnedc/transport/stream.h"

namespace mnedc::link {

using transport::Stream;

class FramedLink;

// A large data frame the reader may pass on without reading it
// (FramedLink::set_splice_reads): what a peek at its start shows.
struct SpliceOffer {
  protocol::FrameType type = protocol::FrameType::kData;
  packet::Gso gso;  // A SUPER frame's, checked against its headers.
  // The IP packet (DATA, SUPER) or the SEALED payload: its first bytes, and
  // its size in all.
  std::span<const uint8_t> head;
  std::size_t size = 0;
  std::size_t frame_size = 0;  // Header and payload: what would be spliced.
};

enum class DataVerdict {
  kAccepted,
  kStop,        // End the connection (the sink has queued an Error or logged why).
  kRetryLater,  // Not taken: the reader awaits WaitToRetry() and offers it again.
  kPause,       // Taken, but the reader awaits WaitToRetry() before reading on.
};

// Receives what the reader parsed. Ending the connection: the sink should first
// queue an Error saying why (it is flushed before the close).
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  // One IP packet, or a super-packet (gso.super(): checked by the link
  // against its header, packet::ParseSuperPacket said kOk).
  virtual DataVerdict OnData(std::span<const uint8_t> packet, packet::Gso gso) = 0;
  // A SEALED frame's payload (header, sealed packet, tag; at least the header
  // and tag are there, nothing else is checked): routed by the relay, opened
  // by the receiving device. The payload is the reader's own buffer: a sink
  // may open it in place, but then must not answer kRetryLater.
  virtual DataVerdict OnSealed(std::span<uint8_t> payload) = 0;
  // Returning false ends the connection.
  virtual bool OnControl(const protocol::ControlMessage& message) = 0;
  // Pushback: reading from this connection pauses until this returns. Only
  // called after OnData said kRetryLater; it must return within a bound.
  virtual boost::asio::awaitable<void> WaitToRetry() { co_return; }
  // The reader has handed over every frame it had and is about to wait (for
  // the network, or in WaitToRetry): whoever holds packets back to write
  // several at once (a TUN coalescing segments) writes them now.
  virtual void OnReadBatchEnd() {}
  // OnControl may start work that takes a while (a join that asks the
  // cluster store for an address): then the reader awaits FinishControl
  // before it reads on (false ends the connection).
  virtual bool ControlPending() const { return false; }
  virtual boost::asio::awaitable<bool> FinishControl() { co_return true; }
  // Splicing (FramedLink::set_splice_reads): the link that should send this frame as
  // it is, or null to have it read and offered through OnData or OnSealed as
  // usual. The target must take it now (FramedLink::CanTakeSplice), since
  // nothing else is asked; OnSpliced follows if it did.
  virtual FramedLink* SpliceTarget(const SpliceOffer& offer) {
    (void)offer;
    return nullptr;
  }
  virtual void OnSpliced(const SpliceOffer& offer) { (void)offer; }
};

struct LinkOptions {
  // Enough to hold what one read of the other side brings (~46 full packets).
  // Its slots are made as traffic needs them, and given back when idle.
  std::size_t data_queue_frames = 64;
  // Control frames are never dropped: a peer that lets this many queue up is
  // disconnected. An entry may be shared by many links (an announcement to
  // every member is one buffer) and may hold several frames; a peer snapshot
  // is pulled in pieces as the writer drains (OnControlDrained), not queued.
  std::size_t control_queue_frames = 1024;
  // The read buffer starts at read_buffer_small, grows to read_buffer_large
  // for bursts (and to any frame's size), and shrinks back after idle_release
  // without need; the send queue's storage is given back after idle_release
  // too. See FrameReader.
  std::size_t read_buffer_small = 256;
  // Two of the largest frames: a stream of super-packets is read in pieces
  // that end mid-frame, and the partial one then rarely has to move.
  std::size_t read_buffer_large = 2 * protocol::kMaxFrameSize;
  std::chrono::steady_clock::duration idle_release = std::chrono::seconds(10);
  std::chrono::steady_clock::duration handshake_timeout = std::chrono::seconds(10);
  std::chrono::steady_clock::duration keepalive_interval = std::chrono::seconds(15);
  std::chrono::steady_clock::duration dead_after = std::chrono::seconds(45);
  std::chrono::steady_clock::duration flush_timeout = std::chrono::seconds(2);
  // A peer that takes none of a write for this long is cut off (as DERP's
  // write deadline): it holds a queue and a writer and receives nothing.
  std::chrono::steady_clock::duration write_timeout = std::chrono::seconds(15);
};

struct LinkCounters {
  uint64_t frames_in = 0;
  uint64_t bytes_in = 0;
  uint64_t frames_out = 0;  // Data frames, and control buffers (a peer batch counts once).
  uint64_t bytes_out = 0;
  uint64_t data_dropped_queue_full = 0;
  uint64_t data_dropped_on_close = 0;  // Still queued when the link closed.
  uint64_t unknown_frames_skipped = 0;
  uint64_t super_packets_in = 0;
  uint64_t super_packets_out = 0;   // Sent whole.
  uint64_t direct_sends = 0;        // Of those, sent from the caller's buffer (no queue copy).
  uint64_t super_packets_split = 0;  // Cut into segments for a peer that does not take them.
  uint64_t bad_super_packets = 0;   // Received with a header that does not fit the packet: dropped.
  uint64_t bad_sealed = 0;          // SEALED frames too short for a header and tag: dropped.
  uint64_t spliced_in = 0;          // Frames passed on unread, by splice (of frames_in).
  uint64_t spliced_out = 0;         // Frames sent by splice from another link's socket (of frames_out).
};
// sum += more, field by field.
void AddLinkCounters(LinkCounters& sum, const LinkCounters& more);

class FramedLink {
 public:
  FramedLink(boost::asio::any_io_executor executor, std::unique_ptr<Stream> stream,
             LinkOptions options);
  FramedLink(const FramedLink&) = delete;
  FramedLink& operator=(const FramedLink&) = delete;

  // Runs the connection until it ends; the stream is closed on return.
  boost::asio::awaitable<void> Run(FrameSink& sink);

  enum class Push { kQueued, kQueuedDroppedOldest, kClosed };
  // Queues one IP packet. Never blocks; drops the oldest queued packet when full.
  Push SendData(std::span<const uint8_t> packet);
  // Queues a packet or a super-packet: whole if the peer takes super-packets,
  // else cut into its segments (one frame each; a super-packet that does not
  // parse is dropped and counted in bad_super_packets).
  Push SendData(std::span<const uint8_t> packet, packet::Gso gso);
  // Forwards a SEALED frame's payload as it came (the relay): whole, never
  // cut (it cannot be), dropping the oldest queued when full.
  Push SendSealed(std::span<const uint8_t> payload);
  // Room for a SEALED frame of `size` payload bytes at the end of the data
  // queue, for the caller to fill before it returns to the event loop (a
  // device sealing a packet straight into it). Empty when the link is closing
  // (*push says so).
  std::span<uint8_t> AppendSealed(std::size_t size, Push* push);
  // A SEALED frame of three parts (header, sealed packet, tag), sent from
  // where they lie when nothing is queued ahead of it, else copied into the
  // queue.
  Push SendSealedParts(std::span<const uint8_t> header, std::span<const uint8_t> body, std::span<const uint8_t> tag);
  // Frames of at least this many bytes may be spliced.
  static constexpr std::size_t kSpliceMin = 16 * 1024;
  // Whether this link could send a spliced frame of `frame_size` bytes now:
  // plain TCP, open, no data queued that would have to go first, and room
  // in its pipe.
  bool CanTakeSplice(std::size_t frame_size) const;
  enum class SpliceResult {
    kNotTaken,  // Nothing was moved: read the frame as usual.
    kTaken,     // Moved whole (through the pipe, its rest if any through memory).
    kBroken,    // Part of it moved and the rest could not be read: both links must end.
  };
  // Moves one frame of `frame_size` bytes, all of it already in `from_socket`'s
  // receive queue, into this link's pipe and on to its socket.
  SpliceResult TakeSplice(int from_socket, const SpliceOffer& offer);
  // Splicing, on plain TCP: while a DATA, SUPER or SEALED frame of at least
  // kSpliceMin bytes came in among the last few, the reader peeks at each
  // frame (MSG_PEEK) and reads no further than a frame's end; where the sink
  // names a link to send one, it moves from this socket to that link's
  // socket through a pipe (splice(2)), its bytes never in user space. The
  // relay turns it on for a joined member (--splice).
  void set_splice_reads(bool on) { splice_reads_ = on && stream_->native_socket() >= 0; }

  // Whether the peer said it takes SUPER frames (its Hello, or the Lease).
  void set_peer_takes_super_packets(bool takes) { peer_takes_super_packets_ = takes; }
  bool peer_takes_super_packets() const { return peer_takes_super_packets_; }
  // Data frames that SendData(packet, gso) would queue: 1, or the segments.
  std::size_t FramesFor(std::span<const uint8_t> packet, packet::Gso gso) const;
  // Room left in the data queue, in frames.
  std::size_t data_queue_room() const { return data_queue_.room(); }
  // Queues one control message. Returns false (and closes the link, because a
  // peer that cannot keep up with control traffic would hold a wrong view) when
  // the control queue is full, or if the link is closing.
  bool SendControl(const protocol::ControlMessage& message);
  // The same for CONTROL frames already encoded (one or more, whole), shared:
  // a message fanned out to every member is serialized and stored once.
  using SharedFrames = std::shared_ptr<const std::vector<uint8_t>>;
  bool SendEncodedControl(SharedFrames frames);
  // Called by the writer whenever the control queue is empty, so a sender of
  // many control frames (the relay's peer snapshot) can queue them a piece at
  // a time, as the peer takes them, instead of all at once.
  void OnControlDrained(std::function<void()> callback) { on_control_drained_ = std::move(callback); }
  // Makes an idle writer look again (it calls OnControlDrained's callback).
  void WakeWriter() { wake_writer_.cancel(); }
  std::size_t control_queued() const { return control_queue_.size(); }
  // Queues an Error, then flushes and closes.
  void SendErrorAndClose(int code, const std::string& text);

  bool data_queue_full() const { return data_queue_.full(); }
  // Called each time the writer takes the queued packets into a write (so
  // there is room again), with how many and their IP bytes: what is counted
  // as delivered, where packets dropped from the queue are not.
  using DataTaken = std::function<void(std::size_t packets, std::size_t bytes)>;
  void OnDataTaken(DataTaken callback) { on_data_taken_ = std::move(callback); }

  // Sends what is queued, then closes; closes anyway if the peer has not taken
  // it within flush_timeout.
  void CloseAfterFlush();
  // Closes now.
  void Close();

  // After this, the handshake deadline no longer applies and keepalive starts.
  void MarkEstablished();
  // The join must complete by then; by default handshake_timeout after the
  // link was made. The relay counts it from accept, so a peer that trickles
  // its transport handshake gets no second full timeout for its Hello.
  void SetHandshakeDeadline(std::chrono::steady_clock::time_point deadline) {
    handshake_deadline_ = deadline;
  }
  bool closing() const { return closing_; }

  Stream& stream() { return *stream_; }
  const Stream& stream() const { return *stream_; }
  const LinkCounters& counters() const { return counters_; }
  const std::string& end_reason() const { return end_reason_; }
  void set_end_reason(std::string reason);

 private:
  boost::asio::awaitable<void> RunWriter();
  // Sends a large frame straight from `payload` when nothing is queued or
  // being written; false if it must be queued instead (nothing was sent).
  bool SendDirect(protocol::FrameType type, std::span<const uint8_t> prefix, std::span<const uint8_t> payload,
                  std::span<const uint8_t> suffix = {});
  // The pipe's bytes to the socket without waiting (false on an error other
  // than a full socket, which the writer then reports), and with waiting.
  bool FlushPipeNow();
  boost::asio::awaitable<boost::system::error_code> FlushPipe();
  // Before a read, when reads may splice: passes the next frame on if it
  // can, or says how far the read may go (to a frame's end) or what to wait for.
  enum class SpliceStep { kSpliced, kRead, kWaitReadable, kWaitWhole, kBroken };
  SpliceStep TrySplice(FrameSink& sink, std::size_t* limit);
  SpliceStep NextSplice(FrameSink& sink, std::size_t* limit);
  // On a target: its pipe to its socket now, or its writer woken to send it.
  void SendSpliced();
  // On the reader's side: SendSpliced on the link it spliced into last, once
  // it has passed on every frame that was waiting, before it reads or waits.
  void FinishSplicing();
  SpliceStep TrySpliceFrame(FrameSink& sink, std::span<const uint8_t> view, std::size_t* limit);
  // SO_RCVLOWAT: the socket reads as readable once this many bytes are in.
  void SetReadLowWater(std::size_t bytes);
  boost::asio::awaitable<void> RunReader(FrameSink& sink);
  boost::asio::awaitable<void> ReadFrames(FrameSink& sink);
  // The deadlines: ArmTimers() waits until the next one, OnTimers() acts on
  // what is due and arms again, until the link is closed.
  void ArmTimers();
  void OnTimers();
  // The timer sleeps until then; a write that starts with an earlier
  // deadline (or a close) wakes it to plan again.
  void Replan(std::chrono::steady_clock::time_point deadline);
  bool HandleControl(std::span<const uint8_t> payload, FrameSink& sink);
  // A DATA or SUPER frame's packet to OnData, a SEALED frame to OnSealed.
  static DataVerdict Offer(FrameSink& sink, const protocol::ParseResult& frame, std::span<const uint8_t> packet,
                           packet::Gso gso);
  // Splits a SUPER frame and checks it; false (counted) if it cannot be trusted.
  bool CheckSuperPacket(std::span<const uint8_t> payload, std::span<const uint8_t>* packet,
                        packet::Gso* gso);
  std::chrono::steady_clock::duration Jittered(std::chrono::steady_clock::duration d);

  std::unique_ptr<Stream> stream_;
  LinkOptions options_;
  std::vector<SharedFrames> control_queue_;  // The writer takes it whole each time.
  FrameQueue data_queue_;
  // What the writer took from the queues for the write in progress: control
  // buffers by reference, data slots swapped with the queue's (so a warm
  // link moves packets without allocating).
  std::vector<SharedFrames> control_inflight_;
  std::vector<std::vector<uint8_t>> inflight_;
  std::vector<boost::asio::const_buffer> gather_;
  // The rest of a frame sent directly (TrySendNow) that the socket did not
  // take whole: the writer sends it before anything else.
  std::vector<uint8_t> direct_rest_;
  FrameReader reader_;
  // Splicing: this link's pipe to its socket (opened when first used, closed
  // when idle) and the bytes in it; whether reads splice, and the size of
  // the frame the reader waits to have whole.
  SplicePipe pipe_;
  std::size_t pipe_pending_ = 0;
  bool splice_reads_ = false;
  // The link this one's reader last spliced into, not yet told to send:
  // valid until the reader next waits (FinishSplicing comes first).
  FramedLink* splice_target_ = nullptr;
  std::size_t waited_whole_ = 0;
  int whole_waits_ = 0;
  // Frames read in a row too small to splice: past a few, reads stop peeking
  // (small-packet traffic costs no extra system call) until a large one comes.
  uint32_t small_frames_in_row_ = 0;
  protocol::ControlMessage decoded_;
  boost::asio::steady_timer wake_writer_;  // Never expires: cancelled to wake it.
  boost::asio::steady_timer timers_;
  boost::asio::steady_timer joined_;  // Run() waits on it for the writer and the timers.
  std::chrono::steady_clock::time_point timers_planned_;
  // Keepalive: the current interval (jittered) and the last ping sent.
  std::chrono::steady_clock::duration ping_interval_{};
  std::chrono::steady_clock::time_point last_ping_{};
  bool timers_armed_ = false;
  bool writer_running_ = false;
  std::chrono::steady_clock::time_point write_started_at_;
  std::chrono::steady_clock::time_point closing_at_;
  std::chrono::steady_clock::time_point flushed_at_;
  std::chrono::steady_clock::time_point last_receive_;
  std::chrono::steady_clock::time_point handshake_deadline_;
  std::minstd_rand jitter_;
  LinkCounters counters_;
  std::string end_reason_;
  DataTaken on_data_taken_;
  std::function<void()> on_control_drained_;
  std::chrono::steady_clock::time_point last_data_out_;
  bool data_storage_held_ = false;
  uint64_t next_ping_nonce_ = 1;
  bool established_ = false;
  bool closing_ = false;
  bool closed_ = false;
  bool reading_done_ = false;  // Or not to be waited for: close once flushed.
  bool peer_takes_super_packets_ = false;
  bool writing_ = false;
  bool flushed_ = false;  // Closing, and everything queued was written.
};

}  // namespace mnedc::link
