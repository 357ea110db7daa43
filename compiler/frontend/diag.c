/*
 * diag.c: the front end's error messages, chibicc style:
 *
 *   spec.json:12:18: layers[0].inputs.k: unknown tensor 'kk'
 *         "k": "kk",
 *              ^
 *
 * and the JSON parsing whose errors get the same form.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fe_internal.h"

/* Source lines longer than this are shown as a window around the column. */
enum { LINE_SHOWN = 160, SHOWN_BEFORE = 60, CAUSE_MAX = 2048 };

static bool is_cont(char ch)
{
  return ((unsigned char)ch & 0xC0) == 0x80;
}

/* Appends "\n<source line>\n<caret line>" for byte offset off. */
static void show_line(xy_buf *b, const char *text, size_t off)
{
  size_t start = off, end = off;
  while (start > 0 && text[start - 1] != '\n')
    start--;
  while (text[end] && text[end] != '\n')
    end++;
  if (end > start && text[end - 1] == '\r')
    end--;
  if (off > end)
    off = end;
  size_t ws = start, we = end;
  if (end - start > LINE_SHOWN) {
    if (off - start > SHOWN_BEFORE)
      ws = off - SHOWN_BEFORE;
    while (ws > start && is_cont(text[ws]))
      ws--;
    we = end - ws > LINE_SHOWN ? ws + LINE_SHOWN : end;
    while (we < end && is_cont(text[we]))
      we++;
  }
  bool cut_before = ws > start, cut_after = we < end;
  xy_buf_putc(b, '\n');
  if (cut_before)
    xy_buf_puts(b, "...");
  for (size_t i = ws; i < we; i++) {
    unsigned char ch = (unsigned char)text[i];
    /* Control bytes (only in text jansson refused) would garble a terminal. */
    xy_buf_putc(b, (ch < 0x20 && ch != '\t') || ch == 0x7F ? '?' : (char)ch);
  }
  if (cut_after)
    xy_buf_puts(b, "...");
  xy_buf_putc(b, '\n');
  if (cut_before)
    xy_buf_puts(b, "   ");
  /* Tabs stay tabs so the caret lines up however the terminal expands them. */
  for (size_t i = ws; i < off; i++)
    if (text[i] == '\t')
      xy_buf_putc(b, '\t');
    else if (!is_cont(text[i]))
      xy_buf_putc(b, ' ');
  xy_buf_putc(b, '^');
}

/* Copies a finished message into err (cut to fit) and returns code. */
static int put_message(xy_error *err, int code, xy_buf *b)
{
  char *msg = xy_buf_take(b);
  int rc = xy_fail(err, code, "%s", msg ? msg : "out of memory formatting an error");
  free(msg);
  return rc;
}

/* "FILE:LINE:COL: PATH: cause" plus the source line, at byte offset off of text. */
static int fail_at_offset(xy_error *err, int code, const char *file, const char *text,
                          size_t off, const char *path, const char *cause)
{
  int line, col;
  fe_linecol(text, off, &line, &col);
  xy_buf b;
  xy_buf_init(&b);
  xy_buf_printf(&b, "%s:%d:%d: ", file, line, col);
  if (path[0])
    xy_buf_printf(&b, "%s: ", path);
  xy_buf_puts(&b, cause);
  show_line(&b, text, off);
  return put_message(err, code, &b);
}

/* The change that set path (or a value holding it), the latest one winning; NULL if none. */
static const fe_change *change_of(const fe_src *src, const char *path)
{
  const fe_changes *ch = src->changes;
  for (size_t i = ch ? ch->n : 0; i-- > 0;) {
    const char *o = ch->v[i].path;
    size_t n = strlen(o);
    if (strncmp(path, o, n) == 0 && (path[n] == '\0' || path[n] == '.' || path[n] == '['))
      return &ch->v[i];
  }
  return NULL;
}

/* Finds path, else the closest enclosing value that is in the text. */
static bool locate_near(const char *text, const char *path, bool at_key, size_t *off)
{
  if (fe_json_find(text, path, at_key, off) || (at_key && fe_json_find(text, path, false, off)))
    return true;
  char up[FE_PATH_MAX];
  snprintf(up, sizeof up, "%s", path);
  while (up[0]) {
    char *dot = strrchr(up, '.'), *br = strrchr(up, '[');
    char *cut = !dot ? br : !br ? dot : dot > br ? dot : br;
    if (cut)
      *cut = '\0';
    else
      up[0] = '\0';
    if (fe_json_find(text, up, false, off))
      return true;
  }
  return false;
}

