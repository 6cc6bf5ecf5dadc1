#include "mnedc/discovery/peer_table.h"

#include <gtest/gtest.h>

namespace mnedc::discovery {
namespace {

struct Recorder {
  std::vector<std::string> events;
  void Attach(PeerTable& table) {
    table.Subscribe([this](PeerEvent event, const Peer& peer) {
      events.push_back(std::string(PeerEventName(event)) + " " + peer.device_id + " " +
                       std::to_string(peer.address));
    });
  }
};

TEST(PeerTable, UpDownAndAddressChange) {
  PeerTable table;
  Recorder recorder;
  recorder.Attach(table);
  table.Upsert({"a", 2, "1.1.1.1:1"});
  table.Upsert({"a", 2, "1.1.1.1:2"});  // Same address: no event.
  table.Upsert({"a", 3, "1.1.1.1:2"});
  table.Remove("a");
  table.Remove("nobody");
  EXPECT_EQ(recorder.events,
            (std::vector<std::string>{"up a 2", "down a 2", "up a 3", "down a 3"}));
  EXPECT_EQ(table.size(), 0u);
}

TEST(PeerTable, SyncDropsPeersNotReannounced) {
  PeerTable table;
  table.Upsert({"a", 2, ""});
  table.Upsert({"b", 3, ""});
  Recorder recorder;
  recorder.Attach(table);
  table.BeginSync();
  table.Upsert({"b", 3, ""});
  table.Upsert({"c", 4, ""});
  table.EndSync();
  EXPECT_EQ(recorder.events, (std::vector<std::string>{"up c 4", "down a 2"}));
  ASSERT_EQ(table.Snapshot().size(), 2u);
  EXPECT_EQ(table.Snapshot()[0].device_id, "b");
  table.Clear();
  EXPECT_EQ(table.size(), 0u);
}

}  // namespace
}  // namespace mnedc::discovery
