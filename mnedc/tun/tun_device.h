#pragma once
// Linux TUN device (layer 3, no packet info header), configured through ioctl:
// no `ip` command is run. The interface disappears when the device is closed.
// With offloads (the default), a read brings up to 64 KiB of one TCP or UDP
// flow at once (a super-packet), a super-packet is written whole, and runs of
// ordinary TCP segments written in a row are joined into one write.
#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string>

#include "mnedc/tun/packet_port.h"

namespace mnedc::tun {

struct TunOptions {
  // Open with a virtio-net header and ask for checksum and segmentation
  // offloads (IFF_VNET_HDR, TUNSETOFFLOAD), taking what the kernel agrees to
  // (logged once); false: one ordinary packet per read and write.
  bool offload = true;
};

// Opens (creates) TUN interface `name`. On failure returns null and sets
// `error` to one line saying what is missing (root, /dev/net/tun, ...).
std::unique_ptr<PacketPort> OpenTun(boost::asio::any_io_executor executor, const std::string& name,
                                    std::string* error, TunOptions options = {});

}  // namespace mnedc::tun
