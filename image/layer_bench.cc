// How fast layers apply (the hot path of `ctr images import`) and diff.
//
// Builds a ~300 MiB tree (many 1-4 MiB files and some small ones, bytes
// that compress about as well as binaries do), writes it as a gzip and a
// zstd layer with WriteDiff, then applies each into an empty directory with
// ApplyLayer, on the disk (syncfs included) and on a tmpfs, and prints MiB/s
// of uncompressed tar. Then
// the same for 20000 small files, where per-entry costs dominate.
//
//   bazel run //image:layer_bench [-- total_mib [small_files]]
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/temp_dir.h"
#include "base/unique_fd.h"
#include "image/layer.h"
#include "snapshotter/mount.h"

namespace berth::image {
namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

double MiB(int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "layer_bench: %s\n", what.c_str());
  std::exit(1);
}

// File content: pieces of /bin/busybox (machine code) and of a word soup
// (text), shuffled, so gzip gets the ~2.5x it gets on real images.
class Content {
 public:
  Content() {
    std::ifstream in("/bin/busybox", std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    binary_ = s.str();
    if (binary_.size() < (1 << 20)) Fail("/bin/busybox is missing or small");
    const char* words[] = {"the ",     "layer ",  "container ", "snapshot ",
                           "overlay ", "digest ", "{\"key\": ", "0x1f8b, ",
                           "return ",  "int ",    "\n",         "    "};
    std::mt19937 rng(7);
    while (text_.size() < binary_.size()) text_ += words[rng() % 12];
  }

  std::string Make(size_t size, std::mt19937& rng) const {
    std::string out;
    out.reserve(size);
    while (out.size() < size) {
      const std::string& from = rng() % 3 == 0 ? text_ : binary_;
      size_t len = std::min<size_t>(size - out.size(), 16384 + rng() % 65536);
      size_t at = rng() % (from.size() - len);
      out.append(from, at, len);
    }
    return out;
  }

 private:
  std::string binary_;
  std::string text_;
};

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary);
  out << data;
  if (!out) Fail("write " + path);
}

// Many small files, as in a layer of sources or of Python packages.
int64_t BuildSmallTree(const std::string& root, int files) {
  Content content;
  std::mt19937 rng(43);
  int64_t written = 0;
  for (int i = 0; i < files; ++i) {
    std::string d = absl::StrCat(root, "/pkg", i / 100);
    if (i % 100 == 0 && ::mkdir(d.c_str(), 0755) != 0) Fail("mkdir " + d);
    std::string data = content.Make(1024 + rng() % 15360, rng);
    WriteFile(absl::StrCat(d, "/f", i), data);
    written += static_cast<int64_t>(data.size());
  }
  return written;
}

int64_t BuildTree(const std::string& root, int64_t total) {
  Content content;
  std::mt19937 rng(42);
  int64_t written = 0;
  for (int dir = 0; written < total; ++dir) {
    std::string d = absl::StrCat(root, "/dir", dir);
    if (::mkdir(d.c_str(), 0755) != 0) Fail("mkdir " + d);
    for (int i = 0; i < 8 && written < total; ++i) {
      std::string data = content.Make((1 << 20) + rng() % (3 << 20), rng);
      WriteFile(absl::StrCat(d, "/big", i), data);
      written += static_cast<int64_t>(data.size());
    }
    for (int i = 0; i < 40; ++i) {
      std::string data = content.Make(100 + rng() % 8000, rng);
      WriteFile(absl::StrCat(d, "/small", i), data);
      written += static_cast<int64_t>(data.size());
    }
  }
  return written;
}

UniqueFd OpenDir(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) Fail("open " + path);
  return fd;
}

// Decompression alone, to see how much of an apply it is.
double InflateMiBps(const std::string& gz, int64_t out_size) {
  auto start = std::chrono::steady_clock::now();
  z_stream z{};
  inflateInit2(&z, 15 + 32);
  std::unique_ptr<char[]> buf(new char[1 << 20]);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  z.avail_in = gz.size();
  int ret = Z_OK;
  while (ret != Z_STREAM_END) {
    z.next_out = reinterpret_cast<Bytef*>(buf.get());
    z.avail_out = 1 << 20;
    ret = inflate(&z, Z_NO_FLUSH);
    if (ret != Z_OK && ret != Z_STREAM_END) Fail("inflate");
  }
  inflateEnd(&z);
  return MiB(out_size) / Seconds(start);
}

