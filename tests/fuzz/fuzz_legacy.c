/* tests/fuzz/fuzz_legacy.c — libFuzzer target: the legacy (torch < 1.6)
 * checkpoint reader (five pickles, then the raw storages), through
 * pth_read_mem like every .pth the program loads. Seeded with small legacy
 * checkpoints (tests/fuzz/corpus/legacy). */
#include "dkd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size >= 4 && data[0] == 'P' && data[1] == 'K') return 0;   /* zip: fuzz_zip's job */
    PthDict d;
    if (pth_read_mem(data, size, "fuzz.pth", &d) == 0) {
        (void)pth_scalar(&d, "epoch");
        pth_dict_free(&d);
    }
    return 0;
}
