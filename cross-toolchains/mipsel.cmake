# 32-bit little-endian MIPS (Debian mipsel: MIPS32R2, o32, hard float), e.g.
# 24Kc/74Kc gateway SoCs. The qemu CPU is 74Kf (MIPS32R2 with FPU). Debian's
# mipsel has no native 64-bit atomics: std::atomic<uint64_t> needs
# libatomic, so -latomic ends every link line (after the objects and
# archives that need it; as a static archive in the static agent).
set(CMAKE_SYSTEM_PROCESSOR mipsel)
set(MISTORE_CROSS_ARCH mipsel)
set(MISTORE_TRIPLE mipsel-linux-gnu)
set(MISTORE_QEMU qemu-mipsel)
set(MISTORE_QEMU_CPU 74Kf)
set(MISTORE_ARCH_FLAGS "")
set(CMAKE_C_STANDARD_LIBRARIES_INIT "-latomic")
set(CMAKE_CXX_STANDARD_LIBRARIES_INIT "-latomic")
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
