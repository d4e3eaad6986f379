/* tests/test_plot.c — plot.c: log.csv parsing and PNG charts.
 *
 * Writes synthetic runs (a 240-epoch log.csv shaped like a real one with LR
 * decays, a 3-epoch one, one with extra/reordered columns) into a temporary
 * folder, draws single-run, multi-run and bar charts, and checks each PNG:
 * present, the 8-byte PNG signature, an IHDR chunk with a sane size. Bad
 * input (missing log, garbled lines, missing columns, empty file) must give
 * -1 with a message, and `dkd plot` exit codes are checked through cmd_plot.
 * Set DKD_KEEP_TEST_FILES=1 to keep the folder (its path is printed) and look
 * at the charts.
 */
#include "dkd.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[256];

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) { printf("cannot write %s\n", path); exit(1); }
    fputs(text, f);
    fclose(f);
}

/* A synthetic run: epochs 1..E, step decays at 150/180/210 (scaled to E). */
static void write_run(const char *dir, int E, double final_acc, unsigned seed) {
    mkdir(dir, 0755);
    char path[512]; snprintf(path, sizeof path, "%s/log.csv", dir);
    FILE *f = fopen(path, "wb");
    fprintf(f, "%s\n", DKD_LOG_CSV_HEADER);
    unsigned long long s = seed;
    for (int e = 1; e <= E; e++) {
        double t = (double)e / E;
        int stage = (e > E * 150 / 240) + (e > E * 180 / 240) + (e > E * 210 / 240);
        double lr = 0.05 * pow(0.1, stage);
        double boost = stage * 6.0 / (1 + stage * 0.4);
        double noise = test_rand(&s);
        double test_acc = (final_acc - 18) * (1 - exp(-6 * t)) + boost + 1.2 * noise * (stage == 0);
        double train_acc = test_acc + 4 + 20 * t * t + stage * 3;
        if (train_acc > 99.5) train_acc = 99.5;
        double train_loss = 4.6 * exp(-4 * t) + 0.6 - 0.12 * stage + 0.05 * noise;
        double test_loss = 4.6 * exp(-5 * t) + 1.1 - 0.15 * stage + 0.1 * noise * (stage == 0);
        fprintf(f, "%d,%.8g,%.4f,%.6f,%.4f,%.4f,%.6f,%.1f,%.1f\n", e, lr, train_acc, train_loss, test_acc,
                test_acc + 20 > 99 ? 99 : test_acc + 20, test_loss, 5000 + 100 * noise, 12.0);
    }
    fclose(f);
}

/* A PNG: signature, then the IHDR chunk with width and height. */
static int png_ok(const char *path, int *w, int *h) {
    size_t len = 0;
    unsigned char *b = read_file(path, &len);
    *w = *h = 0;
    if (!b) return 0;
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    int ok = len > 33 && !memcmp(b, sig, 8) && !memcmp(b + 12, "IHDR", 4);
    if (ok) {
        *w = (b[16] << 24) | (b[17] << 16) | (b[18] << 8) | b[19];
        *h = (b[20] << 24) | (b[21] << 16) | (b[22] << 8) | b[23];
        ok = *w > 100 && *h > 100 && *w < 10000 && *h < 10000 && !memcmp(b + len - 8, "IEND", 4);
    }
    free(b);
    return ok;
}

