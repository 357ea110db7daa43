/*
 * rt_cache.c: the program binary cache on disk. Entries are treated as hostile input: every
 * length is bounds-checked and every key field compared in full, and anything odd is a miss
 * (the caller then rebuilds from source and rewrites the entry).
 */
#include "rt_cache.h"

#include "rt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static const unsigned char magic[8] = {'X', 'Y', 'L', 'E', 'M', 'B', 'I', 'N'};
enum { FORMAT_VERSION = 1 };
/* Far above any real program binary; bounds what a damaged file can make us allocate. */
static const uint64_t max_file_bytes = (uint64_t)1 << 30;

/* ------------------------------------------------------------------ hashing */

static const uint64_t fnv_offset = 0xcbf29ce484222325ull, fnv_prime = 0x100000001b3ull;

static uint64_t fnv(uint64_t h, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= fnv_prime;
  }
  return h;
}

static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v |= (uint64_t)p[i] << (8 * i);
  return v;
}

void rt_cache_key_init(rt_cache_key *key, const char *source, const char *options,
                       const char *platform, const char *platform_version,
                       const char *device, const char *driver) {
  const char *f[RT_KEY_FIELDS] = {source, options, platform, platform_version, device, driver};
  for (int i = 0; i < RT_KEY_FIELDS; i++) {
    key->field[i] = f[i] ? f[i] : "";
    key->len[i] = strlen(key->field[i]);
  }
}

uint64_t rt_cache_hash(const rt_cache_key *key) {
  unsigned char n[8];
  uint64_t h = fnv(fnv_offset, magic, sizeof magic);
  put_u64(n, FORMAT_VERSION);
  h = fnv(h, n, sizeof n);
  /* Each field is preceded by its length, which separates the fields unambiguously:
   * ("ab", "c") and ("a", "bc") hash differently. */
  for (int i = 0; i < RT_KEY_FIELDS; i++) {
    put_u64(n, key->len[i]);
    h = fnv(h, n, sizeof n);
    h = fnv(h, key->field[i], key->len[i]);
  }
  return h;
}

/* ------------------------------------------------------------------ location */

static char *join(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), n;
  if (!rt_add_size(la, lb, &n) || !rt_add_size(n, 2, &n))
    return NULL;
  char *s = malloc(n);
  if (s)
    snprintf(s, n, "%s/%s", a, b);
  return s;
}

/* mkdir -p: creates each missing component with mode 0755. */
static int make_dirs(char *path) {
  for (char *p = path + 1;; p++) {
    if (*p != '/' && *p != '\0')
      continue;
    char saved = *p;
    *p = '\0';
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
      *p = saved;
      return 0;
    }
    *p = saved;
    if (saved == '\0')
      break;
  }
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *rt_cache_dir(void) {
  const char *off = getenv("XYLEM_CACHE");
  if (off && (strcasecmp(off, "off") == 0 || strcmp(off, "0") == 0))
    return NULL;
  char *dir = NULL;
  const char *env = getenv("XYLEM_CACHE_DIR");
  const char *xdg = getenv("XDG_CACHE_HOME");
  const char *home = getenv("HOME");
  if (env && *env) {
    dir = strdup(env);
  } else if (xdg && *xdg) {
    dir = join(xdg, "xylem");
  } else if (home && *home) {
    char *cache = join(home, ".cache");
    if (cache)
      dir = join(cache, "xylem");
    free(cache);
  }
  if (dir && !make_dirs(dir)) {
    free(dir);
    dir = NULL;
  }
  return dir;
}

/* <dir>/<16 hex>.bin */
static char *entry_path(const char *dir, const rt_cache_key *key) {
  char name[32];
  snprintf(name, sizeof name, "%016llx.bin", (unsigned long long)rt_cache_hash(key));
  return join(dir, name);
}

/* ------------------------------------------------------------------ load */

static unsigned char *read_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return NULL;
  struct stat st;
  unsigned char *buf = NULL;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
      (uint64_t)st.st_size > max_file_bytes || (uint64_t)st.st_size > SIZE_MAX)
    goto fail;
  size_t size = (size_t)st.st_size, got = 0;
  buf = malloc(size);
  if (!buf)
    goto fail;
  while (got < size) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      goto fail; /* error, or the file shrank under us */
    got += (size_t)r;
  }
  close(fd);
  *len = size;
  return buf;
fail:
  free(buf);
  close(fd);
  return NULL;
}

/* A cursor over the file image that refuses to read past its end. */
typedef struct reader {
  const unsigned char *p;
  size_t left;
} reader;

static int take(reader *r, size_t n, const unsigned char **out) {
  if (n > r->left)
    return 0;
  *out = r->p;
  r->p += n;
  r->left -= n;
  return 1;
}

static int take_u64(reader *r, uint64_t *v) {
  const unsigned char *p;
  if (!take(r, 8, &p))
    return 0;
  *v = get_u64(p);
  return 1;
}

