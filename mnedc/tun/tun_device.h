#pragma once
// Linux TUN device (layer 3, no packet info header), configured through ioctl:
// no `ip` command is run. The interface disappears when the device is closed.
#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string>

#include "mnedc/tun/packet_port.h"

namespace mnedc::tun {

// Opens (creates) TUN interface `name`. On failure returns null and sets
// `error` to one line saying what is missing (root, /dev/net/tun, ...).
std::unique_ptr<PacketPort> OpenTun(boost::asio::any_io_executor executor, const std::string& name,
                                    std::string* error);

}  // namespace mnedc::tun
