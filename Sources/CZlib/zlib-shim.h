// zlib (Debian's zlib1g-dev): deflate for the display's ZRLE encoding and PNG screenshots.
#include <zlib.h>
