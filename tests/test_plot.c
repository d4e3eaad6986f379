/* tests/test_plot.c — plot.c: log.csv and worklog.txt parsing, PNG and SVG charts.
 *
 * Writes synthetic runs (a 240-epoch log.csv shaped like a real one with LR
 * decays, a 3-epoch one, one with extra/reordered columns, an mdistiller
 * worklog.txt) into a temporary folder, draws single-run, multi-run, overlay
 * (mdistiller + dkd) and bar charts, and checks them:
 *  - each PNG: signature, IHDR with a sane size, and decoded (stb_image) the
 *    same size as its SVG;
 *  - each SVG: well-formed enough (one <svg>, closed), and one <polyline> per
 *    curve, named by data-series, with one point per epoch, x increasing by
 *    equal steps, y ordered as the data (a higher accuracy is higher up);
 *  - the pixels: at the points of every curve's polyline, the decoded PNG has
 *    that curve's colour — the raster and the vectors show the same curves in
 *    the same places.
 * Bad input (missing log, garbled lines, missing columns, empty file) must give
 * -1 with a message, and `dkd plot` exit codes are checked through cmd_plot.
 * Set DKD_KEEP_TEST_FILES=1 to keep the folder (its path is printed) and look
 * at the charts.
 */
#include "dkd.h"
#include "test.h"

#ifdef DKD_HAVE_STB
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>                  // defines: stbi_load
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif

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
        double train_kd = fmin(e / 20.0, 1.0) * 0.8 * exp(-2 * t);
        fprintf(f, "%d,%.8g,%.4f,%.6f,%.4f,%.4f,%.6f,%.1f,%.1f,%.6f,%.6f\n", e, lr, train_acc, train_loss, test_acc,
                test_acc + 20 > 99 ? 99 : test_acc + 20, test_loss, 5000 + 100 * noise, 12.0, train_loss - train_kd, train_kd);
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

/* A chart written as PNG (+ SVG beside it); in a build without stb: the SVG only. */
static void check_png(const char *path, const char *what) {
    char svg[700];
    size_t L = strlen(path);
    snprintf(svg, sizeof svg, "%.*s.svg", (int)(L > 4 ? L - 4 : L), path);
    if (!plot_png_available()) {
        check(access(path, F_OK) != 0 && access(svg, F_OK) == 0, "%s: built without stb: no PNG, the SVG %s instead", what, svg);
        return;
    }
    int w, h;
    int ok = png_ok(path, &w, &h);
    check(ok && access(svg, F_OK) == 0, "%s: %s is a PNG (%dx%d), the SVG beside it", what, path, w, h);
}

/* mdistiller's worklog.txt for epochs 1..E (as BaseTrainer.log writes it), "best_acc" if finished. */
static void write_worklog(const char *dir, int E, const double *test_acc, int finished) {
    mkdir(dir, 0755);
    char path[512]; snprintf(path, sizeof path, "%s/worklog.txt", dir);
    FILE *f = fopen(path, "wb");
    double best = -1;
    for (int e = 1; e <= E; e++) {
        double a = test_acc[e - 1];
        if (a > best) best = a;
        fprintf(f, "-------------------------\nepoch: %d\nlr: %.2f\ntrain_acc: %.2f\ntrain_loss: %.2f\ntest_acc: %.2f\n"
                   "test_acc_top5: %.2f\ntest_loss: %.2f\n-------------------------\n",
                e, 0.05, a + 3, 4.5 - 0.3 * e, a, a + 25, 4.2 - 0.25 * e);
    }
    if (finished) fprintf(f, "best_acc\t%.2f", best);
    fclose(f);
}

/* ---- the SVG: its polylines by data-series */
typedef struct { char series[200]; char stroke[8]; int dashed; int n; float x[512], y[512]; } Poly;

