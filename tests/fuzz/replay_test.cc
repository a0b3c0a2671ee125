// fuzz_replay_<target>: runs a fuzz target's LLVMFuzzerTestOneInput over
// every file of its seed corpus (MISTORE_FUZZ_CORPUS, set by CMake), so the
// ordinary test command replays the corpora with any compiler. The target's
// own checks (MS_ASSERT) abort on a failure; the file being replayed is
// printed first so a failure names it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

TEST(FuzzReplay, EveryCorpusFile) {
  namespace fs = std::filesystem;
  const fs::path dir = MISTORE_FUZZ_CORPUS;
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_FALSE(files.empty()) << "empty corpus " << dir;
  for (const fs::path& f : files) {
    const size_t size = size_t(fs::file_size(f));
    // Exactly `size` heap bytes (as libFuzzer passes them: ASan builds see
    // any read past the end), never a null pointer.
    std::unique_ptr<uint8_t[]> bytes(new uint8_t[size == 0 ? 1 : size]);
    std::ifstream in(f, std::ios::binary);
    ASSERT_TRUE(in.read(reinterpret_cast<char*>(bytes.get()), std::streamsize(size))) << f;
    std::fprintf(stderr, "replay %s (%zu bytes)\n", f.filename().c_str(), size);
    EXPECT_EQ(LLVMFuzzerTestOneInput(bytes.get(), size), 0) << f;
  }
  std::fprintf(stderr, "replayed %zu files from %s\n", files.size(), dir.c_str());
}

}  // namespace
