/*
 * s390-gaccess oracle guest: reads the op blob the driver placed in guest
 * memory, runs each op and prints one line per result.
 *
 * Freestanding: no library, DAT off and PSW key 0 except during the access
 * itself (entry.S run_access).  Output goes to the SCLP VT220 console (QEMU)
 * or, when the blob says so, to the Hercules console through DIAGNOSE 8
 * ("msgnoh * text").
 */
#include "layout.h"

typedef unsigned long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

struct blob {
	u32 magic, version, n_ops, flags;
	u64 reserved[2];
	/* followed by n_ops struct op, then the data of OP_WRITE ops */
};

struct op {
	u8 kind, size, store, breg;
	u32 len;		/* OP_WRITE: byte count */
	u64 psw;		/* OP_ACCESS: PSW mask (DAT, key, AS, EA/BA) */
	u64 addr;		/* logical (ACCESS) or absolute (others) address */
	u64 value;		/* store value, key byte, or blob offset of data */
	u64 cr0, cr1, cr2, cr5, cr7, cr8, cr13;
	u32 alet;
	u32 prefix;		/* OP_ACCESS: prefix register during the access */
};

extern int run_access(void);
extern void set_prefix(u64 prefix);
extern void guest_stop(void) __attribute__((noreturn));
extern u64 base_cr0;
extern u64 ctl_regs[6];
extern u8 stub[];

/* Absolute address 0 as a pointer the compiler cannot reason about. */
static inline u8 *abs0(void)
{
	u8 *p;

	asm volatile("lghi %0,0" : "=d"(p));
	return p;
}

#define LC64(off)	(*(volatile u64 *)(abs0() + (off)))
#define LC32(off)	(*(volatile u32 *)(abs0() + (off)))
#define LC8(off)	(*(volatile u8 *)(abs0() + (off)))

/* ------------------------------------------------------------------ output */

static int diag8;
static char line[2048];
static unsigned int used;
static u8 sccb[4096] __attribute__((aligned(4096)));
static u8 cmd[160] __attribute__((aligned(8)));

static void sclp_write(const char *s, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < 16 + n; i++)
		sccb[i] = 0;
	*(u16 *)&sccb[0] = 8 + 6 + n;		/* SCCB length */
	*(u16 *)&sccb[8] = 6 + n;		/* event buffer length */
	sccb[10] = 0x1a;			/* VT220 message event */
	for (i = 0; i < n; i++)
		sccb[14 + i] = s[i];
	/* SERVC, command "write event data" */
	asm volatile(".insn rre,0xb2200000,%0,%1"
		     : : "d"(0x00760005UL), "a"(sccb) : "cc", "memory");
}

static u8 ebcdic(char c)
{
	static const char digits[] = "0123456789";

	if (c >= '0' && c <= '9')
		return 0xf0 + (c - digits[0]);
	if (c >= 'a' && c <= 'i')
		return 0x81 + (c - 'a');
	if (c >= 'j' && c <= 'r')
		return 0x91 + (c - 'j');
	if (c >= 's' && c <= 'z')
		return 0xa2 + (c - 's');
	if (c >= 'A' && c <= 'I')
		return 0xc1 + (c - 'A');
	if (c >= 'J' && c <= 'R')
		return 0xd1 + (c - 'J');
	if (c >= 'S' && c <= 'Z')
		return 0xe2 + (c - 'S');
	if (c == ':')
		return 0x7a;
	if (c == '=')
		return 0x7e;
	if (c == '-')
		return 0x60;
	if (c == '*')
		return 0x5c;
	return 0x40;				/* everything else: blank */
}

static void diag8_line(const char *s, unsigned int n)
{
	static const char prefix[] = "msgnoh * ";
	unsigned int k = 0, i;

	for (i = 0; prefix[i]; i++)
		cmd[k++] = ebcdic(prefix[i]);
	for (i = 0; i < n && k < sizeof(cmd); i++)
		cmd[k++] = ebcdic(s[i]);
	{
		register u64 r2 asm("2") = (u64)cmd;
		register u64 r3 asm("3") = k;

		/* DIAGNOSE X'008': issue a Hercules console command */
		asm volatile(".insn rs,0x83000000,%0,%1,8"
			     : "+d"(r2), "+d"(r3) : : "cc", "memory");
	}
}

static void flush(void)
{
	if (used && !diag8)
		sclp_write(line, used);
	used = 0;
}

/* One result line; QEMU gets several per SCLP write, Hercules one per DIAG. */
static void end_line(void)
{
	if (diag8) {
		diag8_line(line, used);
		used = 0;
		return;
	}
	line[used++] = '\n';
	if (used > sizeof(line) - 160)
		flush();
}

static void put(char c)
{
	if (used < sizeof(line) - 1)
		line[used++] = c;
}

static void puts_(const char *s)
{
	while (*s)
		put(*s++);
}

static void hex(u64 v, int digits)
{
	static const char x[] = "0123456789abcdef";

	while (digits--)
		put(x[(v >> (4 * digits)) & 15]);
}

static void field(u64 v, int digits)
{
	put(' ');
	hex(v, digits);
}

/* ---------------------------------------------------------- the ops */

static void stfle(u64 list[4])
{
	register u64 r0 asm("0") = 3;	/* four doublewords */

	asm volatile(".insn s,0xb2b00000,%1"
		     : "+d"(r0), "=Q"(*(u64(*)[4])list) : : "cc", "memory");
}

