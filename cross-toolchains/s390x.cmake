# IBM Z (Debian s390x): not a gateway. The one big-endian target Debian 12
# still has, used only to run the unit tests on a big-endian host: every
# on-disk and wire format is little-endian by definition, and the byte-level
# known-answer tests must pass here too (bash cross-toolchains/build.sh s390x).
set(CMAKE_SYSTEM_PROCESSOR s390x)
set(MISTORE_CROSS_ARCH s390x)
set(MISTORE_TRIPLE s390x-linux-gnu)
set(MISTORE_QEMU qemu-s390x)
set(MISTORE_QEMU_CPU max)
set(MISTORE_ARCH_FLAGS "")
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
