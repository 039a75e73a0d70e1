// Declarations shared by the C shim and the Go half of the preload library.
#ifndef BPFMAP_PRELOAD_SHIM_H
#define BPFMAP_PRELOAD_SHIM_H

// bpfmap_bpf is bpf(cmd, attr, size) as the preloaded process sees it:
// routed to bpfmap or to the kernel.
long bpfmap_bpf(int cmd, void *attr, unsigned int size);

#endif
