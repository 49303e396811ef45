// zlib for the sim's SPDY header blocks (port-forward). deflateInit/inflateInit are macros, which Swift cannot call.
#include <zlib.h>

static inline int czlib_deflate_init(z_streamp stream, int level) { return deflateInit(stream, level); }
static inline int czlib_inflate_init(z_streamp stream) { return inflateInit(stream); }
