/*
 * Memory layout shared by the oracle guest (entry.S, main.c, guest.ld) and its
 * driver (src/oracle/blob.rs, which repeats these numbers).  Addresses are absolute;
 * the guest runs with prefix 0, so real == absolute.  The guest is linked for the
 * base address the driver chooses per scenario (-DGUEST_BASE, --defsym), where the
 * scenario uses no memory:
 *
 *   0x0000 - 0x1fff               lowcore; 0x600 - 0x77f is the guest's scratch block
 *   GUEST_BASE                    stub page: one load/store + SVC per (operation, base register)
 *   GUEST_BASE + 0x1000 - ...     code (entry), data, bss, stack
 *   GUEST_BASE + PARAM_OFFSET     parameter block written by the driver: magic + blob address
 *   GUEST_BASE + GUEST_SIZE       end of the guest; the op blob and the stub's own DAT
 *                                 tables go where the scenario uses nothing
 */
#ifndef GACC_LAYOUT_H
#define GACC_LAYOUT_H

#ifndef GUEST_BASE
#define GUEST_BASE      0x2000
#endif
#define GUEST_SIZE      0xe000
#define PARAM_OFFSET    0xdf00
#define STUB_ADDR       GUEST_BASE
#define PARAM_ADDR      (GUEST_BASE + PARAM_OFFSET)

/* lowcore fields written by the CPU on a program interruption */
#define LC_PGM_ILC      0x8c    /* halfword ILC, then halfword code */
#define LC_EXC_AID      0xa0    /* exception access identification */
#define LC_TEID         0xa8    /* translation-exception identification */
#define LC_SVC_OLD      0x140
#define LC_PGM_OLD      0x150
#define LC_NEW_PSWS     0x1a0   /* restart, external, SVC, program, mcheck, I/O */

/* scratch block (above the 512 bytes low-address protection covers) */
#define LC_REGS         0x600   /* 16 GPRs loaded right before the access */
#define LC_PSW          0x680   /* the access PSW */
#define LC_CR0          0x690   /* CR0 for the access, loaded last */
#define LC_ARS          0x6a0   /* 16 access registers */
#define LC_SAVE         0x700   /* GPRs as the access left them */

/* parameter block */
#define PARAM_MAGIC     0x6761636365737321UL   /* "gaccess!" */

/* blob */
#define BLOB_MAGIC      0x47414343U            /* "GACC" */
#define BLOB_VERSION    1
#define BLOB_F_DIAG8    1                      /* print with DIAGNOSE 8 (Hercules) */

/* op kinds */
#define OP_ACCESS       1
#define OP_SSKE         2
#define OP_WRITE        3
#define OP_ISKE         4
#define OP_READ         5
#define OP_ZERO         6

/* stub slots: slot = (store * 4 + log2(size)) * 16 + base register, 8 bytes each */
#define SLOT_SIZE       8

#endif
