#include "shared/crypto/secret.h"

#include <gtest/gtest.h>

#include <atomic>
#include <ostream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "shared/core/bytes.h"

namespace mistore::crypto {
namespace {

template <typename T>
concept Streamable = requires(std::ostream& os, const T& t) { os << t; };

static_assert(!std::is_copy_constructible_v<SecretBytes>);
static_assert(!std::is_copy_assignable_v<SecretBytes>);
static_assert(std::is_nothrow_move_constructible_v<SecretBytes>);
static_assert(std::is_nothrow_move_assignable_v<SecretBytes>);
static_assert(!Streamable<SecretBytes>, "key bytes must not be streamable");

SecretBytes Sequential(size_t n, uint8_t start) {
  SecretBytes s(n);
  for (size_t i = 0; i < n; i++) s.mutable_data()[i] = uint8_t(start + i);
  return s;
}

TEST(CryptoInitTest, IdempotentAndThreadSafe) {
  ASSERT_TRUE(CryptoInit().ok());
  ASSERT_TRUE(CryptoInit().ok());
  std::atomic<int> ok_count{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; i++) {
    threads.emplace_back([&] {
      if (CryptoInit().ok()) ok_count++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok_count.load(), 8);
  // sodium_init() returns 1 once initialised.
  EXPECT_EQ(sodium_init(), 1);
}

TEST(SecretBytesTest, DefaultIsEmpty) {
  SecretBytes s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.data(), nullptr);
}

TEST(SecretBytesTest, SizedConstructorZeroFills) {
  SecretBytes s(32);
  ASSERT_EQ(s.size(), 32u);
  ASSERT_NE(s.data(), nullptr);
  EXPECT_EQ(ToHex(s.data(), s.size()), std::string(64, '0'));
}

TEST(SecretBytesTest, CopiesFromPointer) {
  const uint8_t raw[] = {1, 2, 3, 4};
  SecretBytes s(raw, sizeof(raw));
  ASSERT_EQ(s.size(), 4u);
  EXPECT_NE(s.data(), raw);
  EXPECT_EQ(ToHex(s.data(), s.size()), "01020304");
}

TEST(SecretBytesTest, MoveConstructionLeavesSourceEmpty) {
  SecretBytes a = Sequential(32, 7);
  const uint8_t* buffer = a.data();
  SecretBytes b(std::move(a));
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): the point of the test
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_TRUE(a.empty());
  ASSERT_EQ(b.size(), 32u);
  EXPECT_EQ(b.data(), buffer);  // ownership moved, bytes not copied
  EXPECT_TRUE(b.Equals(Sequential(32, 7)));
}

TEST(SecretBytesTest, MoveAssignmentLeavesSourceEmptyAndReplacesTarget) {
  SecretBytes a = Sequential(16, 1);
  SecretBytes b = Sequential(32, 100);
  b = std::move(a);
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(a.data(), nullptr);
  ASSERT_EQ(b.size(), 16u);
  EXPECT_TRUE(b.Equals(Sequential(16, 1)));
}

TEST(SecretBytesTest, CloneIsEqualButIndependent) {
  SecretBytes a = Sequential(32, 0);
  SecretBytes b = a.Clone();
  ASSERT_TRUE(a.Equals(b));
  EXPECT_NE(a.data(), b.data());
  b.mutable_data()[0] ^= 1;
  EXPECT_FALSE(a.Equals(b));
  EXPECT_EQ(a.data()[0], 0);
}

TEST(SecretBytesTest, EqualsComparesContentAndLength) {
  EXPECT_TRUE(Sequential(8, 3).Equals(Sequential(8, 3)));
  EXPECT_FALSE(Sequential(8, 3).Equals(Sequential(8, 4)));
  EXPECT_FALSE(Sequential(8, 3).Equals(Sequential(9, 3)));
  EXPECT_TRUE(SecretBytes().Equals(SecretBytes()));
  EXPECT_FALSE(SecretBytes().Equals(SecretBytes(1)));
}

TEST(SecretBytesTest, RandomHasSizeAndDiffers) {
  SecretBytes a = SecretBytes::Random(32);
  SecretBytes b = SecretBytes::Random(32);
  ASSERT_EQ(a.size(), 32u);
  ASSERT_EQ(b.size(), 32u);
  EXPECT_FALSE(a.Equals(b));
  EXPECT_FALSE(a.Equals(SecretBytes(32)));  // not all zero
}

TEST(SecretBytesTest, GtestPrintingIsRedacted) {
  SecretBytes s = Sequential(4, 0xab);
  const std::string printed = ::testing::PrintToString(s);
  EXPECT_EQ(printed, "SecretBytes(4 bytes, redacted)");
  EXPECT_EQ(printed.find("ab"), std::string::npos);
}

}  // namespace
}  // namespace mistore::crypto