static void check_png(const char *path, const char *what) {
    int w, h;
    int ok = png_ok(path, &w, &h);
    check(ok, "%s: %s is a PNG (%dx%d)", what, path, w, h);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dkd_test_plot_XXXXXX");
    if (!mkdtemp(tmpdir)) { printf("cannot make a temp folder\n"); return 1; }
    char a[512], b[512], c[512], p[1200], out[600];
    snprintf(a, sizeof a, "%s/dkd,res32x4,res8x4", tmpdir);
    snprintf(b, sizeof b, "%s/kd,res32x4,res8x4", tmpdir);
    snprintf(c, sizeof c, "%s/short", tmpdir);
    write_run(a, 240, 76.3, 1);
    write_run(b, 240, 73.4, 2);
    write_run(c, 3, 20, 3);

    /* ---- reading log.csv */
    EpochLog *rows = NULL;
    snprintf(p, sizeof p, "%s/log.csv", a);
    int n = log_csv_read(p, &rows);
    check(n == 240, "log_csv_read: 240 rows (got %d)", n);
    if (n == 240) {
        check(rows[0].epoch == 1 && rows[239].epoch == 240, "epochs 1..240");
        check(fabs(rows[0].lr - 0.05) < 1e-12 && fabs(rows[239].lr - 0.00005) < 1e-12, "lr column parsed (%g, %g)",
              rows[0].lr, rows[239].lr);
        check(fabs(rows[239].seconds - 12.0) < 1e-9, "seconds column parsed");
    }
    free(rows);

    /* columns found by name: reordered, one extra, optional ones missing */
    snprintf(p, sizeof p, "%s/reordered.csv", tmpdir);
    write_text(p, "test_acc,epoch,extra,train_loss,test_loss,train_acc\r\n10.5,1,x,4.0,4.2,9.0\r\n\r\n20.25,2,y,3.0,3.5,19.0\r\n");
    rows = NULL;
    n = log_csv_read(p, &rows);
    check(n == 2 && rows && rows[1].test_acc == 20.25 && rows[1].train_loss == 3.0 && isnan(rows[1].lr),
          "columns by name, CRLF, blank lines, absent optional columns -> NAN (n=%d)", n);
    free(rows);

    /* ---- bad logs */
    struct { const char *name, *text; } bad[] = {
        {"garbled_field.csv", DKD_LOG_CSV_HEADER "\n1,0.05,10,4.1,9,30,4.2,100,1\n2,0.05,abc,4.0,9,30,4.2,100,1\n"},
        {"missing_field.csv", DKD_LOG_CSV_HEADER "\n1,0.05,10,4.1,9,30,4.2,100\n"},
        {"no_header.csv", "1,0.05,10,4.1,9,30,4.2,100,1\n"},
        {"missing_column.csv", "epoch,lr,train_acc,train_loss,test_acc_top5,test_loss\n1,0.1,2,3,4,5\n"},
        {"empty.csv", ""},
        {"header_only.csv", DKD_LOG_CSV_HEADER "\n"},
        {"binary.csv", "\x89PNG\r\n\x1a\n\x01\x02"},
        {"bad_epoch.csv", DKD_LOG_CSV_HEADER "\n-3,0.05,10,4.1,9,30,4.2,100,1\n"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        snprintf(p, sizeof p, "%s/%s", tmpdir, bad[k].name);
        write_text(p, bad[k].text);
        rows = NULL;
        dkd_errbuf[0] = 0;
        n = log_csv_read(p, &rows);
        check(n == -1 && rows == NULL && strstr(dkd_errbuf, bad[k].name), "%s -> -1: %s", bad[k].name, dkd_errbuf);
    }
    snprintf(p, sizeof p, "%s/does_not_exist", tmpdir);
    dkd_errbuf[0] = 0;
    check(plot_run_curves(p) == -1 && strstr(dkd_errbuf, "does_not_exist"), "missing run folder -> -1: %s", dkd_errbuf);
    snprintf(out, sizeof out, "%s/garbled", tmpdir);
    mkdir(out, 0755);
    snprintf(p, sizeof p, "%s/log.csv", out);
    write_text(p, bad[0].text);
    check(plot_run_curves(out) == -1, "garbled log.csv -> plot_run_curves -1: %s", dkd_errbuf);
    snprintf(p, sizeof p, "%s/curves.png", out);
    check(access(p, F_OK) != 0, "no curves.png written for a garbled log");

    /* ---- charts */
    check(plot_run_curves(a) == 0, "plot_run_curves(240 epochs) %s", plot_run_curves(a) ? dkd_errbuf : "");
    snprintf(p, sizeof p, "%s/curves.png", a);
    check_png(p, "single run");
    check(plot_run_curves(c) == 0, "plot_run_curves(3 epochs)");
    snprintf(p, sizeof p, "%s/curves.png", c);
    check_png(p, "short run");

    const char *runs[3] = {a, b, c};
    snprintf(out, sizeof out, "%s/compare.png", tmpdir);
    check(plot_curves(out, runs, 2, "res32x4 -> res8x4: DKD vs KD") == 0, "plot_curves(2 runs)");
    check_png(out, "two runs");
    snprintf(out, sizeof out, "%s/compare3.png", tmpdir);
    check(plot_curves(out, runs, 3, NULL) == 0, "plot_curves(3 runs, different lengths)");
    check_png(out, "three runs");

    /* cmd_plot: help, bad usage, default output, -o */
    char *h[] = {"plot", "--help", NULL};
    check(cmd_plot(2, h) == 0, "dkd plot --help -> 0");
    char *none[] = {"plot", NULL};
    check(cmd_plot(1, none) == 2, "dkd plot (no run) -> 2");
    char *unk[] = {"plot", "--frobnicate", a, NULL};
    check(cmd_plot(3, unk) == 2, "dkd plot --frobnicate -> 2");
    snprintf(p, sizeof p, "%s/missing", tmpdir);
    char *miss[] = {"plot", p, NULL};
    check(cmd_plot(2, miss) == 1, "dkd plot MISSING -> 1");
    snprintf(out, sizeof out, "%s/cmd.png", tmpdir);
    char *two[] = {"plot", a, b, "-o", out, NULL};
    check(cmd_plot(5, two) == 0, "dkd plot A B -o OUT -> 0");
    check_png(out, "dkd plot A B -o");

    /* bars */
    const char *groups[] = {"res56\nres20", "res110\nres32", "res32x4\nres8x4", "wrn_40_2\nwrn_16_2", "vgg13\nvgg8"};
    const char *series[] = {"KD", "DKD (paper)", "DKD (ours)"};
    double vals[5 * 3] = {70.66, 71.97, 71.80, 73.08, 74.11, NAN, 73.33, 76.32, 76.10, 74.92, 76.24, 76.01, 72.98, 74.68, 74.50};
    snprintf(out, sizeof out, "%s/bars.png", tmpdir);
    check(plot_bars(out, "CIFAR-100 test top-1 (%)", "top-1 (%)", 5, groups, 3, series, vals) == 0, "plot_bars");
    check_png(out, "bars");
    check(plot_bars(out, "x", "y", 0, groups, 3, series, vals) == -1, "plot_bars with no groups -> -1");

    if (getenv("DKD_KEEP_TEST_FILES")) printf("  files kept in %s\n", tmpdir);
    else {
        char cmd[400]; snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0) printf("  (could not remove %s)\n", tmpdir);
    }
    return test_summary();
}