double ZstdMiBps(const std::string& zst, int64_t out_size) {
  auto start = std::chrono::steady_clock::now();
  ZSTD_DCtx* ctx = ZSTD_createDCtx();
  std::unique_ptr<char[]> buf(new char[1 << 20]);
  ZSTD_inBuffer in{zst.data(), zst.size(), 0};
  while (in.pos < in.size) {
    ZSTD_outBuffer out{buf.get(), 1 << 20, 0};
    if (ZSTD_isError(ZSTD_decompressStream(ctx, &out, &in))) Fail("zstd");
  }
  ZSTD_freeDCtx(ctx);
  return MiB(out_size) / Seconds(start);
}

void Measure(const TempDir& tmp, const std::string& src, const char* suffix) {
  ::sync();
  UniqueFd src_fd = OpenDir(src);
  for (Compression c : {Compression::kGzip, Compression::kZstd}) {
    const char* name = c == Compression::kGzip ? "gzip" : "zstd";
    std::string layer;
    std::unique_ptr<ByteSink> sink = StringSink(&layer);
    auto start = std::chrono::steady_clock::now();
    absl::StatusOr<DiffResult> diff =
        WriteDiff(-1, src_fd.get(), DiffMode::kOverlayUpper, c, *sink);
    double diff_s = Seconds(start);
    if (!diff.ok()) Fail(diff.status().ToString());
    std::printf("%s diff:  %7.1f MiB/s  (%.0f MiB tar -> %.0f MiB, %.2fx)\n", name,
                MiB(diff->uncompressed_size) / diff_s, MiB(diff->uncompressed_size),
                MiB(diff->size), static_cast<double>(diff->uncompressed_size) / diff->size);

    double decompress = c == Compression::kGzip ? InflateMiBps(layer, diff->uncompressed_size)
                                                : ZstdMiBps(layer, diff->uncompressed_size);
    std::printf("%s decompression alone: %.0f MiB/s\n", name, decompress);
    // On the disk, syncfs included (what an unpack costs), and on tmpfs
    // (what the code costs: the disk's speed varies a lot on shared VMs).
    for (bool on_tmpfs : {false, true}) {
      std::string target =
          absl::StrCat(tmp.path(), "/apply-", name, suffix, on_tmpfs ? "-tmpfs" : "");
      ::mkdir(target.c_str(), 0755);
      snapshotter::MountGuard guard;
      if (on_tmpfs) {
        absl::StatusOr<snapshotter::MountGuard> mounted =
            snapshotter::MountAll({snapshotter::Mount{"tmpfs", "tmpfs", "", {"size=4g"}}}, target);
        if (!mounted.ok()) Fail(mounted.status().ToString());
        guard = std::move(*mounted);
      }
      UniqueFd target_fd = OpenDir(target);
      ::sync();  // the tree's and the last run's dirty pages are not ours to flush
      std::unique_ptr<ByteSource> source = StringSource(layer);
      start = std::chrono::steady_clock::now();
      absl::StatusOr<ApplyResult> applied = ApplyLayer(*source, c, target_fd.get(), ApplyOptions{});
      double apply_s = Seconds(start);
      if (!applied.ok()) Fail(applied.status().ToString());
      if (applied->diff_id != diff->diff_id) Fail("diff_id mismatch");
      std::printf("%s apply %-6s %7.1f MiB/s  (%.2f s)\n", name,
                  on_tmpfs ? "tmpfs:" : "disk:", MiB(applied->size) / apply_s, apply_s);
    }
  }
}

void Run(int64_t total, int small_files) {
  TempDir tmp;
  std::string src = tmp.path() + "/src";
  ::mkdir(src.c_str(), 0755);
  int64_t bytes = BuildTree(src, total);
  std::printf("tree: %.0f MiB of files\n", MiB(bytes));
  Measure(tmp, src, "");
  std::string small = tmp.path() + "/small";
  ::mkdir(small.c_str(), 0755);
  bytes = BuildSmallTree(small, small_files);
  std::printf("tree: %d files of 1-16 KiB, %.0f MiB\n", small_files, MiB(bytes));
  Measure(tmp, small, "-small");
}

}  // namespace
}  // namespace berth::image

int main(int argc, char** argv) {
  int64_t mib = argc > 1 ? std::atoll(argv[1]) : 300;
  int small_files = argc > 2 ? std::atoi(argv[2]) : 20000;
  berth::image::Run(mib << 20, small_files);
  return 0;
}