/* Every <polyline data-series=...> of an SVG text (up to max). */
static int svg_polylines(const char *svg, Poly *out, int max) {
    int n = 0;
    for (const char *p = strstr(svg, "<polyline"); p && n < max; p = strstr(p + 1, "<polyline")) {
        const char *end = strstr(p, "/>");
        const char *ds = strstr(p, "data-series=\""), *st = strstr(p, "stroke=\"#"), *pts = strstr(p, "points=\"");
        if (!end || !ds || ds > end || !st || st > end || !pts || pts > end) continue;
        Poly *q = &out[n];
        memset(q, 0, sizeof *q);
        ds += 13;
        size_t L = strcspn(ds, "\"");
        snprintf(q->series, sizeof q->series, "%.*s", (int)(L < 199 ? L : 199), ds);
        snprintf(q->stroke, sizeof q->stroke, "%.6s", st + 9);
        const char *da = strstr(p, "stroke-dasharray");
        q->dashed = da && da < end;
        const char *c = pts + 8;
        while (*c && *c != '"' && q->n < 512) {
            char *e1, *e2;
            float x = strtof(c, &e1);
            if (e1 == c || *e1 != ',') break;
            float y = strtof(e1 + 1, &e2);
            q->x[q->n] = x; q->y[q->n] = y; q->n++;
            c = e2;
            while (*c == ' ') c++;
        }
        n++;
    }
    return n;
}

static const Poly *find_poly(const Poly *ps, int n, const char *series) {
    for (int i = 0; i < n; i++) if (!strcmp(ps[i].series, series)) return &ps[i];
    return NULL;
}

/* One curve: one point per epoch, x in equal increasing steps, y ranked as the data
 * (values[i] > values[j] -> y[i] < y[j]: higher is up). */
static void check_curve(const Poly *ps, int n, const char *series, const double *values, int count) {
    const Poly *q = find_poly(ps, n, series);
    if (!q) { check(0, "SVG has the polyline %s", series); return; }
    int ok = q->n == count;
    for (int i = 2; ok && i < q->n; i++) ok = fabsf((q->x[i] - q->x[i - 1]) - (q->x[1] - q->x[0])) < 0.25f && q->x[1] > q->x[0];
    double lo = values[0], hi = values[0];
    for (int i = 1; i < count; i++) { lo = fmin(lo, values[i]); hi = fmax(hi, values[i]); }
    for (int i = 0; ok && i < q->n; i++)          /* (within the SVG's 0.1 px rounding for near-equal values) */
        for (int j = 0; j < q->n; j++)
            if (values[i] > values[j] + 0.01 * (hi - lo) ? !(q->y[i] < q->y[j]) : values[i] > values[j] && q->y[i] > q->y[j] + 0.1f)
                ok = 0;
    check(ok, "SVG polyline %s: %d points (want %d), equal x steps, y ordered as the values", series, q->n, count);
}

#ifdef DKD_HAVE_STB
/* At every point of every named polyline, the PNG pixel has (nearly) the stroke
 * colour: a curve drawn where its vectors say. Points covered by a later curve
 * (overlaps) are allowed up to a fifth. */
