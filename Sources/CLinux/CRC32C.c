// CRC-32C with the SSE4.2 crc32 instruction, which Swift cannot emit; the caller checks
// clinux_cpu_has_sse42() first and keeps the table-driven Swift version as the fallback.
//
// One crc32 instruction takes 3 cycles before the next one can use its result, but a new one can
// start every cycle: so long buffers are cut into three blocks whose CRCs run interleaved, and
// are then joined. Joining needs the CRC register advanced over a block's length of zero bytes,
// a linear map on the 32-bit register, kept as four byte-indexed tables per block size.
#include "CLinux.h"
#include <nmmintrin.h>
#include <pthread.h>
#include <string.h>

#define CRC32C_POLYNOMIAL 0x82f63b78u  // reflected Castagnoli

enum { LONG_BLOCK = 4096, SHORT_BLOCK = 256 };  // a 4 KiB page: five rounds of 3 x 256 bytes, then 256 in one stream

// advance[k][b]: the register after `block` zero bytes, starting from b << 8k.
static uint32_t long_advance[4][256];
static uint32_t short_advance[4][256];
static pthread_once_t advance_once = PTHREAD_ONCE_INIT;

int clinux_cpu_has_sse42(void) { return __builtin_cpu_supports("sse4.2"); }

// A linear map on 32 bits as its 32 columns (column i: the image of bit i).
static uint32_t map_apply(const uint32_t *columns, uint32_t value) {
    uint32_t result = 0;
    for (int bit = 0; value != 0; bit++, value >>= 1)
        if (value & 1) result ^= columns[bit];
    return result;
}

// The tables for advancing over `bytes` zero bytes (a power of two): the one-zero-bit map,
// squared log2(8 * bytes) times.
static void build_advance(uint32_t table[4][256], unsigned bytes) {
    uint32_t map[32], squared[32];
    map[0] = CRC32C_POLYNOMIAL;
    for (int bit = 1; bit < 32; bit++) map[bit] = 1u << (bit - 1);
    for (unsigned bits = 8 * bytes; bits > 1; bits >>= 1) {
        for (int bit = 0; bit < 32; bit++) squared[bit] = map_apply(map, map[bit]);
        memcpy(map, squared, sizeof map);
    }
    for (int k = 0; k < 4; k++)
        for (uint32_t b = 0; b < 256; b++) table[k][b] = map_apply(map, b << (8 * k));
}

static void build_advance_tables(void) {
    build_advance(long_advance, LONG_BLOCK);
    build_advance(short_advance, SHORT_BLOCK);
}

static uint32_t advance(uint32_t table[4][256], uint32_t crc) {
    return table[0][crc & 0xff] ^ table[1][(crc >> 8) & 0xff] ^ table[2][(crc >> 16) & 0xff] ^ table[3][crc >> 24];
}

// The register after three consecutive blocks of `block` bytes at `p`, computed side by side.
__attribute__((target("sse4.2"))) static uint64_t three_blocks(uint64_t crc, const unsigned char *p, size_t block, uint32_t table[4][256]) {
    uint64_t second = 0, third = 0;
    for (size_t offset = 0; offset < block; offset += 8) {
        uint64_t a, b, c;
        memcpy(&a, p + offset, 8);
        memcpy(&b, p + block + offset, 8);
        memcpy(&c, p + 2 * block + offset, 8);
        crc = _mm_crc32_u64(crc, a);
        second = _mm_crc32_u64(second, b);
        third = _mm_crc32_u64(third, c);
    }
    crc = advance(table, (uint32_t)crc) ^ (uint32_t)second;
    return advance(table, (uint32_t)crc) ^ (uint32_t)third;
}

__attribute__((target("sse4.2"))) uint32_t clinux_crc32c_sse42(uint32_t state, const void *data, size_t length) {
    const unsigned char *p = data;
    uint64_t c = state;
    if (length >= 3 * SHORT_BLOCK) {
        pthread_once(&advance_once, build_advance_tables);
        for (; length >= 3 * LONG_BLOCK; length -= 3 * LONG_BLOCK, p += 3 * LONG_BLOCK) c = three_blocks(c, p, LONG_BLOCK, long_advance);
        for (; length >= 3 * SHORT_BLOCK; length -= 3 * SHORT_BLOCK, p += 3 * SHORT_BLOCK) c = three_blocks(c, p, SHORT_BLOCK, short_advance);
    }
    for (; length >= 8; length -= 8, p += 8) { uint64_t word; memcpy(&word, p, 8); c = _mm_crc32_u64(c, word); }
    for (; length > 0; length--, p++) c = _mm_crc32_u8((uint32_t)c, *p);
    return (uint32_t)c;
}
