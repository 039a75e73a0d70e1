// Command bpfmap-bench measures bpfmap side by side with the kernel, in one
// process, and prints a markdown table: ns/op for bpfmap, the kernel's
// in-BPF cost (BPF_PROG_TEST_RUN + bpf_loop), the bpf(2) syscall through
// cilium/ebpf and Go's built-in map, bpfmap's allocs/op and its ratio to the
// kernel, each the median of -count runs. Kernel columns read n/a where the kernel's BPF is not available
// (not root, not Linux). With -shared (the default) it also reports hash
// lookups on a shared, pinned map from the process that made it and from
// another process (this command re-executed) against the bpf(2) syscall.
//
//	go run ./cmd/bpfmap-bench            # 1,024 and 1,048,576 entries
//	go run ./cmd/bpfmap-bench -sizes 1024 -v
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/bpfmap/bpfmap/internal/bench"
	"github.com/bpfmap/bpfmap/internal/kbpf"
)

func main() {
	bench.SharedChild() // a child measuring lookups of a map another process made
	sizes := flag.String("sizes", "1024,1048576", "comma-separated entry counts (powers of two)")
	verbose := flag.Bool("v", false, "print each measurement as it is taken")
	count := flag.Int("count", 5, "measurements per cell; the table shows their median")
	extra := flag.Bool("extra", true, "also report memory per element and GC cost of a 4M-entry map")
	keyless := flag.Bool("keyless", true, "also report bloom filter peeks and queue push+pop pairs")
	lpmlru := flag.Bool("lpmlru", true, "also report LPM trie lookups and LRU hash lookups and updates")
	ring := flag.Bool("ringbuf", true, "also report ring buffer records/s (1, 2, 4 producers) vs the kernel and a Go channel")
	shared := flag.Bool("shared", true, "also report hash lookups on a shared (pinned) map from the same and from another process vs the bpf(2) syscall")
	flag.Parse()

	var ns []uint32
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(s), 0, 32)
		if err != nil || n == 0 || n&(n-1) != 0 {
			fmt.Fprintf(os.Stderr, "bad size %q: want a power of two\n", s)
			os.Exit(2)
		}
		ns = append(ns, uint32(n))
	}
	if err := kbpf.Available(); err != nil {
		fmt.Fprintf(os.Stderr, "kernel columns skipped: %v\n", err)
	}
	var progress io.Writer
	if *verbose {
		progress = os.Stderr
	}
	rows := bench.Run(bench.Cases(ns...), *count, progress)
	fmt.Print(bench.Markdown(rows))
	if *keyless {
		fmt.Println()
		fmt.Print(bench.KeylessReport(ns, *count))
	}
	if *lpmlru {
		fmt.Println()
		fmt.Print(bench.LPMLRUReport(*count))
	}
	if *ring {
		fmt.Println()
		fmt.Print(bench.RingbufReport(*count))
	}
	if *shared {
		fmt.Println()
		fmt.Print(bench.SharedReport(ns, *count))
	}
	if *extra {
		fmt.Println()
		fmt.Print(bench.MemoryReport(ns))
		fmt.Println()
		fmt.Print(bench.GCReport(1 << 22))
	}
}
