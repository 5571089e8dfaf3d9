/* SPDX-License-Identifier: MIT */
/*
 * Replays every file of a corpus directory through one fuzz target's
 * LLVMFuzzerTestOneInput, so CI exercises the corpora without libFuzzer.
 * Exits 0 when every input ran; prints how many.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv) {
  DIR *d;
  struct dirent *e;
  int count = 0;
  if (argc != 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  d = opendir(argv[1]);
  if (!d) {
    perror(argv[1]);
    return 1;
  }
  while ((e = readdir(d)) != NULL) {
    char path[4096];
    FILE *f;
    uint8_t *buf;
    struct stat st;
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof(path), "%s/%s", argv[1], e->d_name);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > (1 << 20))
      continue;
    f = fopen(path, "rb");
    if (!f)
      continue;
    buf = malloc((size_t)st.st_size + 1);
    if (buf && fread(buf, 1, (size_t)st.st_size, f) == (size_t)st.st_size)
      LLVMFuzzerTestOneInput(buf, (size_t)st.st_size);
    free(buf);
    fclose(f);
    count++;
  }
  closedir(d);
  printf("replayed %d inputs from %s\n", count, argv[1]);
  return count > 0 ? 0 : 1;
}
