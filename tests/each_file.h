/* tests/each_file.h — run a check over every file of a folder (the committed fuzzing
 * seeds and past findings of tests/fuzz/). Include after dkd.h (read_file).
 *
 * each_file(dir, fn, ctx) reads every file of dir whole (names starting with '.' are
 * skipped), calls fn(path, bytes, len, ctx) and adds up what fn returns (1: the file
 * is what it should be). *n_files gets the number of files read; the result is the
 * sum, or -1 when dir cannot be opened. */
#ifndef DKD_EACH_FILE_H
#define DKD_EACH_FILE_H
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef int (*EachFileFn)(const char *path, const uint8_t *bytes, size_t len, void *ctx);

static int each_file(const char *dir, EachFileFn fn, void *ctx, int *n_files) {
    DIR *dp = opendir(dir);
    *n_files = 0;
    if (!dp) return -1;
    int sum = 0;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.') continue;
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        size_t len = 0;
        uint8_t *b = read_file(path, &len);
        if (!b) continue;
        (*n_files)++;
        sum += fn(path, b, len, ctx);
        free(b);
    }
    closedir(dp);
    return sum;
}
#endif
