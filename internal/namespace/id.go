package namespace

// User-space map ids run from MinID to MaxID. The kernel hands out map ids
// from 1 upwards (cyclically, below INT_MAX), so the two kinds of id stay
// apart in practice: a host would have to create 2^30 kernel maps since boot
// before a kernel id reached MinID. Tools that see both kinds (the bpfmap
// command, the preload library) tell a user-space id from a kernel id by
// its range alone, and user-space ids are still valid kernel-style ids
// (positive, below INT_MAX) for code that stores them as such.
const (
	MinID = 1 << 30
	MaxID = 1<<31 - 2
)

// ValidID reports whether id is in the user-space id range.
func ValidID(id uint32) bool { return id >= MinID && id <= MaxID }

// InternalDir is the name of a root's subdirectory for the namespace's own
// files; it holds no pins.
const InternalDir = internalDir
