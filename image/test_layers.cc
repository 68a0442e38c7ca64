#include "image/test_layers.h"

#include <archive.h>
#include <zlib.h>
#include <zstd.h>

#include "gtest/gtest.h"

namespace berth::image {

TarEntry File(std::string name, std::string data, unsigned perm) {
  TarEntry e;
  e.name = std::move(name);
  e.data = std::move(data);
  e.perm = perm;
  return e;
}

TarEntry Dir(std::string name, unsigned perm) {
  TarEntry e;
  e.name = std::move(name);
  e.type = AE_IFDIR;
  e.perm = perm;
  return e;
}

TarEntry Symlink(std::string name, std::string target) {
  TarEntry e;
  e.name = std::move(name);
  e.type = AE_IFLNK;
  e.perm = 0777;
  e.symlink = std::move(target);
  return e;
}

TarEntry Hardlink(std::string name, std::string target) {
  TarEntry e;
  e.name = std::move(name);
  e.hardlink = std::move(target);
  return e;
}

TarEntry Node(std::string name, unsigned type, unsigned major, unsigned minor) {
  TarEntry e;
  e.name = std::move(name);
  e.type = type;
  e.major = major;
  e.minor = minor;
  return e;
}

namespace {

la_ssize_t AppendToString(archive*, void* out, const void* buf, size_t size) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(buf), size);
  return static_cast<la_ssize_t>(size);
}

}  // namespace

std::string MakeTar(const std::vector<TarEntry>& entries) {
  std::string out;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  EXPECT_EQ(archive_write_open(a, &out, nullptr, AppendToString, nullptr), ARCHIVE_OK);
  archive_entry* entry = archive_entry_new();
  for (const TarEntry& e : entries) {
    archive_entry_clear(entry);
    archive_entry_copy_pathname(entry, e.name.c_str());
    archive_entry_set_perm(entry, e.perm);
    archive_entry_set_uid(entry, e.uid);
    archive_entry_set_gid(entry, e.gid);
    archive_entry_set_mtime(entry, e.mtime, e.mtime_ns);
    for (const auto& [name, value] : e.xattrs) {
      archive_entry_xattr_add_entry(entry, name.c_str(), value.data(), value.size());
    }
    if (!e.hardlink.empty()) {
      archive_entry_set_filetype(entry, AE_IFREG);
      archive_entry_copy_hardlink(entry, e.hardlink.c_str());
      archive_entry_set_size(entry, 0);
    } else {
      archive_entry_set_filetype(entry, e.type);
      archive_entry_set_size(entry, e.type == AE_IFREG ? e.data.size() : 0);
      if (e.type == AE_IFLNK) archive_entry_copy_symlink(entry, e.symlink.c_str());
      archive_entry_set_rdevmajor(entry, e.major);
      archive_entry_set_rdevminor(entry, e.minor);
      for (const auto& [offset, length] : e.sparse) {
        archive_entry_sparse_add_entry(entry, offset, length);
      }
    }
    int r = archive_write_header(a, entry);
    EXPECT_TRUE(r == ARCHIVE_OK || r == ARCHIVE_WARN) << archive_error_string(a);
    if (e.type == AE_IFREG && e.hardlink.empty() && !e.data.empty()) {
      EXPECT_EQ(archive_write_data(a, e.data.data(), e.data.size()),
                static_cast<la_ssize_t>(e.data.size()));
    }
  }
  archive_entry_free(entry);
  EXPECT_EQ(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
  return out;
}

std::string Gzip(absl::string_view data) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, data.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = data.size();
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = out.size();
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string Zstd(absl::string_view data) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

}  // namespace berth::image
