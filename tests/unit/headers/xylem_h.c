/* xylem.h must compile on its own, first, as C99: users include it without ceremony. */
#include "xylem.h"

int main(void)
{
  xy_error err;
  err.code = XY_OK;
  return err.code;
}
