#pragma once
// A pipe for splice(2): a link's frames pass through it from another link's
// socket to its own without entering user space. Holds up to 1 MiB where
// the system allows (F_SETPIPE_SZ), else the default 64 KiB.
namespace mnedc::link {

class SplicePipe {
 public:
  SplicePipe() = default;
  SplicePipe(const SplicePipe&) = delete;
  SplicePipe& operator=(const SplicePipe&) = delete;
  ~SplicePipe() { Close(); }

  // Opens it (non-blocking ends) if it is not open; false if it cannot be.
  bool Open();
  void Close();
  bool open() const { return in_ >= 0; }
  int in() const { return in_; }
  int out() const { return out_; }

 private:
  int in_ = -1;   // Written: spliced into from a socket.
  int out_ = -1;  // Read: spliced out to a socket.
};

}  // namespace mnedc::link
