// Command bpfmap is bpftool's "map" command for user-space maps and kernel
// maps alike: the same grammar, output and exit codes, and no root needed
// for user-space maps.
//
//	bpfmap map create /tmp/maps/counts type hash key 4 value 8 entries 1024 name counts
//	bpfmap map update pinned /tmp/maps/counts key 1 0 0 0 value 42 0 0 0 0 0 0 0
//	bpfmap -j map dump pinned /tmp/maps/counts
//	bpfmap batch file commands.txt
//
// See internal/cli for the rules that pick a user-space or a kernel map.
package main

import (
	"os"
	"path/filepath"

	"github.com/bpfmap/bpfmap/internal/cli"
)

func main() {
	os.Exit(cli.Run(filepath.Base(os.Args[0]), os.Args[1:], os.Stdout, os.Stderr))
}
