# ARMv7 hard-float (Debian armhf), e.g. cortex-a7/a9 home gateways. No NEON
# is assumed: Debian's armhf baseline (VFPv3-D16, Thumb-2) is kept explicitly.
set(CMAKE_SYSTEM_PROCESSOR arm)
set(MISTORE_CROSS_ARCH armhf)
set(MISTORE_TRIPLE arm-linux-gnueabihf)
set(MISTORE_QEMU qemu-arm)
set(MISTORE_QEMU_CPU cortex-a7)
set(MISTORE_ARCH_FLAGS "-march=armv7-a+fp -mfpu=vfpv3-d16 -mfloat-abi=hard -mthumb")
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
