/* tests/tools/mkcifar.c — write a tiny CIFAR-100 binary split for end-to-end tests.
 * usage: mkcifar OUT.bin N SEED
 * Record = coarse label, fine label (i % 100), 3072 pixels. The pixels carry a
 * class-dependent pattern plus noise, so a model can learn something in 2 epochs. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: mkcifar OUT.bin N SEED\n"); return 2; }
    int n = atoi(argv[2]);
    unsigned long long s = strtoull(argv[3], NULL, 10) * 2654435761ULL + 12345;
    FILE *f = fopen(argv[1], "wb");
    if (!f) { perror(argv[1]); return 1; }
    unsigned char rec[3074];
    for (int i = 0; i < n; i++) {
        int label = (i * 37) % 100;
        rec[0] = (unsigned char)(label / 5);
        rec[1] = (unsigned char)label;
        for (int k = 0; k < 3072; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            int noise = (int)((s >> 33) % 64);
            int c = k / 1024, y = (k % 1024) / 32, x = k % 32;
            int pattern = ((x * (label % 7 + 1) + y * (label / 7 + 1) + c * 50) % 160);
            rec[2 + k] = (unsigned char)(pattern + noise);
        }
        if (fwrite(rec, 1, sizeof rec, f) != sizeof rec) { perror("write"); return 1; }
    }
    return fclose(f) ? 1 : 0;
}
