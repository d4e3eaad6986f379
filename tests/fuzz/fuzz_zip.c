/* tests/fuzz/fuzz_zip.c — libFuzzer target: the ZIP (torch >= 1.6) checkpoint
 * reader, through pth_read_mem, the code path of every .pth the program loads.
 * Seeded with small zip checkpoints (tests/fuzz/corpus/zip); inputs that do not
 * start with "PK\3\4" take the legacy path, which fuzz_legacy covers too. */
#include "dkd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    PthDict d;
    if (pth_read_mem(data, size, "fuzz.pth", &d) == 0) {
        (void)pth_scalar(&d, "epoch");
        pth_dict_free(&d);
    }
    return 0;
}