static int parse_entry(const unsigned char *file, size_t size, const rt_cache_key *key,
                       const unsigned char **binary, size_t *len) {
  reader r = {file, size};
  const unsigned char *p;
  uint64_t v;
  if (!take(&r, sizeof magic, &p) || memcmp(p, magic, sizeof magic) != 0)
    return 0;
  if (!take_u64(&r, &v) || v != FORMAT_VERSION)
    return 0;
  if (!take_u64(&r, &v) || v != RT_KEY_FIELDS)
    return 0;
  for (int i = 0; i < RT_KEY_FIELDS; i++) {
    if (!take_u64(&r, &v) || v != key->len[i])
      return 0;
    if (!take(&r, key->len[i], &p) || memcmp(p, key->field[i], key->len[i]) != 0)
      return 0;
  }
  if (!take_u64(&r, &v) || v == 0 || v > r.left)
    return 0;
  const unsigned char *bin;
  if (!take(&r, (size_t)v, &bin))
    return 0;
  uint64_t sum;
  if (!take_u64(&r, &sum) || r.left != 0)
    return 0;
  if (sum != fnv(fnv_offset, bin, (size_t)v))
    return 0;
  *binary = bin;
  *len = (size_t)v;
  return 1;
}

int rt_cache_load(const char *dir, const rt_cache_key *key, unsigned char **binary,
                  size_t *len) {
  *binary = NULL;
  *len = 0;
  char *path = entry_path(dir, key);
  if (!path)
    return 0;
  size_t size = 0;
  unsigned char *file = read_file(path, &size);
  free(path);
  if (!file)
    return 0;
  const unsigned char *bin;
  size_t n;
  int ok = parse_entry(file, size, key, &bin, &n);
  if (ok) {
    *binary = malloc(n);
    if (*binary) {
      memcpy(*binary, bin, n);
      *len = n;
    } else {
      ok = 0;
    }
  }
  free(file);
  return ok;
}

/* ------------------------------------------------------------------ store */

static int write_all(int fd, const unsigned char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return 0;
    p += w;
    n -= (size_t)w;
  }
  return 1;
}

/* The whole file in memory: magic, version, field count, fields, binary, checksum. */
static unsigned char *encode(const rt_cache_key *key, const unsigned char *binary, size_t len,
                             size_t *size_out) {
  size_t size = sizeof magic + 8 + 8;
  for (int i = 0; i < RT_KEY_FIELDS; i++)
    if (!rt_add_size(size, 8, &size) || !rt_add_size(size, key->len[i], &size))
      return NULL;
  if (!rt_add_size(size, 16, &size) || !rt_add_size(size, len, &size))
    return NULL;
  unsigned char *buf = malloc(size), *p = buf;
  if (!buf)
    return NULL;
  memcpy(p, magic, sizeof magic);
  p += sizeof magic;
  put_u64(p, FORMAT_VERSION);
  p += 8;
  put_u64(p, RT_KEY_FIELDS);
  p += 8;
  for (int i = 0; i < RT_KEY_FIELDS; i++) {
    put_u64(p, key->len[i]);
    p += 8;
    memcpy(p, key->field[i], key->len[i]);
    p += key->len[i];
  }
  put_u64(p, len);
  p += 8;
  memcpy(p, binary, len);
  p += len;
  put_u64(p, fnv(fnv_offset, binary, len));
  *size_out = size;
  return buf;
}

int rt_cache_store(const char *dir, const rt_cache_key *key, const unsigned char *binary,
                   size_t len) {
  if (len == 0)
    return 0;
  int ok = 0, fd = -1, made = 0;
  size_t size = 0;
  char *tmp = NULL;
  char *path = entry_path(dir, key);
  unsigned char *image = encode(key, binary, len, &size);
  size_t plen;
  if (!path || !image || !rt_add_size(strlen(path), sizeof ".tmp.XXXXXX", &plen))
    goto done;
  tmp = malloc(plen);
  if (!tmp)
    goto done;
  snprintf(tmp, plen, "%s.tmp.XXXXXX", path);
  /* A unique temporary name in the same directory, renamed over the entry: readers see the
   * old file or the new one, never a half-written one. No fsync: a torn file after a crash
   * fails its checksum and is rebuilt. */
  fd = mkstemp(tmp);
  if (fd < 0)
    goto done;
  made = 1;
  (void)fchmod(fd, 0644); /* mkstemp makes 0600; the cache is as readable as its directory */
  if (!write_all(fd, image, size))
    goto done;
  if (close(fd) != 0) {
    fd = -1;
    goto done;
  }
  fd = -1;
  ok = rename(tmp, path) == 0;
done:
  if (fd >= 0)
    close(fd);
  if (made && !ok)
    unlink(tmp);
  free(tmp);
  free(image);
  free(path);
  return ok;
}
