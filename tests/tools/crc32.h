/* tests/tools/crc32.h — CRC-32 as zip files use it (reflected polynomial
 * 0xEDB88320, start and final xor 0xFFFFFFFF), one bit at a time: slow and
 * plain, and written apart from pth.c's table-driven one, so the tests can hold
 * pth.c's CRC check against an independent computation. Used by
 * tests/test_pth.c and tests/tools/pickle_writer.h (they build zips) and
 * tests/tools/patch_pkl.c (it repairs the CRC of the entry it corrupted). */
#ifndef DKD_TEST_CRC32_H
#define DKD_TEST_CRC32_H
#include <stddef.h>
#include <stdint.h>

static inline uint32_t test_crc32(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}
#endif