static void check_pixels(const char *png, const char *svg_text, const Poly *ps, int n) {
    int w, h, ch;
    unsigned char *img = stbi_load(png, &w, &h, &ch, 3);
    if (!img) { check(0, "stb_image decodes %s", png); return; }
    int sw = 0, sh = 0;
    const char *wp = strstr(svg_text, "width=\""), *hp = strstr(svg_text, "height=\"");
    if (wp) sw = atoi(wp + 7);
    if (hp) sh = atoi(hp + 8);
    check(w == sw && h == sh, "%s decodes to %dx%d, the SVG's size %dx%d", png, w, h, sw, sh);
    int total = 0, hit = 0, white = 0;
    for (int k = 0; k < n; k++) {
        unsigned r, g, b;
        if (sscanf(ps[k].stroke, "%2x%2x%2x", &r, &g, &b) != 3) continue;
        for (int i = 0; i < ps[k].n; i++) {
            int x = (int)floorf(ps[k].x[i]), y = (int)floorf(ps[k].y[i]);
            if (x < 0 || y < 0 || x >= w || y >= h) continue;
            const unsigned char *px = img + ((size_t)y * w + x) * 3;
            total++;
            hit += abs(px[0] - (int)r) < 40 && abs(px[1] - (int)g) < 40 && abs(px[2] - (int)b) < 40;
        }
    }
    for (int y = 0; y < h; y += 7)               /* and mostly background: not a filled picture */
        for (int x = 0; x < w; x += 7) white += img[((size_t)y * w + x) * 3] == 255;
    check(total > 0 && hit * 5 >= total * 4, "%s: %d of %d curve points have their curve's colour", png, hit, total);
    check(white * 49 * 2 > w * h, "%s: mostly white background (%d of %d sampled)", png, white, (w / 7 + 1) * (h / 7 + 1));
    stbi_image_free(img);
}
#endif

/* x ticks at whole epochs: every vertical grid line (a 1-px-wide rect of the grid's
 * colour, taller than 100 px) lies on an epoch, i.e. within rounding of a curve's point. */
static void check_epoch_ticks(const char *svg, const Poly *ps, int n, const char *what) {
    int lines = 0, on_epoch = 0;
    for (const char *r = strstr(svg, "<rect x=\""); r; r = strstr(r + 1, "<rect x=\"")) {
        float x, y, w, h;
        char fill[8];
        if (sscanf(r, "<rect x=\"%f\" y=\"%f\" width=\"%f\" height=\"%f\" fill=\"#%6s", &x, &y, &w, &h, fill) != 5) continue;
        if (w != 1.0f || h < 100 || strcmp(fill, "e5e5e5") != 0) continue;
        lines++;
        int hit = 0;
        for (int k = 0; k < n && !hit; k++)
            for (int i = 0; i < ps[k].n && !hit; i++) hit = fabsf(ps[k].x[i] - x) <= 0.6f;
        on_epoch += hit;
    }
    check(lines > 0 && on_epoch == lines, "%s: x ticks at whole epochs (%d of %d vertical grid lines on an epoch)", what,
          on_epoch, lines);
}

/* The SVG beside a chart: well-formed enough, its polylines into ps. Returns its text (free) or NULL. */
static char *read_svg(const char *path, Poly *ps, int max, int *n) {
    size_t len = 0;
    char *t = (char *)read_file(path, &len);
    *n = 0;
    if (!t) { check(0, "%s exists", path); return NULL; }
    int ok = !strncmp(t, "<svg ", 5) && strstr(t, "</svg>") && strstr(t, "</svg>") == strrchr(t, '<');
    int opened = 0, closed = 0;
    for (const char *p = t; (p = strstr(p, "<text")); p++) opened++;
    for (const char *p = t; (p = strstr(p, "</text>")); p++) closed++;
    *n = svg_polylines(t, ps, max);
    check(ok && opened == closed && *n > 0, "%s: <svg> ... </svg>, %d <text> closed, %d named polylines", path, opened, *n);
    return t;
}

