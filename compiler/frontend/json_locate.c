/*
 * json_locate.c: where things are in JSON text. jansson keeps no positions of values, so
 * errors found after parsing walk the text again with this small scanner. Every loop is
 * iterative (nesting costs no stack) and stops at the text's NUL, so text that is not
 * valid JSON gives "not found", never a crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fe_internal.h"

/* ------------------------------------------------------------------ paths */

static bool is_digit(char ch)
{
  return ch >= '0' && ch <= '9';
}

int fe_path_next(const char *path, const char **p, fe_comp *c)
{
  const char *s = *p;
  if (*s == '\0')
    return 0;
  memset(c, 0, sizeof *c);
  if (*s == '[') {
    s++;
    if (!is_digit(*s))
      return -1;
    int64_t v = 0;
    for (; is_digit(*s); s++) {
      if (v > (INT64_MAX - 9) / 10)
        return -1;
      v = v * 10 + (*s - '0');
    }
    if (*s != ']')
      return -1;
    c->is_index = true;
    c->index = v;
    *p = s + 1;
    return 1;
  }
  if (s != path) {
    if (*s != '.')
      return -1;
    s++;
  }
  const char *k = s;
  while (*s && *s != '.' && *s != '[' && *s != ']')
    s++;
  if (s == k || *s == ']')
    return -1;
  c->key = k;
  c->key_len = (size_t)(s - k);
  *p = s;
  return 1;
}

void fe_path_key(char *out, const char *parent, const char *key)
{
  snprintf(out, FE_PATH_MAX, "%s%s%s", parent, parent[0] ? "." : "", key);
}

void fe_path_index(char *out, const char *parent, int64_t index)
{
  snprintf(out, FE_PATH_MAX, "%s[%lld]", parent, (long long)index);
}

/* ------------------------------------------------------------------ scanning */

static const char *skip_ws(const char *p)
{
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
    p++;
  return p;
}

/* p at an opening quote; returns the byte after the closing quote, or NULL. */
static const char *skip_string(const char *p)
{
  for (p++; *p && *p != '"'; p++)
    if (*p == '\\' && !*++p)
      return NULL;
  return *p == '"' ? p + 1 : NULL;
}

/* Skips one value of any kind, nested ones by counting brackets (strings are skipped
 * whole, so brackets inside them do not count). NULL when the text ends first. */
static const char *skip_value(const char *p)
{
  size_t depth = 0;
  for (;;) {
    p = skip_ws(p);
    char ch = *p;
    if (ch == '\0')
      return NULL;
    if (ch == '"') {
      if (!(p = skip_string(p)))
        return NULL;
    } else if (ch == '{' || ch == '[') {
      depth++;
      p++;
    } else if (ch == '}' || ch == ']') {
      if (depth == 0)
        return NULL;
      depth--;
      p++;
    } else if (ch == ',' || ch == ':') {
      if (depth == 0)
        return NULL;
      p++;
    } else {
      while (*p && !strchr(" \t\r\n,:[]{}\"", *p))
        p++;
    }
    if (depth == 0)
      return p;
  }
}

static int hex_digit(char ch)
{
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

static bool hex4(const char *p, unsigned *out)
{
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int d = hex_digit(p[i]); /* stops at a NUL: -1 */
    if (d < 0)
      return false;
    v = v * 16 + (unsigned)d;
  }
  *out = v;
  return true;
}

