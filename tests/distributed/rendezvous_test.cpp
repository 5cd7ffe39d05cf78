#include "muonlab/distributed/rendezvous.h"

#include <gtest/gtest.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <stdexcept>

#include "muonlab/training/train_config.h"

namespace muonlab::distributed {
namespace {

std::string resolved_config_text(const std::vector<std::string>& overrides) {
  return training::format_train_config(
      training::parse_train_config("[model]\npreset = \"tiny-gpt2\"\n[data]\ntrain = \"t_*.bin\"\n", "test.toml", overrides));
}

TEST(Rendezvous, IdenticalConfigsHaveNoDifference) {
  EXPECT_FALSE(first_setting_difference(resolved_config_text({}), resolved_config_text({})).has_value());
}

TEST(Rendezvous, FirstDifferingSettingIsNamedWithBothValues) {
  const auto difference =
      first_setting_difference(resolved_config_text({"optimizer.lr=0.5", "run.steps=7"}), resolved_config_text({"run.steps=9"}));
  ASSERT_TRUE(difference.has_value());
  EXPECT_EQ(difference->key, "optimizer.lr");
  EXPECT_EQ(difference->ours, "0.5");
  EXPECT_NE(difference->theirs, "0.5");
}

TEST(Rendezvous, PathsMayDifferBetweenHosts) {
  EXPECT_FALSE(first_setting_difference(resolved_config_text({"run.out_dir=/a", "data.train=/x/*.bin"}),
                                        resolved_config_text({"run.out_dir=/b", "data.train=/y/*.bin"}))
                   .has_value());
}

TEST(Rendezvous, AKeyOnlyOneSideHasIsADifference) {
  const std::string ours = "[run]\nsteps = 5\n";
  const auto difference = first_setting_difference(ours, ours + "[extra]\nnew_key = 1\n");
  ASSERT_TRUE(difference.has_value());
  EXPECT_EQ(difference->key, "extra.new_key");
  EXPECT_EQ(difference->ours, "(absent)");
}

// Stands in for c10d::TCPStoreOptions: only the switch the fallback reads.
struct StoreOptionsWithLibuv {
  bool useLibUV = true;
};

TEST(TcpStore, OnlyARefusalForMissingLibuvTurnsLibuvOff) {
  StoreOptionsWithLibuv options;
  // PyTorch 2.6's message where it was built without libuv (Debian 13's).
  const std::runtime_error missing_libuv("use_libuv was requested but PyTorch was build without libuv support");
  EXPECT_FALSE(compat::turn_off_missing_libuv(options, std::runtime_error("Address already in use")));
  EXPECT_TRUE(options.useLibUV);
#if MUONLAB_TORCH_AT_LEAST(2, 4)
  EXPECT_TRUE(compat::turn_off_missing_libuv(options, missing_libuv));
  EXPECT_FALSE(options.useLibUV);
  EXPECT_FALSE(compat::turn_off_missing_libuv(options, missing_libuv)) << "already off: no second retry";
#else
  EXPECT_FALSE(compat::turn_off_missing_libuv(options, missing_libuv)) << "no libuv switch before 2.4";
#endif
}

// With this LibTorch's defaults (libuv from 2.4, whether or not it was built
// with it): a server and a client reach each other.
TEST(TcpStore, ServesAndJoinsWithThisLibTorchsDefaults) {
  c10d::TCPStoreOptions server_options;
  server_options.port = 0;  // any free port
  server_options.isServer = true;
  server_options.waitWorkers = false;
  server_options.timeout = std::chrono::seconds(10);
  const auto server = tcp_store("127.0.0.1", server_options);
  c10d::TCPStoreOptions client_options = server_options;
  client_options.isServer = false;
  client_options.port = static_cast<c10d::TCPStore&>(*server).getPort();
  const auto client = tcp_store("127.0.0.1", client_options);
  client->set("key", std::vector<uint8_t>{1, 2, 3});
  EXPECT_EQ(server->get("key"), (std::vector<uint8_t>{1, 2, 3}));
}

}  // namespace
}  // namespace muonlab::distributed
