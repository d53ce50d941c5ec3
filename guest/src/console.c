/* COM1 console: polled output, interrupt-driven input into a ring buffer.
 * Every UART access is a VM exit (~5 us), so output goes out in 16-byte `rep outsb` bursts when the
 * UART has a FIFO (one exit per burst under KVM), after a single LSR check per burst. The same bytes
 * then go to the framebuffer console when there is one (fb.c). */
#include "kernel.h"
#include "fbcons.h"

#define COM1      0x3f8
#define UART_RBR  (COM1 + 0)
#define UART_IER  (COM1 + 1)
#define UART_FCR  (COM1 + 2)        /* write: FIFO control; read: IIR */
#define UART_LCR  (COM1 + 3)
#define UART_MCR  (COM1 + 4)
#define UART_LSR  (COM1 + 5)
#define LSR_DR    0x01
#define LSR_THRE  0x20
#define LSR_TEMT  0x40

static u32 burst = 1;               /* bytes per THRE check: 16 with a FIFO */
static int line_start = 1;
static u8 rx[1024];
static volatile u32 rx_head, rx_tail;
static volatile int rx_stalled;     /* ring was full: bytes wait in the UART (back-pressure, not loss) */

void uart_init(void)
{
    outb(UART_LCR, 0x03);           /* 8N1, DLAB off; the baud divisor is irrelevant to a virtual UART */
    outb(UART_FCR, 0x07);           /* FIFOs on and cleared, RX trigger at 1 byte */
    if ((inb(UART_FCR) & 0xc0) == 0xc0)
        burst = 16;
    outb(UART_MCR, 0x0b);           /* DTR, RTS, OUT2 (OUT2 gates the IRQ line on PC UARTs) */
    outb(UART_IER, 0x01);           /* interrupt on received data only */
}

void cons_write(const char *s, size_t n)
{
    const char *s0 = s;
    size_t n0 = n;
    if (n)
        line_start = s[n - 1] == '\n';
    while (n) {
        size_t k = n < burst ? n : burst;
        while (!(inb(UART_LSR) & LSR_THRE))
            __asm__ volatile("pause");
        __asm__ volatile("rep outsb" : "+S"(s), "+c"(k) : "d"((u16)UART_RBR) : "memory");
        n -= n < burst ? n : burst;
    }
    if (fb_on)
        fb_write(s0, n0);
}

int cons_at_line_start(void) { return line_start; }

/* Waits until the transmitter is empty, so the last line is out before power-off. */
void cons_drain(void)
{
    for (int i = 0; i < 100000 && !(inb(UART_LSR) & LSR_TEMT); i++)
        __asm__ volatile("pause");
}

/* IRQ 4 (BSP): drain the receive FIFO so the line drops and the next byte makes a new edge
 * (the PIC is edge-triggered). If the ring fills, the rest stays in the UART until cons_getc. */
void uart_irq(void)
{
    while (rx_head - rx_tail < sizeof rx) {
        if (!(inb(UART_LSR) & LSR_DR))
            return;
        rx[rx_head++ % sizeof rx] = inb(UART_RBR);
    }
    rx_stalled = 1;
}

/* IRQ 1 (BSP): a decoded key. The keyboard cannot be held back, so a full ring drops it. */
void cons_push(u8 ch)
{
    if (rx_head - rx_tail < sizeof rx)
        rx[rx_head++ % sizeof rx] = ch;
}

/* Called with interrupts off on the BSP, the only CPU that takes IRQ 4 and IRQ 1. */
int cons_getc(void)
{
    if (rx_tail == rx_head && rx_stalled) {
        rx_stalled = 0;
        uart_irq();                 /* no edge will come for bytes already waiting: poll them */
    }
    if (rx_tail == rx_head)
        return -1;
    return rx[rx_tail++ % sizeof rx];
}
