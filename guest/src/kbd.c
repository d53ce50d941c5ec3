/* i8042 PS/2 keyboard on IRQ 1: scancode set 1 (the controller translates), US layout, decoded in
 * the interrupt handler into the console's input ring, so keys act exactly like serial input.
 * Ring 0 is emulated: per byte, one port read and a table lookup. */
#include "kernel.h"
#include "platform.h"

#define KBD_DATA     0x60
#define KBD_STATUS   0x64
#define ST_OUT_FULL  0x01
#define ST_AUX       0x20           /* the byte is from the mouse port */

/* Set-1 make codes 0x00..0x53 -> ASCII, unshifted and shifted; 0 = no character (modifiers,
 * function keys). The keypad (0x37, 0x47..0x53) always gives its digits and operators. */
static const char plain[0x54] =
    "\0\033" "1234567890-=" "\177\t" "qwertyuiop[]" "\r\0" "asdfghjkl;'`" "\0\\" "zxcvbnm,./" "\0*\0 \0"
    "\0\0\0\0\0\0\0\0\0\0" "\0\0" "789-456+1230.";
static const char shifted[0x54] =
    "\0\033" "!@#$%^&*()_+" "\177\t" "QWERTYUIOP{}" "\r\0" "ASDFGHJKL:\"~" "\0|" "ZXCVBNM<>?" "\0*\0 \0"
    "\0\0\0\0\0\0\0\0\0\0" "\0\0" "789-456+1230.";

enum { SC_LCTRL = 0x1d, SC_LSHIFT = 0x2a, SC_RSHIFT = 0x36, SC_CAPS = 0x3a, SC_ENTER = 0x1c, SC_SLASH = 0x35 };

static u32 shift, ctrl, caps, prefix, skip;

/* One set-1 byte; returns the character it completes, or -1. */
int kbd_decode(u8 b)
{
    u32 e0 = prefix;
    prefix = 0;
    if (skip) {                     /* rest of the Pause sequence E1 1D 45 E1 9D C5 */
        skip--;
        return -1;
    }
    if (b == 0xe0) {
        prefix = 1;
        return -1;
    }
    if (b == 0xe1) {
        skip = 5;
        return -1;
    }
    u32 code = b & 0x7f, up = b & 0x80;
    if (code == SC_LCTRL) {         /* left, or right with E0 */
        ctrl = up ? ctrl & ~(1u << e0) : ctrl | 1u << e0;
        return -1;
    }
    if (e0) {                       /* fake shifts, arrows, etc.: ignored */
        if (up)
            return -1;
        return code == SC_ENTER ? '\r' : code == SC_SLASH ? '/' : -1;
    }
    if (code == SC_LSHIFT || code == SC_RSHIFT) {
        u32 bit = code == SC_LSHIFT ? 1 : 2;
        shift = up ? shift & ~bit : shift | bit;
        return -1;
    }
    if (up)
        return -1;
    if (code == SC_CAPS) {
        caps ^= 1;
        return -1;
    }
    if (code >= sizeof plain)
        return -1;
    char ch = shift ? shifted[code] : plain[code];
    if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') {
        if (caps)
            ch ^= 0x20;
        if (ctrl)
            ch &= 0x1f;
    }
    return ch ? (u8)ch : -1;
}

/* Boot, after pic_init. No controller (the port floats to 0xff, e.g. QEMU microvm): IRQ 1 stays
 * masked. Bytes already waiting are read first, so the edge-triggered line can rise again. */
void kbd_init(void)
{
    u8 st = inb(KBD_STATUS);
    if (st == 0xff)
        return;
    for (int i = 0; i < 16 && (st & ST_OUT_FULL); i++) {
        inb(KBD_DATA);
        st = inb(KBD_STATUS);
    }
    pic_unmask(1);
}

/* IRQ 1 (BSP, IF=0): drain at most 16 bytes; mouse bytes are dropped. */
void kbd_irq(void)
{
    for (int i = 0; i < 16; i++) {
        u8 st = inb(KBD_STATUS);
        if (!(st & ST_OUT_FULL))
            return;
        u8 b = inb(KBD_DATA);
        if (st & ST_AUX)
            continue;
        int ch = kbd_decode(b);
        if (ch >= 0)
            cons_push((u8)ch);
    }
}
