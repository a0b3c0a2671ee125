// The dashboard's files (index.html, app.js, app.css in this folder),
// compiled into mistore-dc by embed.cmake: the DC serves them itself, so the
// dashboard works offline and loads nothing from elsewhere.
#pragma once

#include <cstddef>
#include <string_view>

namespace mistore {

struct DashboardFile {
  const char* path;  // "/app.js"
  const char* content_type;
  const unsigned char* data;
  size_t size;
};

// nullptr when there is no such file.
const DashboardFile* FindDashboardFile(std::string_view path);

}  // namespace mistore
