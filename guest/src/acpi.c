/* ACPI, read only as far as the VM generation ID (Microsoft's VMGenID, as Linux reads it): the RSDP
 * (PVH's rsdp_paddr, else the BIOS-area scan Linux also does) -> XSDT or RSDT -> FADT -> DSDT. In
 * the DSDT, a device with _CID "VM_Gen_Counter" gives the ID's address as `Name(ADDR, Package {low,
 * high})`, and the generic event device (_HID "ACPI0013") the interrupt that announces a new ID.
 * No AML is run: the tables are scanned for those few encodings, which is what Engram and
 * Firecracker write. Ring 0, integer-only; the tables are read in place and never written. */
#include "acpi.h"
#include "platform.h"

u64 acpi_rsdp;
u64 genid_events;
static u64 genid_addr;
static u32 genid_gsi = 0xffffffff;

static int bytes_equal(const u8 *a, const char *b, u64 n)
{
    for (u64 i = 0; i < n; i++)
        if (a[i] != (u8)b[i])
            return 0;
    return 1;
}

static int sums_to_zero(const u8 *p, u64 n)
{
    u8 s = 0;
    for (u64 i = 0; i < n; i++)
        s += p[i];
    return s == 0;
}

static u32 le32(const u8 *p) { return (u32)p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24; }
static u64 le64(const u8 *p) { return (u64)le32(p) | (u64)le32(p + 4) << 32; }

/* A system description table at `pa` with signature `sig`, whole and summing to zero; else 0. */
static const u8 *table_at(u64 pa, const char *sig)
{
    if (!pa || pa >= (u64)MAP_GIB << 30)
        return 0;
    const u8 *t = (const u8 *)pa;
    u32 len = le32(t + 4);
    if (!bytes_equal(t, sig, 4) || len < 36 || len > (1u << 20) || !sums_to_zero(t, len))
        return 0;
    return t;
}

static const u8 *find_rsdp(void)
{
    if (acpi_rsdp)
        return (const u8 *)acpi_rsdp;
    for (u64 a = 0xe0000; a < 0x100000; a += 16)
        if (bytes_equal((const u8 *)a, "RSD PTR ", 8) && sums_to_zero((const u8 *)a, 20))
            return (const u8 *)a;
    return 0;
}

/* The FADT, through the XSDT (ACPI 2.0+) or the RSDT. */
static const u8 *find_fadt(const u8 *rsdp)
{
    const u8 *root = 0;
    u32 entry = 4;
    if (rsdp[15] >= 2 && sums_to_zero(rsdp, 36) && (root = table_at(le64(rsdp + 24), "XSDT")))
        entry = 8;
    else if (!(root = table_at(le32(rsdp + 16), "RSDT")))
        return 0;
    for (u32 off = 36; off + entry <= le32(root + 4); off += entry) {
        const u8 *t = table_at(entry == 8 ? le64(root + off) : le32(root + off), "FACP");
        if (t)
            return t;
    }
    return 0;
}

/* An AML integer at p (ZeroOp, OneOp, Byte/Word/DWord/QWordPrefix); its length in *n, 0 if none. */
static u64 aml_integer(const u8 *p, u32 *n)
{
    switch (p[0]) {
    case 0x00: *n = 1; return 0;
    case 0x01: *n = 1; return 1;
    case 0x0a: *n = 2; return p[1];
    case 0x0b: *n = 3; return (u64)p[1] | (u64)p[2] << 8;
    case 0x0c: *n = 5; return le32(p + 1);
    case 0x0e: *n = 9; return le64(p + 1);
    default: *n = 0; return 0;
    }
}

static const u8 *find_bytes(const u8 *p, const u8 *end, const char *what, u32 n)
{
    for (; p + n <= end; p++)
        if (bytes_equal(p, what, n))
            return p;
    return 0;
}

/* Name(ADDR, Package(2) {low, high}) after the VMGenID device's _CID, and the GED's interrupt. */
static void scan_dsdt(const u8 *dsdt)
{
    const u8 *end = dsdt + le32(dsdt + 4);
    const u8 *cid = find_bytes(dsdt + 36, end, "VM_Gen_Counter", 14);
    const u8 *name = cid ? find_bytes(cid, end, "\x08" "ADDR\x12", 6) : 0;
    if (name) {
        const u8 *p = name + 6;
        p += 1 + (*p >> 6);                         /* PkgLength: 1 + its extra bytes */
        if (p < end && *p == 2) {                   /* NumElements */
            u32 n1, n2;
            u64 low = aml_integer(p + 1, &n1);
            u64 high = n1 ? aml_integer(p + 1 + n1, &n2) : 0;
            if (n1 && n2 && p + 1 + n1 + n2 <= end)
                genid_addr = low | high << 32;
        }
    }
    const u8 *ged = find_bytes(dsdt + 36, end, "ACPI0013", 8);
    const u8 *irq = ged ? find_bytes(ged, end, "\x89\x06\x00", 3) : 0;
    if (irq && irq + 9 <= end && irq[4] == 1)
        genid_gsi = le32(irq + 5);
}

void acpi_init(void)
{
    const u8 *rsdp = find_rsdp();
    if (!rsdp || !bytes_equal(rsdp, "RSD PTR ", 8) || !sums_to_zero(rsdp, 20))
        return;
    const u8 *fadt = find_fadt(rsdp);
    if (!fadt)
        return;
    u64 dsdt_pa = le32(fadt + 4) >= 148 ? le64(fadt + 140) : 0;
    const u8 *dsdt = table_at(dsdt_pa ? dsdt_pa : le32(fadt + 40), "DSDT");
    if (dsdt)
        scan_dsdt(dsdt);
    if (genid_addr > ((u64)MAP_GIB << 30) - 16)
        genid_addr = 0;                             /* not in the identity map: not readable here */
    if (genid_addr && genid_gsi == GENID_IRQ)
        pic_unmask(GENID_IRQ);
}

/* GENID id=<32 hex, the 16 bytes in memory order> events=<n> irq=<gsi>, or GENID none. */
void cmd_genid(void)
{
    if (!genid_addr) {
        kprintf("GENID none\n");
        return;
    }
    char hex[33];
    const volatile u8 *id = (const volatile u8 *)genid_addr;
    for (u32 i = 0; i < 16; i++) {
        hex[2 * i] = "0123456789abcdef"[id[i] >> 4];
        hex[2 * i + 1] = "0123456789abcdef"[id[i] & 15];
    }
    hex[32] = 0;
    kprintf("GENID id=%s events=%u irq=%u\n", hex, genid_events, (u64)genid_gsi);
}
