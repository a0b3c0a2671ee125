// CRC32C (Castagnoli, polynomial 0x1EDC6F41, reflected; the iSCSI CRC), the
// fragment format's checksum (fragment.h, format version 2).
//
// Crc32c(data, len) is the standard CRC32C: initial value ~0, final XOR ~0,
// so Crc32c("123456789") == 0xE3069283. `crc` continues a previous result:
// Crc32c(b, nb, Crc32c(a, na)) == Crc32c(a ++ b).
//
// Implementation, picked once at first use: ISA-L's crc32_iscsi where the
// build found ISA-L (MISTORE_HAVE_ISAL: x86-64 native builds), else the
// SSE4.2 crc32 instruction when the CPU has it (x86-64), else the ARMv8 CRC
// instructions when the compiler targets them (__ARM_FEATURE_CRC32), else a
// portable slicing-by-8 table. All give the same values (crc32c_test.cc).
//
// Threads: pure functions, any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mistore {

uint32_t Crc32c(const uint8_t* data, size_t len, uint32_t crc = 0);

// The portable table implementation, whatever the build picked (tests).
uint32_t Crc32cPortable(const uint8_t* data, size_t len, uint32_t crc = 0);

// Name of the implementation Crc32c uses: "isa-l", "sse4.2", "armv8-crc" or
// "table".
const char* Crc32cImplementation();

// Tests: Crc32c through the named implementation if this build and CPU have
// it ("isa-l", "sse4.2", "armv8-crc", "table"); false otherwise.
bool Crc32cWith(const char* name, const uint8_t* data, size_t len, uint32_t crc,
                uint32_t* out);

}  // namespace mistore
