# AArch64 (Debian arm64), e.g. cortex-a53 gateways.
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(MISTORE_CROSS_ARCH arm64)
set(MISTORE_TRIPLE aarch64-linux-gnu)
set(MISTORE_QEMU qemu-aarch64)
set(MISTORE_QEMU_CPU cortex-a53)
set(MISTORE_ARCH_FLAGS "")
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
