/* cli_run.h: runs the xylem binary (XYLEM_BIN) as a user would, capturing its exit status,
 * stdout and stderr, for the CLI suites. Failures end the running CMocka test. */
#ifndef XY_TEST_CLI_RUN_H
#define XY_TEST_CLI_RUN_H

typedef struct result {
  int status;
  char *out, *err;
} result;

/* Runs xylem with the given arguments (NULL-terminated). */
result xylem(const char *first, ...);

/* Frees what xylem() captured. */
void done(result *r);

/* A file's whole contents ("" when it cannot be read); the caller frees it. */
char *slurp(const char *path);

#endif /* XY_TEST_CLI_RUN_H */
