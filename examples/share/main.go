// Command share shows two processes sharing one bpfmap map through a pin,
// the way two programs share a kernel map pinned on bpffs. Each run is a
// separate process; the map lives in the pin namespace between runs.
//
//	go run ./examples/share put dns 53      # creates and pins the map on first use
//	go run ./examples/share put https 443
//	go run ./examples/share get dns         # another process reads it
//	go run ./examples/share list
//	go run ./examples/share unpin           # the map dies with its last handle
//
// The namespace is $BPFMAP_ROOT, or the default (bpfmap.NamespaceRoot).
package main

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"os"
	"strconv"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
)

// spec is the shared map: 16-byte names to 4-byte ports, pinned by name.
var spec = &ebpf.MapSpec{
	Name:       "share_ports",
	Type:       ebpf.Hash,
	KeySize:    16,
	ValueSize:  4,
	MaxEntries: 1024,
	Pinning:    ebpf.PinByName,
}

func key(name string) [16]byte {
	var k [16]byte
	if len(name) > len(k) {
		log.Fatalf("name %q is longer than 16 bytes", name)
	}
	copy(k[:], name)
	return k
}

func main() {
	log.SetFlags(0)
	if len(os.Args) < 2 {
		log.Fatal("usage: share put NAME PORT | get NAME | list | unpin")
	}
	// Opens the map pinned as share_ports, or creates and pins it.
	m, err := bpfmap.NewMapWithOptions(spec, bpfmap.MapOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	switch args := os.Args[2:]; os.Args[1] {
	case "put":
		if len(args) != 2 {
			log.Fatal("usage: share put NAME PORT")
		}
		port, err := strconv.ParseUint(args[1], 0, 32)
		if err != nil {
			log.Fatal(err)
		}
		if err := m.Put(key(args[0]), uint32(port)); err != nil {
			log.Fatal(err)
		}
		info, _ := m.Info()
		id, _ := info.ID()
		fmt.Printf("%s = %d (map id %d, pid %d)\n", args[0], port, id, os.Getpid())
	case "get":
		if len(args) != 1 {
			log.Fatal("usage: share get NAME")
		}
		var port uint32
		err := m.Lookup(key(args[0]), &port)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			fmt.Printf("%s: not found\n", args[0])
			os.Exit(1)
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s = %d (read by pid %d)\n", args[0], port, os.Getpid())
	case "list":
		var k [16]byte
		var port uint32
		it := m.Iterate()
		for it.Next(&k, &port) {
			fmt.Printf("%s = %d\n", bytes.TrimRight(k[:], "\x00"), port)
		}
		if err := it.Err(); err != nil {
			log.Fatal(err)
		}
	case "unpin":
		if err := m.Unpin(); err != nil {
			log.Fatal(err)
		}
		fmt.Println("unpinned; the map is gone once no process has it open")
	default:
		log.Fatalf("unknown command %q", os.Args[1])
	}
}