/* MOVE LONG: copies any length; DAT is off, so both addresses are real. */
static void copy(u64 dst, u64 src, u64 len)
{
	register u64 r2 asm("2") = dst;
	register u64 r3 asm("3") = len;
	register u64 r4 asm("4") = src;
	register u64 r5 asm("5") = len;

	asm volatile("mvcl %%r2,%%r4"
		     : "+d"(r2), "+d"(r3), "+d"(r4), "+d"(r5) : : "cc", "memory");
}

/* MOVE LONG with an empty source: the destination is padded with byte 0. */
static void zero(u64 dst, u64 len)
{
	register u64 r2 asm("2") = dst;
	register u64 r3 asm("3") = len;
	register u64 r4 asm("4") = 0;
	register u64 r5 asm("5") = 0;

	asm volatile("mvcl %%r2,%%r4"
		     : "+d"(r2), "+d"(r3), "+d"(r4), "+d"(r5) : : "cc", "memory");
}

static void do_access(u32 idx, const struct op *o)
{
	unsigned int log2 = o->size == 8 ? 3 : o->size == 4 ? 2 : o->size == 2 ? 1 : 0;
	unsigned int slot = ((o->store ? 4 : 0) + log2) * 16 + (o->breg & 15);
	u64 *regs = (u64 *)(abs0() + LC_REGS);
	u32 *ars = (u32 *)(abs0() + LC_ARS);
	int i, status;

	/* The lowcore of the access's prefix: everything below goes there. */
	if (o->prefix)
		set_prefix(o->prefix);
	for (i = 0; i < 16; i++) {
		regs[i] = 0;
		ars[i] = 0;
	}
	regs[0] = o->value;
	regs[o->breg ? o->breg : 1] = o->addr;
	if (o->breg)
		ars[o->breg] = o->alet;
	LC64(LC_PSW) = o->psw;
	LC64(LC_PSW + 8) = (u64)stub + slot * SLOT_SIZE;
	LC64(LC_CR0) = o->cr0;
	ctl_regs[0] = o->cr1;
	ctl_regs[1] = o->cr2;
	ctl_regs[2] = o->cr5;
	ctl_regs[3] = o->cr7;
	ctl_regs[4] = o->cr8;
	ctl_regs[5] = o->cr13;
	/* sentinels: what the CPU does not store stays all ones */
	LC32(LC_PGM_ILC) = 0xffffffffU;
	LC8(LC_EXC_AID) = 0xff;
	LC64(LC_TEID) = ~0UL;

	status = run_access();

	puts_("GX:A");
	field(idx, 6);
	field(status, 1);
	field(LC32(LC_PGM_ILC), 8);
	field(LC8(LC_EXC_AID), 2);
	field(LC64(LC_TEID), 16);
	field(LC64(LC_SAVE), 16);
	field(LC64((status ? LC_PGM_OLD : LC_SVC_OLD) + 8), 16);
	if (o->prefix)
		set_prefix(0);
	end_line();
}

void guest_main(void)
{
	const volatile u64 *param = (const volatile u64 *)(abs0() + PARAM_ADDR);
	const struct blob *b;
	const struct op *ops;
	u64 fac[4] = { 0, 0, 0, 0 };
	u32 i;

	if (param[0] != PARAM_MAGIC) {
		puts_("GX:ERROR no parameter block");
		end_line();
		flush();
		return;
	}
	b = (const struct blob *)param[1];
	diag8 = b->magic == BLOB_MAGIC && (b->flags & BLOB_F_DIAG8);
	if (b->magic != BLOB_MAGIC || b->version != BLOB_VERSION) {
		puts_("GX:ERROR bad blob");
		end_line();
		flush();
		return;
	}
	stfle(fac);
	puts_("GX:BEGIN");
	for (i = 0; i < 4; i++)
		field(fac[i], 16);
	field(base_cr0, 16);
	end_line();

	ops = (const struct op *)(b + 1);
	for (i = 0; i < b->n_ops; i++) {
		const struct op *o = &ops[i];

		switch (o->kind) {
		case OP_ACCESS:
			do_access(i, o);
			break;
		case OP_SSKE:
			asm volatile("sske %0,%1" : : "d"(o->value), "a"(o->addr) : "memory");
			break;
		case OP_ISKE: {
			u64 k = 0;

			asm volatile("iske %0,%1" : "+d"(k) : "a"(o->addr));
			puts_("GX:K");
			field(i, 6);
			field(k & 0xfe, 2);
			end_line();
			break;
		}
		case OP_WRITE:
			copy(o->addr, (u64)b + o->value, o->len);
			break;
		case OP_ZERO:
			zero(o->addr, o->len);
			break;
		case OP_READ:
			puts_("GX:M");
			field(i, 6);
			field(*(volatile u64 *)(abs0() + o->addr), 16);
			end_line();
			break;
		default:
			puts_("GX:ERROR bad op");
			field(i, 6);
			end_line();
			break;
		}
	}
	puts_("GX:END");
	field(b->n_ops, 6);
	end_line();
	flush();
}

/* An interruption nobody expected: report it and stop (entry.S). */
void guest_fatal(void)
{
	puts_("GX:FATAL");
	field(LC32(LC_PGM_ILC), 8);
	field(LC64(LC_PGM_OLD), 16);
	field(LC64(LC_PGM_OLD + 8), 16);
	field(LC64(LC_SVC_OLD + 8), 16);
	end_line();
	flush();
}
