/* tests/fuzz/mkseeds.c — write the seed corpora of the fuzzing targets.
 * usage: mkseeds DIR   (writes DIR/{zip,legacy,pickle,cifar_bin,cifar_py}/seed_*)
 *
 * Every seed is a small but complete file of the kind the target reads, built
 * the way the real writers lay it out: pth_write (the program's own .pth
 * writer), tests/tools/pickle_writer.h (Python 3 / Python 2 protocol-2
 * pickles, legacy torch files, plain ZIPs) and CIFAR-100 binary records. They
 * are committed under tests/fuzz/corpus/ (a few KB each); scripts/fuzz.sh
 * starts every run from them. */
#include "dkd.h"
#include "tools/pickle_writer.h"

#include <sys/stat.h>
#include <unistd.h>

static const char *out_dir;

static void save(const char *target, const char *name, const void *p, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", out_dir, target); mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) { printf("mkseeds: cannot write %s\n", path); exit(1); }
    fclose(f);
}
static void save_file(const char *target, const char *name, const char *src) {
    size_t n; uint8_t *b = read_file(src, &n);
    if (!b) { printf("mkseeds: %s\n", dkd_errbuf); exit(1); }
    save(target, name, b, n); free(b);
}

/* pseudo-random bytes, the same on every machine */
static void fill(uint8_t *p, size_t n, uint64_t s) {
    for (size_t i = 0; i < n; i++) { s = s * 6364136223846793005ULL + 1442695040888963407ULL; p[i] = (uint8_t)(s >> 56); }
}

/* zip: pth_write's own layout ({"model": state_dict, "epoch", "best_acc"}) and a
 * hand-made zip with a strided view, float64 / float16 / int64 storages. */
static void zip_seeds(void) {
    float w[6] = {0.5f, -1, 2, 3.25f, -0.125f, 7}, b[3] = {1, 2, 3};
    int64_t nbt = 17, sw[2] = {2, 3}, sb[1] = {3};
    PthTensorRef t[3] = {{"conv.weight", DT_F32, 2, sw, w}, {"conv.bias", DT_F32, 1, sb, b},
                         {"bn.num_batches_tracked", DT_I64, 0, NULL, &nbt}};
    PthItem items[3] = {{"model", PI_STATE_DICT, 0, 0, t, 3}, {"epoch", PI_INT, 3, 0, NULL, 0},
                        {"best_acc", PI_FLOAT, 0, 71.5, NULL, 0}};
    char tmp[] = "/tmp/dkd_mkseeds_XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0 || pth_write(tmp, items, 3)) { printf("mkseeds: %s\n", dkd_errbuf); exit(1); }
    close(fd);
    save_file("zip", "seed_pth_write.pth", tmp);
    unlink(tmp);

    PW pk = {0}, z = {0};
    double d[4] = {1, 2, 3, 4};
    uint16_t h[2] = {0x3c00, 0xc000};   /* 1.0, -2.0 */
    int64_t l[1] = {5}, s22[2] = {2, 2}, st_t[2] = {1, 2}, s2[1] = {2};
    pw_proto2(&pk); pw_op(&pk, '}'); pw_memo(&pk); pw_op(&pk, '(');
    pw_str(&pk, "d_transposed"); pw_tensor(&pk, "DoubleStorage", "0", 4, 0, 2, s22, st_t);
    pw_str(&pk, "h"); pw_tensor(&pk, "HalfStorage", "1", 2, 0, 1, s2, (const int64_t[]){1});
    pw_str(&pk, "n"); pw_tensor(&pk, "LongStorage", "2", 1, 0, 0, NULL, NULL);
    pw_op(&pk, 'u'); pw_op(&pk, '.');
    PWEntry e[5] = {{"archive/data.pkl", 0, pk.p, pk.n}, {"archive/data/0", 0, (uint8_t *)d, sizeof d},
                    {"archive/data/1", 0, (uint8_t *)h, sizeof h}, {"archive/data/2", 0, (uint8_t *)l, sizeof l},
                    {"archive/version", 0, (const uint8_t *)"3\n", 2}};
    pw_zip(&z, e, 5);
    save("zip", "seed_views.pth", z.p, z.n);
    save("pickle", "seed_torch_views.pkl", pk.p, pk.n);
    free(pk.p); free(z.p);
}

/* legacy: {"model": {w, b}, "epoch": 1} with one storage shared by two views */
static void legacy_seeds(void) {
    PW b = {0};
    int64_t s3[1] = {3}, s1[1] = {1}, one[1] = {1};
    pw_legacy_header(&b);
    pw_proto2(&b); pw_op(&b, '}'); pw_memo(&b); pw_op(&b, '(');
    pw_str(&b, "model"); pw_op(&b, '}'); pw_memo(&b); pw_op(&b, '(');
    pw_str(&b, "w"); pw_tensor(&b, "FloatStorage", "94001", 4, 0, 1, s3, one);
    pw_str(&b, "b"); pw_tensor(&b, "FloatStorage", "94001", 4, 3, 1, s1, one);
    pw_op(&b, 'u');
    pw_str(&b, "epoch"); pw_int(&b, 1);
    pw_op(&b, 'u'); pw_op(&b, '.');
    const char *keys[1] = {"94001"};
    pw_legacy_keys(&b, keys, 1);
    float v[4] = {1, 2, 3, 4};
    pw_legacy_storage(&b, v, 4, 4);
    save("legacy", "seed_shared_storage.pth", b.p, b.n);
    free(b.p);
}

/* CIFAR: one and two binary records; python files of 1 image (Python 3 and 2) */
static void cifar_seeds(void) {
    uint8_t rec[2 * 3074];
    fill(rec, sizeof rec, 1);
    rec[0] = 3; rec[1] = 17; rec[3074] = 19; rec[3075] = 99;
    save("cifar_bin", "seed_1_record.bin", rec, 3074);
    save("cifar_bin", "seed_2_records.bin", rec, sizeof rec);
    uint8_t px[3072];
    int fine[1] = {42};
    fill(px, sizeof px, 2);
    for (int py3 = 0; py3 < 2; py3++) {
        PW b = {0};
        pw_cifar(&b, px, fine, 1, py3);
        save("cifar_py", py3 ? "seed_python3.pkl" : "seed_python2.pkl", b.p, b.n);
        save("pickle", py3 ? "seed_cifar_python3.pkl" : "seed_cifar_python2.pkl", b.p, b.n);
        free(b.p);
    }
}

/* protocol 4 pieces: FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL, BINGET, LONG1, BINFLOAT */
static void pickle_seeds(void) {
    static const uint8_t p4[] =
        "\x80\x04\x95\x40\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x01" "a]\x94(K\x07M\x2c\x01J\xfe\xff\xff\xff"
        "\x8a\x06\x00\x00\x00\x00\x00\x01G\x3f\xf8\x00\x00\x00\x00\x00\x00" "e\x8c\x01" "bh\x01\x8c\x01" "c"
        "\x8c\x0b" "collections\x94\x8c\x0b" "OrderedDict\x94\x93)R\x94u.";
    save("pickle", "seed_protocol4.pkl", p4, sizeof p4 - 1);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: mkseeds DIR\n"); return 2; }
    out_dir = argv[1];
    mkdir(out_dir, 0755);
    zip_seeds(); legacy_seeds(); cifar_seeds(); pickle_seeds();
    printf("mkseeds: seeds written under %s\n", out_dir);
    return 0;
}
