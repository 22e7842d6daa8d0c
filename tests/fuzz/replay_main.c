/*
 * tests/fuzz/replay_main.c - runs a fuzz target over every file in the directories
 * given (seed corpus, crash regressions) when libFuzzer is not linked in, so each
 * build replays them under the same sanitizers as the tests.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
        goto fail;
    buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        goto fail;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 0;
fail:
    fprintf(stderr, "replay: cannot read %s\n", path);
    if (f != NULL)
        fclose(f);
    return -1;
}

int main(int argc, char **argv)
{
    int count = 0, errors = 0;

    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        char path[4096];
        struct stat st;

        if (d == NULL)
            continue; /* a target may have no regressions yet */
        while ((e = readdir(d)) != NULL) {
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
                continue;
            errors += replay_file(path) != 0;
            count++;
        }
        closedir(d);
    }
    printf("replayed %d input(s), %d unreadable\n", count, errors);
    return errors != 0 || count == 0;
}
