//go:build linux

package cli

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/internal/namespace"
)

// bpffsMagic is BPF_FS_MAGIC, statfs's f_type of a bpf file system.
const bpffsMagic = 0xcafe4a11

// isBPFFS reports whether dir is on a bpf file system.
func isBPFFS(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && uint32(st.Type) == bpffsMagic
}

// fdKind is what bpftool's get_fd_type reads from /proc/self/fd: "map",
// "prog", "link" or "unknown".
func fdKind(fd int) string {
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "unknown"
	}
	for _, k := range []string{"map", "prog", "link"} {
		if strings.Contains(link, "bpf-"+k) {
			return k
		}
	}
	return "unknown"
}

// fdinfo returns the value of the first line of /proc/self/fdinfo/<fd>
// that contains key, as bpftool's get_fdinfo does, or "".
func fdinfo(fd int, key string) string {
	f, err := os.Open("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, key) {
			continue
		}
		_, v, ok := strings.Cut(line, "\t")
		if !ok {
			return ""
		}
		return v
	}
	return ""
}

// bpffsMounts returns the mount points of bpf file systems, in
// /proc/mounts order.
func bpffsMounts() []string {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return nil
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && strings.HasPrefix(fields[2], "bpf") {
			dirs = append(dirs, unescapeMount(fields[1]))
		}
	}
	return dirs
}

// unescapeMount undoes /proc/mounts' octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// inode returns the device and inode of path (not following a last
// symbolic link), or ok false.
func inode(path string) (dev, ino uint64, ok bool) {
	var st unix.Stat_t
	if unix.Lstat(path, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0, 0, false
	}
	return uint64(st.Dev), st.Ino, true
}

// userPins adds the pins of ns's maps to tab: the files under its root that
// are links of a map object file.
func userPins(ns *namespace.NS, tab map[uint32][]string) {
	type key struct{ dev, ino uint64 }
	objects := map[key]uint32{}
	for _, id := range ns.IDs() {
		if dev, ino, ok := inode(ns.ObjectPath(id)); ok {
			objects[key{dev, ino}] = id
		}
	}
	walkFiles(ns.Root(), func(path string) {
		if dev, ino, ok := inode(path); ok {
			if id, ok := objects[key{dev, ino}]; ok {
				tab[id] = append(tab[id], path)
			}
		}
	})
}
