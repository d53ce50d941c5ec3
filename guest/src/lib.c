/* Freestanding string, number-parsing and formatting helpers (gcc may also emit memcpy/memset calls). */
#include "kernel.h"

void *memcpy(void *d, const void *s, size_t n)
{
    u8 *dp = d;
    const u8 *sp = s;
    while (n--)
        *dp++ = *sp++;
    return d;
}

void *memset(void *d, int c, size_t n)
{
    u8 *dp = d;
    while (n--)
        *dp++ = (u8)c;
    return d;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int streq(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

/* Decimal, or hex with a 0x prefix; the whole string must be a number that fits in 64 bits. */
int parse_u64(const char *s, u64 *out)
{
    u64 v = 0, base = 10;
    if (!s || !*s)
        return 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
        if (!*s)
            return 0;
    }
    for (; *s; s++) {
        u64 d;
        if (*s >= '0' && *s <= '9')
            d = (u64)(*s - '0');
        else if (base == 16 && (*s | 0x20) >= 'a' && (*s | 0x20) <= 'f')
            d = (u64)((*s | 0x20) - 'a' + 10);
        else
            return 0;
        if (v > (~0UL - d) / base)
            return 0;
        v = v * base + d;
    }
    *out = v;
    return 1;
}

static char *fmt_num(char *p, u64 v, u64 base, int width)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n < width)
        tmp[n++] = '0';
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* Minimal printf: %s, %c, %u (u64 decimal), %x (u64 hex), %X (u64 as 16 hex digits).
 * '\n' becomes CRLF for the serial console. */
void kprintf(const char *fmt, ...)
{
    char buf[512], *p = buf, *end = buf + sizeof buf - 24;
    __builtin_va_list ap;
    __builtin_va_start(ap, fmt);
    for (; *fmt && p < end; fmt++) {
        if (*fmt == '\n') {
            *p++ = '\r';
            *p++ = '\n';
        } else if (*fmt != '%') {
            *p++ = *fmt;
        } else {
            char f = *++fmt;
            if (f == 's') {
                const char *s = __builtin_va_arg(ap, const char *);
                while (*s && p < end)
                    *p++ = *s++;
            } else if (f == 'c') {
                *p++ = (char)__builtin_va_arg(ap, int);
            } else if (f == 'u') {
                p = fmt_num(p, __builtin_va_arg(ap, u64), 10, 1);
            } else if (f == 'x') {
                p = fmt_num(p, __builtin_va_arg(ap, u64), 16, 1);
            } else if (f == 'X') {
                p = fmt_num(p, __builtin_va_arg(ap, u64), 16, 16);
            } else {
                *p++ = f;
                if (!f)
                    break;
            }
        }
    }
    __builtin_va_end(ap);
    cons_write(buf, (size_t)(p - buf));
}