static int fail_v(xy_error *err, int code, const fe_src *src, const char *path, bool at_key,
                  const char *fmt, va_list ap)
{
  char cause[CAUSE_MAX];
  vsnprintf(cause, sizeof cause, fmt, ap);
  const char *sep = path[0] ? ": " : "";
  const fe_change *ov = change_of(src, path);
  if (ov && ov->at == FE_NOT_IN_TEXT)
    return xy_fail(err, code, "%s: %s%s%s (the value comes from override '%s')", src->file,
                   path, sep, cause, ov->text);
  if (ov) { /* a stage's entry: shown where the stage writes it */
    size_t len = strlen(cause);
    snprintf(cause + len, sizeof cause - len, " (the value comes from stage '%s', entry '%s')",
             src->changes->stage ? src->changes->stage : "?", ov->text);
    return fail_at_offset(err, code, src->file, src->text, ov->at, path, cause);
  }
  size_t off;
  if (!locate_near(src->text, path, at_key, &off))
    return xy_fail(err, code, "%s: %s%s%s", src->file, path, sep, cause);
  return fail_at_offset(err, code, src->file, src->text, off, path, cause);
}

int fe_fail_at(xy_error *err, int code, const fe_src *src, const char *path, const char *fmt,
               ...)
{
  va_list ap;
  va_start(ap, fmt);
  int rc = fail_v(err, code, src, path, false, fmt, ap);
  va_end(ap);
  return rc;
}

int fe_fail_key(xy_error *err, int code, const fe_src *src, const char *path,
                const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int rc = fail_v(err, code, src, path, true, fmt, ap);
  va_end(ap);
  return rc;
}

int fe_fail_at_offset(xy_error *err, int code, const fe_src *src, size_t offset,
                      const char *path, const char *fmt, ...)
{
  char cause[CAUSE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cause, sizeof cause, fmt, ap);
  va_end(ap);
  return fail_at_offset(err, code, src->file, src->text, offset, path, cause);
}

void fe_src_pos(const fe_src *src, const char *path, int *line, int *col)
{
  size_t off;
  *line = *col = 0;
  const fe_change *ov = change_of(src, path);
  if (ov && ov->at != FE_NOT_IN_TEXT)
    fe_linecol(src->text, ov->at, line, col);
  if (ov)
    return;
  if (!src->cache) {
    if (fe_json_find(src->text, path, false, &off))
      fe_linecol(src->text, off, line, col);
  } else if (fe_json_find_cached(src->text, path, src->cache, &off)) {
    fe_linecol_cached(src->text, off, src->cache, line, col);
  }
}

/* ------------------------------------------------------------------ parsing */

/* Byte range [*start, *end) of the token a jansson error names. jansson gives the line
 * and the column (in characters) of the token's last character, and quotes the token. */
static void parse_error_span(const char *text, size_t len, const json_error_t *je,
                             size_t *start, size_t *end)
{
  size_t pos = 0;
  if (strstr(je->text, "near end of file")) {
    /* Point just past the last thing written: that is where more was expected. */
    pos = len;
    while (pos > 0 && strchr(" \t\r\n", text[pos - 1]))
      pos--;
    *start = *end = pos;
    return;
  }
  for (int line = 1; line < je->line && pos < len; pos++)
    if (text[pos] == '\n')
      line++;
  size_t last = pos;
  for (int c = 0; c < je->column && pos < len && text[pos] != '\n'; c++) {
    last = pos++;
    while (pos < len && is_cont(text[pos]))
      pos++;
  }
  *end = pos;
  *start = last;
  const char *near = strstr(je->text, "near '");
  const char *q = near ? strrchr(near + 6, '\'') : NULL;
  if (q) {
    size_t tlen = (size_t)(q - (near + 6));
    if (tlen > 0 && tlen <= pos && memcmp(text + pos - tlen, near + 6, tlen) == 0)
      *start = pos - tlen;
  }
}

int fe_parse_json(const char *file, const char *text, size_t len, json_t **out, xy_error *err)
{
  json_error_t je;
  *out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (*out)
    return XY_OK;
  size_t start, end;
  parse_error_span(text, len, &je, &start, &end);
  /* A duplicate key belongs to the member it starts, so its path includes it. */
  bool dup = strncmp(je.text, "duplicate object key", 20) == 0;
  xy_buf path;
  xy_buf_init(&path);
  fe_json_path_at(text, dup ? end : start, &path);
  char *p = xy_buf_take(&path);
  int rc = fail_at_offset(err, XY_E_PARSE, file, text, start, p ? p : "", je.text);
  free(p);
  return rc;
}

/* ------------------------------------------------------------------ checks */

const char *fe_json_kind(const json_t *v)
{
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a real number";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  case JSON_NULL: return "null";
  }
  return "a value";
}

int fe_check_keys(xy_error *err, int code, const fe_src *src, const json_t *obj,
                  const char *path, const char *const *allowed, size_t n)
{
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)obj, key, v) {
    size_t i = 0;
    while (i < n && strcmp(key, allowed[i]) != 0)
      i++;
    if (i < n)
      continue;
    xy_buf list;
    xy_buf_init(&list);
    for (i = 0; i < n; i++)
      xy_buf_printf(&list, "%s%s", i ? ", " : "", allowed[i]);
    char *l = xy_buf_take(&list);
    char kp[FE_PATH_MAX];
    fe_path_key(kp, path, key);
    int rc = fe_fail_key(err, code, src, kp, "unknown key '%s' %s%s; expected one of: %s", key,
                         path[0] ? "in " : "at the top level", path, l ? l : "?");
    free(l);
    return rc;
  }
  return XY_OK;
}
