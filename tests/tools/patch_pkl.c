/* tests/tools/patch_pkl.c — hand-corrupt a checkpoint for tests: in the data.pkl
 * entry of a stored (uncompressed) PyTorch zip, overwrite the bytes that follow the
 * first occurrence of PREFIX with NEW (both hex), then fix the entry's CRC-32 in
 * the local header and the central directory, so that the file still reads as a
 * valid zip and only the pickled value changed.
 *
 *   patch_pkl FILE PREFIX_HEX NEW_HEX     exit 0 when patched, 1 otherwise
 * e.g. the epoch of a dkd_state (BINUNICODE "epoch", then BININT):
 *   patch_pkl dkd_state 580500000065706f63684a ffffff7f     epoch = 2^31-1
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"   // defines: test_crc32

static uint32_t rd32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static void wr32(uint8_t *p, uint32_t v) { for (int k = 0; k < 4; k++) p[k] = (uint8_t)(v >> (8 * k)); }

static size_t unhex(const char *s, uint8_t *out, size_t cap) {
    size_t n = 0;
    for (; s[0] && s[1] && n < cap; s += 2) { unsigned v; if (sscanf(s, "%2x", &v) != 1) exit(1); out[n++] = (uint8_t)v; }
    return n;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: patch_pkl FILE PREFIX_HEX NEW_HEX\n"); return 1; }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 1; }
    fseek(f, 0, SEEK_END); long len = ftell(f); fseek(f, 0, SEEK_SET);
    uint8_t *z = malloc((size_t)len);
    if (!z || fread(z, 1, (size_t)len, f) != (size_t)len) return 1;
    fclose(f);
    uint8_t pre[256], neu[256];
    size_t np = unhex(argv[2], pre, sizeof pre), nn = unhex(argv[3], neu, sizeof neu);
    /* the central directory entry of ".../data.pkl", then its local header and data */
    for (long i = 0; i + 46 <= len; i++) {
        if (rd32(z + i) != 0x02014b50u) continue;
        uint16_t nl = rd16(z + i + 28);
        const char *name = (const char *)z + i + 46;
        if (nl < 8 || memcmp(name + nl - 8, "data.pkl", 8)) continue;
        uint32_t size = rd32(z + i + 24), loc = rd32(z + i + 42);
        uint8_t *data = z + loc + 30 + rd16(z + loc + 26) + rd16(z + loc + 28);
        for (uint32_t k = 0; k + np + nn <= size; k++) {
            if (memcmp(data + k, pre, np)) continue;
            memcpy(data + k + np, neu, nn);
            uint32_t crc = test_crc32(data, size);
            wr32(z + i + 16, crc);
            wr32(z + loc + 14, crc);
            f = fopen(argv[1], "wb");
            if (!f || fwrite(z, 1, (size_t)len, f) != (size_t)len || fclose(f)) return 1;
            return 0;
        }
        fprintf(stderr, "patch_pkl: prefix not found in %s\n", argv[1]);
        return 1;
    }
    fprintf(stderr, "patch_pkl: no data.pkl entry in %s\n", argv[1]);
    return 1;
}