int main(void) {
    test_tmpdir(tmpdir, sizeof tmpdir, "test_plot");
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

    /* ---- mdistiller's worklog.txt */
    char w[512], wl[600];
    static Poly polys[64];
    int np = 0;
    snprintf(w, sizeof w, "%s/pytorch_run", tmpdir);
    const double wacc[3] = {10.5, 20.25, 18.0};
    write_worklog(w, 3, wacc, 1);
    snprintf(wl, sizeof wl, "%s/worklog.txt", w);
    int fin = -1;
    rows = NULL;
    n = worklog_read(wl, &rows, &fin);
    check(n == 3 && fin == 1 && rows && rows[1].epoch == 2 && rows[1].test_acc == 20.25 && rows[2].test_acc_top5 == 43.0 &&
          rows[0].lr == 0.05 && isnan(rows[0].train_ce) && isnan(rows[0].img_per_s),
          "worklog_read: 3 epochs, finished, values, absent columns NAN (n=%d)", n);
    free(rows);
    n = run_log_read(w, &rows, &fin);
    check(n == 3 && fin == 1, "run_log_read(mdistiller folder): its worklog.txt (n=%d, finished %d)", n, fin);
    free(rows);
    n = run_log_read(a, &rows, &fin);
    check(n == 240 && fin == 0, "run_log_read(dkd folder): its log.csv, not finished without a worklog (n=%d)", n);
    free(rows);
    {   /* unfinished; then resumed from epoch 2 (mdistiller appends again from there) */
        char d[600], f[700];
        snprintf(d, sizeof d, "%s/resumed", tmpdir);
        write_worklog(d, 3, wacc, 0);
        snprintf(f, sizeof f, "%s/worklog.txt", d);
        FILE *fp = fopen(f, "ab");
        fprintf(fp, "-------------------------\nepoch: 2\nlr: 0.05\ntest_acc: 30.00\n-------------------------\n"
                    "-------------------------\nepoch: 3\nlr: 0.01\ntest_acc: 31.00\n-------------------------\n");
        fclose(fp);
        n = worklog_read(f, &rows, &fin);
        check(n == 3 && fin == 0 && rows[1].test_acc == 30.0 && rows[2].test_acc == 31.0 && rows[2].lr == 0.01,
              "worklog_read: a resumed run's later blocks replace epochs 2-3, unfinished (n=%d)", n);
        free(rows);
    }
    struct { const char *name, *text; } badw[] = {
        {"wl_garbled.txt", "-------------------------\nepoch: 1\ntest_acc: 1x\n"},
        {"wl_no_colon.txt", "-------------------------\nepoch 1\n"},
        {"wl_key_first.txt", "test_acc: 3.0\nepoch: 1\n"},
        {"wl_no_test_acc.txt", "epoch: 1\nlr: 0.05\n"},
        {"wl_empty.txt", ""},
        {"wl_bad_epoch.txt", "epoch: 0\ntest_acc: 1\n"},
        {"wl_binary.txt", "\x89PNG\r\n\x1a\n"},
    };
    for (size_t k = 0; k < sizeof badw / sizeof badw[0]; k++) {
        snprintf(p, sizeof p, "%s/%s", tmpdir, badw[k].name);
        write_text(p, badw[k].text);
        rows = NULL;
        dkd_errbuf[0] = 0;
        n = worklog_read(p, &rows, &fin);
        check(n == -1 && rows == NULL && strstr(dkd_errbuf, badw[k].name), "%s -> -1: %s", badw[k].name, dkd_errbuf);
    }
    snprintf(p, sizeof p, "%s/empty_run", tmpdir);
    mkdir(p, 0755);
    dkd_errbuf[0] = 0;
    check(run_log_read(p, &rows, &fin) == -1 && strstr(dkd_errbuf, "neither log.csv"), "a folder without logs -> -1: %s",
          dkd_errbuf);

    /* ---- the SVG and the pixels of a single-run chart (240 epochs) */
    snprintf(p, sizeof p, "%s/curves.svg", a);
    char *svg = read_svg(p, polys, 64, &np);
    n = log_csv_read((snprintf(out, sizeof out, "%s/log.csv", a), out), &rows);
    if (svg && n == 240) {
        double v[240];
        const char *qs[] = {"test_acc", "train_acc", "test_acc_top5", "test_loss", "train_loss", "train_ce", "train_kd", "lr"};
        for (int q = 0; q < 8; q++) {
            for (int i = 0; i < 240; i++) {
                const EpochLog *e = &rows[i];
                v[i] = q == 0 ? e->test_acc : q == 1 ? e->train_acc : q == 2 ? e->test_acc_top5 : q == 3 ? e->test_loss
                     : q == 4 ? e->train_loss : q == 5 ? e->train_ce : q == 6 ? e->train_kd : e->lr;
            }
            char series[256]; snprintf(series, sizeof series, "dkd,res32x4,res8x4:%s", qs[q]);
            check_curve(polys, np, series, v, 240);
        }
        const Poly *tr = find_poly(polys, np, "dkd,res32x4,res8x4:train_acc"), *kd = find_poly(polys, np, "dkd,res32x4,res8x4:train_kd");
        const Poly *te = find_poly(polys, np, "dkd,res32x4,res8x4:test_acc");
        check(tr && kd && te && tr->dashed && kd->dashed && !te->dashed, "train accuracy and distillation term dashed, test solid");
        check_epoch_ticks(svg, polys, np, "240 epochs");
        /* epoch 1 sits on the frame's left edge (a 1-px frame rect): the x axis starts at 1, not 0 */
        char edge[64]; snprintf(edge, sizeof edge, "<rect x=\"%.1f\"", te ? te->x[0] : -1.0f);
        int on_edge = 0;
        for (const char *r = strstr(svg, edge); r && !on_edge; r = strstr(r + 1, edge))
            on_edge = strstr(r, "width=\"1.0\"") < strstr(r, "/>") && strstr(r, "fill=\"#787878\"") < strstr(r, "/>");
        check(on_edge, "x axis from epoch 1: the first point is on the frame's left edge (x=%.1f)", te ? te->x[0] : -1.0f);
#ifdef DKD_HAVE_STB
        snprintf(p, sizeof p, "%s/curves.png", a);
        check_pixels(p, svg, polys, np);
#endif
    }
    free(rows); free(svg);

    /* ---- overlay: an mdistiller run (worklog.txt) and a dkd run (log.csv) */
    snprintf(out, sizeof out, "%s/overlay.png", tmpdir);
    const char *ov[2] = {w, c};
    check(plot_curves(out, ov, 2, "PyTorch vs dkd") == 0, "plot_curves(mdistiller worklog + dkd log.csv) %s", dkd_errbuf);
    snprintf(p, sizeof p, "%s/overlay.svg", tmpdir);
    svg = read_svg(p, polys, 64, &np);
    if (svg) {
        check_curve(polys, np, "PyTorch: pytorch_run:test_acc", wacc, 3);
        check_epoch_ticks(svg, polys, np, "3 epochs");
        const double top5[3] = {35.5, 45.25, 43.0};
        check_curve(polys, np, "PyTorch: pytorch_run:test_acc_top5", top5, 3);
        check(find_poly(polys, np, "dkd: short:test_acc") && find_poly(polys, np, "dkd: short:train_ce") &&
              find_poly(polys, np, "dkd: short:train_kd"), "the dkd run's curves, with train CE and distillation term");
        check(!find_poly(polys, np, "PyTorch: pytorch_run:train_ce"), "no train-CE curve for the worklog run (it has none)");
        const Poly *p1 = find_poly(polys, np, "PyTorch: pytorch_run:test_acc"), *p2 = find_poly(polys, np, "dkd: short:test_acc");
        check(p1 && p2 && strcmp(p1->stroke, p2->stroke) != 0 && fabsf(p1->x[0] - p2->x[0]) < 0.01f,
              "the two runs in two colours, both from epoch 1");
#ifdef DKD_HAVE_STB
        check_png(out, "overlay");
        check_pixels(out, svg, polys, np);
#else
        skip("PNG output: this build has no stb (libstb-dev)");
#endif
    }
    free(svg);
    snprintf(out, sizeof out, "%s/only.svg", tmpdir);
    check(plot_curves(out, ov, 2, NULL) == 0 && access(out, F_OK) == 0, "-o X.svg writes the SVG");
    snprintf(p, sizeof p, "%s/only.png", tmpdir);
    check(access(p, F_OK) != 0, "-o X.svg writes no PNG");

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
