/* tests/test.h — the tiny test harness shared by every test program.
 *
 * A test program calls check()/check_close() any number of times and ends with
 * `return test_summary();`, which prints "RESULT <passed> <failed> <skipped>"
 * (read by build.sh) and returns non-zero when something failed.
 *
 * check_close() is THE validation routine (llm.c's validate_result idea): an
 * element fails when |got - ref| > atol + rtol*|ref|; it prints the worst
 * element and the max abs / rel error, and counts a failure. */
#ifndef DKD_TEST_H
#define DKD_TEST_H
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_passed, test_failed, test_skipped;

/* One named check. */
static inline void check(int ok, const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    printf(ok ? "  ok   " : "  FAIL ");
    vprintf(fmt, ap); printf("\n");
    va_end(ap);
    if (ok) test_passed++; else test_failed++;
    fflush(stdout);
}

/* A check that cannot run here: always say why. */
static inline void skip(const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    printf("  SKIP "); vprintf(fmt, ap); printf("\n");
    va_end(ap);
    test_skipped++;
    fflush(stdout);
}

/* Compare n floats: returns 1 if all within atol + rtol*|ref|, prints max errors. */
static inline int check_close(const char *name, const float *got, const float *ref, size_t n, double atol, double rtol) {
    double max_abs = 0, max_rel = 0; size_t worst = 0; int ok = 1; size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], r = ref[i], d = fabs(g - r);
        if (!(d <= atol + rtol * fabs(r))) { if (ok || d > fabs((double)got[worst] - ref[worst])) worst = i; ok = 0; bad++; }
        if (d > max_abs || d != d) { max_abs = d; if (ok) worst = i; }
        double rel = d / (fabs(r) > 1e-30 ? fabs(r) : 1e-30);
        if (rel > max_rel && fabs(r) > atol) max_rel = rel;
    }
    if (ok) check(1, "%s: n=%zu max_abs=%.3g max_rel=%.3g", name, n, max_abs, max_rel);
    else check(0, "%s: n=%zu %zu bad, worst [%zu] got %.9g ref %.9g (atol %.2g rtol %.2g), max_abs=%.3g",
               name, n, bad, worst, (double)got[worst], (double)ref[worst], atol, rtol, max_abs);
    return ok;
}

/* Bit-identical comparison (schedules, resume). */
static inline int check_same(const char *name, const void *a, const void *b, size_t bytes) {
    int ok = memcmp(a, b, bytes) == 0;
    check(ok, "%s: %zu bytes %s", name, bytes, ok ? "bit-identical" : "DIFFER");
    return ok;
}

/* A fresh folder /tmp/dkd_<name>_XXXXXX for a test's files, into dir; a test
 * that cannot make one stops at once (exit 1 and no RESULT line, which build.sh
 * counts as a failure). */
static inline void test_tmpdir(char *dir, size_t cap, const char *name) {
    snprintf(dir, cap, "/tmp/dkd_%s_XXXXXX", name);
    if (!mkdtemp(dir)) { printf("cannot make a temporary folder like %s\n", dir); exit(1); }
}

static inline int test_summary(void) {
    printf("RESULT %d %d %d\n", test_passed, test_failed, test_skipped);
    return test_failed ? 1 : 0;
}

/* Deterministic test data: uniform in [-1, 1). */
static inline float test_rand(unsigned long long *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}
static inline void test_fill(float *x, size_t n, unsigned long long seed, float scale) {
    unsigned long long s = seed * 2654435761ULL + 1;
    for (size_t i = 0; i < n; i++) x[i] = scale * test_rand(&s);
}

/* Where the golden fixtures are: $DKD_FIXTURES, ../shared/fixtures, tests/fixtures. */
static inline const char *fixtures_dir(void) {
    const char *e = getenv("DKD_FIXTURES");
    if (e && *e) return e;
    FILE *f = fopen("../shared/fixtures/README.md", "r");
    if (f) { fclose(f); return "../shared/fixtures"; }
    return "tests/fixtures";
}
#endif
