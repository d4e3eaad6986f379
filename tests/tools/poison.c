/* tests/tools/poison.c — overwrite one float of a PyTorch zip checkpoint, keeping the file valid.
 * usage: poison FILE.pth STORAGE VALUE      e.g. poison student_latest 0 nan
 *
 * The tests make checkpoints with NaN or huge weights this way (a run rarely
 * diverges on cue). STORAGE is the key of the tensor storage (the zip entry
 * ".../data/STORAGE"; dkd and torch.save number them in state_dict order), VALUE
 * is parsed by strtof ("nan", "inf", "3e38"), and its float replaces the storage's
 * first element. The entry's CRC-32 is recomputed in both the local header and the
 * central directory, so the file still reads as an intact checkpoint: only its
 * numbers are bad. Stored (uncompressed) entries only, as torch.save writes them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rd16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const unsigned char *p) { return rd16(p) | rd16(p + 2) << 16; }
static void wr32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }

static uint32_t crc32(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return ~c;
}

static int fail(const char *msg) { fprintf(stderr, "poison: %s\n", msg); return 1; }

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: poison FILE.pth STORAGE VALUE\n"); return 2; }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 1; }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    unsigned char *z = malloc((size_t)len);
    if (!z || len < 22 || fread(z, 1, (size_t)len, f) != (size_t)len) return fail("cannot read the file");
    fclose(f);
    char suffix[64];
    snprintf(suffix, sizeof suffix, "/data/%s", argv[2]);
    float value = strtof(argv[3], NULL);

    long eocd = len - 22;   /* end of central directory (no archive comment in what torch.save writes) */
    while (eocd >= 0 && rd32(z + eocd) != 0x06054b50u) eocd--;
    if (eocd < 0) return fail("not a zip file");
    uint32_t n = rd16(z + eocd + 10), off = rd32(z + eocd + 16);
    for (uint32_t e = 0; e < n; e++) {
        unsigned char *c = z + off;
        if (off + 46 > (uint32_t)len || rd32(c) != 0x02014b50u) return fail("bad central directory");
        uint32_t nl = rd16(c + 28), xl = rd16(c + 30), cl = rd16(c + 32), size = rd32(c + 20), loc = rd32(c + 42);
        const char *name = (const char *)c + 46;
        size_t sl = strlen(suffix);
        if (nl >= sl && !memcmp(name + nl - sl, suffix, sl)) {
            unsigned char *l = z + loc;
            if (rd16(c + 10) != 0 || size < 4) return fail("the entry is compressed or empty");
            unsigned char *data = l + 30 + rd16(l + 26) + rd16(l + 28);
            memcpy(data, &value, 4);   /* little-endian float, as the checkpoint stores it */
            uint32_t crc = crc32(data, size);
            wr32(l + 14, crc);
            wr32(c + 16, crc);
            f = fopen(argv[1], "wb");
            if (!f || fwrite(z, 1, (size_t)len, f) != (size_t)len || fclose(f)) return fail("cannot write the file");
            free(z);
            return 0;
        }
        off += 46 + nl + xl + cl;
    }
    return fail("no such storage in the file");
}
