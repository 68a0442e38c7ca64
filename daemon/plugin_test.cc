#include "daemon/plugin.h"

#include <string>
#include <vector>

#include "base/status_matchers.h"
#include "gtest/gtest.h"

namespace berth::daemon {
namespace {

using ::absl::StatusCode;

// Registers plugins that record their init order into `order`.
class RegistryTest : public ::testing::Test {
 protected:
  void Add(const std::string& type, const std::string& id, std::vector<std::string> requires_types,
           absl::Status result = absl::OkStatus()) {
    registry_.Register({.type = type,
                        .id = id,
                        .requires_types = std::move(requires_types),
                        .init = [this, type, id, result](InitContext& ic) -> absl::StatusOr<std::any> {
                          order_.push_back(type + "." + id);
                          roots_.push_back(ic.root());
                          if (!result.ok()) return result;
                          return std::make_shared<std::string>(id);
                        }});
  }

  absl::Status Init(InitOptions options = {}) {
    options.root = "/r";
    options.state = "/s";
    return registry_.InitAll(options);
  }

  Registry registry_;
  std::vector<std::string> order_;
  std::vector<std::string> roots_;
};

TEST_F(RegistryTest, InitsRequirementsFirstAndKeepsRegistrationOrderOtherwise) {
  Add("grpc", "version", {});
  Add("grpc", "namespaces", {"service"});
  Add("service", "namespaces-service", {"metadata"});
  Add("metadata", "sqlite", {});
  ASSERT_THAT(Init(), IsOk());
  EXPECT_EQ(order_, (std::vector<std::string>{"grpc.version", "metadata.sqlite",
                                              "service.namespaces-service", "grpc.namespaces"}));
  EXPECT_EQ(roots_[1], "/r/metadata.sqlite");
}

TEST_F(RegistryTest, WildcardInitsAfterEverythingElse) {
  Add("grpc", "introspection", {"*"});
  Add("grpc", "version", {});
  Add("metadata", "sqlite", {});
  ASSERT_THAT(Init(), IsOk());
  EXPECT_EQ(order_.back(), "grpc.introspection");
}

TEST_F(RegistryTest, CycleIsAnErrorNamingThePlugins) {
  Add("a", "one", {"b"});
  Add("b", "two", {"c"});
  Add("c", "three", {"a"});
  absl::Status status = Init();
  EXPECT_THAT(status, StatusIs(StatusCode::kInvalidArgument));
  EXPECT_NE(status.message().find("a.one -> b.two -> c.three -> a.one"), absl::string_view::npos)
      << status;
  EXPECT_TRUE(order_.empty());
}

TEST_F(RegistryTest, DuplicateUriIsAnError) {
  Add("a", "one", {});
  Add("a", "one", {});
  EXPECT_THAT(Init(), StatusIs(StatusCode::kInvalidArgument));
}

TEST_F(RegistryTest, FailedPluginIsRecordedAndTheRestStart) {
  Add("metadata", "sqlite", {}, absl::PermissionDeniedError("open \"/r/meta.db\": denied"));
  Add("grpc", "version", {});
  ASSERT_THAT(Init(), IsOk());
  ASSERT_EQ(registry_.plugins().size(), 2u);
  EXPECT_THAT(registry_.plugins()[0].init_status, StatusIs(StatusCode::kPermissionDenied));
  EXPECT_FALSE(registry_.plugins()[0].instance.has_value());
  EXPECT_THAT(registry_.plugins()[1].init_status, IsOk());
  EXPECT_EQ(registry_.Instances<std::string>("grpc").size(), 1u);
  EXPECT_TRUE(registry_.Instances<std::string>("metadata").empty());
}

TEST_F(RegistryTest, SkippedPluginIsMarkedSkipped) {
  Add("snapshotter", "overlayfs", {}, SkipPlugin("no overlay here"));
  ASSERT_THAT(Init(), IsOk());
  EXPECT_TRUE(IsSkipPlugin(registry_.plugins()[0].init_status));
  EXPECT_FALSE(IsSkipPlugin(absl::FailedPreconditionError("skip plugin: fake")));
}

TEST_F(RegistryTest, RequiredPluginFailureStopsInit) {
  Add("metadata", "sqlite", {}, absl::UnavailableError("locked"));
  Add("grpc", "version", {});
  InitOptions options;
  options.required = {"metadata.sqlite"};
  absl::Status status = Init(options);
  EXPECT_THAT(status, StatusIs(StatusCode::kUnavailable));
  EXPECT_NE(status.message().find("metadata.sqlite"), absl::string_view::npos);
}

TEST_F(RegistryTest, UnknownRequiredPluginIsAnError) {
  Add("grpc", "version", {});
  InitOptions options;
  options.required = {"grpc.nope"};
  EXPECT_THAT(Init(options), StatusIs(StatusCode::kInvalidArgument));
}

TEST_F(RegistryTest, DisabledPluginIsNeitherInitNorListed) {
  Add("grpc", "version", {});
  Add("grpc", "events", {});
  InitOptions options;
  options.disabled = {"grpc.events"};
  ASSERT_THAT(Init(options), IsOk());
  EXPECT_EQ(order_, (std::vector<std::string>{"grpc.version"}));
  EXPECT_EQ(registry_.plugins().size(), 1u);
}

TEST_F(RegistryTest, DependentFindsItsRequirementOrFailsWhenItFailed) {
  registry_.Register({.type = "metadata", .id = "sqlite", .init = [](InitContext&) -> absl::StatusOr<std::any> {
                        return std::make_shared<int>(42);
                      }});
  absl::StatusOr<std::shared_ptr<int>> seen;
  absl::StatusOr<std::shared_ptr<std::string>> wrong_type;
  absl::StatusOr<std::shared_ptr<int>> missing;
  registry_.Register({.type = "service",
                      .id = "x",
                      .requires_types = {"metadata"},
                      .init = [&](InitContext& ic) -> absl::StatusOr<std::any> {
                        seen = ic.Get<int>("metadata");
                        wrong_type = ic.Get<std::string>("metadata");
                        missing = ic.Get<int>("content");
                        return std::make_shared<int>(1);
                      }});
  ASSERT_THAT(Init(), IsOk());
  ASSERT_THAT(seen, IsOk());
  EXPECT_EQ(**seen, 42);
  EXPECT_THAT(wrong_type, StatusIs(StatusCode::kInternal));
  EXPECT_THAT(missing, StatusIs(StatusCode::kNotFound));
}

TEST_F(RegistryTest, GetAllGivesEveryLoadedPluginOfAType) {
  Add("snapshotter", "overlayfs", {});
  Add("snapshotter", "broken", {}, absl::InternalError("no overlay here"));
  Add("snapshotter", "native", {});
  Add("content", "content", {});
  std::map<std::string, std::shared_ptr<std::string>> seen;
  registry_.Register({.type = "grpc",
                      .id = "snapshots",
                      .requires_types = {"snapshotter"},
                      .init = [&](InitContext& ic) -> absl::StatusOr<std::any> {
                        seen = ic.GetAll<std::string>("snapshotter");
                        return std::make_shared<int>(1);
                      }});
  ASSERT_THAT(Init(), IsOk());
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(*seen.at("overlayfs"), "overlayfs");
  EXPECT_EQ(*seen.at("native"), "native");
}

}  // namespace
}  // namespace berth::daemon
