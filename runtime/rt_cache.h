/*
 * rt_cache.h: the on-disk program binary cache (private to the runtime).
 *
 * An entry is one file, <16 hex digits of the key hash>.bin, holding every key field in full
 * so that a hash collision or a changed driver can never hand back the wrong binary.
 */
#ifndef XYLEM_RT_CACHE_H
#define XYLEM_RT_CACHE_H

#include <stddef.h>
#include <stdint.h>

enum { RT_KEY_FIELDS = 6 };

/* Everything a binary depends on: source, options, platform name and version, device name,
 * driver version. The pointers are borrowed. */
typedef struct rt_cache_key {
  const char *field[RT_KEY_FIELDS];
  size_t len[RT_KEY_FIELDS];
} rt_cache_key;

void rt_cache_key_init(rt_cache_key *key, const char *source, const char *options,
                       const char *platform, const char *platform_version,
                       const char *device, const char *driver);

uint64_t rt_cache_hash(const rt_cache_key *key);

/* The cache directory, created when missing (malloc'd; the caller frees it), or NULL when
 * the cache is off (XYLEM_CACHE=off), no location is known, or it cannot be created. */
char *rt_cache_dir(void);

/* Returns 1 and a malloc'd copy of the binary when a complete, matching entry exists;
 * 0 for a miss, a mismatch or any damage. */
int rt_cache_load(const char *dir, const rt_cache_key *key, unsigned char **binary,
                  size_t *len);

/* Writes the entry atomically (temporary file, then rename). Returns 1 on success; a failure
 * leaves no file behind and is not an error for the caller. */
int rt_cache_store(const char *dir, const rt_cache_key *key, const unsigned char *binary,
                   size_t len);

#endif /* XYLEM_RT_CACHE_H */
