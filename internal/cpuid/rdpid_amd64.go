//go:build linux

package cpuid

// hasCPUNumber: the CPU has RDPID (CPUID leaf 7, ECX bit 22), and Linux
// keeps the CPU number in IA32_TSC_AUX on every x86 CPU with RDPID or
// RDTSCP (its getcpu vDSO relies on the same register).
var hasCPUNumber = maxLeaf() >= 7 && leaf7ECX()&(1<<22) != 0

// cpuNumber is the running CPU's number: Linux stores node<<12 | cpu in
// IA32_TSC_AUX.
func cpuNumber() int { return int(rdpid() & 0xfff) }

// rdpid returns IA32_TSC_AUX (rdpid_amd64.s).
func rdpid() uint32

// maxLeaf returns CPUID leaf 0's EAX, the highest basic leaf.
func maxLeaf() uint32

// leaf7ECX returns CPUID leaf 7 subleaf 0's ECX feature bits.
func leaf7ECX() uint32
