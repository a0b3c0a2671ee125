# Shared part of the gateway toolchain files (armhf.cmake, arm64.cmake,
# mipsel.cmake), which set MISTORE_TRIPLE, MISTORE_QEMU, MISTORE_QEMU_CPU,
# CMAKE_SYSTEM_PROCESSOR and MISTORE_ARCH_FLAGS before including this file.
#
# Debian 12 multiarch, no sysroot: the cross g++ (g++-<triple>) finds the
# target's headers in /usr/include[/<triple>] and its libraries in
# /usr/lib/<triple> (installed as <pkg>:<arch> by install-cross-deps.sh).
# Programs are searched on the build host, so the build host's protoc
# generates the code that the target's libprotobuf-lite compiles against
# (same Debian version on both sides).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${MISTORE_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${MISTORE_TRIPLE}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${MISTORE_TRIPLE})
# _FILE_OFFSET_BITS=64 on every target: on 32-bit ones (armhf, mipsel)
# glibc's readdir/stat otherwise fail with EOVERFLOW on 64-bit inode numbers
# and directory offsets (ext4 hash cookies, and always under qemu-user on a
# 64-bit host: FragmentStore::Open then saw an empty store), and files are
# limited to 2 GiB. Debian builds libuv with it as well. (_TIME_BITS=64 is
# not set: Debian 12's armhf libraries still use a 32-bit time_t.)
# -Wno-psabi: GCC's note about the GCC 7.1 ARM ABI change, irrelevant here
# (everything is built by the same compiler).
set(CMAKE_C_FLAGS_INIT "${MISTORE_ARCH_FLAGS} -D_FILE_OFFSET_BITS=64 -Wno-psabi")
set(CMAKE_CXX_FLAGS_INIT "${MISTORE_ARCH_FLAGS} -D_FILE_OFFSET_BITS=64 -Wno-psabi")

# pkgconf:<arch> installs /usr/bin/<triple>-pkg-config, whose personality
# searches /usr/lib/<triple>/pkgconfig only.
find_program(PKG_CONFIG_EXECUTABLE NAMES ${MISTORE_TRIPLE}-pkg-config REQUIRED)

# Only programs run on the build host; everything else is the target's.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)

# binfmt_misc is not available: ctest and gtest_discover_tests run target
# binaries through qemu-user with a realistic CPU. The dynamic loader and
# libraries come from the multiarch packages (/lib/<triple>), which qemu
# finds in the host's root, so no -L prefix is given: the cross-libc in
# /usr/<triple> is a different build of glibc than libc6:<arch> and must not
# be mixed with it in one process.
find_program(MISTORE_QEMU_PROGRAM NAMES ${MISTORE_QEMU} REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR ${MISTORE_QEMU_PROGRAM} -cpu ${MISTORE_QEMU_CPU})
