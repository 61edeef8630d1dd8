/*
 * s390-gaccess oracle guest: start-up, interruption handlers, the access
 * trampoline and the stub page.  See layout.h for the memory map and
 * oracle/README.md for how the driver uses it.
 *
 * Start-up state.  QEMU (-kernel with an ELF) starts at the ELF entry in
 * z/Architecture 64-bit mode, DAT off, key 0.  Hercules IPLs from a .ins
 * file in ESA/390 mode with the 8-byte PSW at 0, so the first instructions
 * switch to z/Architecture (SIGP set-architecture, code 0x12) and to 64-bit
 * addressing; QEMU rejects the SIGP harmlessly.  Only ESA/390 instructions
 * come before SAM64.
 */
#include "layout.h"

	.section .text.start,"ax"
	.globl	_start
_start:
	lhi	%r1,2			/* mode 2 = z/Architecture, as Linux boot code */
	slr	%r0,%r0
	sigp	%r1,%r0,0x12
	sam64
	larl	%r15,stack_end
	aghi	%r15,-160
	/* zero .bss (the stack is not in it) */
	larl	%r2,bss_start
	larl	%r3,bss_end
1:	clgr	%r2,%r3
	jhe	2f
	mvi	0(%r2),0
	aghi	%r2,1
	j	1b
2:	larl	%r1,base_cr0
	stctg	%c0,%c0,0(%r1)
	/* new PSWs: all 64-bit, DAT off, key 0, every interruption disabled */
	larl	%r1,new_psw_table
	mvc	LC_NEW_PSWS(96,%r0),0(%r1)
	brasl	%r14,guest_main
	larl	%r1,psw_end
	lpswe	0(%r1)

	.globl	guest_stop
guest_stop:
	larl	%r1,psw_fail
	lpswe	0(%r1)

/*
 * void set_prefix(u64 prefix)
 * SET PREFIX, then install the new PSWs in the lowcore that prefix selects.  The
 * guest runs with prefix 0 except around an access of a vCPU with a prefix.
 */
	.globl	set_prefix
set_prefix:
	larl	%r1,prefix_word
	st	%r2,0(%r1)
	spx	0(%r1)
	larl	%r1,new_psw_table
	mvc	LC_NEW_PSWS(96,%r0),0(%r1)
	br	%r14

/*
 * int run_access(void)
 * Everything the access needs has been put into the lowcore scratch block
 * and into ctl_regs by the C code, and the lowcore fields the CPU stores on
 * an interruption hold 0xff sentinels.  Returns 0 when the stub's SVC came
 * back (the access completed), 1 on a program interruption.
 */
	.text
	.globl	run_access
run_access:
	larl	%r1,c_regs
	stmg	%r6,%r15,0(%r1)
	larl	%r1,in_access
	mvi	0(%r1),1
	ptlb
	larl	%r1,ctl_regs
	lctlg	%c1,%c1,0(%r1)
	lctlg	%c2,%c2,8(%r1)
	lctlg	%c5,%c5,16(%r1)
	lctlg	%c7,%c7,24(%r1)
	lctlg	%c8,%c8,32(%r1)
	lctlg	%c13,%c13,40(%r1)
	/* from here on only fetches: CR0 may enable low-address protection */
	lctlg	%c0,%c0,LC_CR0
	lam	%a0,%a15,LC_ARS
	lmg	%r0,%r15,LC_REGS
	lpswe	LC_PSW

svc_entry:
	stmg	%r0,%r15,LC_SAVE
	lghi	%r2,0
	j	back
pgm_entry:
	stmg	%r0,%r15,LC_SAVE
	lghi	%r2,1
back:
	larl	%r1,base_cr0
	lctlg	%c0,%c0,0(%r1)
	larl	%r1,in_access
	cli	0(%r1),1
	jne	unexpected
	mvi	0(%r1),0
	larl	%r1,c_regs
	lmg	%r6,%r15,0(%r1)
	br	%r14

/* any other interruption, or an SVC/program check outside an access */
other_entry:
	stmg	%r0,%r15,LC_SAVE
	larl	%r1,base_cr0
	lctlg	%c0,%c0,0(%r1)
unexpected:
	larl	%r15,stack_end
	aghi	%r15,-160
	brasl	%r14,guest_fatal
	j	guest_stop

	.section .rodata
	.align	8
new_psw_table:
	.quad	0x0000000180000000, other_entry	/* restart */
	.quad	0x0000000180000000, other_entry	/* external */
	.quad	0x0000000180000000, svc_entry	/* SVC */
	.quad	0x0000000180000000, pgm_entry	/* program */
	.quad	0x0000000180000000, other_entry	/* machine check */
	.quad	0x0000000180000000, other_entry	/* I/O */
/* disabled wait at address 0xfff: QEMU shuts down with exit status 0 */
psw_end:
	.quad	0x0002000180000000, 0x0000000000000fff
/* any other disabled wait: QEMU reports a guest panic */
psw_fail:
	.quad	0x0002000180000000, 0x000000000000dead

	.data
	.align	8
	.globl	base_cr0, ctl_regs
base_cr0:	.quad	0
ctl_regs:	.quad	0, 0, 0, 0, 0, 0	/* CR1, CR2, CR5, CR7, CR8, CR13 */
c_regs:		.fill	10, 8, 0
in_access:	.quad	0
prefix_word:	.long	0

	.section .stack,"aw",@nobits
	.align	4096
stack:	.skip	8192
stack_end:

/*
 * The stub page, at virtual (and real) address STUB_ADDR.  Slot
 * (store * 4 + log2(size)) * 16 + b holds the access with base register b,
 * or for b = 0 the index register r1 and no base (so that in AR mode the
 * operand is in the primary space, as for memop ar 0), followed by SVC 0.
 * r0 is the value loaded or stored.
 */
	.macro	slot insn, b
	.if	\b == 0
	\insn	%r0,0(%r1,0)
	.else
	\insn	%r0,0(%r\b)
	.endif
	svc	0
	.balign	SLOT_SIZE, 0
	.endm

	.macro	slots insn
	.irp	b, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
	slot	\insn, \b
	.endr
	.endm

	.section .stub,"ax"
	.globl	stub
stub:
	slots	llgc
	slots	llgh
	slots	llgf
	slots	lg
	slots	stc
	slots	sth
	slots	st
	slots	stg
	.org	stub + 4096

	.section .note.GNU-stack,"",@progbits
