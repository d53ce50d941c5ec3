// liblzma (Debian's liblzma-dev): decompresses the xz payload of a bzImage on the host.
#include <lzma.h>
