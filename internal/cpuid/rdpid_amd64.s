//go:build linux

#include "textflag.h"

// func rdpid() uint32
TEXT ·rdpid(SB), NOSPLIT, $0-4
	RDPID AX
	MOVL  AX, ret+0(FP)
	RET

// func maxLeaf() uint32
TEXT ·maxLeaf(SB), NOSPLIT, $0-4
	XORL  AX, AX
	XORL  CX, CX
	CPUID
	MOVL  AX, ret+0(FP)
	RET

// func leaf7ECX() uint32
TEXT ·leaf7ECX(SB), NOSPLIT, $0-4
	MOVL  $7, AX
	XORL  CX, CX
	CPUID
	MOVL  CX, ret+0(FP)
	RET
