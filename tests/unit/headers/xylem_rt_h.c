/* xylem-rt.h must compile on its own, first, as C99: generated packages include it. */
#include "xylem-rt.h"

int main(void)
{
  xrt_error err;
  err.code = XRT_OK;
  return err.code;
}