static size_t utf8_encode(unsigned cp, char *b)
{
  if (cp < 0x80) {
    b[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    b[0] = (char)(0xC0 | (cp >> 6));
    b[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    b[0] = (char)(0xE0 | (cp >> 12));
    b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    b[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  b[0] = (char)(0xF0 | (cp >> 18));
  b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  b[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Decodes one character of a JSON string body at *p into b; returns its length in bytes,
 * 0 on a bad escape. */
static size_t string_char(const char **p, char *b)
{
  const char *s = *p;
  if (*s != '\\') {
    b[0] = *s;
    *p = s + 1;
    return 1;
  }
  s++;
  static const char esc_in[] = "\"\\/bfnrt", esc_out[] = "\"\\/\b\f\n\r\t";
  const char *e = *s ? strchr(esc_in, *s) : NULL;
  if (e) {
    b[0] = esc_out[e - esc_in];
    *p = s + 1;
    return 1;
  }
  unsigned cp, lo;
  if (*s != 'u' || !hex4(s + 1, &cp))
    return 0;
  s += 5;
  /* A high surrogate followed by a low one is one character. */
  if (cp >= 0xD800 && cp <= 0xDBFF && s[0] == '\\' && s[1] == 'u' && hex4(s + 2, &lo) &&
      lo >= 0xDC00 && lo <= 0xDFFF) {
    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    s += 6;
  }
  *p = s;
  return utf8_encode(cp, b);
}

/* Whether the JSON string at p (its opening quote) equals key[0..n) once unescaped.
 * *end gets the byte after the closing quote, NULL when the string is malformed. */
static bool string_equals(const char *p, const char *key, size_t n, const char **end)
{
  size_t i = 0;
  bool eq = true;
  *end = NULL;
  p++;
  while (*p && *p != '"') {
    char b[4];
    size_t len = string_char(&p, b);
    if (len == 0)
      return false;
    if (eq && (len > n - i || memcmp(key + i, b, len) != 0))
      eq = false;
    else if (eq)
      i += len;
  }
  if (*p != '"')
    return false;
  *end = p + 1;
  return eq && i == n;
}

/* p at '{': moves to the value of member key (and its key) in that object. */
static const char *find_member(const char *p, const fe_comp *c, const char **key_at)
{
  p = skip_ws(p + 1);
  while (*p == '"') {
    const char *k = p, *after;
    bool eq = string_equals(p, c->key, c->key_len, &after);
    if (!after)
      return NULL;
    p = skip_ws(after);
    if (*p != ':')
      return NULL;
    p = skip_ws(p + 1);
    if (eq) {
      *key_at = k;
      return p;
    }
    if (!(p = skip_value(p)))
      return NULL;
    p = skip_ws(p);
    if (*p != ',')
      return NULL;
    p = skip_ws(p + 1);
  }
  return NULL;
}

/* p at an element of an array: moves on n elements; NULL past the end. */
static const char *skip_elements(const char *p, int64_t n)
{
  for (int64_t i = 0; i < n; i++) {
    if (!(p = skip_value(p)))
      return NULL;
    p = skip_ws(p);
    if (*p != ',')
      return NULL;
    p = skip_ws(p + 1);
  }
  return *p && *p != ']' ? p : NULL;
}

/* p at '[': moves to element index. */
static const char *find_element(const char *p, int64_t index)
{
  return skip_elements(skip_ws(p + 1), index);
}

/* From the value at p, follows the steps of path that start at *pp (inside path). */
static const char *walk(const char *p, const char *path, const char *pp, const char **key_at)
{
  fe_comp c;
  int r;
  *key_at = NULL;
  while ((r = fe_path_next(path, &pp, &c)) > 0) {
    *key_at = NULL;
    if (c.is_index)
      p = *p == '[' ? find_element(p, c.index) : NULL;
    else
      p = *p == '{' ? find_member(p, &c, key_at) : NULL;
    if (!p)
      return NULL;
  }
  return r < 0 || !*p ? NULL : p;
}

bool fe_json_find(const char *text, const char *path, bool at_key, size_t *offset)
{
  if (!text || !path)
    return false;
  const char *key_at;
  const char *p = walk(skip_ws(text), path, path, &key_at);
  if (!p || (at_key && !key_at))
    return false;
  *offset = (size_t)((at_key ? key_at : p) - text);
  return true;
}

bool fe_json_find_member(const char *text, size_t obj, const char *key, bool at_key,
                         size_t *offset)
{
  if (!text || !key || text[obj] != '{')
    return false;
  fe_comp c = {.key = key, .key_len = strlen(key)};
  const char *key_at;
  const char *p = find_member(text + obj, &c, &key_at);
  if (!p || !*p)
    return false;
  *offset = (size_t)((at_key ? key_at : p) - text);
  return true;
}

bool fe_json_find_cached(const char *text, const char *path, fe_pos_cache *cache,
                         size_t *offset)
{
  const char *br = path ? strchr(path, '[') : NULL;
  size_t plen = br ? (size_t)(br - path) : 0;
  const char *rest = br;
  fe_comp c;
  if (!text || !cache || !br || plen >= FE_PATH_MAX || fe_path_next(path, &rest, &c) <= 0)
    return fe_json_find(text, path, false, offset);
  const char *p;
  int64_t from;
  if (cache->valid && strlen(cache->array) == plen && memcmp(cache->array, path, plen) == 0 &&
      cache->index <= c.index) {
    p = text + cache->offset;
    from = cache->index;
  } else {
    size_t arr;
    memcpy(cache->array, path, plen);
    cache->array[plen] = '\0';
    cache->valid = false;
    if (!fe_json_find(text, cache->array, false, &arr) || text[arr] != '[' ||
        !(p = find_element(text + arr, 0)))
      return false;
    from = 0;
  }
  if (!(p = skip_elements(p, c.index - from)))
    return false;
  cache->valid = true;
  cache->index = c.index;
  cache->offset = (size_t)(p - text);
  const char *key_at;
  if (!(p = walk(p, path, rest, &key_at)))
    return false;
  *offset = (size_t)(p - text);
  return true;
}

/* Counts lines and columns from (from, *line, *col) up to offset (or a NUL before it);
 * returns where it stopped. */
static size_t count_linecol(const char *text, size_t from, size_t offset, int *line, int *col)
{
  size_t i = from;
  for (; i < offset && text[i]; i++) {
    if (text[i] == '\n') {
      ++*line;
      *col = 1;
    } else if (((unsigned char)text[i] & 0xC0) != 0x80) { /* not a UTF-8 continuation */
      ++*col;
    }
  }
  return i;
}

void fe_linecol(const char *text, size_t offset, int *line, int *col)
{
  *line = *col = 1;
  count_linecol(text, 0, offset, line, col);
}

void fe_linecol_cached(const char *text, size_t offset, fe_pos_cache *cache, int *line,
                       int *col)
{
  if (!cache->lc_valid || offset < cache->lc_offset) {
    cache->lc_offset = 0;
    cache->lc_line = cache->lc_col = 1;
  }
  cache->lc_offset = count_linecol(text, cache->lc_offset, offset, &cache->lc_line,
                                   &cache->lc_col);
  cache->lc_valid = true;
  *line = cache->lc_line;
  *col = cache->lc_col;
}

bool fe_json_locate(const char *text, const char *json_path, int *line, int *col)
{
  size_t off;
  if (!fe_json_find(text, json_path, false, &off))
    return false;
  fe_linecol(text, off, line, col);
  return true;
}

/* ------------------------------------------------------------------ path at an offset */

typedef struct open_value {
  bool is_object;
  bool has_key;    /* object: a key was read for the current member */
  size_t key_off, key_len;
  int64_t index;   /* array: current element */
} open_value;

void fe_json_path_at(const char *text, size_t end, xy_buf *out)
{
  open_value *stack = NULL;
  size_t depth = 0, cap = 0;
  bool ok = true;
  xy_buf_put(out, "", 0); /* terminated even if nothing follows (xy_buf_take does not) */
  for (size_t i = 0; ok && i < end && text[i]; i++) {
    char ch = text[i];
    open_value *top = depth ? &stack[depth - 1] : NULL;
    if (ch == '"') {
      size_t j = i + 1;
      while (j < end && text[j] && text[j] != '"')
        j += text[j] == '\\' && j + 1 < end ? 2 : 1;
      if (j >= end || !text[j])
        break; /* the offset lies inside this string */
      if (top && top->is_object && !top->has_key) {
        top->has_key = true;
        top->key_off = i + 1;
        top->key_len = j - i - 1;
      }
      i = j;
    } else if (ch == '{' || ch == '[') {
      if (!(ok = xy_grow((void **)&stack, &cap, depth + 1, sizeof *stack)))
        break;
      stack[depth++] = (open_value){.is_object = ch == '{'};
    } else if ((ch == '}' || ch == ']') && depth) {
      depth--;
    } else if (ch == ',' && top) {
      if (top->is_object)
        top->has_key = false;
      else
        top->index++;
    }
  }
  for (size_t d = 0; ok && d < depth; d++) {
    if (stack[d].is_object) {
      if (!stack[d].has_key)
        break;
      if (out->len)
        xy_buf_putc(out, '.');
      xy_buf_put(out, text + stack[d].key_off, stack[d].key_len);
    } else {
      xy_buf_printf(out, "[%lld]", (long long)stack[d].index);
    }
  }
  free(stack);
}
