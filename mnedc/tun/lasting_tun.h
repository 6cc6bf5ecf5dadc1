#pragma once
// A TUN interface that outlives its kernel interface. When the interface is
// deleted under a running program (`ip link del mnedc0`, or a tool that
// resets links), the device reports EBADFD forever; this port then creates
// the interface again under the same name and applies the last address,
// prefix and MTU, so applications get their address back without a restart.
// Only when it cannot (after a few spaced attempts) does ReadLoop return the
// error, for the program to stop with a clear line.
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "mnedc/tun/packet_port.h"
#include "mnedc/tun/tun_device.h"

namespace mnedc::tun {

// Creates the underlying port; null with `error` set when it cannot.
using PortOpener = std::function<std::unique_ptr<PacketPort>(std::string* error)>;

struct LastingOptions {
  int max_attempts = 5;  // Creations tried in a row before giving up.
  std::chrono::steady_clock::duration retry_interval = std::chrono::seconds(1);
};

// Opens a first port with `open` (null and `error` if that fails) and keeps
// re-opening it as described above. Its counters add up over every port it
// opened; `recreations` counts the re-openings.
std::unique_ptr<PacketPort> OpenLastingPort(boost::asio::any_io_executor executor, PortOpener open,
                                            std::string* error, LastingOptions options = {});

// OpenLastingPort over OpenTun(executor, name, options).
std::unique_ptr<PacketPort> OpenLastingTun(boost::asio::any_io_executor executor,
                                           const std::string& name, std::string* error,
                                           TunOptions options = {});

}  // namespace mnedc::tun
