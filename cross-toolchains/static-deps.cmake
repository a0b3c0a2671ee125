# Included by the top-level CMakeLists.txt when MISTORE_STATIC_AGENT is ON,
# before the dependencies are looked up. Makes every dependency of the agent
# available as a static archive, so that mistore-agent links with -static
# (gateway-agent/CMakeLists.txt) and needs no shared library on the device:
#
#  - libuv, libsodium, protobuf-lite: Debian's -dev packages ship static
#    archives (libuv_a.a, libsodium.a, libprotobuf-lite.a); the pkg-config
#    look-ups are pointed at them by pre-seeding FindPkgConfig's
#    pkgcfg_lib_<PREFIX>_<lib> cache entries.
#  - gf-complete and Jerasure: Debian ships no static archives. Their C
#    sources, from Debian's source packages (unpacked in build/src-deb by
#    cross-toolchains/install-cross-deps.sh), are compiled here into
#    mistore_gf_complete and mistore_jerasure, portable C only, without the
#    SSE/NEON code paths (as Debian builds them: --disable-sse
#    --disable-neon). JERASURE_LIB / GF_COMPLETE_LIB then name these targets.
#
# The whole build (the unit tests too) then links these archives, so the
# tests exercise the exact erasure code the firmware ships. SQLite is linked
# by the tests only, never by the agent.
set(MISTORE_EC_SOURCE_DIR "${CMAKE_SOURCE_DIR}/build/src-deb" CACHE PATH
    "Folder holding the unpacked gf-complete and jerasure source packages")

function(_mistore_src_dir name out)
  file(GLOB _dirs LIST_DIRECTORIES true "${MISTORE_EC_SOURCE_DIR}/${name}-*")
  set(_found "")
  foreach(d IN LISTS _dirs)
    if(IS_DIRECTORY "${d}")
      set(_found "${d}")
    endif()
  endforeach()
  if(NOT _found)
    message(FATAL_ERROR "MISTORE_STATIC_AGENT: no ${name} sources in ${MISTORE_EC_SOURCE_DIR}; "
                        "run: bash cross-toolchains/install-cross-deps.sh <target|native>")
  endif()
  set(${out} "${_found}" PARENT_SCOPE)
endfunction()

_mistore_src_dir(gf-complete GF_SRC)
_mistore_src_dir(jerasure JERASURE_SRC)

add_library(mistore_gf_complete STATIC
  ${GF_SRC}/src/gf.c ${GF_SRC}/src/gf_wgen.c ${GF_SRC}/src/gf_w4.c
  ${GF_SRC}/src/gf_w8.c ${GF_SRC}/src/gf_w16.c ${GF_SRC}/src/gf_w32.c
  ${GF_SRC}/src/gf_w64.c ${GF_SRC}/src/gf_w128.c ${GF_SRC}/src/gf_rand.c
  ${GF_SRC}/src/gf_general.c ${GF_SRC}/src/gf_cpu.c ${GF_SRC}/src/gf_method.c)
target_include_directories(mistore_gf_complete SYSTEM PUBLIC ${GF_SRC}/include)
# Third-party C: keep its warnings out of our build logs; -O3 as upstream.
target_compile_options(mistore_gf_complete PRIVATE -O3 -w)

add_library(mistore_jerasure STATIC
  ${JERASURE_SRC}/src/galois.c ${JERASURE_SRC}/src/jerasure.c
  ${JERASURE_SRC}/src/reed_sol.c ${JERASURE_SRC}/src/cauchy.c
  ${JERASURE_SRC}/src/liberation.c)
target_include_directories(mistore_jerasure SYSTEM PUBLIC ${JERASURE_SRC}/include)
target_compile_options(mistore_jerasure PRIVATE -O3 -w)
target_link_libraries(mistore_jerasure PUBLIC mistore_gf_complete)

# Headers: the same layout as Debian's libjerasure-dev (jerasure.h at the
# top, galois.h & co. in jerasure/), staged in the build tree, so that
# shared/erasure compiles unchanged against the sources it links.
set(_inc "${CMAKE_BINARY_DIR}/ec-include")
file(MAKE_DIRECTORY "${_inc}/jerasure")
foreach(h jerasure.h galois.h reed_sol.h cauchy.h liberation.h)
  configure_file("${JERASURE_SRC}/include/${h}" "${_inc}/${h}" COPYONLY)
  configure_file("${JERASURE_SRC}/include/${h}" "${_inc}/jerasure/${h}" COPYONLY)
endforeach()
file(GLOB _gf_headers "${GF_SRC}/include/*.h")
foreach(h IN LISTS _gf_headers)
  get_filename_component(_n "${h}" NAME)
  configure_file("${h}" "${_inc}/${_n}" COPYONLY)
endforeach()
set(JERASURE_INCLUDE_DIR "${_inc}" CACHE PATH "jerasure.h (staged from the source package)" FORCE)
set(JERASURE_LIB mistore_jerasure CACHE STRING "Jerasure (static, built from source)" FORCE)
set(GF_COMPLETE_LIB mistore_gf_complete CACHE STRING "gf-complete (static, built from source)" FORCE)

# Static archives of the pkg-config dependencies.
function(_mistore_static_lib var)
  find_library(${var} NAMES ${ARGN} NO_CACHE)
  if(NOT ${var})
    message(FATAL_ERROR "MISTORE_STATIC_AGENT: none of ${ARGN} found")
  endif()
  set(${var} "${${var}}" CACHE FILEPATH "static archive for the static agent" FORCE)
endfunction()
_mistore_static_lib(pkgcfg_lib_UV_uv libuv_a.a libuv.a)
_mistore_static_lib(pkgcfg_lib_SODIUM_sodium libsodium.a)
_mistore_static_lib(pkgcfg_lib_PROTOBUF_LITE_protobuf-lite libprotobuf-lite.a)
